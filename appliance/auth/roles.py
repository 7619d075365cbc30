"""Roles and their permissions, as the product specifies them. Checked in one place: `web.deps.requires`."""

from __future__ import annotations

from enum import StrEnum

from appliance.errors import UnknownRole


class Permission(StrEnum):
    MANAGE_TEAM = "manage_team"
    MANAGE_SETTINGS = "manage_settings"
    MANAGE_KNOWLEDGE_BASE = "manage_knowledge_base"
    CONFIGURE_AI = "configure_ai"
    MANAGE_INTEGRATIONS = "manage_integrations"
    VIEW_ALL_CONVERSATIONS = "view_all_conversations"
    VIEW_ANALYTICS = "view_analytics"
    MANAGE_AGENTS = "manage_agents"
    ASSIGN_CONVERSATIONS = "assign_conversations"
    CONFIGURE_ESCALATIONS = "configure_escalations"
    REVIEW_AI_RESPONSES = "review_ai_responses"
    VIEW_ASSIGNED_CONVERSATIONS = "view_assigned_conversations"
    RESPOND_TO_CUSTOMERS = "respond_to_customers"
    VIEW_CUSTOMER_HISTORY = "view_customer_history"
    MARK_RESOLVED = "mark_resolved"
    EDIT_ARTICLES = "edit_articles"
    VIEW_ARTICLE_ANALYTICS = "view_article_analytics"
    VIEW_AUDIT = "view_audit"
    EXPORT_AUDIT = "export_audit"


class Role(StrEnum):
    ADMIN = "admin"
    SUPPORT_MANAGER = "support_manager"
    AGENT = "agent"
    KNOWLEDGE_EDITOR = "knowledge_editor"
    COMPLIANCE_OFFICER = "compliance_officer"


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(
        {
            P.MANAGE_TEAM, P.MANAGE_SETTINGS, P.MANAGE_KNOWLEDGE_BASE, P.CONFIGURE_AI, P.MANAGE_INTEGRATIONS,
            P.VIEW_ALL_CONVERSATIONS, P.VIEW_ANALYTICS,
        }
    ),  # fmt: skip
    Role.SUPPORT_MANAGER: frozenset(
        {
            P.MANAGE_AGENTS, P.VIEW_ALL_CONVERSATIONS, P.ASSIGN_CONVERSATIONS, P.CONFIGURE_ESCALATIONS,
            P.VIEW_ANALYTICS, P.REVIEW_AI_RESPONSES,
        }
    ),  # fmt: skip
    Role.AGENT: frozenset(
        {P.VIEW_ASSIGNED_CONVERSATIONS, P.RESPOND_TO_CUSTOMERS, P.VIEW_CUSTOMER_HISTORY, P.MARK_RESOLVED}
    ),
    Role.KNOWLEDGE_EDITOR: frozenset({P.MANAGE_KNOWLEDGE_BASE, P.EDIT_ARTICLES, P.VIEW_ARTICLE_ANALYTICS}),
    Role.COMPLIANCE_OFFICER: frozenset({P.VIEW_AUDIT, P.EXPORT_AUDIT}),
}


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise UnknownRole(f"unknown role {value!r}; roles are: {', '.join(r.value for r in Role)}") from None


def parse_permissions(values: list[str]) -> frozenset[Permission]:
    out = set()
    for value in values:
        try:
            out.add(Permission(value))
        except ValueError:
            raise UnknownRole(f"unknown permission {value!r}") from None
    return frozenset(out)
