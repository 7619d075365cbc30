"""How the shipped sentiment model (sentiment-v1) labels support messages: complaints written in neutral words
(no "angry", "terrible"...), beside plain questions and openly worded messages for contrast.

    .venv/bin/python bench/sentiment_support.py [--embedder DIR] [--json]

The model is trained on tweets, where sentiment is mostly carried by evaluative words; a customer who has waited
three weeks writes "I have been waiting three weeks". Every complaint below should read as negative to a support
agent. The lexicon baseline's label is shown beside it. --embedder takes an exported embedder folder (see
models/export_embedder.py); without it one is exported into a temporary folder first (needs the `build` extra).
This prints labels only; it never fails on them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.inference.embedders import OnnxEmbedder  # noqa: E402
from appliance.inference.sentiment import LexiconSentimentBaseline, load_sentiment  # noqa: E402

# Complaints in neutral words: a support agent reads each as negative.
QUIET_COMPLAINTS = [
    "I have been waiting three weeks and nobody answers",
    "This is the third time I am asking about my refund",
    "I sent the documents twice and I still have no reply",
    "My order was supposed to arrive on Monday. It is Friday now.",
    "I was told someone would call me back yesterday",
    "The money has still not arrived in my account",
    "I have explained this to four different people already",
    "You charged my card twice for the same order",
    "Still no answer to my email from the 3rd of March",
    "The replacement you sent has the same fault as the first one",
    "I cancelled my subscription in January and you took a payment again in February",
    "Your website says the parcel was delivered but I do not have it",
    "I have been on hold for forty minutes",
    "Every time I call I get a different answer",
    "I would like to know why my account was closed without any notice",
]
# For contrast: plain questions (neutral) and openly worded messages.
CONTROLS = [
    ("neutral", "What are your opening hours on Saturday?"),
    ("neutral", "How do I change the address on my account?"),
    ("neutral", "Can I pay by bank transfer?"),
    ("negative", "This is the worst service I have ever had, I am furious"),
    ("positive", "Thank you so much, that was really helpful!"),
]


def default_embedder() -> Path:
    sys.path.insert(0, str(ROOT / "models"))
    from export_embedder import default_source, export_embedder

    out = Path(tempfile.mkdtemp(prefix="sentiment-bench-")) / "all-minilm-l6-v2"
    export_embedder(default_source(), out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embedder", type=Path, help="an exported embedder dir (default: export one now)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    args = parser.parse_args()
    directory = args.embedder or default_embedder()
    model = load_sentiment(OnnxEmbedder(directory, threads=1, name="all-minilm-l6-v2"))
    rows = [("negative", text) for text in QUIET_COMPLAINTS] + CONTROLS
    scores = model.score([text for _, text in rows])
    baseline = LexiconSentimentBaseline().score([text for _, text in rows])
    complaints = scores[: len(QUIET_COMPLAINTS)]
    summary = {
        "model": model.version,
        "quiet_complaints": len(QUIET_COMPLAINTS),
        "labelled_negative": sum(s.label == "negative" for s in complaints),
        "labelled_neutral": sum(s.label == "neutral" for s in complaints),
        "labelled_positive": sum(s.label == "positive" for s in complaints),
        "baseline_negative": sum(s.label == "negative" for s in baseline[: len(QUIET_COMPLAINTS)]),
        "rows": [
            {"expected": e, "text": t, "label": s.label, "score": s.score, "baseline": b.label}
            for (e, t), s, b in zip(rows, scores, baseline, strict=True)
        ],
    }
    if args.json:
        print(json.dumps(summary))
        return
    print(f"{'expected':<9} {'model':<9} {'score':>6}  {'baseline':<9} text")
    for row in summary["rows"]:  # type: ignore[attr-defined]
        print(f"{row['expected']:<9} {row['label']:<9} {row['score']:>6.1f}  {row['baseline']:<9} {row['text']}")
    print(f"quiet complaints labelled negative: {summary['labelled_negative']}/{len(QUIET_COMPLAINTS)} "
          f"(neutral {summary['labelled_neutral']}, positive {summary['labelled_positive']}); "
          f"lexicon baseline: {summary['baseline_negative']}/{len(QUIET_COMPLAINTS)}")  # fmt: skip


if __name__ == "__main__":
    main()
