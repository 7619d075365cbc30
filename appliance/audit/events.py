"""Audit events: typed, each with a stable name. Recorded only through `appliance.audit.record`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Context:
    """Who did it, from where, in which organisation. `actor` reads `user:12`, `apikey:3`, `cli:root`, `system`."""

    actor: str
    org_id: int | None = None
    client_addr: str | None = None


@dataclass(frozen=True)
class AuditEvent:
    name: ClassVar[str] = ""

    @property
    def target(self) -> str:
        return ""

    def details(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LoginSucceeded(AuditEvent):
    name: ClassVar[str] = "auth.login.succeeded"
    user_id: int
    email: str

    @property
    def target(self) -> str:
        return f"user:{self.user_id}"


@dataclass(frozen=True)
class LoginFailed(AuditEvent):
    name: ClassVar[str] = "auth.login.failed"
    email: str
    reason: str

    @property
    def target(self) -> str:
        return f"email:{self.email}"


@dataclass(frozen=True)
class LoggedOut(AuditEvent):
    name: ClassVar[str] = "auth.logout"
    user_id: int
    sessions_ended: int

    @property
    def target(self) -> str:
        return f"user:{self.user_id}"


@dataclass(frozen=True)
class MfaChanged(AuditEvent):
    """Two-step verification for a person: enrolment started, enabled, a recovery code used, or removed (by
    themselves or an administrator)."""

    name: ClassVar[str] = "auth.mfa.changed"
    user_id: int
    change: str  # enrolling | enabled | recovery_code_used | disabled | reset

    @property
    def target(self) -> str:
        return f"user:{self.user_id}"


@dataclass(frozen=True)
class AccessDenied(AuditEvent):
    name: ClassVar[str] = "auth.permission.denied"
    permission: str
    route: str

    @property
    def target(self) -> str:
        return f"route:{self.route}"


@dataclass(frozen=True)
class ApiKeyRejected(AuditEvent):
    name: ClassVar[str] = "auth.apikey.rejected"
    prefix: str
    reason: str

    @property
    def target(self) -> str:
        return f"apikey-prefix:{self.prefix}"


@dataclass(frozen=True)
class OrgCreated(AuditEvent):
    name: ClassVar[str] = "org.created"
    org_id: int
    slug: str

    @property
    def target(self) -> str:
        return f"org:{self.org_id}"


@dataclass(frozen=True)
class OrgSettingsChanged(AuditEvent):
    name: ClassVar[str] = "org.settings.changed"
    org_id: int
    changes: dict[str, Any]

    @property
    def target(self) -> str:
        return f"org:{self.org_id}"


@dataclass(frozen=True)
class ConfidenceRecalibrated(AuditEvent):
    """The organisation's confidence adjustment fitted from its own labels (answering/recalibration.py), or removed
    (adjustment None)."""

    name: ClassVar[str] = "answers.recalibrated"
    org_id: int
    adjustment: dict[str, Any] | None

    @property
    def target(self) -> str:
        return f"org:{self.org_id}"


@dataclass(frozen=True)
class UserCreated(AuditEvent):
    name: ClassVar[str] = "user.created"
    user_id: int
    email: str
    role: str

    @property
    def target(self) -> str:
        return f"user:{self.user_id}"


@dataclass(frozen=True)
class MemberAdded(AuditEvent):
    name: ClassVar[str] = "user.member.added"
    user_id: int
    role: str

    @property
    def target(self) -> str:
        return f"user:{self.user_id}"


@dataclass(frozen=True)
class RoleChanged(AuditEvent):
    name: ClassVar[str] = "user.role.changed"
    user_id: int
    old_role: str
    new_role: str

    @property
    def target(self) -> str:
        return f"user:{self.user_id}"


@dataclass(frozen=True)
class UserDisabled(AuditEvent):
    name: ClassVar[str] = "user.disabled"
    user_id: int
    sessions_ended: int

    @property
    def target(self) -> str:
        return f"user:{self.user_id}"


@dataclass(frozen=True)
class PasswordChanged(AuditEvent):
    name: ClassVar[str] = "user.password.changed"
    user_id: int
    sessions_ended: int

    @property
    def target(self) -> str:
        return f"user:{self.user_id}"


@dataclass(frozen=True)
class ApiKeyCreated(AuditEvent):
    name: ClassVar[str] = "apikey.created"
    key_id: int
    key_name: str
    scopes: list[str]

    @property
    def target(self) -> str:
        return f"apikey:{self.key_id}"


@dataclass(frozen=True)
class ApiKeyRevoked(AuditEvent):
    name: ClassVar[str] = "apikey.revoked"
    key_id: int

    @property
    def target(self) -> str:
        return f"apikey:{self.key_id}"


@dataclass(frozen=True)
class AuditTrailRead(AuditEvent):
    name: ClassVar[str] = "audit.read"
    query: dict[str, Any]
    returned: int

    @property
    def target(self) -> str:
        return "audit"


@dataclass(frozen=True)
class AuditExported(AuditEvent):
    name: ClassVar[str] = "audit.exported"
    since: str | None
    until: str | None
    events: int
    manifest_sha256: str

    @property
    def target(self) -> str:
        return "audit"


@dataclass(frozen=True)
class AuditVerified(AuditEvent):
    name: ClassVar[str] = "audit.verified"
    ok: bool
    events: int
    first_broken: int | None

    @property
    def target(self) -> str:
        return "audit"


@dataclass(frozen=True)
class SchemaMigrated(AuditEvent):
    name: ClassVar[str] = "system.schema.migrated"
    from_version: int
    to_version: int

    @property
    def target(self) -> str:
        return "database"


@dataclass(frozen=True)
class Initialised(AuditEvent):
    name: ClassVar[str] = "system.initialised"
    key_mode: str

    @property
    def target(self) -> str:
        return "database"


@dataclass(frozen=True)
class ModelInstalled(AuditEvent):
    name: ClassVar[str] = "model.installed"
    model: str
    role: str
    package: str
    files: dict[str, str]

    @property
    def target(self) -> str:
        return f"model:{self.model}"


@dataclass(frozen=True)
class ModelRegistered(AuditEvent):
    name: ClassVar[str] = "model.registered"
    model: str
    role: str
    path: str
    sha256: str
    answer_capable: bool

    @property
    def target(self) -> str:
        return f"model:{self.model}"


@dataclass(frozen=True)
class ArticleSaved(AuditEvent):
    name: ClassVar[str] = "article.saved"
    article_id: int
    version: int
    title: str
    note: str

    @property
    def target(self) -> str:
        return f"article:{self.article_id}"


@dataclass(frozen=True)
class ArticleStatusChanged(AuditEvent):
    name: ClassVar[str] = "article.status.changed"
    article_id: int
    old_status: str
    new_status: str
    version: int

    @property
    def target(self) -> str:
        return f"article:{self.article_id}"


@dataclass(frozen=True)
class ArticlesImported(AuditEvent):
    """One import run; each article it created or changed has its own article.saved event too."""

    name: ClassVar[str] = "article.imported"
    source: str
    created: int
    updated: int
    unchanged: int
    failed: int

    @property
    def target(self) -> str:
        return f"import:{self.source}"


@dataclass(frozen=True)
class AnswerGiven(AuditEvent):
    """The assistant answered, refused or blocked a customer message (ids and figures only, never the text)."""

    name: ClassVar[str] = "answer.given"
    conversation_id: int
    message_id: int
    outcome: str
    confidence: int
    reason: str
    articles: list[int]

    @property
    def target(self) -> str:
        return f"message:{self.message_id}"


@dataclass(frozen=True)
class ConversationEscalated(AuditEvent):
    name: ClassVar[str] = "conversation.escalated"
    conversation_id: int
    reason: str

    @property
    def target(self) -> str:
        return f"conversation:{self.conversation_id}"


@dataclass(frozen=True)
class ProvenanceRead(AuditEvent):
    name: ClassVar[str] = "answer.provenance.read"
    message_id: int

    @property
    def target(self) -> str:
        return f"message:{self.message_id}"


@dataclass(frozen=True)
class GoldenQuestionChanged(AuditEvent):
    name: ClassVar[str] = "golden.changed"
    golden_id: int
    change: str  # created | deleted
    expected_article_id: int | None

    @property
    def target(self) -> str:
        return f"golden:{self.golden_id}"


@dataclass(frozen=True)
class PublishGateRun(AuditEvent):
    """A publish checked against the golden questions; `overridden` when an admin published despite failures."""

    name: ClassVar[str] = "article.publish_gate"
    article_id: int
    version: int
    passed: bool
    failures: int
    overridden: bool

    @property
    def target(self) -> str:
        return f"article:{self.article_id}"


@dataclass(frozen=True)
class RetentionPurged(AuditEvent):
    name: ClassVar[str] = "retention.purged"
    kind: str
    cutoff: str
    conversations: int
    messages: int
    knowledge_gaps: int

    @property
    def target(self) -> str:
        return f"retention:{self.kind}"


@dataclass(frozen=True)
class PassageFlagged(AuditEvent):
    """The injection scanner held a passage of a published article out of the index for review."""

    name: ClassVar[str] = "article.passage.flagged"
    flag_id: int
    article_id: int
    version: int
    chunk_index: int
    score: float
    reason: str
    scanner: str

    @property
    def target(self) -> str:
        return f"article:{self.article_id}"


@dataclass(frozen=True)
class PassageFlagReviewed(AuditEvent):
    """An editor approved (the passage is indexed) or rejected (it stays out) a flagged passage."""

    name: ClassVar[str] = "article.passage.reviewed"
    flag_id: int
    article_id: int
    version: int
    decision: str  # approved | rejected
    previous: str

    @property
    def target(self) -> str:
        return f"article:{self.article_id}"


# -- conversations in real time ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationStarted(AuditEvent):
    name: ClassVar[str] = "conversation.started"
    conversation_id: int
    channel: str
    customer_id: int | None

    @property
    def target(self) -> str:
        return f"conversation:{self.conversation_id}"


@dataclass(frozen=True)
class EscalationDecided(AuditEvent):
    """A rule or a built-in trigger fired on a conversation: which, on what values, and what it did."""

    name: ClassVar[str] = "conversation.rule_fired"
    conversation_id: int
    message_id: int | None
    rule_id: int | None
    trigger_type: str
    action: str
    team_id: int | None
    reason: str
    inputs: dict[str, Any]

    @property
    def target(self) -> str:
        return f"conversation:{self.conversation_id}"


@dataclass(frozen=True)
class ConversationAssigned(AuditEvent):
    name: ClassVar[str] = "conversation.assigned"
    conversation_id: int
    agent_id: int | None  # None: back in the team's queue
    team_id: int | None
    how: str  # routed | takeover | release | reassigned

    @property
    def target(self) -> str:
        return f"conversation:{self.conversation_id}"


@dataclass(frozen=True)
class ConversationResolved(AuditEvent):
    name: ClassVar[str] = "conversation.resolved"
    conversation_id: int
    resolution_type: str
    status: str  # resolved | closed

    @property
    def target(self) -> str:
        return f"conversation:{self.conversation_id}"


@dataclass(frozen=True)
class AgentReplied(AuditEvent):
    """A person replied to a customer (ids only, never the text)."""

    name: ClassVar[str] = "conversation.agent_replied"
    conversation_id: int
    message_id: int

    @property
    def target(self) -> str:
        return f"message:{self.message_id}"


@dataclass(frozen=True)
class MessageRedacted(AuditEvent):
    """Card numbers, account numbers or identifiers were masked in a message before it was stored: which kinds and
    how many of each (never the values, nor where they were)."""

    name: ClassVar[str] = "conversation.message_redacted"
    conversation_id: int
    message_id: int
    role: str  # customer | agent
    counts: dict[str, int]

    @property
    def target(self) -> str:
        return f"message:{self.message_id}"


@dataclass(frozen=True)
class NoteAdded(AuditEvent):
    """A person wrote an internal note on a conversation (ids only, never the text)."""

    name: ClassVar[str] = "conversation.note_added"
    conversation_id: int
    note_id: int

    @property
    def target(self) -> str:
        return f"conversation:{self.conversation_id}"


@dataclass(frozen=True)
class CsatSubmitted(AuditEvent):
    name: ClassVar[str] = "conversation.csat"
    conversation_id: int
    rating: int

    @property
    def target(self) -> str:
        return f"conversation:{self.conversation_id}"


@dataclass(frozen=True)
class CustomerHistoryRead(AuditEvent):
    name: ClassVar[str] = "customer.history.read"
    customer_id: int

    @property
    def target(self) -> str:
        return f"customer:{self.customer_id}"


@dataclass(frozen=True)
class SignatureRejected(AuditEvent):
    """A widget visitor session or a signed customer identity did not verify (forged, expired or for another key)."""

    name: ClassVar[str] = "widget.signature_rejected"
    kind: str  # visitor_session | identity | widget_key
    reason: str

    @property
    def target(self) -> str:
        return f"widget:{self.kind}"


@dataclass(frozen=True)
class WidgetKeyChanged(AuditEvent):
    name: ClassVar[str] = "widget.key_changed"
    key_id: int
    change: str  # created | theme | revoked | secret_rotated

    @property
    def target(self) -> str:
        return f"widget_key:{self.key_id}"


@dataclass(frozen=True)
class EscalationRuleChanged(AuditEvent):
    name: ClassVar[str] = "escalation.rule_changed"
    rule_id: int
    change: str  # created | updated | deleted
    fields: dict[str, Any]

    @property
    def target(self) -> str:
        return f"escalation_rule:{self.rule_id}"


@dataclass(frozen=True)
class RoutingChanged(AuditEvent):
    """Teams, their members and hours, agents' capacity, topics and canned replies."""

    name: ClassVar[str] = "routing.changed"
    kind: str  # team | member | agent | topic | topic_model | canned_reply
    object_id: int
    change: str
    fields: dict[str, Any]

    @property
    def target(self) -> str:
        return f"{self.kind}:{self.object_id}"


