"""Replay a stored answer: rebuild it from the article version, the retrieved passages, the term weights and the
features recorded in its provenance (not from the index as it is today), and say whether it comes out identical."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from appliance.answering import extractive, recalibration
from appliance.answering.calibration import Calibration
from appliance.answering.engine import article_content
from appliance.answering.features import QuestionTerms
from appliance.errors import InvalidValue
from appliance.store import Database


@dataclass(frozen=True)
class Replay:
    message_id: int
    identical: bool
    stored_text: str
    replayed_text: str
    stored_confidence: int
    replayed_confidence: int
    calibration_matches: bool  # the calibration in use is the one that made the answer
    passages_intact: bool  # every cited span still reads the same in its stored article version
    differences: list[str]


def replay(db: Database, calibration: Calibration, org_id: int, message_id: int, stored: dict[str, Any],
           text: str, confidence: int) -> Replay:  # fmt: skip
    if stored.get("mode") != "extractive" or "extractive" not in stored:
        raise InvalidValue("only extractive answers can be replayed; this message was not answered extractively")
    differences: list[str] = []
    recorded = stored["extractive"]
    content = article_content(db, org_id, int(recorded["article_id"]), int(recorded["version"]))
    intact = True
    for cited in stored.get("passages", []):
        span = content[int(cited["start"]) : int(cited["end"])]
        if hashlib.sha256(span.encode()).hexdigest() != cited["sha256"]:
            intact = False
            differences.append(f"cited span {cited['number']} reads differently in the stored article version")
    evidence = [extractive.Evidence(int(e["chunk_id"]), int(e["start"]), int(e["end"]), float(e["score"]))
                for e in recorded["evidence"]]  # fmt: skip
    q = QuestionTerms.from_weights({str(k): float(v) for k, v in recorded["term_weights"].items()})
    held = [(int(a), int(b)) for a, b in recorded.get("held", [])]
    groups = extractive.select(q, content, evidence, held)
    replayed_text = extractive.render(groups)
    if replayed_text != text:
        differences.append("the answer text differs")
    spans = [[int(p["start"]), int(p["end"])] for p in stored.get("passages", [])]
    if spans != [[g.start, g.end] for g in groups]:
        differences.append("the cited spans differ")
    same_calibration = calibration.version == stored["calibration"]["version"] and (
        calibration.sha256 == stored["calibration"]["sha256"]
    )
    replayed_confidence = calibration.confidence(stored["features"], bool(stored.get("dense_used")))
    adjusted = stored.get("adjustment")
    if isinstance(adjusted, dict):  # the organisation's recalibration in force then (answering/recalibration.py)
        replayed_confidence = recalibration.Adjustment(float(adjusted["a"]), float(adjusted["b"]), int(adjusted["n"]),
                                                       str(adjusted["calibration"])).apply(replayed_confidence)
    if not same_calibration:
        differences.append(f"calibration {stored['calibration']['version']} was used; {calibration.version} is in use")
    elif replayed_confidence != confidence:
        differences.append("the confidence differs")
    return Replay(message_id, not differences, text, replayed_text, confidence, replayed_confidence,
                  same_calibration, intact, differences)  # fmt: skip
