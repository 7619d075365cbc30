"""Review labels: only the assistant's answers of the reviewer's organisation, a reason for an incorrect verdict,
a new label replacing the old (audited with the previous verdict, never the reason); the review list's filters; the
export for recalibration; and every read and change audited."""

from __future__ import annotations

import json
from typing import Any

import pytest

from appliance.analytics import reviews
from appliance.analytics.reviews import ReviewFilter
from appliance.errors import InvalidValue, NotFound
from appliance.instance import Instance, cli_context
from tests.analytics.analytics_dataset import D1, D2, D3, Dataset, build, review
from tests.conftest import Seed


@pytest.fixture
def data(inst: Instance, seed: Seed, monkeypatch: pytest.MonkeyPatch) -> Dataset:
    return build(inst, seed, monkeypatch)


def _audit(inst: Instance, action: str) -> list[dict[str, Any]]:
    with inst.db.read() as conn:
        rows = conn.execute("SELECT target, details FROM audit_events WHERE action = ? ORDER BY id", (action,))
        return [{"target": r[0], **json.loads(r[1])} for r in rows]


def _labels(inst: Instance) -> list[tuple[int, str, str | None]]:
    with inst.db.read() as conn:
        return [tuple(r) for r in conn.execute("SELECT message_id, verdict, reason FROM answer_reviews ORDER BY id")]


def test_bad_reviews_are_refused_and_change_nothing(inst: Instance, seed: Seed, data: Dataset) -> None:
    ctx, org, me = cli_context(data.org_id), data.org_id, data.reviewer
    answer = data.replies["C1"][0]
    for message_id, verdict, reason, error in (
        (data.customer_messages["C1"][0], "correct", None, InvalidValue),  # the customer's own message
        (answer + 1000, "correct", None, NotFound),
        (answer, "incorrect", None, InvalidValue),
        (answer, "incorrect", "   ", InvalidValue),
        (answer, "incorrect", "x" * 1001, InvalidValue),
        (answer, "fine", None, InvalidValue),
    ):
        with pytest.raises(error):
            reviews.set_review(inst.db, ctx, org, message_id, me, verdict, reason)
    with pytest.raises(NotFound):  # another organisation's answer is not found
        reviews.set_review(inst.db, cli_context(seed.south), seed.south, answer, me, "correct", None)
    with pytest.raises(NotFound):  # nothing to clear
        reviews.clear_review(inst.db, ctx, org, answer)
    assert _labels(inst) == [] and _audit(inst, "answer.reviewed") == []


def test_a_new_label_replaces_the_old_and_both_are_audited(inst: Instance, data: Dataset) -> None:
    ctx, org, answer = cli_context(data.org_id), data.org_id, data.replies["C2"][0]
    reviews.set_review(inst.db, ctx, org, answer, data.reviewer, "correct", None)
    got = reviews.set_review(inst.db, ctx, org, answer, data.reviewer, "incorrect", "  Sunday hours are wrong ")
    assert (got.verdict, got.reason) == ("incorrect", "Sunday hours are wrong")
    assert got.reviewer == "support_manager of north"
    assert _labels(inst) == [(answer, "incorrect", "Sunday hours are wrong")]
    reviews.clear_review(inst.db, ctx, org, answer)
    assert _labels(inst) == []
    assert _audit(inst, "answer.reviewed") == [
        {"target": f"message:{answer}", "message_id": answer, "verdict": "correct", "previous": None},
        {"target": f"message:{answer}", "message_id": answer, "verdict": "incorrect", "previous": "correct"},
    ]
    assert _audit(inst, "answer.review_cleared") == [{"target": f"message:{answer}", "message_id": answer,
                                                      "previous": "incorrect"}]  # fmt: skip


