"""One installation: its settings, data dir, keys and database, created by `init` and opened by every entry point.

`init` either finishes or leaves nothing behind: a failure half-way removes what it had created.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance import audit
from appliance.audit.events import Context, Initialised, SchemaMigrated
from appliance.auth.passwords import Passwords
from appliance.auth.roles import parse_role
from appliance.auth.sessions import SessionPolicy
from appliance.config import Settings
from appliance.crypto import keys as keystore
from appliance.crypto.signing import create_signing_key, load_signing_key
from appliance.answering.engine import AnswerEngine, EngineParts, ModelInfo
from appliance.conversations.flow import Flow
from appliance.conversations.summary import Summaries
from appliance.conversations.topics import Topics
from appliance.conversations.widget import SESSION_KEY_PURPOSE, Sessions
from appliance.errors import ApplianceError, ConfigError, DataDirError, ModelError
from appliance.inference.base import Embedder, Generator, TextScorer
from appliance.paths import DataPaths
from appliance.redaction import Redactor
from appliance.retrieval.dense import KEY_PURPOSE as DENSE_KEY_PURPOSE
from appliance.retrieval.search import FusionConfig
from appliance.retrieval.service import KnowledgeIndex
from appliance.store import Database
from appliance.store.schema import current_version, head_version, migrate

log = logging.getLogger("appliance.instance")


def _once(factory: Callable[[], Generator | None]) -> Callable[[], Generator | None]:
    """The factory's result, built on first call and kept; a failure is kept too and raised again on every call
    (without rebuilding: a site model's checksum is not recomputed for each question)."""
    lock = threading.Lock()
    built: list[Generator | None] = []
    failed: list[ApplianceError] = []

    def get() -> Generator | None:
        with lock:
            if failed:
                raise failed[0]
            if not built:
                try:
                    built.append(factory())
                except ApplianceError as exc:
                    failed.append(exc)
                    raise
            return built[0]

    return get


def cli_context(org_id: int | None = None) -> Context:
    """Audit context for commands run on the box by its operator."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = str(os.getuid())
    return Context(actor=f"cli:{who}", org_id=org_id)


@dataclass
class Instance:
    settings: Settings
    paths: DataPaths
    db: Database
    _key: bytes = field(repr=False)
    passwords: Passwords = field(init=False)
    session_policy: SessionPolicy = field(init=False)
    redactor: Redactor = field(init=False)
    _sentiment: tuple[TextScorer | None] | None = field(default=None, init=False, repr=False)
    _sentiment_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.passwords = Passwords(self.settings)
        self.session_policy = SessionPolicy(
            idle=timedelta(minutes=self.settings.session_idle_minutes),
            max_age=timedelta(hours=self.settings.session_max_hours),
            mfa_roles=frozenset(parse_role(r).value for r in self.settings.mfa_required_roles),
        )
        self.redactor = Redactor.of(self.settings.redact_kinds)

    def signing_key(self) -> Ed25519PrivateKey:
        return load_signing_key(self.paths.audit_signing_key, self._key)

    @functools.cached_property
    def knowledge(self) -> KnowledgeIndex:
        """The retrieval index of this installation (the configured embedder loads on first use)."""
        from appliance.inference.loader import build_embedder

        return self.knowledge_index(lambda: build_embedder(self.settings, self.db))

    def knowledge_index(self, embedder_factory: Callable[[], Embedder]) -> KnowledgeIndex:
        """A retrieval index over this installation's data with the embedder the factory gives."""
        return KnowledgeIndex(
            self.db, self.paths.index, self.subkey(DENSE_KEY_PURPOSE), embedder_factory,
            self.settings.index_approximate_above,
            FusionConfig(lexical_weight=self.settings.retrieval_lexical_weight),
        )  # fmt: skip

    @functools.cached_property
    def answers(self) -> AnswerEngine:
        """The answer engine of this installation (models load on first use)."""
        return self.answer_engine(self.knowledge)

    def answer_engine(self, knowledge: KnowledgeIndex) -> AnswerEngine:
        from appliance.answering import calibration
        from appliance.inference.guard import load_prompt_guard

        settings = self.settings
        guard = load_prompt_guard()
        generator = _once(lambda: self._answer_generator())
        return AnswerEngine(EngineParts(
            db=self.db, retriever=lambda: knowledge.retriever, calibration=calibration.load(settings.calibration_file),
            embedder=lambda: knowledge.embedder, generator=generator,
            models=lambda: self._answer_models(knowledge, generator),
            help_url=self._help_url, threshold=self._threshold, attack_check=guard.is_attack,
            guard_version=guard.version, org_settings=self._org_settings,
        ))  # fmt: skip

    @functools.cached_property
    def widget_sessions(self) -> Sessions:
        settings = self.settings
        return Sessions(self.db, self.subkey(SESSION_KEY_PURPOSE), settings.visitor_session_hours,
                        settings.identity_max_age_s)  # fmt: skip

    @functools.cached_property
    def flow(self) -> Flow:
        """The conversation flow: sentiment, topics, the escalation rules and the answer engine, wired."""
        from appliance.escalation.rules import RulesTriage

        settings = self.settings
        return Flow(
            self.db, lambda: self.answers,
            triage=RulesTriage(settings.max_failed_attempts, settings.max_bot_turns),
            sentiment=self._sentiment_scorer, topics=self.topics.classify,
            max_message_bytes=settings.max_message_bytes, max_failed_attempts=settings.max_failed_attempts,
            responder=settings.chat_responder, redactor=self.redactor,
        )  # fmt: skip

    @functools.cached_property
    def summaries(self) -> Summaries:
        return Summaries()

    def summary_writer(self) -> Generator | None:
        """The chat model for handoff summaries: the one validated for answers, when the site uses one; else None
        (the summary is extractive). A model that fails to load leaves summaries extractive."""
        try:
            return self.answers.parts.generator()
        except ApplianceError:
            return None

    @functools.cached_property
    def topics(self) -> Topics:
        return Topics(self.db, self.required_embedder)

    def required_embedder(self) -> Embedder:
        """The installation's sentence embedder (topics, sentiment, knowledge-gap clusters), or ModelError."""
        embedder = self.knowledge.embedder
        if embedder is None:
            raise ModelError("the embedder is not available (see `appliance models verify`)")
        return embedder

    def _sentiment_scorer(self) -> TextScorer | None:
        """The trained sentiment model over the installation's embedder. When it cannot load, messages are still
        taken (with no sentiment) and the reason is logged once: a model problem never loses a customer message."""
        with self._sentiment_lock:
            if self._sentiment is None:
                from appliance.inference.sentiment import load_sentiment

                try:
                    scorer: TextScorer = load_sentiment(self.required_embedder())
                    self._sentiment = (scorer,)
                except ApplianceError as exc:
                    log.warning("sentiment model unavailable; messages are stored without sentiment",
                                extra={"fields": {"error": exc.message}})  # fmt: skip
                    self._sentiment = (None,)
            return self._sentiment[0] if self._sentiment is not None else None

    @contextmanager
    def staged_answers(self) -> Iterator[tuple[KnowledgeIndex, AnswerEngine]]:
        """A knowledge index and answer engine over this database whose dense index lives in a throwaway folder:
        the publish gate indexes a change there inside a transaction it rolls back, and nothing of it stays."""
        self.paths.index.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="staged-", dir=self.paths.index))
        live = self.knowledge

        def embedder() -> Embedder:
            found = live.embedder
            if found is None:
                raise ConfigError(live.embedder_error or "no embedder")
            return found

        try:
            knowledge = KnowledgeIndex(
                self.db, folder, self.subkey(DENSE_KEY_PURPOSE), embedder, self.settings.index_approximate_above,
                live.fusion,
            )  # fmt: skip
            yield knowledge, self.answer_engine(knowledge)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _answer_generator(self) -> Generator | None:
        """The chat model, only when the site chose generative answers and the model is validated for them."""
        if self.settings.answer_mode != "generative":
            return None
        from appliance.inference import registry
        from appliance.inference.loader import build_generator

        if self.settings.llm_engine == "local":
            record = registry.require(self.db, self.settings.resolved_models_dir, "llm", self.settings.llm_model)
            if not record.answer_capable:
                raise ConfigError(
                    f"answer_mode=generative: model {record.name} is not marked answer_capable; answers stay "
                    "extractive until the site validates a model for them"
                )
        return build_generator(self.settings, self.db)

    def _answer_models(self, knowledge: KnowledgeIndex, generator: Callable[[], Generator | None]) -> list[ModelInfo]:
        """The models an answer depends on, by the name they run under, with their recorded SHA-256."""
        from appliance.inference import registry

        wanted: dict[str, str] = {}
        embedder = knowledge.embedder
        if embedder is not None:
            wanted[embedder.name] = "embedder"
        try:
            built = generator()
        except ApplianceError:  # not in use: the engine answers extractively and says why
            built = None
        if built is not None:
            wanted[built.name] = "llm"
        out = []
        for record in registry.list_installed(self.db):
            if record.name in wanted and record.role == wanted[record.name]:
                main = Path(record.path).name
                sha = record.files.get(main) or hashlib.sha256(
                    json.dumps(record.files, sort_keys=True).encode()).hexdigest()  # fmt: skip
                out.append(ModelInfo(record.name, record.role, sha))
        known = {m.name for m in out}
        out += [ModelInfo(name, role, "") for name, role in wanted.items() if name not in known]
        return out

    def _help_url(self, org_id: int, article_id: int) -> str:
        from appliance.auth import orgs

        return f"/help/{orgs.get_org(self.db, org_id).slug}/articles/{article_id}"

    def _org_settings(self, org_id: int) -> dict[str, Any]:
        from appliance.auth import orgs

        return orgs.get_org(self.db, org_id).settings

    def _threshold(self, org_id: int) -> int:
        from appliance.auth import orgs

        value = orgs.get_org(self.db, org_id).settings.get("answer_threshold")
        return int(value) if isinstance(value, int) else self.settings.answer_threshold

    def subkey(self, purpose: str) -> bytes:
        """A key for one purpose (sealed index files, backups), derived from the database key."""
        return keystore.subkey(self._key, purpose)

    def close(self) -> None:
        self.db.close()


