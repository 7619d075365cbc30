"""The settings registry: every setting is declared here once, with its type, default and help text.

Sources, highest first: explicit arguments (the CLI's --data-dir and friends), environment variables
`APPLIANCE_<NAME>`, the TOML file named by `APPLIANCE_CONFIG_FILE` (or `--config`), then the defaults below.
docs/configuration.md lists every setting; a test fails when one is missing there.

Settings are passed in explicitly (`load_settings()` once per process, then handed down); nothing reaches for a
global.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from appliance.errors import ConfigError

_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


def _strict_bool(value: Any) -> Any:
    # "yes", "on", "y" and friends are refused: a typo in a security flag must not silently mean True.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError(f"expected true or false, got {value!r}")


StrictFlag = Annotated[bool, BeforeValidator(_strict_bool)]


# The repository's models/ folder (manifest and build scripts); installers copy it beside the package.
_REPO_MODELS = Path(__file__).resolve().parent.parent / "models"


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "appliance"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="APPLIANCE_", extra="forbid", validate_default=True)

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Directory holding the encrypted database, keys, indexes, exports and backups "
        "(created 0700 by `appliance init`). Default: $XDG_DATA_HOME/appliance or ~/.local/share/appliance.",
    )
    host: str = Field(default="127.0.0.1", description="Address the web server listens on.")
    port: int = Field(default=8080, ge=1, le=65535, description="TCP port the web server listens on.")
    tls_cert_file: Path | None = Field(
        default=None, description="PEM certificate for HTTPS. With tls_key_file, the server speaks TLS itself."
    )
    tls_key_file: Path | None = Field(default=None, description="PEM private key matching tls_cert_file.")
    db_passphrase_file: Path | None = Field(
        default=None,
        description="File holding the database passphrase, for installations initialised with a passphrase "
        "(`appliance init --passphrase-file`). The systemd credential `db_passphrase` is used when this is unset.",
    )
    session_idle_minutes: int = Field(
        default=30, ge=1, le=24 * 60, description="A console session with no request for this long expires."
    )
    session_max_hours: int = Field(
        default=12, ge=1, le=24 * 30, description="A console session expires this long after sign-in, in use or not."
    )
    force_secure_cookies: StrictFlag = Field(
        default=False,
        description="Mark session cookies Secure even on plain HTTP requests (set this when TLS ends at a "
        "reverse proxy). Cookies are always Secure on HTTPS requests.",
    )
    rate_limit_per_minute: int = Field(
        default=100, ge=1, description="API requests allowed per organisation per minute (console pages: per person); more get 429."
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest request body accepted, in bytes; larger ones get 413."
    )
    import_max_bytes: int = Field(
        default=50 * 1024 * 1024,
        ge=1024,
        description="Largest upload accepted by the knowledge-base import (POST /api/knowledge/import), in bytes; "
        "larger ones get 413. Every other request stays under max_body_bytes.",
    )
    password_min_length: int = Field(
        default=12, ge=12, le=128, description="Minimum length of a user password (never below 12)."
    )
    argon2_time_cost: int = Field(default=2, ge=2, description="argon2id iterations for password hashes (>= 2).")
    argon2_memory_kib: int = Field(
        default=19 * 1024, ge=19 * 1024, description="argon2id memory per password hash in KiB (>= 19456)."
    )
    argon2_parallelism: int = Field(default=1, ge=1, le=16, description="argon2id lanes for password hashes.")
    mfa_required_roles: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="Roles that must turn on two-step verification (comma-separated in the environment): signed in "
        "without it, such a person may only set it up or sign out.",
    )
    metrics_allowed_networks: Annotated[list[str], NoDecode] = Field(
        default=["127.0.0.0/8", "::1/128"],
        description="Client networks allowed to read /metrics (comma-separated CIDRs in the environment).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Level of the structured JSON log written to stderr."
    )

    # -- models ----------------------------------------------------------------------------------------------
    models_dir: Path | None = Field(
        default=None, description="Directory holding model files. Default: the models folder inside data_dir."
    )
    models_manifest: Path = Field(
        default=_REPO_MODELS / "manifest.toml",
        description="The shipped model manifest (names, roles, source packages, SHA-256).",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto",
        description="Where models run: cuda when ONNX Runtime's CUDA provider or a CUDA build of llama.cpp is "
        "present (auto), or forced. `appliance check` shows the choice.",
    )
    inference_threads: int = Field(
        default=max(1, min(4, os.cpu_count() or 1)),
        ge=1,
        le=256,
        description="CPU threads per model engine (ONNX Runtime intra-op threads, llama.cpp n_threads). "
        "Default: the number of cores, at most 4.",
    )
    embedder_engine: Literal["onnx", "sentence-transformers", "fake"] = Field(
        default="onnx",
        description="Embedding engine: onnx (ONNX Runtime, the default), sentence-transformers (torch; parity "
        "checks and training), or fake (deterministic, for tests only).",
    )
    embedder_model: str = Field(default="all-minilm-l6-v2", description="Name of the embedder model to use.")
    embed_batch_size: int = Field(default=32, ge=1, le=1024, description="Texts per embedding batch.")
    index_approximate_above: int = Field(
        default=30_000, ge=1000,
        description="Passages per organisation above which the dense index switches from exact to approximate "
        "search (measured by bench/retrieval.py).",
    )  # fmt: skip
    retrieval_lexical_weight: float = Field(
        default=0.5, ge=0.0, le=1.0,
        description="Weight of the lexical (BM25) score in hybrid search; the dense score gets the rest (1: "
        "lexical only). Tuned on the dev data with `appliance eval retrieval`.",
    )  # fmt: skip
    llm_engine: Literal["local", "upstream", "none", "fake"] = Field(
        default="local",
        description="Chat model engine: local (llama.cpp in process), upstream (an OpenAI-compatible server on "
        "the intranet), none, or fake (deterministic, for tests only).",
    )
    llm_model: str = Field(default="smollm2-135m-instruct", description="Name of the local GGUF model to use.")
    llm_instances: int = Field(
        default=1, ge=1, le=64, description="Model instances in the local pool (each holds its own KV cache)."
    )
    llm_max_queue: int = Field(
        default=16, ge=0, description="Requests allowed to wait for a free instance; more are refused with 503."
    )
    llm_timeout_s: float = Field(
        default=120.0, gt=0, description="Longest a chat completion may take, queueing included, in seconds."
    )
    llm_context_tokens: int = Field(
        default=4096, ge=512, description="Context window given to the local model, in tokens."
    )
    upstream_url: str | None = Field(
        default=None,
        description="Base URL of an OpenAI-compatible inference server on the intranet (llm_engine=upstream).",
    )
    upstream_model: str = Field(default="default", description="Model name sent to the upstream server.")
    upstream_api_key_file: Path | None = Field(
        default=None, description="File holding the bearer token for the upstream server, if it needs one."
    )

    # -- answers ---------------------------------------------------------------------------------------------
    answer_mode: Literal["extractive", "generative"] = Field(
        default="extractive",
        description="extractive: answers are the supporting passages of the best article, cited (the default). "
        "generative: the chat model writes the answer from the passages and every sentence is checked against "
        "them; needs an LLM the site has marked answer_capable (`appliance models add --answer-capable`).",
    )
    answer_threshold: int = Field(
        default=85, ge=0, le=100,
        description="Default confidence (0-100) below which the assistant refuses and hands over to a person; "
        "each organisation may set its own (organisation setting answer_threshold).",
    )  # fmt: skip
    conversation_retention_days: int = Field(
        default=730, ge=1,
        description="Days a conversation is kept after its last activity; then it is purged with its messages, "
        "their provenance, review labels and its knowledge gaps (daily, and by `appliance retention purge`). "
        "Analytics rollups of older days are kept and no longer recomputed.",
    )  # fmt: skip
    calibration_file: Path | None = Field(
        default=None,
        description="A confidence calibration fitted on the site's own data (models/fit_calibration.py). "
        "Default: the shipped calibration.",
    )

    # -- conversations ---------------------------------------------------------------------------------------
    max_message_bytes: int = Field(
        default=4096, ge=256, le=65536,
        description="Largest customer or agent message accepted, in bytes of UTF-8; larger ones get 413.",
    )  # fmt: skip
    max_bot_turns: int = Field(
        default=10, ge=1, le=1000,
        description="AI replies in one conversation after which it is handed to a person.",
    )  # fmt: skip
    max_failed_attempts: int = Field(
        default=3, ge=1, le=100,
        description="Failed AI attempts (refusals, low-confidence replies, thumbs-down) after which a conversation "
        "is handed to a person.",
    )  # fmt: skip
    resolution_idle_hours: int = Field(
        default=24, ge=1, le=24 * 90,
        description="A conversation with no customer message for this many hours has ended, for the analytics' "
        "resolution rate (a conversation that ended without a person, a thumbs-down or a CSAT of 1-2 is resolved "
        "by the assistant; docs/analytics.md).",
    )  # fmt: skip
    visitor_session_hours: int = Field(
        default=12, ge=1, le=24 * 30, description="A widget visitor session expires this long after it was issued."
    )
    identity_max_age_s: int = Field(
        default=24 * 3600, ge=60,
        description="Oldest signed customer identity (from the intranet) a widget session accepts, in seconds.",
    )  # fmt: skip
    chat_responder: Literal["assistant", "echo"] = Field(
        default="assistant",
        description="assistant: the answer engine replies to customers. echo: replies repeat the message at "
        "once; only for measuring the real-time hub (bench/chat_load.py).",
    )
    redact_kinds: Annotated[list[str], NoDecode] = Field(
        default=["pan", "iban", "us_ssn", "cvv", "nhs_number", "mrn"],
        description="What is masked in customer and agent messages before they are stored, scored, answered or "
        "sent to webhooks (comma-separated in the environment; empty turns redaction off): pan, iban, us_ssn, cvv, "
        "nhs_number, mrn, email. An unknown kind stops the installation from opening. See docs/compliance.md.",
    )
    webhook_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="Longest one webhook delivery attempt may take, in seconds."
    )
    webhook_max_attempts: int = Field(
        default=8, ge=1, le=30,
        description="Delivery attempts per webhook event (with growing delays) before it is marked failed.",
    )  # fmt: skip

    @field_validator("mfa_required_roles", mode="before")
    @classmethod
    def _split_roles(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value  # the names are checked against the roles when the installation opens

    @field_validator("redact_kinds", mode="before")
    @classmethod
    def _split_kinds(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value  # the kinds are checked against the redaction rules when the installation opens

    @field_validator("metrics_allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        for net in value:
            ipaddress.ip_network(net, strict=False)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("APPLIANCE_CONFIG_FILE")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @property
    def resolved_models_dir(self) -> Path:
        return self.models_dir if self.models_dir is not None else self.data_dir / "models"

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None and self.tls_key_file is not None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings once; bad values become one ConfigError naming the setting."""
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(f"config file {config_file} does not exist")
        os.environ["APPLIANCE_CONFIG_FILE"] = str(config_file)
    env_file = os.environ.get("APPLIANCE_CONFIG_FILE")
    if env_file and not Path(env_file).is_file():
        raise ConfigError(f"config file {env_file} (APPLIANCE_CONFIG_FILE) does not exist")
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(f"bad setting {name}: {first['msg']}") from None
    except ValueError as exc:  # e.g. a TOML syntax error
        raise ConfigError(f"cannot read settings: {exc}") from None
