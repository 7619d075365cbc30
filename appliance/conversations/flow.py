"""The conversation flow: a customer message in, the assistant's or a person's reply out, every state change
stored, audited and announced.

Card numbers, account numbers and health or national identifiers are masked in customer and agent messages
before anything stores, scores or answers them (`redaction`); the message keeps the kinds and counts only.

A customer message is committed before it is acknowledged (`receive`): with its sentiment, the conversation's
topic, the customer's totals, the escalation decisions the rules took on it, and its webhook deliveries, in one
transaction. A resend with the same client id from the same sender is recognised and changes nothing. The reply
(`respond`) is computed outside any transaction and stored in a second one, with the decisions taken on it.

What the assistant sends:
- small talk gets its fixed reply (never a failure, a knowledge gap or an escalation);
- an urgent message gets the emergency guidance and the conversation goes to a person as `urgent`;
- a refusal offers articles that may help and counts a failed attempt; a person is brought in after
  max_failed_attempts of them, on request, or by the organisation's rules, never by one refusal alone;
- while a conversation waits for a person (escalated, still handled by the assistant), only confident answers and
  urgent guidance are sent, each saying a person is still coming (`answer_while_waiting`, default on); a refusal
  then becomes a short notice. A conversation taken over by a person gets no AI replies.
Whenever a customer message gets no reply, the customer's widget is told so (`no_reply`), so that it never shows
"Typing…" for an answer that is not coming.

Every function returns the events the hub should push; they describe what the database now holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from appliance import audit
from appliance.answering.engine import AnswerEngine
from appliance.answering.types import Answer
from appliance.audit.events import (
    AgentReplied, AnswerGiven, ConversationAssigned, ConversationEscalated, ConversationResolved,
    ConversationStarted, Context, CsatSubmitted, EscalationDecided, MessageRedacted,
)  # fmt: skip
from appliance.conversations import customers, events, notices, routing
from appliance.conversations.events import Event
from appliance.conversations.policy import Decision, NoTriage, Signals, Triage
from appliance.errors import Conflict, InvalidValue, NotFound, PayloadTooLarge
from appliance.inference.base import TextScorer
from appliance.knowledge import articles as knowledge_articles
from appliance.redaction import Redacted, Redactor
from appliance.store import Connection, Database, now_iso
from appliance.webhooks import outbox

AI_STATUSES = ("active", "waiting")  # statuses in which the assistant answers (while handled_by is ai)
# Escalated but still handled by the assistant: waiting for a person, who has not taken over yet.
WAITING_STATUS = "escalated"
SENT_WHILE_WAITING = ("answered", "urgent")  # the replies sent while waiting; others become a notice
COUNTED = ("answered", "refused", "blocked")  # replies that count as the assistant's turns (not small talk)
CLOSED_STATUSES = ("resolved", "closed")
GAP_REASONS = ("low_confidence", "no_match")  # refusals that are knowledge gaps (not blocked attacks)
PRIORITIES = ("low", "medium", "high", "urgent")
MAX_CLIENT_ID = 100
WORDS = re.compile(r"\s*\S+")  # the pieces a composed answer is streamed in

TopicClassifier = Callable[[int, str], "str | None"]


@dataclass
class Received:
    conversation_id: int
    message_id: int
    duplicate: bool
    status: str
    answer_needed: bool  # the assistant should reply (respond)
    text: str
    events: list[Event] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    reply_id: int | None = None  # a duplicate's reply, when it already has one
    escalated_now: bool = False  # this message's own decisions sent the conversation to a person


@dataclass
class Responded:
    message_id: int | None
    answer: Answer | None
    status: str
    escalated: bool
    events: list[Event] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)


def _answered(conn: Connection, conversation_id: int, message_id: int) -> bool:
    """Whether the message right after the customer's is a reply (not their next message; the service's notices,
    such as who is coming, are not replies)."""
    row = conn.execute("SELECT role FROM messages WHERE conversation_id = ? AND id > ?"
                       " AND coalesce(outcome, '') != 'notice' ORDER BY id LIMIT 1",
                       (conversation_id, message_id)).fetchone()  # fmt: skip
    return row is not None and row["role"] != "customer"


def _cited_articles(sources: str | None) -> set[int]:
    """The articles a stored AI message cites (its sources column: a JSON list of sources)."""
    found = json.loads(sources) if sources else []
    return {int(s["article_id"]) for s in found if isinstance(s, dict) and isinstance(s.get("article_id"), int)}


def _counts(redacted: Redacted) -> str | None:
    """The message's `redactions` column: kinds and counts of what was masked, never the values."""
    return json.dumps(redacted.counts()) if redacted.changed else None


def _insert(conn: Connection, sql: str, params: tuple[Any, ...]) -> int:
    row_id = conn.execute(sql, params).lastrowid
    assert row_id is not None
    return int(row_id)


def conversation_row(conn: Connection, org_id: int, conversation_id: int, visitor_id: str | None = None) -> Any:
    """The conversation; for a visitor, only their own (another's is not found, not forbidden)."""
    row = conn.execute("SELECT * FROM conversations WHERE id = ? AND org_id = ?", (conversation_id, org_id)).fetchone()
    if row is None or (visitor_id is not None and row["visitor_id"] != visitor_id):
        raise NotFound(f"conversation {conversation_id} not found")
    return row


