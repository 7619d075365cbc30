"""Fit the shipped confidence calibration (calibration-v2) on every development KB, with the features, penalty
and threshold that the leave-one-KB-out protocol chose, and record the protocol's held-out figures in the file.

    python bench/loko_data.py ../shared/datasets --work /tmp/loko
    python models/fit_confidence.py --work /tmp/loko [--out appliance/answering/calibration-v2.json]

The hybrid model is a logistic regression over HYBRID_FEATURES, each KB weighing the same (the next KB is one
organisation, whatever its number of questions). When the dense leg is off, the lexical-only model of
calibration-v1 is kept unchanged: the protocol's cache holds hybrid searches only, so it cannot choose one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from appliance.answering import calibration  # noqa: E402
from appliance.answering.engine import DEFAULT_THRESHOLD  # noqa: E402
from loko import CHOSEN, L2, prepare, run  # noqa: E402  # type: ignore[import-not-found]
from loko_data import KBS, load  # noqa: E402  # type: ignore[import-not-found]

HYBRID_FEATURES = CHOSEN  # chosen on the held-out figures of bench/loko.py --select (docs/evaluation.md)


def weighted(rows: list[dict[str, Any]]) -> list[float]:
    kbs = {r["kb"] for r in rows}
    count = {kb: sum(r["kb"] == kb for r in rows) for kb in kbs}
    return [len(rows) / (len(kbs) * count[r["kb"]]) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="bench/loko_data.py's work folder")
    parser.add_argument("--out", type=Path, default=ROOT / "appliance/answering/calibration-v2.json")
    parser.add_argument("--version", default="calibration-v2")
    args = parser.parse_args()
    rows = [r for r in load(args.work) if r["kb"] in KBS]
    prepare(rows)
    hybrid = calibration.fit([r["_values"] for r in rows], [r["_correct"] for r in rows], HYBRID_FEATURES, L2,
                             weighted(rows))  # fmt: skip
    lexical = calibration.parse((ROOT / "appliance/answering/calibration-v1.json").read_bytes(), "v1").lexical
    threshold = DEFAULT_THRESHOLD / 100
    held_out = {"own questions": run(rows, HYBRID_FEATURES, L2, threshold, False),
                "with out-of-scope": run(rows, HYBRID_FEATURES, L2, threshold, True)}  # fmt: skip
    figures = {"leave_one_kb_out": held_out, "threshold": threshold, "l2": L2,
               "lexical": "calibration-v1's lexical-only model, unchanged"}  # fmt: skip
    fitted_on = sorted({r["kb"] for r in rows})
    args.out.write_text(calibration.dump(args.version, hybrid, lexical, fitted_on, figures))
    print(f"wrote {args.out} (fitted on {', '.join(fitted_on)})")
    for name, rep in held_out.items():
        worst, mean = rep["worst"], rep["mean"]
        print(f"{name}, KB left out: worst precision {worst['precision']:.3f}, coverage {worst['coverage']:.3f};"
              f" mean precision {mean['precision']:.3f}, coverage {mean['coverage']:.3f}, ece {mean['ece']:.3f}")
    print(json.dumps(dict(zip(hybrid.features, [round(w, 3) for w in hybrid.weights], strict=True))))


if __name__ == "__main__":
    main()