def init_instance(settings: Settings, ctx: Context, passphrase: str | None = None) -> Instance:
    Redactor.of(settings.redact_kinds)  # a bad setting is refused before anything is created
    paths = DataPaths(settings.data_dir)
    if paths.database.exists() or paths.keys.exists():
        raise DataDirError(f"{paths.root} is already initialised")
    created_root = not paths.root.exists()
    original_mode = None if created_root else paths.root.stat().st_mode & 0o7777
    if not created_root:
        if not paths.root.is_dir():
            raise DataDirError(f"data dir {paths.root} is not a directory")
        if not os.access(paths.root, os.W_OK | os.X_OK):
            raise DataDirError(f"data dir {paths.root} is not writable by this user")
    else:
        parent = paths.root.parent
        while not parent.exists():
            parent = parent.parent
        if not os.access(parent, os.W_OK | os.X_OK):
            raise DataDirError(f"cannot create data dir {paths.root}: {parent} is not writable")
    db: Database | None = None
    try:
        paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        paths.root.chmod(0o700)
        paths.keys.mkdir(mode=0o700)
        if passphrase is None:
            key = keystore.create_raw_key(paths)
            mode = "raw"
        else:
            key = keystore.create_passphrase_key(paths, passphrase)
            mode = "passphrase"
        db = Database.create(paths.database, key)
        migrate(db)
        create_signing_key(paths.audit_signing_key, paths.audit_public_key, key)
        with db.write() as conn:
            audit.record(conn, ctx, Initialised(mode))
            audit.record(conn, ctx, SchemaMigrated(0, current_version(conn)))
    except BaseException:
        if db is not None:
            db.close()
        if created_root:
            shutil.rmtree(paths.root, ignore_errors=True)
        else:
            shutil.rmtree(paths.keys, ignore_errors=True)
            for suffix in ("", "-wal", "-shm"):
                Path(str(paths.database) + suffix).unlink(missing_ok=True)
            if original_mode is not None:
                paths.root.chmod(original_mode)
        raise
    return Instance(settings, paths, db, key)


def open_instance(settings: Settings, apply_migrations: bool = False, ctx: Context | None = None) -> Instance:
    paths = DataPaths(settings.data_dir)
    paths.require_existing()
    key = keystore.load_db_key(paths, settings.db_passphrase_file)
    db = Database.open(paths.database, key)
    if apply_migrations:
        with db.read() as conn:
            before = current_version(conn)
        if before < head_version():
            migrate(db)
            audit.record_alone(db, ctx or cli_context(), SchemaMigrated(before, head_version()))
    return Instance(settings, paths, db, key)
