"""Calibrated confidence: the probability that an answer's first cited article is right, from the answer's
features, fitted on the development data (models/fit_calibration.py) and shipped as a versioned JSON file whose
SHA-256 is recorded with every answer.

A model is either a logistic regression, or small boosted regression trees (depth 2) whose score is mapped to a
probability by isotonic regression fitted on held-out scores. On the development data the trees separate right
from wrong answers better at the top of the scale, which is where the gate sits (docs/evaluation.md). There are
two models in a file: one for hybrid search and one for when the dense leg is off (lexical search only), since the
dense features are then missing."""

from __future__ import annotations

import bisect
import hashlib
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from appliance.answering.features import DENSE_FEATURES, FEATURES
from appliance.errors import ConfigError

SHIPPED = "calibration-v2.json"


@dataclass(frozen=True)
class Logistic:
    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def probability(self, values: dict[str, float]) -> float:
        z = self.bias
        for name, mu, sd, w in zip(self.features, self.mean, self.scale, self.weights, strict=True):
            z += w * (values.get(name, 0.0) - mu) / sd
        return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z))))

    def to_json(self) -> dict[str, Any]:
        return {"features": list(self.features), "mean": list(self.mean), "scale": list(self.scale),
                "weights": list(self.weights), "bias": self.bias}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Logistic:
        model = cls(tuple(data["features"]), tuple(map(float, data["mean"])), tuple(map(float, data["scale"])),
                    tuple(map(float, data["weights"])), float(data["bias"]))  # fmt: skip
        unknown = set(model.features) - set(FEATURES)
        if unknown or not len(model.features) == len(model.mean) == len(model.scale) == len(model.weights):
            raise ValueError(f"features {sorted(unknown)} unknown or lengths differ")
        if any(s <= 0 for s in model.scale):
            raise ValueError("scales must be positive")
        return model


@dataclass(frozen=True)
class Tree:
    feature: tuple[int, ...]  # per node: index into the model's features, -1 for a leaf
    threshold: tuple[float, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    value: tuple[float, ...]

    def predict(self, x: list[float]) -> float:
        node = 0
        while self.feature[node] >= 0:
            node = self.left[node] if x[self.feature[node]] <= self.threshold[node] else self.right[node]
        return self.value[node]


@dataclass(frozen=True)
class Boosted:
    features: tuple[str, ...]
    init: float
    learning_rate: float
    trees: tuple[Tree, ...]
    iso_x: tuple[float, ...]  # isotonic map from the trees' probability to the calibrated one
    iso_y: tuple[float, ...]

    def raw(self, values: dict[str, float]) -> float:
        x = [values.get(name, 0.0) for name in self.features]
        return self.init + self.learning_rate * sum(t.predict(x) for t in self.trees)

    def probability(self, values: dict[str, float]) -> float:
        p = 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, self.raw(values)))))
        xs, ys = self.iso_x, self.iso_y
        if p <= xs[0]:
            return ys[0]
        if p >= xs[-1]:
            return ys[-1]
        i = bisect.bisect_right(xs, p)
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        return y0 if x1 == x0 else y0 + (y1 - y0) * (p - x0) / (x1 - x0)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "boosted", "features": list(self.features), "init": self.init,
                "learning_rate": self.learning_rate, "isotonic": {"x": list(self.iso_x), "y": list(self.iso_y)},
                "trees": [{"feature": list(t.feature), "threshold": list(t.threshold), "left": list(t.left),
                           "right": list(t.right), "value": list(t.value)} for t in self.trees]}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Boosted:
        trees = tuple(Tree(tuple(map(int, t["feature"])), tuple(map(float, t["threshold"])), tuple(map(int, t["left"])),
                           tuple(map(int, t["right"])), tuple(map(float, t["value"]))) for t in data["trees"])  # fmt: skip
        model = cls(tuple(data["features"]), float(data["init"]), float(data["learning_rate"]), trees,
                    tuple(map(float, data["isotonic"]["x"])), tuple(map(float, data["isotonic"]["y"])))  # fmt: skip
        unknown = set(model.features) - set(FEATURES)
        if unknown or not model.iso_x or len(model.iso_x) != len(model.iso_y):
            raise ValueError(f"features {sorted(unknown)} unknown or isotonic map malformed")
        for t in trees:
            n = len(t.feature)
            if not n == len(t.threshold) == len(t.left) == len(t.right) == len(t.value):
                raise ValueError("tree arrays differ in length")
            if any(f >= len(model.features) for f in t.feature) or any(
                f >= 0 and not (0 < t.left[i] < n and 0 < t.right[i] < n) for i, f in enumerate(t.feature)
            ):
                raise ValueError("tree refers to a missing feature or node")
        return model


Model = Logistic | Boosted


def model_from_json(data: dict[str, Any]) -> Model:
    return Boosted.from_json(data) if data.get("kind") == "boosted" else Logistic.from_json(data)