def test_the_review_list_and_its_filters(inst: Instance, data: Dataset) -> None:
    review(inst, data)
    ctx, org = cli_context(data.org_id), data.org_id

    def ids(**wanted: Any) -> list[int]:
        return [item["message_id"] for item in reviews.list_replies(inst.db, ctx, org, ReviewFilter(**wanted))]

    r = {name: replies[0] for name, replies in data.replies.items()}
    everything = ids()
    assert everything == sorted([*r.values(), data.replies["C10"][1]], reverse=True)  # nine replies, newest first
    assert ids(unreviewed=True) == sorted([r["C7"], r["C9"], r["C10"], data.replies["C10"][1]], reverse=True)
    assert ids(verdict="incorrect") == [r["C4"], r["C2"]]
    assert ids(outcome="refused") == [data.replies["C10"][1], r["C5"]]
    assert ids(band="70-84") == [r["C4"]] and ids(band="95-100") == [r["C6"]]
    assert ids(since=D2, until=D2) == [r["C7"], r["C6"], r["C5"]]
    assert ids(since=D3) == [data.replies["C10"][1], r["C10"], r["C9"]]
    assert ids(limit=2) == everything[:2] and ids(limit=2, before=everything[1]) == everything[2:4]
    for bad in ({"band": "high"}, {"outcome": "notice"}, {"verdict": "meh"}, {"unreviewed": True, "verdict": "correct"},
                {"since": D3, "until": D1}, {"limit": 0}):  # fmt: skip
        with pytest.raises(InvalidValue):
            ids(**bad)

    [item] = reviews.list_replies(inst.db, ctx, org, ReviewFilter(verdict="incorrect", band="85-94"))
    assert item["question"] == "When is the clinic open on Sunday?"
    assert item["answer"] == "Answer to: When is the clinic open on Sunday?"
    assert (item["confidence"], item["band"], item["outcome"]) == (88, "85-94", "answered")
    assert item["review"]["verdict"] == "incorrect" and item["review"]["reason"] == "Sunday hours are wrong"
    reads = _audit(inst, "analytics.reviews_read")
    assert reads[-1]["filters"] == {"verdict": "incorrect", "band": "85-94", "unreviewed": False, "limit": 100}
    assert reads[-1]["count"] == 1 and "Sunday" not in json.dumps(reads)


def test_the_export_for_recalibration(inst: Instance, data: Dataset) -> None:
    review(inst, data)
    ctx = cli_context(data.org_id)
    rows = reviews.export_labels(inst.db, ctx, data.org_id)
    assert [(row["message_id"], row["verdict"], row["correct"]) for row in rows] == [
        (data.replies["C1"][0], "correct", 1.0), (data.replies["C2"][0], "incorrect", 0.0),
        (data.replies["C4"][0], "incorrect", 0.0), (data.replies["C5"][0], "correct", 1.0),
        (data.replies["C6"][0], "correct", 1.0),
    ]  # fmt: skip
    c4 = rows[2]
    assert c4["question"] == "Can I pay my bill in instalments?" and c4["query"] == "can i pay my bill in instalments?"
    assert c4["answer"] == "Answer to: Can I pay my bill in instalments?"
    assert (c4["confidence"], c4["mode"], c4["outcome"], c4["threshold"]) == (72, "extractive", "answered", 85)
    assert c4["features"] == {"top_score": 0.72, "margin": 0.1} and c4["provenance"]["confidence"] == 72
    assert (c4["reason"], c4["reviewer_id"], c4["reviewer"]) == ("instalments need a form", data.reviewer,
                                                                 "support_manager of north")  # fmt: skip
    assert c4["answered_at"] == "2030-03-04T11:00:10.000000Z" and c4["reviewed_at"]
    assert len(reviews.export_labels(inst.db, ctx, data.org_id, since=D2, until=D3)) == 2
    assert reviews.export_labels(inst.db, cli_context(data.org_id + 1), data.org_id + 1) == []
    assert [(e["since"], e["until"], e["rows"]) for e in _audit(inst, "analytics.reviews_exported")] == [
        (None, None, 5), ("2030-03-05", "2030-03-06", 2), (None, None, 0)]  # fmt: skip
