"""What the small-talk and urgent-message benchmarks share: reading the JSON Lines sets, and counting a detector's
false positives on sets that hold none of what it looks for, and printing them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def rows(file: Path) -> list[dict[str, Any]]:
    if not file.is_file():
        return []
    with file.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def false_positives(sets: dict[str, list[str]], flag: Callable[[str], str | None],
                    examples: int) -> dict[str, Any]:  # fmt: skip
    """Per set: rows, texts `flag` flagged (it names what it saw, or None), their rate, the first few examples;
    then the totals."""
    per_set: dict[str, Any] = {}
    for name, texts in sets.items():
        wrong = [f"{seen}: {text[:160]}" for text in texts if (seen := flag(text)) is not None]
        per_set[name] = {"rows": len(texts), "false_positives": len(wrong),
                         "rate": round(len(wrong) / len(texts), 4) if texts else None, "examples": wrong[:examples]}  # fmt: skip
    total = sum(v["rows"] for v in per_set.values())
    hit = sum(v["false_positives"] for v in per_set.values())
    return {"false_positives": per_set, "negative_rows": total,
            "false_positive_rate_overall": round(hit / total, 4) if total else None}  # fmt: skip


def print_false_positives(report: dict[str, Any]) -> None:
    for name, got in report["false_positives"].items():
        print(f"  {name}: {got['false_positives']} false positives of {got['rows']} (rate {got['rate']})")
        for text in got["examples"]:
            print(f"      {text}")
    print(f"false-positive rate overall: {report['false_positive_rate_overall']} of {report['negative_rows']} rows")