@dataclass(frozen=True)
class Calibration:
    version: str
    sha256: str
    hybrid: Model
    lexical: Model
    fitted_on: tuple[str, ...] = ()

    def confidence(self, features: dict[str, float], dense_used: bool) -> int:
        """0..100: the calibrated probability, in percent, that the answer is right."""
        model = self.hybrid if dense_used else self.lexical
        return int(round(100.0 * model.probability(features)))


def fit(rows: list[dict[str, float]], labels: list[float], features: tuple[str, ...], l2: float = 1.0,
        sample_weights: list[float] | None = None) -> Logistic:  # fmt: skip
    """L2-regularised logistic regression on standardised features, by Newton's method; each row counts with its
    sample weight (default 1)."""
    import numpy as np

    x = np.array([[r[f] for f in features] for r in rows], dtype=np.float64)
    y = np.array(labels, dtype=np.float64)
    s = np.ones(len(y)) if sample_weights is None else np.array(sample_weights, dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = np.c_[(x - mean) / scale, np.ones(len(x))]
    w = np.zeros(z.shape[1])
    penalty = l2 * np.diag(np.r_[np.ones(len(features)), 0.0])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -40, 40)))
        gradient = z.T @ (s * (p - y)) + penalty @ w
        hessian = (z.T * (s * p * (1 - p))) @ z + penalty
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return Logistic(features, tuple(map(float, mean)), tuple(map(float, scale)), tuple(map(float, w[:-1])), float(w[-1]))


def fit_boosted(rows: list[dict[str, float]], labels: list[float], features: tuple[str, ...],
                held_out: list[float] | None = None, trees: int = 150, depth: int = 2, rate: float = 0.05,
                seed: int = 0) -> Boosted:  # fmt: skip
    """Boosted trees on the rows; the isotonic map is fitted on `held_out` (the trees' probabilities for the same
    rows from models that did not see them) so that it corrects the trees' over-confidence on unseen questions."""
    import numpy as np
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.isotonic import IsotonicRegression

    x = np.array([[r[f] for f in features] for r in rows], dtype=np.float64)
    y = np.array(labels, dtype=np.float64)
    gbm = GradientBoostingClassifier(n_estimators=trees, max_depth=depth, learning_rate=rate, subsample=0.8,
                                     random_state=seed).fit(x, y)  # fmt: skip
    exported = []
    for estimator in gbm.estimators_[:, 0]:
        t = estimator.tree_
        exported.append(Tree(tuple(int(f) if f >= 0 else -1 for f in t.feature), tuple(map(float, t.threshold)),
                             tuple(map(int, t.children_left)), tuple(map(int, t.children_right)),
                             tuple(float(v) for v in t.value[:, 0, 0])))  # fmt: skip
    init = float(gbm.decision_function(x[:1])[0]) - rate * sum(t.predict(list(x[0])) for t in exported)
    scores = held_out if held_out is not None else list(1.0 / (1.0 + np.exp(-gbm.decision_function(x))))
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, y)
    model = Boosted(features, init, rate, tuple(exported), tuple(map(float, iso.X_thresholds_)),
                    tuple(map(float, iso.y_thresholds_)))  # fmt: skip
    check = float(gbm.decision_function(x[-1:])[0])
    if abs(model.raw(dict(zip(features, map(float, x[-1]), strict=True))) - check) > 1e-6:
        raise RuntimeError("exported trees do not reproduce the fitted model")
    return model


def tree_probability(model: Boosted, values: dict[str, float]) -> float:
    """The trees' own probability, before the isotonic map."""
    return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, model.raw(values)))))


def lexical_features() -> tuple[str, ...]:
    return tuple(f for f in FEATURES if f not in DENSE_FEATURES)


def dump(version: str, hybrid: Model, lexical: Model, fitted_on: list[str], figures: dict[str, Any]) -> str:
    return json.dumps({"version": version, "fitted_on": fitted_on, "hybrid": hybrid.to_json(),
                       "lexical": lexical.to_json(), "figures": figures}, indent=1) + "\n"  # fmt: skip


def parse(raw: bytes, where: str) -> Calibration:
    try:
        data = json.loads(raw)
        return Calibration(str(data["version"]), hashlib.sha256(raw).hexdigest(), model_from_json(data["hybrid"]),
                           model_from_json(data["lexical"]), tuple(data.get("fitted_on", ())))  # fmt: skip
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"calibration file {where} is not valid: {exc}") from None


def load(path: Path | None = None) -> Calibration:
    """The calibration at `path`, or the shipped one."""
    if path is not None:
        try:
            return parse(path.read_bytes(), str(path))
        except OSError as exc:
            raise ConfigError(f"calibration file {path}: {exc.strerror}") from None
    return parse(resources.files("appliance.answering").joinpath(SHIPPED).read_bytes(), SHIPPED)
