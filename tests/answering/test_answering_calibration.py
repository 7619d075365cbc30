"""The shipped calibration and the leave-one-KB-out protocol it was chosen by: the confidence never falls when the
evidence for the answer grows, and a fold's figures never depend on the labels of the KB it leaves out."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import pytest

from appliance.answering import calibration, features

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import loko  # noqa: E402  # type: ignore[import-not-found]


def test_the_shipped_confidence_rises_with_every_feature_it_reads() -> None:
    shipped = calibration.load()
    model = shipped.hybrid
    assert isinstance(model, calibration.Logistic)
    assert set(model.features) <= set(features.FEATURES)
    # cosine, margins and coverage are evidence for the answer: none of them may lower the confidence
    assert all(w > 0 for w in model.weights), dict(zip(model.features, model.weights, strict=True))
    base = dict(zip(model.features, model.mean, strict=True))
    for name, scale in zip(model.features, model.scale, strict=True):
        assert model.probability(base | {name: base[name] + scale}) > model.probability(base)
    assert set(shipped.fitted_on) == set(loko.KBS)
    assert shipped.confidence(base, dense_used=True) == round(100 * model.probability(base))


def rows(seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for kb in loko.KBS:
        for i in range(60):
            right = rng.random() < 0.6
            values = {f: rng.gauss(1.0 if right else 0.0, 1.0) for f in features.FEATURES}
            out.append({"kb": kb, "id": f"{kb}-{i}", "answerable": i % 10 != 0, "oos": False,
                        "_values": values, "_correct": float(right and i % 10 != 0)})  # fmt: skip
    return out


def test_a_fold_never_sees_the_labels_of_the_kb_it_leaves_out() -> None:
    data = rows()
    held = loko.KBS[0]
    _, before = loko.fold(data, held, loko.CHOSEN, loko.L2)
    for r in data:
        if r["kb"] == held:  # the held-out KB's labels turned upside down: its fold must not move
            r["_correct"] = 1.0 - r["_correct"]
    _, after = loko.fold(data, held, loko.CHOSEN, loko.L2)
    assert before == after
    # while the other folds, which train on it, do move
    other = loko.KBS[1]
    _, moved = loko.fold(data, other, loko.CHOSEN, loko.L2)
    _, original = loko.fold(rows(), other, loko.CHOSEN, loko.L2)
    assert moved != original


def test_the_figures_follow_the_evaluation_contract() -> None:
    test = [{"answerable": True, "_correct": 1.0}, {"answerable": True, "_correct": 0.0},
            {"answerable": True, "_correct": 1.0}, {"answerable": False, "_correct": 0.0}]  # fmt: skip
    got = loko.figures(test, [0.95, 0.9, 0.5, 0.2], threshold=0.85)
    assert got["answered"] == 2 and got["precision"] == 0.5
    assert got["coverage"] == pytest.approx(1 / 3) and got["refused_unanswerable"] == 1.0
    assert got["recall_at_1"] == pytest.approx(2 / 3)
    # the best threshold with precision >= 0.95 answers only the first: coverage 1/3
    assert got["coverage_at_precision_95"] == pytest.approx(1 / 3)
    # ECE over 10 equal-width bins, weighted by their size: 0.95 and 0.9 share the top bin (mean 0.925 against 1
    # right of 2), then |0.5 - 1| and |0.2 - 0|
    assert got["ece"] == pytest.approx((2 * abs(0.925 - 0.5) + 0.5 + 0.2) / 4)
