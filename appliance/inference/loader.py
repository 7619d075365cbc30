"""Builds each engine from the settings, in one `match` per role. Every real engine is checked against the model
registry first, so a model that fails its checksum never loads. Model hubs are switched off in-process."""

from __future__ import annotations

import os
from pathlib import Path

from appliance.config import Settings
from appliance.errors import ConfigError
from appliance.inference import registry
from appliance.inference.base import Embedder, Generator
from appliance.inference.device import DeviceChoice, choose_device
from appliance.store import Database


def disable_hubs() -> None:
    """No library may fetch weights at run time: the hub clients honour these before they are imported."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[var] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def build_embedder(settings: Settings, db: Database, device: DeviceChoice | None = None) -> Embedder:
    disable_hubs()
    models_dir = settings.resolved_models_dir
    match settings.embedder_engine:
        case "fake":
            from appliance.inference.embedders import FakeEmbedder

            return FakeEmbedder()
        case "onnx":
            from appliance.inference.embedders import OnnxEmbedder

            record = registry.require(db, models_dir, "embedder", settings.embedder_model)
            device = device or choose_device(settings.device)
            return OnnxEmbedder(
                record.location(models_dir), threads=settings.inference_threads,
                batch_size=settings.embed_batch_size, providers=device.onnx_providers, name=record.name,
            )  # fmt: skip
        case "sentence-transformers":
            from appliance.inference.embedders import SentenceTransformerEmbedder

            spec = registry.manifest_spec(settings.models_manifest, settings.embedder_model)
            source = registry.locate_source(spec)
            if registry.sha256_file(source) != spec.source.sha256:
                raise ConfigError(f"{source} does not match the manifest's SHA-256 for {spec.name}")
            return SentenceTransformerEmbedder(source.parent, threads=settings.inference_threads, name=spec.name)
    raise ConfigError(f"unknown embedder engine {settings.embedder_engine!r}")


def read_upstream_key(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text("utf-8").strip() or None
    except OSError as exc:
        raise ConfigError(f"cannot read upstream_api_key_file {path}: {exc.strerror}") from None


def build_generator(settings: Settings, db: Database, device: DeviceChoice | None = None) -> Generator | None:
    disable_hubs()
    models_dir = settings.resolved_models_dir
    match settings.llm_engine:
        case "none":
            return None
        case "fake":
            from appliance.inference.fakes import FakeGenerator

            return FakeGenerator()
        case "local":
            from appliance.inference.llama import LlamaGenerator

            record = registry.require(db, models_dir, "llm", settings.llm_model)
            device = device or choose_device(settings.device)
            return LlamaGenerator(
                record.location(models_dir), name=record.name, instances=settings.llm_instances,
                max_queue=settings.llm_max_queue, timeout_s=settings.llm_timeout_s,
                n_ctx=settings.llm_context_tokens, n_threads=settings.inference_threads,
                n_gpu_layers=device.n_gpu_layers,
            )  # fmt: skip
        case "upstream":
            from appliance.inference.upstream import OpenAIUpstreamGenerator

            if not settings.upstream_url:
                raise ConfigError("llm_engine=upstream needs upstream_url")
            return OpenAIUpstreamGenerator(
                settings.upstream_url, settings.upstream_model, api_key=read_upstream_key(settings.upstream_api_key_file),
                timeout_s=settings.llm_timeout_s, context_window=settings.llm_context_tokens,
            )  # fmt: skip
    raise ConfigError(f"unknown llm engine {settings.llm_engine!r}")
