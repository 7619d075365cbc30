"""An organisation's own recalibration of the shipped confidence, from its own labels: its golden questions (the
article each should be answered with, or none) and its reviewers' verdicts on AI answers.

The shipped calibration is fitted on other organisations' help centres; on a new one it may be over- or
under-confident as a whole (docs/evaluation.md measures both). The adjustment is one line on the logit scale,
p' = sigmoid(a * logit(p) + b), fitted to the organisation's labels with a prior that pulls it towards no change
(a = 1, b = 0), so that a handful of labels moves it a little and many move it further. It never reorders answers:
a is kept positive, so a higher shipped confidence stays higher. It is stored in the organisation's settings
together with the calibration version it was fitted against, and applies only while that calibration is in use.
Leave-one-KB-out with 20 labelled questions of the KB left out (bench/loko.py --labelled 20): docs/evaluation.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from appliance import audit
from appliance.audit.events import ConfidenceRecalibrated, Context
from appliance.errors import InvalidValue, NotFound
from appliance.store import Database, now_iso

if TYPE_CHECKING:
    from appliance.answering.engine import AnswerEngine

SETTING = "confidence_adjustment"  # the organisation setting that holds it (written here only)
MIN_LABELS = 20  # below this the labels say more about chance than about the organisation
PRIOR = 5.0  # weight of the pull towards no change, in labels' worth
MIN_SLOPE = 0.05


@dataclass(frozen=True)
class Adjustment:
    a: float
    b: float
    n: int  # labels it was fitted on
    calibration: str  # the calibration version it adjusts
    fitted_at: str = ""

    def apply(self, confidence: int) -> int:
        z = _logit(confidence / 100.0)
        return int(round(100.0 / (1.0 + math.exp(-max(-40.0, min(40.0, self.a * z + self.b))))))

    def public(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "n": self.n, "calibration": self.calibration, "fitted_at": self.fitted_at}


def _logit(p: float) -> float:
    p = min(max(p, 0.005), 0.995)  # confidences are whole percents: 0 and 100 stay finite
    return math.log(p / (1.0 - p))


def fit(labels: Sequence[tuple[int, bool]], calibration: str) -> Adjustment:
    """(shipped confidence 0..100, was the answer right) pairs -> the adjustment, by Newton's method on the
    penalised log-likelihood."""
    if len(labels) < MIN_LABELS:
        raise InvalidValue(f"{len(labels)} labelled answers; recalibrating needs at least {MIN_LABELS}")
    z = [_logit(c / 100.0) for c, _ in labels]
    y = [1.0 if right else 0.0 for _, right in labels]
    a, b = 1.0, 0.0
    for _ in range(100):
        ga, gb = PRIOR * (a - 1.0), PRIOR * b
        haa, hab, hbb = PRIOR, 0.0, PRIOR
        for zi, yi in zip(z, y, strict=True):
            p = 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, a * zi + b))))
            w = p * (1.0 - p)
            ga, gb = ga + (p - yi) * zi, gb + (p - yi)
            haa, hab, hbb = haa + w * zi * zi, hab + w * zi, hbb + w
        det = haa * hbb - hab * hab
        da, db = (hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det
        a, b = max(a - da, MIN_SLOPE), b - db
        if abs(da) < 1e-9 and abs(db) < 1e-9:
            break
    return Adjustment(round(a, 6), round(b, 6), len(labels), calibration, now_iso())


def current(settings: dict[str, Any], calibration: str) -> Adjustment | None:
    """The organisation's adjustment, when it was fitted against the calibration in use."""
    raw = settings.get(SETTING)
    if not isinstance(raw, dict) or raw.get("calibration") != calibration:
        return None
    try:
        return Adjustment(float(raw["a"]), float(raw["b"]), int(raw["n"]), str(raw["calibration"]),
                          str(raw.get("fitted_at", "")))  # fmt: skip
    except (KeyError, TypeError, ValueError):
        return None


def review_labels(db: Database, org_id: int, calibration: str) -> list[tuple[int, bool]]:
    """Reviewers' verdicts on answered AI messages made under this calibration, with the shipped confidence."""
    out = []
    with db.read() as conn:
        rows = conn.execute(
            "SELECT m.confidence, m.provenance, r.verdict FROM answer_reviews r JOIN messages m ON m.id = r.message_id"
            " WHERE r.org_id = ? AND m.outcome = 'answered' AND m.provenance IS NOT NULL ORDER BY r.id", (org_id,),
        ).fetchall()  # fmt: skip
    for row in rows:
        provenance = json.loads(row["provenance"])
        if (provenance.get("calibration") or {}).get("version") != calibration:
            continue
        shipped = provenance.get("calibrated_confidence", row["confidence"])
        out.append((int(shipped), row["verdict"] == "correct"))
    return out


def golden_labels(engine: AnswerEngine, db: Database, org_id: int) -> list[tuple[int, bool]]:
    """Each golden question answered now: the shipped confidence, and whether the article the engine would answer
    with is the expected one (a question that must be refused: any article is wrong)."""
    from appliance.answering import golden

    out = []
    for g in golden.list_golden(db, org_id):
        answer = engine.answer(org_id, g.question, use_cache=False)
        best = (answer.provenance.get("best") or {}).get("article_id")
        if "calibrated_confidence" not in answer.provenance:  # small talk, urgent, blocked: not the gate's to judge
            continue
        right = g.expected_article_id is not None and best == g.expected_article_id
        out.append((int(answer.provenance["calibrated_confidence"]), right))
    return out


def save(db: Database, ctx: Context, org_id: int, adjustment: Adjustment | None) -> None:
    """Store (or with None, remove) the organisation's adjustment; audited."""
    with db.write() as conn:
        row = conn.execute("SELECT settings FROM orgs WHERE id = ?", (org_id,)).fetchone()
        if row is None:
            raise NotFound(f"organisation {org_id} not found")
        settings = json.loads(row["settings"])
        if adjustment is None:
            settings.pop(SETTING, None)
        else:
            settings[SETTING] = adjustment.public()
        conn.execute("UPDATE orgs SET settings = ? WHERE id = ?", (json.dumps(settings), org_id))
        audit.record(conn, ctx, ConfidenceRecalibrated(org_id, None if adjustment is None else adjustment.public()))
