"""The embedders against the real model: the ONNX export (built once per session by models/export_embedder.py)
matches sentence-transformers on torch, keeps order, does not depend on batching, and ranks a paraphrase above an
unrelated sentence; the fake is deterministic; a missing model is named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from appliance.errors import ConfigError
from appliance.inference.base import Embedder
from appliance.inference.embedders import FakeEmbedder, OnnxEmbedder, SentenceTransformerEmbedder, _batches

DIM = 384

SAMPLE = [
    "",
    "hi",
    "Refund?",
    "How do I reset my password?",
    "I was charged twice for the same order, please refund one of the payments.",
    "My card ending 4242 was declined at checkout even though the balance is fine.",
    "Where can I download last month's statement as a PDF?",
    "The app keeps logging me out every five minutes since the update.",
    "Can I change the date of my appointment with Dr. Okafor to next Tuesday?",
    "What are your opening hours on public holidays?",
    "The TV remote will not pair; I held both buttons for three seconds and nothing happened.",
    "How do I connect the TV to my wireless network and check that the connection works?",
    "Is my personal data shared with third parties?",
    "Thanks, that solved it!",
    "This is the third time I am writing about this and nobody has answered. Unacceptable.",
    "lost card pls block asap",
    "HOW DO I CLOSE MY ACCOUNT",
    "Ich möchte meine Adresse ändern, wie geht das?",
    "¿Dónde está mi pedido? Lo pedí hace dos semanas.",
    "Je n'arrive pas à me connecter à mon compte bancaire.",
    "支付失败了，怎么办？",
    "Naïve café façade — résumé “quotes” and emoji 😀🙏",
    "Order #A-1029-XZ shipped 2024-03-14, tracking 1Z999AA10123456784.",
    "   leading and trailing spaces   ",
    "line one\nline two\ttabbed",
    "a" * 40,
    "The prescription refill request for metformin 500 mg was sent to the wrong pharmacy.",
    # Longer than max_length (256 tokens): both engines must truncate the same way.
    "Please read my whole complaint carefully. " * 60,
    " ".join(f"step {i}: open Settings, then General, then Network, then select item {i}." for i in range(40)),
    "Short question after long ones?",
]


@pytest.fixture(scope="session")
def torch_embedder(model_source: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(model_source, threads=2, batch_size=8)  # smaller: less padding, faster


def test_export_writes_the_graph_tokenizer_and_config(onnx_dir: Path, model_source: Path) -> None:
    import onnx

    assert {p.name for p in onnx_dir.iterdir()} == {"model.onnx", "tokenizer.json", "embedder.json"}
    meta = json.loads((onnx_dir / "embedder.json").read_text())
    assert meta["max_length"] == 256 and meta["dim"] == DIM and meta["pooling"] == "mean" and meta["normalised"]
    from appliance.inference.registry import sha256_file

    assert meta["source_sha256"] == sha256_file(model_source / "model.safetensors")
    graph = onnx.load(str(onnx_dir / "model.onnx"), load_external_data=False).graph
    inputs = {i.name: i.type.tensor_type for i in graph.input}
    assert set(inputs) == {"input_ids", "attention_mask", "token_type_ids"}
    for tensor in inputs.values():
        assert tensor.elem_type == onnx.TensorProto.INT64
        assert [d.dim_param for d in tensor.shape.dim] == ["batch", "sequence"]
    (output,) = graph.output
    assert output.name == "sentence_embedding" and output.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in output.type.tensor_type.shape.dim] == ["batch", DIM]


def test_onnx_matches_sentence_transformers(
    onnx_embedder: OnnxEmbedder, torch_embedder: SentenceTransformerEmbedder
) -> None:
    assert isinstance(onnx_embedder, Embedder) and isinstance(torch_embedder, Embedder)
    assert onnx_embedder.dim == torch_embedder.dim == DIM
    ours, reference = onnx_embedder.embed(SAMPLE), torch_embedder.embed(SAMPLE)
    assert ours.dtype == np.float32 and ours.shape == (len(SAMPLE), DIM)
    cosines = (ours * reference).sum(axis=1)
    assert cosines.min() >= 0.999, [(SAMPLE[i][:40], float(c)) for i, c in enumerate(cosines) if c < 0.999]
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(reference, axis=1), 1.0, atol=1e-5)
    # Past max_length the text is cut: two inputs that differ only after token 256 embed the same.
    long = SAMPLE[-3]
    same = onnx_embedder.embed([long, long + " But this sentence comes after the cut and changes nothing."])
    np.testing.assert_allclose(same[0], same[1], atol=1e-6)


def test_order_is_kept_and_batching_does_not_matter(onnx_dir: Path, onnx_embedder: OnnxEmbedder) -> None:
    whole = onnx_embedder.embed(SAMPLE)
    one_by_one = OnnxEmbedder(onnx_dir, threads=2, batch_size=1, name="bs1").embed(SAMPLE)
    np.testing.assert_allclose(whole, one_by_one, atol=1e-5)
    reversed_rows = onnx_embedder.embed(SAMPLE[::-1])
    np.testing.assert_allclose(reversed_rows[::-1], whole, atol=1e-5)
    for i in (0, 3, len(SAMPLE) - 2):
        np.testing.assert_allclose(onnx_embedder.embed([SAMPLE[i]])[0], whole[i], atol=1e-5)
    assert onnx_embedder.name == onnx_dir.name


def test_batches_cover_every_text_once_within_their_limits() -> None:
    lengths = sorted([2, 3, 3, 5, 8, 9, 12, 14, 15, 30, 31, 120, 200, 256, 256, 256, 256, 256])
    for batch_size, max_tokens in ((32, 1024), (4, 1024), (1, 1024), (32, 100), (32, 10**9)):
        batches = _batches(lengths, batch_size, max_tokens)
        assert [i for run in batches for i in run] == list(range(len(lengths)))
        for run in batches:
            padded = len(run) * lengths[run[-1]]
            assert len(run) <= batch_size
            assert len(run) == 1 or (padded <= max_tokens and padded <= 2 * sum(lengths[i] for i in run))
    assert _batches([], 32, 1024) == []
    assert _batches([7] * 40, 32, 10**9) == [range(0, 32), range(32, 40)]


def test_empty_input_gives_an_empty_matrix(
    onnx_embedder: OnnxEmbedder, torch_embedder: SentenceTransformerEmbedder
) -> None:
    for embedder in (onnx_embedder, torch_embedder, FakeEmbedder()):
        empty = embedder.embed([])
        assert empty.shape == (0, DIM) and empty.dtype == np.float32


def test_a_paraphrase_is_closer_than_an_unrelated_sentence(onnx_embedder: OnnxEmbedder) -> None:
    query, paraphrase, unrelated = onnx_embedder.embed([
        "How can I change my password?",
        "What are the steps to reset the password for my account?",
        "The pharmacy is closed on Sundays.",
    ])  # fmt: skip
    assert float(query @ paraphrase) > float(query @ unrelated) + 0.3


def test_the_fake_is_deterministic_unit_norm_and_spelling_aware() -> None:
    fake = FakeEmbedder()
    assert isinstance(fake, Embedder) and fake.dim == DIM
    first, second = fake.embed(SAMPLE), FakeEmbedder().embed(SAMPLE)
    assert first.dtype == np.float32 and first.shape == (len(SAMPLE), DIM)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    base, typo, other = fake.embed(["reset my password", "reset my pasword", "opening hours on holidays"])
    assert float(base @ typo) > 0.7 > float(base @ other)
    assert FakeEmbedder(dim=16).embed(["x"]).shape == (1, 16)


def test_a_missing_or_broken_model_is_named(tmp_path: Path, onnx_dir: Path) -> None:
    absent = tmp_path / "no-such-model"
    with pytest.raises(ConfigError, match="no-such-model"):
        OnnxEmbedder(absent, threads=1)
    with pytest.raises(ConfigError, match="no-such-model"):
        SentenceTransformerEmbedder(absent, threads=1)
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "model.onnx").touch()
    with pytest.raises(ConfigError, match="tokenizer.json"):
        OnnxEmbedder(partial, threads=1)
    for name in ("tokenizer.json", "embedder.json"):
        shutil.copyfile(onnx_dir / name, partial / name)
    (partial / "model.onnx").write_bytes(b"not a protobuf" * 8)
    with pytest.raises(ConfigError, match="cannot load .*model.onnx"):
        OnnxEmbedder(partial, threads=1)