def _user_name(conn: Connection, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    row = conn.execute("SELECT name, email FROM users WHERE id = ?", (user_id,)).fetchone()
    return None if row is None else (row["name"] or row["email"].split("@")[0])


def state_frame(conn: Connection, conversation_id: int) -> dict[str, Any]:
    row = conn.execute("SELECT * FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
    return {
        "type": "status", "conversation_id": conversation_id, "status": row["status"],
        "handled_by": row["handled_by"], "agent": _user_name(conn, row["assigned_agent_id"])
        if row["handled_by"] == "agent" else None,
    }  # fmt: skip


def no_reply(conversation_id: int, message_id: int, reason: str) -> Event:
    """Tells the customer's widget that no reply is coming for this message (it clears "Typing…")."""
    return Event((events.visitor(conversation_id),), {"type": "no_reply", "conversation_id": conversation_id,
                                                       "reply_to": message_id, "reason": reason})  # fmt: skip


def _setting(conn: Connection, org_id: int, key: str, default: Any) -> Any:
    row = conn.execute("SELECT settings FROM orgs WHERE id = ?", (org_id,)).fetchone()
    value = json.loads(row["settings"]).get(key, default) if row is not None else default
    return value if isinstance(value, type(default)) else default


def listed(row: Any) -> Event:
    """The conversation as it now stands, for the organisation's conversation lists."""
    return Event((events.org(int(row["org_id"])),), {"type": "conversation",
                                                     "conversation": events.conversation_summary(row)})


class Flow:
    def __init__(
        self, db: Database, engine: Callable[[], AnswerEngine] | None, *, triage: Triage | None = None,
        sentiment: Callable[[], TextScorer | None] | None = None, topics: TopicClassifier | None = None,
        max_message_bytes: int = 4096, max_failed_attempts: int = 3, responder: str = "assistant",
        redactor: Redactor | None = None,
    ) -> None:  # fmt: skip
        self.db = db
        self.engine = engine
        self.triage: Triage = triage or NoTriage()
        self.sentiment = sentiment
        self.topics = topics
        self.max_message_bytes = max_message_bytes
        self.max_failed_attempts = max_failed_attempts
        self.responder = responder
        self.redactor = redactor if redactor is not None else Redactor()
        self._deliveries_queued = False

    def _enqueue(self, conn: Connection, org_id: int, event: str, data: dict[str, Any],
                 conversation_id: int | None) -> None:  # fmt: skip
        if outbox.enqueue(conn, org_id, event, data, conversation_id):
            self._deliveries_queued = True

    def take_deliveries(self) -> bool:
        """Whether changes since the last call queued webhook deliveries (the entry point then asks for them to be
        sent now; the periodic run sends any it misses)."""
        queued, self._deliveries_queued = self._deliveries_queued, False
        return queued

    # -- customer messages ---------------------------------------------------------------------------------
    def check_text(self, text: str) -> str:
        text = text.strip()
        if not text:
            raise InvalidValue("the message is empty")
        size = len(text.encode("utf-8"))
        if size > self.max_message_bytes:
            raise PayloadTooLarge(f"the message is {size} bytes; the limit is {self.max_message_bytes}")
        return text

    def _audit_redaction(self, conn: Connection, ctx: Context, conversation_id: int, message_id: int, role: str,
                         redacted: Redacted) -> None:  # fmt: skip
        if redacted.changed:
            audit.record(conn, ctx, MessageRedacted(conversation_id, message_id, role, redacted.counts()))

    def _duplicate(self, conn: Connection, org_id: int, sender: str, client_id: str | None) -> Received | None:
        if client_id is None:
            return None
        row = conn.execute("SELECT * FROM messages WHERE org_id = ? AND sender = ? AND client_id = ?",
                           (org_id, sender, client_id)).fetchone()  # fmt: skip
        if row is None:
            return None
        conv = conn.execute("SELECT status, handled_by FROM conversations WHERE id = ?",
                            (row["conversation_id"],)).fetchone()  # fmt: skip
        later = conn.execute("SELECT id, role FROM messages WHERE conversation_id = ? AND id > ? ORDER BY id",
                             (row["conversation_id"], row["id"])).fetchall()  # fmt: skip
        reply = next((r for r in later if r["role"] != "customer"), None)
        # Stored but never answered (the reply failed after the ack): a resend asks for the answer again, as long
        # as it is still the customer's latest message and the assistant still has the conversation.
        unanswered = (not later and row["role"] == "customer" and conv["status"] in AI_STATUSES
                      and conv["handled_by"] == "ai")  # fmt: skip
        return Received(int(row["conversation_id"]), int(row["id"]), True, conv["status"], unanswered,
                        row["content"], reply_id=None if reply is None else int(reply["id"]))  # fmt: skip

    def _score(self, text: str) -> tuple[float | None, str | None]:
        scorer = self.sentiment() if self.sentiment is not None else None
        if scorer is None:
            return None, None
        got = scorer.score([text])[0]
        return float(got.score), got.label

    def receive(
        self, ctx: Context, org_id: int, text: str, *, sender: str, conversation_id: int | None = None,
        client_id: str | None = None, channel: str = "api", customer_id: int | None = None,
        visitor_id: str | None = None,
    ) -> Received:  # fmt: skip
        text = self.check_text(text)
        if client_id is not None and not 1 <= len(client_id) <= MAX_CLIENT_ID:
            raise InvalidValue(f"client_id must be 1-{MAX_CLIENT_ID} characters")
        # Masked before anything sees it: sentiment, topic, rules, storage, webhooks and the answer's query.
        redacted = self.redactor.redact(text)
        text = redacted.text
        topic_needed = True
        with self.db.read() as conn:
            known = self._duplicate(conn, org_id, sender, client_id)
            if known is not None:
                return known
            if conversation_id is not None:
                row = conversation_row(conn, org_id, conversation_id, visitor_id)
                if row["status"] in CLOSED_STATUSES:
                    raise Conflict(f"conversation {conversation_id} is {row['status']}")
                topic_needed = row["topic"] is None
        sentiment, label = self._score(text)
        topic = self.topics(org_id, text) if self.topics is not None and topic_needed else None
        now = now_iso()
        out: list[Event] = []
        with self.db.write() as conn:
            known = self._duplicate(conn, org_id, sender, client_id)  # a resend that raced the first copy
            if known is not None:
                return known
            if conversation_id is None:
                conversation_id = _insert(
                    conn, "INSERT INTO conversations (org_id, channel, status, started_by, customer_id, visitor_id,"
                    " created_at, updated_at) VALUES (?, ?, 'active', ?, ?, ?, ?, ?)",
                    (org_id, channel, ctx.actor, customer_id, visitor_id, now, now),
                )  # fmt: skip
                audit.record(conn, ctx, ConversationStarted(conversation_id, channel, customer_id))
                if customer_id is not None:
                    customers.counted_conversation(conn, customer_id)
                self._enqueue(conn, org_id, "conversation.created",
                               {"conversation_id": conversation_id, "channel": channel, "customer_id": customer_id},
                               conversation_id)  # fmt: skip
            row = conversation_row(conn, org_id, conversation_id, visitor_id)
            if row["status"] in CLOSED_STATUSES:
                raise Conflict(f"conversation {conversation_id} is {row['status']}")
            message_id = _insert(
                conn, "INSERT INTO messages (conversation_id, org_id, role, content, sender, client_id, sentiment,"
                " sentiment_label, redactions, created_at) VALUES (?, ?, 'customer', ?, ?, ?, ?, ?, ?, ?)",
                (conversation_id, org_id, text, sender, client_id, sentiment, label, _counts(redacted), now),
            )  # fmt: skip
            self._audit_redaction(conn, ctx, conversation_id, message_id, "customer", redacted)
            conn.execute(
                "UPDATE conversations SET updated_at = ?, sentiment = coalesce(?, sentiment),"
                " sentiment_label = coalesce(?, sentiment_label), topic = coalesce(topic, ?) WHERE id = ?",
                (now, sentiment, label, topic, conversation_id),
            )  # fmt: skip
            if row["customer_id"] is not None:
                customers.counted_message(conn, int(row["customer_id"]), sentiment, now)
            out += self._announce(conn, org_id, conversation_id, message_id)
            row = conversation_row(conn, org_id, conversation_id)
            value = customers.get(conn, org_id, int(row["customer_id"])).lifetime_value if row["customer_id"] else 0.0
            signals = Signals(org_id, conversation_id, "customer", text, sentiment, label, row["topic"], value,
                              failed_attempts=int(row["failed_attempts"]), bot_turns=int(row["bot_turns"]))  # fmt: skip
            decisions = self.triage.decide(conn, signals)
            before = row["status"]
            out += self._apply(conn, ctx, row, message_id, decisions, now)
            row = conversation_row(conn, org_id, conversation_id)
            out.append(listed(row))
            # While it waits for a person the assistant still looks at each message (urgent guidance, and answers
            # when answer_while_waiting is on); once a person has it, never.
            needed = row["handled_by"] == "ai" and row["status"] in (*AI_STATUSES, WAITING_STATUS)
            if not needed:
                out.append(no_reply(conversation_id, message_id, "person"))
        return Received(conversation_id, message_id, False, row["status"], needed, text, out, decisions,
                        escalated_now=before != WAITING_STATUS and row["status"] == WAITING_STATUS)  # fmt: skip

    # -- the assistant's reply -----------------------------------------------------------------------------
    def _screen(self, org_id: int, text: str) -> Answer | None:
        """Only the urgent check (a conversation waiting for a person, when the assistant does not answer then)."""
        if self.responder == "echo" or self.engine is None:
            return None
        return self.engine().screen(org_id, text, small_talk=False)

    def _answer(self, org_id: int, conversation_id: int, text: str, on_delta: Callable[[str], None] | None) -> Answer:
        if self.responder == "echo":
            if on_delta is not None:
                on_delta(text)
            return Answer("answered", text, 100, [], "echo", text, text, 0)
        if self.engine is None:
            raise InvalidValue("no answer engine is configured")
        with self.db.read() as conn:
            previous = [str(r[0]) for r in conn.execute(
                "SELECT query FROM messages WHERE conversation_id = ? AND role = 'customer' AND query IS NOT NULL"
                " ORDER BY id", (conversation_id,))]  # fmt: skip
        if on_delta is None:
            return self.engine().answer(org_id, text, previous)
        streamed = False

        def relay(piece: str) -> None:
            nonlocal streamed
            streamed = True
            on_delta(piece)

        answer = self.engine().answer(org_id, text, previous, on_delta=relay)
        if not streamed and answer.outcome == "answered":  # composed whole (extractive): sent word by word all the same
            for piece in WORDS.findall(answer.text):
                on_delta(piece)
        return answer

    def respond(self, ctx: Context, org_id: int, received: Received,
                on_delta: Callable[[str], None] | None = None) -> Responded:  # fmt: skip
        conversation_id = received.conversation_id
        if not received.answer_needed:
            return Responded(None, None, received.status, False)
        with self.db.read() as conn:
            row = conversation_row(conn, org_id, conversation_id)
            waiting = row["status"] == WAITING_STATUS
            full = not waiting or (not received.escalated_now and _setting(conn, org_id, "answer_while_waiting", True))
        # Waiting for a person: the message that asked for one, or every message when answer_while_waiting is off,
        # is only checked for an emergency (and not streamed: what is sent is decided after).
        answer = self._answer(org_id, conversation_id, received.text, None if waiting else on_delta) if full \
            else self._screen(org_id, received.text)
        now = now_iso()
        out: list[Event] = []
        with self.db.write() as conn:
            row = conversation_row(conn, org_id, conversation_id)
            if row["handled_by"] != "ai" or row["status"] not in (*AI_STATUSES, WAITING_STATUS):  # a person took it
                return Responded(None, None, row["status"], False, [no_reply(conversation_id, received.message_id,
                                                                              "person")])  # fmt: skip
            if _answered(conn, conversation_id, received.message_id):  # a resend raced the first copy's answer
                return Responded(None, None, row["status"], False)
            waiting = row["status"] == WAITING_STATUS
            if answer is not None:
                conn.execute("UPDATE messages SET query = ? WHERE id = ?", (answer.query, received.message_id))
            if answer is None or (waiting and answer.outcome not in SENT_WHILE_WAITING):
                # Nothing the assistant could say for sure: the customer is told the person is still coming
                # (when the assistant answers meanwhile), else nothing is sent; no failure is counted.
                if answer is not None:
                    coming = notices.someone_coming(conn, org_id, row["team_id"])
                    out += self._notice(conn, org_id, conversation_id, notices.STRINGS[
                        "waiting_refusal" if coming else "waiting_refusal_away"], now)  # fmt: skip
                out.append(no_reply(conversation_id, received.message_id, "waiting"))
                row = conversation_row(conn, org_id, conversation_id)
                out.append(listed(row))
                return Responded(None, None, row["status"], row["status"] == WAITING_STATUS, out)
            if waiting and answer.outcome == "answered":
                coming = notices.someone_coming(conn, org_id, row["team_id"])
                answer.text = f"{answer.text}\n\n_{notices.STRINGS['still_coming' if coming else 'still_queued']}_"
            message_id = self._store_answer(conn, org_id, conversation_id, answer, now)
            failed = answer.outcome == "refused"
            counted = answer.outcome in COUNTED
            conn.execute(
                "UPDATE conversations SET updated_at = ?, bot_turns = bot_turns + ?,"
                " failed_attempts = failed_attempts + ?, first_response_at = coalesce(first_response_at, ?)"
                " WHERE id = ?", (now, int(counted), int(failed), now, conversation_id),
            )  # fmt: skip
            articles = sorted({s.article_id for s in answer.sources})
            audit.record(conn, ctx, AnswerGiven(conversation_id, message_id, answer.outcome, answer.confidence,
                                                answer.reason, articles))  # fmt: skip
            out += self._announce(conn, org_id, conversation_id, message_id)
            if answer.reason in GAP_REASONS:
                best = answer.provenance.get("best") or {}
                conn.execute(
                    "INSERT INTO knowledge_gaps (org_id, message_id, question, query, reason, best_article_id,"
                    " best_version, best_score, confidence, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (org_id, message_id, answer.question, answer.query, answer.reason, best.get("article_id"),
                     best.get("version"), best.get("score"), answer.confidence, now),
                )  # fmt: skip
            row = conversation_row(conn, org_id, conversation_id)
            decisions: list[Decision] = []
            if answer.outcome == "urgent":
                out += self._urgent(conn, ctx, row, message_id, answer, now)
            elif answer.outcome != "smalltalk":  # small talk is never a reason to hand over
                value = customers.get(conn, org_id, int(row["customer_id"])).lifetime_value if row["customer_id"] else 0.0
                signals = Signals(org_id, conversation_id, "ai", answer.text, row["sentiment"], row["sentiment_label"],
                                  row["topic"], value, answer.confidence, answer.outcome, int(row["failed_attempts"]),
                                  int(row["bot_turns"]))  # fmt: skip
                decisions = self.triage.decide(conn, signals)
                if failed and not any(d.action != "tag" for d in decisions) \
                        and int(row["failed_attempts"]) >= self.max_failed_attempts:
                    # One refusal hands nothing over (it offers articles and a person on request); repeated ones
                    # do, even without the built-in rules (a blocked attack is refused and audited, not handed over).
                    decisions.append(Decision("repeated_failure", "escalate",
                                              f"{row['failed_attempts']} failed AI attempts",
                                              inputs={"failed_attempts": int(row["failed_attempts"]),
                                                      "limit": self.max_failed_attempts}))  # fmt: skip
                out += self._apply(conn, ctx, row, message_id, decisions, now)
            row = conversation_row(conn, org_id, conversation_id)
            out.append(listed(row))
        return Responded(message_id, answer, row["status"], row["status"] == "escalated", out, decisions)

    def _store_answer(self, conn: Connection, org_id: int, conversation_id: int, answer: Answer, now: str) -> int:
        models = ", ".join(str(m.get("name")) for m in answer.provenance.get("models", []) if isinstance(m, dict))
        return _insert(
            conn, "INSERT INTO messages (conversation_id, org_id, role, content, query, outcome, confidence, mode,"
            " sources, suggestions, provenance, sender, model, tokens, created_at)"
            " VALUES (?, ?, 'ai', ?, ?, ?, ?, ?, ?, ?, ?, 'ai', ?, ?, ?)",
            (conversation_id, org_id, answer.text, answer.query, answer.outcome, answer.confidence, answer.mode,
             json.dumps([s.public() for s in answer.sources]),
             json.dumps([s.public() for s in answer.suggestions]) if answer.suggestions else None,
             json.dumps(answer.provenance), models or None,
             (answer.provenance.get("generation") or {}).get("completion_tokens"), now),
        )  # fmt: skip

    def _urgent(self, conn: Connection, ctx: Context, row: Any, message_id: int, answer: Answer,
                now: str) -> list[Event]:  # fmt: skip
        """An urgent message: the conversation goes to a person at `urgent` priority (or, when it already waits for
        one, is raised to urgent and every online agent of its team is alerted again)."""
        conversation_id, org_id = int(row["id"]), int(row["org_id"])
        conn.execute("UPDATE conversations SET priority = 'urgent', updated_at = ? WHERE id = ?", (now, conversation_id))
        row = conversation_row(conn, org_id, conversation_id)
        phrase = (answer.provenance.get("urgent") or {}).get("phrase")
        decision = Decision("urgent", "escalate", "urgent", inputs={"phrase": phrase})
        if row["status"] != WAITING_STATUS:
            return self._apply(conn, ctx, row, message_id, [decision], now)
        out = self._apply(conn, ctx, row, message_id, [decision], now)  # recorded and audited; already escalated
        online = routing.online_agents(conn, org_id, row["team_id"])
        if online:
            out.append(Event(tuple(events.agent(a.user_id) for a in online), {
                "type": "queue_alert", "conversation_id": conversation_id, "team_id": row["team_id"],
                "reason": "urgent", "priority": "urgent", "topic": row["topic"], "sentiment": row["sentiment"],
                "assigned_agent_id": row["assigned_agent_id"]}))  # fmt: skip
        return out

    def ask(
        self, ctx: Context, org_id: int, text: str, *, sender: str, conversation_id: int | None = None,
        client_id: str | None = None, channel: str = "api", customer_id: int | None = None,
        visitor_id: str | None = None, on_delta: Callable[[str], None] | None = None,
    ) -> tuple[Received, Responded]:  # fmt: skip
        received = self.receive(ctx, org_id, text, sender=sender, conversation_id=conversation_id,
                                client_id=client_id, channel=channel, customer_id=customer_id,
                                visitor_id=visitor_id)  # fmt: skip
        return received, self.respond(ctx, org_id, received, on_delta)

    # -- decisions: tags, escalation, routing --------------------------------------------------------------
    def _apply(self, conn: Connection, ctx: Context, row: Any, message_id: int | None, decisions: Sequence[Decision],
               now: str) -> list[Event]:  # fmt: skip
        out: list[Event] = []
        conversation_id, org_id = int(row["id"]), int(row["org_id"])
        tags = events.tags_of(row["tags"])
        for d in decisions:
            conn.execute(
                "INSERT INTO escalation_decisions (org_id, conversation_id, message_id, rule_id, trigger_type, action,"
                " team_id, reason, inputs, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (org_id, conversation_id, message_id, d.rule_id, d.trigger_type, d.action, d.team_id, d.reason,
                 json.dumps(d.inputs, default=str), now),
            )  # fmt: skip
            audit.record(conn, ctx, EscalationDecided(conversation_id, message_id, d.rule_id, d.trigger_type, d.action,
                                                      d.team_id, d.reason, d.inputs))  # fmt: skip
            if d.action == "tag" and d.tag and d.tag not in tags:
                tags.append(d.tag)
        conn.execute("UPDATE conversations SET tags = ? WHERE id = ?", (json.dumps(tags), conversation_id))
        escalation = next((d for d in decisions if d.action in ("escalate", "route_to_team")), None)
        if escalation is not None and row["status"] != "escalated" and row["handled_by"] == "ai":
            out += self._escalate(conn, ctx, row, escalation.reason, escalation.team_id, now)
        return out

    def _escalate(self, conn: Connection, ctx: Context, row: Any, reason: str, team_id: int | None,
                  now: str) -> list[Event]:  # fmt: skip
        conversation_id, org_id = int(row["id"]), int(row["org_id"])
        team_id = routing.team_for(conn, org_id, team_id, row["topic"])
        priority = row["priority"]
        if row["sentiment"] is not None and float(row["sentiment"]) <= 20 and priority in ("low", "medium"):
            priority = "high"
        conn.execute(
            "UPDATE conversations SET status = 'escalated', escalation_reason = ?, escalated_at = ?, updated_at = ?,"
            " team_id = ?, priority = ? WHERE id = ?", (reason, now, now, team_id, priority, conversation_id),
        )  # fmt: skip
        audit.record(conn, ctx, ConversationEscalated(conversation_id, reason))
        self._enqueue(conn, org_id, "conversation.escalated",
                       {"conversation_id": conversation_id, "team_id": team_id, "reason": reason}, conversation_id)
        out = [Event((events.visitor(conversation_id), events.watchers(conversation_id)),
                     state_frame(conn, conversation_id))]  # fmt: skip
        chosen = routing.pick_agent(conn, org_id, team_id)
        # The customer is told honestly who is coming: a person shortly, the queue, or nobody now (out of hours or
        # nobody online), with the team's hours and that a message left now is seen first thing.
        out += self._notice(conn, org_id, conversation_id, notices.escalated(conn, org_id, team_id, chosen is not None),
                            now)  # fmt: skip
        if chosen is not None:
            out += self._assign(conn, ctx, org_id, conversation_id, chosen.user_id, team_id, "routed", now)
        alert = {"type": "queue_alert", "conversation_id": conversation_id, "team_id": team_id, "reason": reason,
                 "priority": priority, "topic": row["topic"], "sentiment": row["sentiment"],
                 "assigned_agent_id": chosen.user_id if chosen else None}  # fmt: skip
        online = routing.online_agents(conn, org_id, team_id)
        if online:
            out.append(Event(tuple(events.agent(a.user_id) for a in online), alert))
        return out

    def _announce(self, conn: Connection, org_id: int, conversation_id: int, message_id: int,
                  agent_name: str | None = None) -> list[Event]:  # fmt: skip
        """A stored message's webhook delivery (message.created) and its frames: public for the customer's widget,
        with sentiment and sender for the agents watching."""
        message = conn.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
        public = events.public_message(message, agent_name)
        self._enqueue(conn, org_id, "message.created", {"conversation_id": conversation_id, "message": public},
                      conversation_id)  # fmt: skip
        return [Event((events.visitor(conversation_id),), {"type": "message", "message": public}),
                Event((events.watchers(conversation_id),),
                      {"type": "message", "message": events.staff_message(message, agent_name)})]  # fmt: skip

    def _notice(self, conn: Connection, org_id: int, conversation_id: int, text: str, now: str) -> list[Event]:
        """A message from the service itself (who is coming, out of hours), stored like an AI message with outcome
        notice."""
        message_id = _insert(conn, "INSERT INTO messages (conversation_id, org_id, role, content, outcome, sender,"
                                   " created_at) VALUES (?, ?, 'ai', ?, 'notice', 'ai', ?)",
                             (conversation_id, org_id, text, now))  # fmt: skip
        return self._announce(conn, org_id, conversation_id, message_id)

    def _assign(self, conn: Connection, ctx: Context, org_id: int, conversation_id: int, agent_id: int | None,
                team_id: int | None, how: str, now: str) -> list[Event]:  # fmt: skip
        conn.execute("UPDATE conversations SET assigned_agent_id = ?, assigned_at = ?, updated_at = ? WHERE id = ?",
                     (agent_id, now if agent_id else None, now, conversation_id))  # fmt: skip
        audit.record(conn, ctx, ConversationAssigned(conversation_id, agent_id, team_id, how))
        self._enqueue(conn, org_id, "conversation.assigned",
                       {"conversation_id": conversation_id, "agent_id": agent_id, "team_id": team_id, "how": how},
                       conversation_id)  # fmt: skip
        if agent_id is None:
            return []
        return [Event((events.agent(agent_id),), {"type": "assigned", "conversation_id": conversation_id, "how": how})]

    def escalate(self, ctx: Context, org_id: int, conversation_id: int, reason: str, *, trigger: str,
                 visitor_id: str | None = None, team_id: int | None = None) -> list[Event]:  # fmt: skip
        """Hand a conversation to a person on request (the customer's "talk to a human", or staff)."""
        now = now_iso()
        with self.db.write() as conn:
            row = conversation_row(conn, org_id, conversation_id, visitor_id)
            if row["status"] in CLOSED_STATUSES:
                raise Conflict(f"conversation {conversation_id} is {row['status']}")
            if team_id is not None:
                routing.get_team(conn, org_id, team_id)
            if row["status"] == "escalated" or row["handled_by"] == "agent":
                return []  # already with a person: asking again changes nothing
            decision = Decision(trigger, "escalate", reason, team_id=team_id, inputs={"requested_by": ctx.actor})
            out = self._apply(conn, ctx, row, None, [decision], now)
            row = conversation_row(conn, org_id, conversation_id)
            out.append(listed(row))
            return out

    # -- people ----------------------------------------------------------------------------------------------
    def takeover(self, ctx: Context, org_id: int, conversation_id: int, agent_id: int) -> list[Event]:
        """The agent takes the conversation: the assistant stops, the customer sees the agent join. When two
        agents try at once, one wins and the other gets 409."""
        now = now_iso()
        with self.db.write() as conn:
            row = conversation_row(conn, org_id, conversation_id)
            if row["status"] in CLOSED_STATUSES:
                raise Conflict(f"conversation {conversation_id} is {row['status']}")
            taken = conn.execute(
                "UPDATE conversations SET handled_by = 'agent', assigned_agent_id = ?, assigned_at = ?, status = 'active',"
                " updated_at = ? WHERE id = ? AND (handled_by = 'ai' AND (assigned_agent_id IS NULL OR assigned_agent_id = ?))",
                (agent_id, now, now, conversation_id, agent_id),
            ).rowcount  # fmt: skip
            if not taken:
                if row["handled_by"] == "agent" and row["assigned_agent_id"] == agent_id:
                    return []  # already theirs
                holder = _user_name(conn, row["assigned_agent_id"]) or "another agent"
                raise Conflict(f"conversation {conversation_id} is already taken by {holder}")
            audit.record(conn, ctx, ConversationAssigned(conversation_id, agent_id, row["team_id"], "takeover"))
            self._enqueue(conn, org_id, "conversation.assigned", {"conversation_id": conversation_id,
                           "agent_id": agent_id, "team_id": row["team_id"], "how": "takeover"}, conversation_id)  # fmt: skip
            name = _user_name(conn, agent_id)
            frame = state_frame(conn, conversation_id)
            row = conversation_row(conn, org_id, conversation_id)
            return [
                Event((events.visitor(conversation_id), events.watchers(conversation_id)),
                      {"type": "agent_joined", "conversation_id": conversation_id, "agent": name}),
                Event((events.visitor(conversation_id), events.watchers(conversation_id)), frame),
                listed(row),
            ]  # fmt: skip

    def release(self, ctx: Context, org_id: int, conversation_id: int, agent_id: int, any_agent: bool) -> list[Event]:
        """Hand the conversation back to the assistant (its failure counts start afresh)."""
        now = now_iso()
        with self.db.write() as conn:
            row = conversation_row(conn, org_id, conversation_id)
            if row["handled_by"] != "agent" or (row["assigned_agent_id"] != agent_id and not any_agent):
                raise Conflict(f"conversation {conversation_id} is not taken over by you")
            if row["status"] in CLOSED_STATUSES:
                raise Conflict(f"conversation {conversation_id} is {row['status']}")
            name = _user_name(conn, row["assigned_agent_id"])
            conn.execute(
                "UPDATE conversations SET handled_by = 'ai', assigned_agent_id = NULL, assigned_at = NULL,"
                " status = 'active', failed_attempts = 0, bot_turns = 0, updated_at = ? WHERE id = ?",
                (now, conversation_id),
            )  # fmt: skip
            audit.record(conn, ctx, ConversationAssigned(conversation_id, None, row["team_id"], "release"))
            frame = state_frame(conn, conversation_id)
            row = conversation_row(conn, org_id, conversation_id)
            return [
                Event((events.visitor(conversation_id), events.watchers(conversation_id)),
                      {"type": "agent_left", "conversation_id": conversation_id, "agent": name}),
                Event((events.visitor(conversation_id), events.watchers(conversation_id)), frame),
                listed(row),
            ]  # fmt: skip

    def assign(self, ctx: Context, org_id: int, conversation_id: int, agent_id: int | None) -> list[Event]:
        """A manager assigns (or, with None, returns to the queue) a conversation."""
        now = now_iso()
        with self.db.write() as conn:
            row = conversation_row(conn, org_id, conversation_id)
            if row["status"] in CLOSED_STATUSES:
                raise Conflict(f"conversation {conversation_id} is {row['status']}")
            if agent_id is not None:
                routing.agent(conn, org_id, agent_id)
            if row["handled_by"] == "agent":
                conn.execute("UPDATE conversations SET handled_by = ? WHERE id = ?",
                             ("agent" if agent_id is not None else "ai", conversation_id))  # fmt: skip
                if agent_id is None:
                    conn.execute("UPDATE conversations SET status = 'escalated' WHERE id = ?", (conversation_id,))
            out = self._assign(conn, ctx, org_id, conversation_id, agent_id, row["team_id"], "reassigned", now)
            out.append(Event((events.visitor(conversation_id), events.watchers(conversation_id)),
                             state_frame(conn, conversation_id)))  # fmt: skip
            row = conversation_row(conn, org_id, conversation_id)
            out.append(listed(row))
            return out

    def agent_reply(self, ctx: Context, org_id: int, conversation_id: int, agent_id: int, text: str,
                    client_id: str | None = None) -> tuple[int, bool, list[Event]]:  # fmt: skip
        """A person's reply; the agent must have taken the conversation over. Returns (message id, duplicate)."""
        text = self.check_text(text)
        redacted = self.redactor.redact(text)
        text = redacted.text
        sender = f"user:{agent_id}"
        now = now_iso()
        with self.db.write() as conn:
            known = self._duplicate(conn, org_id, sender, client_id)
            if known is not None:
                return known.message_id, True, []
            row = conversation_row(conn, org_id, conversation_id)
            if row["status"] in CLOSED_STATUSES:
                raise Conflict(f"conversation {conversation_id} is {row['status']}")
            if row["handled_by"] != "agent" or row["assigned_agent_id"] != agent_id:
                raise Conflict("take the conversation over before replying")
            message_id = _insert(
                conn, "INSERT INTO messages (conversation_id, org_id, role, content, sender, client_id, redactions,"
                " created_at) VALUES (?, ?, 'agent', ?, ?, ?, ?, ?)",
                (conversation_id, org_id, text, sender, client_id, _counts(redacted), now),
            )  # fmt: skip
            conn.execute("UPDATE conversations SET updated_at = ?, first_response_at = coalesce(first_response_at, ?)"
                         " WHERE id = ?", (now, now, conversation_id))  # fmt: skip
            audit.record(conn, ctx, AgentReplied(conversation_id, message_id))
            self._audit_redaction(conn, ctx, conversation_id, message_id, "agent", redacted)
            return message_id, False, self._announce(conn, org_id, conversation_id, message_id, _user_name(conn, agent_id))

    def resolve(self, ctx: Context, org_id: int, conversation_id: int, visitor_id: str | None = None,
                close: bool = False) -> list[Event]:  # fmt: skip
        now = now_iso()
        status = "closed" if close else "resolved"
        with self.db.write() as conn:
            row = conversation_row(conn, org_id, conversation_id, visitor_id)
            if row["status"] in CLOSED_STATUSES and not (close and row["status"] == "resolved"):
                raise Conflict(f"conversation {conversation_id} is already {row['status']}")
            people = conn.execute("SELECT count(*) FROM messages WHERE conversation_id = ? AND role = 'agent'",
                                  (conversation_id,)).fetchone()[0]  # fmt: skip
            kind = row["resolution_type"] or (
                "agent_resolved" if people or row["handled_by"] == "agent" else
                "escalated" if row["escalated_at"] is not None else "ai_resolved"
            )  # fmt: skip
            conn.execute(
                f"UPDATE conversations SET status = ?, resolution_type = ?, resolved_at = coalesce(resolved_at, ?),"
                f" {'closed_at = ?,' if close else ''} updated_at = ? WHERE id = ?",
                (status, kind, now, *((now,) if close else ()), now, conversation_id),
            )  # fmt: skip
            audit.record(conn, ctx, ConversationResolved(conversation_id, kind, status))
            self._enqueue(conn, org_id, "conversation.resolved",
                           {"conversation_id": conversation_id, "resolution_type": kind, "status": status},
                           conversation_id)  # fmt: skip
            out = [Event((events.visitor(conversation_id), events.watchers(conversation_id)),
                         state_frame(conn, conversation_id))]  # fmt: skip
            if row["assigned_agent_id"] is not None:  # the agent has room again: give them the next in the queue
                out += self._fill(conn, ctx, org_id, int(row["assigned_agent_id"]), now)
            row = conversation_row(conn, org_id, conversation_id)
            out.append(listed(row))
            return out

    def csat(self, ctx: Context, org_id: int, conversation_id: int, visitor_id: str | None, rating: int,
             comment: str) -> list[Event]:  # fmt: skip
        if not 1 <= rating <= 5:
            raise InvalidValue("rating must be 1..5")
        if len(comment) > 2000:
            raise InvalidValue("comment is longer than 2000 characters")
        now = now_iso()
        with self.db.write() as conn:
            row = conversation_row(conn, org_id, conversation_id, visitor_id)
            if row["status"] not in CLOSED_STATUSES:
                raise Conflict("a conversation is rated after it is resolved")
            if row["csat"] is not None:
                raise Conflict("this conversation has been rated already")
            conn.execute("UPDATE conversations SET csat = ?, csat_comment = ?, csat_at = ? WHERE id = ?",
                         (rating, comment.strip() or None, now, conversation_id))  # fmt: skip
            audit.record(conn, ctx, CsatSubmitted(conversation_id, rating))
            self._enqueue(conn, org_id, "csat.submitted", {"conversation_id": conversation_id, "rating": rating,
                                                             "comment": comment.strip() or None}, conversation_id)  # fmt: skip
            return [Event((events.watchers(conversation_id),),
                          {"type": "csat", "conversation_id": conversation_id, "rating": rating})]

    def feedback(self, ctx: Context, org_id: int, message_id: int, visitor_id: str | None,
                 value: Literal["up", "down"]) -> list[Event]:  # fmt: skip
        """A customer's thumbs on an AI answer; a thumbs-down counts as a failed attempt."""
        now = now_iso()
        with self.db.write() as conn:
            message = conn.execute("SELECT * FROM messages WHERE id = ? AND org_id = ? AND role = 'ai'",
                                   (message_id, org_id)).fetchone()  # fmt: skip
            if message is None:
                raise NotFound(f"AI message {message_id} not found")
            row = conversation_row(conn, org_id, int(message["conversation_id"]), visitor_id)
            if message["feedback"] == value:
                return []
            conn.execute("UPDATE messages SET feedback = ? WHERE id = ?", (value, message_id))
            helpful = (value == "up") - (message["feedback"] == "up")
            if helpful:
                knowledge_articles.count_helpful(conn, org_id, _cited_articles(message["sources"]), helpful)
            change = (value == "down") - (message["feedback"] == "down")
            conn.execute("UPDATE conversations SET failed_attempts = max(0, failed_attempts + ?), updated_at = ?"
                         " WHERE id = ?", (change, now, row["id"]))  # fmt: skip
            row = conversation_row(conn, org_id, int(row["id"]))
            out: list[Event] = [Event((events.watchers(int(row["id"])),),
                                      {"type": "feedback", "message_id": message_id, "value": value})]  # fmt: skip
            if value == "down" and row["status"] in AI_STATUSES and row["handled_by"] == "ai":
                signals = Signals(org_id, int(row["id"]), "ai", message["content"], row["sentiment"],
                                  row["sentiment_label"], row["topic"], 0.0, message["confidence"], message["outcome"],
                                  int(row["failed_attempts"]), int(row["bot_turns"]))  # fmt: skip
                decisions = [d for d in self.triage.decide(conn, signals) if d.trigger_type == "repeated_failure"]
                if not decisions and int(row["failed_attempts"]) >= self.max_failed_attempts:
                    decisions = [Decision("repeated_failure", "escalate",
                                          f"{row['failed_attempts']} failed AI attempts",
                                          inputs={"failed_attempts": int(row["failed_attempts"])})]  # fmt: skip
                out += self._apply(conn, ctx, row, message_id, decisions, now)
            return out

    # -- agents coming and going -----------------------------------------------------------------------------
    def _fill(self, conn: Connection, ctx: Context, org_id: int, user_id: int, now: str) -> list[Event]:
        """Give an online agent queued conversations of their teams up to their capacity, oldest first."""
        me = routing.agent(conn, org_id, user_id)
        if me.availability != "online":
            return []
        out: list[Event] = []
        load = me.load
        for conversation_id in routing.queued(conn, org_id, me.teams):
            if load >= me.capacity:
                break
            row = conversation_row(conn, org_id, conversation_id)
            out += self._assign(conn, ctx, org_id, conversation_id, user_id, row["team_id"], "routed", now)
            load += 1
        return out

    def set_availability(self, ctx: Context, org_id: int, user_id: int, availability: str | None,
                         capacity: int | None) -> tuple[routing.Agent, list[Event]]:  # fmt: skip
        """An agent's availability and capacity. Coming online, they get queued conversations of their teams up to
        their capacity, and an alert for every conversation still waiting in those queues."""
        now = now_iso()
        with self.db.write() as conn:
            me = routing.set_agent(conn, ctx, org_id, user_id, availability, capacity)
            out = self._fill(conn, ctx, org_id, user_id, now) if me.availability == "online" else []
            if me.availability == "online":
                for conversation_id in routing.queued(conn, org_id, me.teams):
                    row = conversation_row(conn, org_id, conversation_id)
                    out.append(Event((events.agent(user_id),), {
                        "type": "queue_alert", "conversation_id": conversation_id, "team_id": row["team_id"],
                        "reason": row["escalation_reason"], "priority": row["priority"], "topic": row["topic"],
                        "sentiment": row["sentiment"], "assigned_agent_id": None}))  # fmt: skip
            return routing.agent(conn, org_id, user_id), out

    def set_priority(self, ctx: Context, org_id: int, conversation_id: int, priority: str) -> None:
        if priority not in PRIORITIES:
            raise InvalidValue(f"priority must be one of {', '.join(PRIORITIES)}")
        with self.db.write() as conn:
            conversation_row(conn, org_id, conversation_id)
            conn.execute("UPDATE conversations SET priority = ?, updated_at = ? WHERE id = ?",
                         (priority, now_iso(), conversation_id))  # fmt: skip