@dataclass(frozen=True)
class WebhookChanged(AuditEvent):
    name: ClassVar[str] = "webhook.changed"
    webhook_id: int
    change: str  # created | updated | deleted | secret_rotated
    url: str
    events: list[str]

    @property
    def target(self) -> str:
        return f"webhook:{self.webhook_id}"


@dataclass(frozen=True)
class ConversationRead(AuditEvent):
    """A person opened a conversation's transcript and handoff package."""

    name: ClassVar[str] = "conversation.read"
    conversation_id: int

    @property
    def target(self) -> str:
        return f"conversation:{self.conversation_id}"


# -- analytics -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerReviewed(AuditEvent):
    """A reviewer labelled an AI reply (a new label replaces the previous one, named here). The reason stays out:
    it may quote the customer."""

    name: ClassVar[str] = "answer.reviewed"
    message_id: int
    verdict: str
    previous: str | None

    @property
    def target(self) -> str:
        return f"message:{self.message_id}"


@dataclass(frozen=True)
class AnswerReviewCleared(AuditEvent):
    name: ClassVar[str] = "answer.review_cleared"
    message_id: int
    previous: str

    @property
    def target(self) -> str:
        return f"message:{self.message_id}"


@dataclass(frozen=True)
class ReviewsRead(AuditEvent):
    """A reviewer listed AI replies with the customers' questions (the filters and how many, never the text)."""

    name: ClassVar[str] = "analytics.reviews_read"
    filters: dict[str, Any]
    count: int

    @property
    def target(self) -> str:
        return "reviews"


@dataclass(frozen=True)
class ReviewsExported(AuditEvent):
    """The review labels left the appliance with their questions and answers, for recalibration."""

    name: ClassVar[str] = "analytics.reviews_exported"
    since: str | None
    until: str | None
    rows: int

    @property
    def target(self) -> str:
        return "reviews"


@dataclass(frozen=True)
class KnowledgeGapsRead(AuditEvent):
    """Someone read the clustered knowledge gaps: customers' questions over a range of days."""

    name: ClassVar[str] = "analytics.gaps_read"
    since: str
    until: str
    gaps: int

    @property
    def target(self) -> str:
        return "knowledge_gaps"


@dataclass(frozen=True)
class AnalyticsRolledUp(AuditEvent):
    """A person asked for the rollups to be recomputed now (the periodic runs are not audited: they read and write
    aggregates only)."""

    name: ClassVar[str] = "analytics.rolled_up"
    days: list[str]

    @property
    def target(self) -> str:
        return "analytics"
