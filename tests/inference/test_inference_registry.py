"""The model registry: install from the packages with verified sources, refuse a file that fails its checksum
(naming the file and both hashes), list what is there, record site models; and the device choice."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from appliance.errors import BadInput, ConfigError, ModelChecksumMismatch, ModelMissing, UnknownModel
from appliance.inference import registry
from appliance.inference.device import choose_device, llama_gpu_available, onnx_cuda_available
from appliance.instance import Instance, cli_context

LLM = "smollm2-135m-instruct"


@pytest.fixture
def installed(inst: Instance) -> registry.ModelRecord:
    spec = registry.manifest_spec(inst.settings.models_manifest, LLM)
    return registry.install(inst.db, cli_context(), inst.settings.resolved_models_dir, spec, spec_dir(inst))


def spec_dir(inst: Instance) -> Path:
    return inst.settings.models_manifest.parent


def test_manifest_lists_the_shipped_models(inst: Instance) -> None:
    specs = {s.name: s for s in registry.load_manifest(inst.settings.models_manifest)}
    assert {"all-minilm-l6-v2", LLM} <= set(specs)
    assert specs[LLM].role == "llm" and specs[LLM].answer_capable is False
    for spec in specs.values():
        assert len(spec.source.sha256) == 64 and spec.source.size > 0 and spec.licence


def test_install_copies_verifies_and_audits(inst: Instance, installed: registry.ModelRecord) -> None:
    models_dir = inst.settings.resolved_models_dir
    path = installed.location(models_dir)
    assert path.is_file() and path.read_bytes()[:4] == b"GGUF"
    spec = registry.manifest_spec(inst.settings.models_manifest, LLM)
    assert installed.files == {path.name: spec.source.sha256}
    assert registry.require(inst.db, models_dir, "llm", LLM) == installed
    assert registry.check(installed, models_dir).state == "present"
    with inst.db.read() as conn:
        actions = [r[0] for r in conn.execute("SELECT action FROM audit_events")]
    assert "model.installed" in actions
    # Installing again is a no-op while the files verify.
    again = registry.install(inst.db, cli_context(), models_dir, spec, spec_dir(inst))
    assert again.added_at == installed.added_at


def test_a_changed_byte_is_refused_naming_file_and_both_hashes(inst: Instance, installed: registry.ModelRecord) -> None:
    models_dir = inst.settings.resolved_models_dir
    path = installed.location(models_dir)
    with path.open("r+b") as fh:
        fh.seek(1_000_000)
        byte = fh.read(1)
        fh.seek(1_000_000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    actual = registry.sha256_file(path)
    with pytest.raises(ModelChecksumMismatch) as caught:
        registry.require(inst.db, models_dir, "llm", LLM)
    message = caught.value.message
    assert str(path) in message and actual in message and installed.files[path.name] in message
    assert registry.check(installed, models_dir).state == "checksum mismatch"
    # --force reinstalls a good copy from the verified package.
    spec = registry.manifest_spec(inst.settings.models_manifest, LLM)
    registry.install(inst.db, cli_context(), models_dir, spec, spec_dir(inst), force=True)
    assert registry.require(inst.db, models_dir, "llm", LLM).files == installed.files


def test_missing_and_unknown_models(inst: Instance, installed: registry.ModelRecord) -> None:
    models_dir = inst.settings.resolved_models_dir
    with pytest.raises(UnknownModel, match=LLM):  # the error lists what there is
        registry.require(inst.db, models_dir, "llm", "llama-70b")
    with pytest.raises(UnknownModel):
        registry.require(inst.db, models_dir, "embedder", LLM)  # right name, wrong role
    with pytest.raises(UnknownModel, match="all-minilm-l6-v2"):
        registry.manifest_spec(inst.settings.models_manifest, "nope")
    installed.location(models_dir).unlink()
    with pytest.raises(ModelMissing, match="missing"):
        registry.require(inst.db, models_dir, "llm", LLM)


def test_a_source_that_differs_from_the_manifest_is_not_installed(inst: Instance, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.toml"
    text = inst.settings.models_manifest.read_text().replace(
        registry.manifest_spec(inst.settings.models_manifest, LLM).source.sha256, "0" * 64
    )
    manifest.write_text(text)
    spec = registry.manifest_spec(manifest, LLM)
    with pytest.raises(ModelChecksumMismatch, match="refusing to install"):
        registry.install(inst.db, cli_context(), inst.settings.resolved_models_dir, spec, tmp_path)
    assert registry.list_installed(inst.db) == []


def test_site_models_are_recorded_with_their_hash(inst: Instance, tmp_path: Path) -> None:
    models_dir = inst.settings.resolved_models_dir
    models_dir.mkdir(parents=True, exist_ok=True)
    spec = registry.manifest_spec(inst.settings.models_manifest, LLM)
    site_file = models_dir / "site-model.gguf"
    shutil.copyfile(registry.locate_source(spec), site_file)
    record = registry.add_site_model(inst.db, cli_context(), models_dir, site_file, "llm", "site-llm", True)
    assert record.path == "site-model.gguf" and record.answer_capable and record.origin == "site"
    assert registry.require(inst.db, models_dir, "llm", "site-llm").files == {"site-model.gguf": spec.source.sha256}

    not_gguf = tmp_path / "fake.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(BadInput, match="not a GGUF"):
        registry.add_site_model(inst.db, cli_context(), models_dir, not_gguf, "llm")
    with pytest.raises(BadInput, match="only an llm"):
        registry.add_site_model(inst.db, cli_context(), models_dir, site_file, "embedder", "x", True)
    with pytest.raises(BadInput, match="unknown role"):
        registry.add_site_model(inst.db, cli_context(), models_dir, site_file, "oracle")
    with pytest.raises(BadInput, match="not a file"):
        registry.add_site_model(inst.db, cli_context(), models_dir, tmp_path / "absent.gguf", "llm")
    assert [m.name for m in registry.list_installed(inst.db)] == ["site-llm"]


def test_device_choice_on_this_machine() -> None:
    assert choose_device("cpu").onnx == "cpu" and choose_device("cpu").n_gpu_layers == 0
    auto = choose_device("auto")
    assert auto.onnx == ("cuda" if onnx_cuda_available() else "cpu")
    assert auto.llama == ("cuda" if llama_gpu_available() else "cpu")
    if not (onnx_cuda_available() or llama_gpu_available()):
        with pytest.raises(ConfigError, match="device=cuda"):
            choose_device("cuda")
    else:
        assert "CUDAExecutionProvider" in choose_device("cuda").onnx_providers or choose_device("cuda").n_gpu_layers
