"""Who is making a request: a signed-in user or an API key, always inside one organisation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from appliance.audit.events import Context
from appliance.auth.roles import Permission


@dataclass(frozen=True)
class Principal:
    kind: Literal["user", "apikey"]
    id: int
    org_id: int
    permissions: frozenset[Permission]
    role: str | None = None
    email: str | None = None
    session_id: str | None = None
    csrf_token: str | None = None
    mfa_missing: bool = False  # the role needs two-step verification and this person has not set it up

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.id}"

    def context(self, client_addr: str | None) -> Context:
        return Context(self.actor, self.org_id, client_addr)
