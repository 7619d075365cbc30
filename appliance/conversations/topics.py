"""Topics: the organisation's routing taxonomy. Each topic has example questions (and optionally a team); an
embedding classifier trained on them gives each conversation its topic, or none when the first message matches no
topic (out of scope). Training is explicit ("custom training", from the console) and stored, so every message of
the organisation is classified by the same model until the next training."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from appliance import audit
from appliance.audit.events import Context, RoutingChanged
from appliance.errors import ApplianceError, Conflict, InvalidValue, NotFound
from appliance.inference.base import Embedder
from appliance.store import Connection, Database, now_iso

if TYPE_CHECKING:
    from appliance.inference.intents import IntentClassifier

log = logging.getLogger("appliance.topics")

MAX_EXAMPLES = 500
MIN_EXAMPLES = 3


@dataclass(frozen=True)
class Topic:
    id: int
    name: str
    examples: list[str]
    team_id: int | None
    updated_at: str


@dataclass(frozen=True)
class Training:
    version: str
    topics: int
    examples: int
    trained_at: str
    stats: dict[str, Any] = field(default_factory=dict)  # held-out accuracy of the run that trained it


def _topic(row: Any) -> Topic:
    return Topic(int(row["id"]), row["name"], json.loads(row["examples"]), row["team_id"], row["updated_at"])


def _check(name: str, examples: list[str]) -> tuple[str, list[str]]:
    name = name.strip()
    if not 1 <= len(name) <= 80:
        raise InvalidValue("name must be 1-80 characters")
    cleaned = [" ".join(e.split()) for e in examples if e.strip()]
    if len(cleaned) < MIN_EXAMPLES:
        raise InvalidValue(f"a topic needs at least {MIN_EXAMPLES} example questions")
    if len(cleaned) > MAX_EXAMPLES or any(len(e) > 500 for e in cleaned):
        raise InvalidValue(f"at most {MAX_EXAMPLES} examples of at most 500 characters each")
    return name, list(dict.fromkeys(cleaned))


class Topics:
    def __init__(self, db: Database, embedder: Callable[[], Embedder]) -> None:
        self.db = db
        self.embedder = embedder
        self._models: dict[int, tuple[str, IntentClassifier]] = {}
        self._lock = threading.Lock()
        self._warned: set[int] = set()

    def list_topics(self, org_id: int) -> list[Topic]:
        with self.db.read() as conn:
            return [_topic(r) for r in conn.execute("SELECT * FROM topics WHERE org_id = ? ORDER BY name", (org_id,))]

    def save(self, ctx: Context, org_id: int, name: str, examples: list[str], team_id: int | None,
             topic_id: int | None = None) -> Topic:  # fmt: skip
        name, examples = _check(name, examples)
        now = now_iso()
        with self.db.write() as conn:
            if team_id is not None and conn.execute("SELECT 1 FROM teams WHERE id = ? AND org_id = ?",
                                                    (team_id, org_id)).fetchone() is None:  # fmt: skip
                raise InvalidValue(f"team_id: team {team_id} does not exist")
            clash = conn.execute("SELECT id FROM topics WHERE org_id = ? AND lower(name) = lower(?)",
                                 (org_id, name)).fetchone()  # fmt: skip
            if clash is not None and clash["id"] != topic_id:
                raise Conflict(f"a topic named {name!r} exists")
            if topic_id is None:
                new_id = conn.execute("INSERT INTO topics (org_id, name, examples, team_id, created_at, updated_at)"
                                      " VALUES (?, ?, ?, ?, ?, ?)",
                                      (org_id, name, json.dumps(examples), team_id, now, now)).lastrowid  # fmt: skip
                assert new_id is not None
                topic_id, change = int(new_id), "created"
            else:
                self._own(conn, org_id, topic_id)
                conn.execute("UPDATE topics SET name = ?, examples = ?, team_id = ?, updated_at = ? WHERE id = ?",
                             (name, json.dumps(examples), team_id, now, topic_id))  # fmt: skip
                change = "updated"
            audit.record(conn, ctx, RoutingChanged("topic", topic_id, change,
                                                   {"name": name, "examples": len(examples), "team_id": team_id}))  # fmt: skip
            return _topic(self._own(conn, org_id, topic_id))

    def _own(self, conn: Connection, org_id: int, topic_id: int) -> Any:
        row = conn.execute("SELECT * FROM topics WHERE id = ? AND org_id = ?", (topic_id, org_id)).fetchone()
        if row is None:
            raise NotFound(f"topic {topic_id} not found")
        return row

    def delete(self, ctx: Context, org_id: int, topic_id: int) -> None:
        with self.db.write() as conn:
            self._own(conn, org_id, topic_id)
            conn.execute("DELETE FROM topics WHERE id = ?", (topic_id,))
            audit.record(conn, ctx, RoutingChanged("topic", topic_id, "deleted", {}))

    def train(self, ctx: Context, org_id: int) -> Training:
        """Train the organisation's classifier on its topics' examples and store it (it replaces the last one)."""
        from appliance.inference.intents import IntentClassifier

        topics = self.list_topics(org_id)
        if len(topics) < 2:
            raise InvalidValue("define at least two topics before training")
        texts = [e for t in topics for e in t.examples]
        labels = [t.name for t in topics for _ in t.examples]
        digest = hashlib.sha256(json.dumps([texts, labels]).encode()).hexdigest()
        model = IntentClassifier.train(self.embedder(), texts, labels)
        now = now_iso()
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO topic_models (org_id, version, model, examples_sha256, trained_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(org_id) DO UPDATE SET version = excluded.version, model = excluded.model,"
                " examples_sha256 = excluded.examples_sha256, trained_at = excluded.trained_at",
                (org_id, model.version, model.to_bytes(), digest, now),
            )  # fmt: skip
            audit.record(conn, ctx, RoutingChanged("topic_model", org_id, "trained",
                                                   {"topics": len(topics), "examples": len(texts),
                                                    "examples_sha256": digest}))  # fmt: skip
        with self._lock:
            self._models.pop(org_id, None)
        return Training(model.version, len(topics), len(texts), now, dict(model.stats))

    def training(self, org_id: int) -> Training | None:
        with self.db.read() as conn:
            row = conn.execute("SELECT version, examples_sha256, trained_at FROM topic_models WHERE org_id = ?",
                               (org_id,)).fetchone()  # fmt: skip
            count = conn.execute("SELECT count(*), coalesce(sum(json_array_length(examples)), 0) FROM topics"
                                 " WHERE org_id = ?", (org_id,)).fetchone()  # fmt: skip
        if row is None:
            return None
        return Training(row["version"], int(count[0]), int(count[1]), row["trained_at"])

    def _model(self, org_id: int) -> IntentClassifier | None:
        with self.db.read() as conn:
            row = conn.execute("SELECT trained_at FROM topic_models WHERE org_id = ?", (org_id,)).fetchone()
        if row is None:
            return None
        trained_at = row["trained_at"]
        with self._lock:
            cached = self._models.get(org_id)
            if cached is not None and cached[0] == trained_at:
                return cached[1]
        from appliance.inference.intents import IntentClassifier

        with self.db.read() as conn:  # the stored model (megabytes) is read only when the cached one is stale
            row = conn.execute("SELECT trained_at, model FROM topic_models WHERE org_id = ?", (org_id,)).fetchone()
        if row is None:
            return None
        model = IntentClassifier.from_bytes(bytes(row["model"]), self.embedder())
        with self._lock:
            self._models[org_id] = (row["trained_at"], model)
        return model

    def classify(self, org_id: int, text: str) -> str | None:
        """The topic of a message, or None (no trained model, or out of scope). A model that fails to load is
        logged once and the message goes on without a topic."""
        try:
            model = self._model(org_id)
            if model is None:
                return None
            return model.predict([text])[0].label
        except ApplianceError as exc:
            if org_id not in self._warned:
                self._warned.add(org_id)
                log.warning("topic classifier unavailable", extra={"fields": {"org_id": org_id, "error": exc.message}})
            return None
