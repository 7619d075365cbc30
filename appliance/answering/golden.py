"""Golden questions and the publish gate.

Knowledge editors keep golden questions per organisation: a question and the article that must answer it, or "must
refuse". A change to what is published (publish, archive, withdraw) is first applied in a transaction that is
never committed: the organisation's pending changes are indexed there (into a throwaway dense index), every golden
question is answered through the same engine and gate as a chat, and the transaction is rolled back. A question
that passed before the change and fails after it is a regression; regressions block the change, unless an admin
overrides, which is audited. When the change may go ahead it is applied for real and indexed as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

from appliance import audit
from appliance.answering.engine import AnswerEngine
from appliance.audit.events import Context, GoldenQuestionChanged, PublishGateRun
from appliance.errors import Conflict, InvalidValue, NotFound, PublishBlocked
from appliance.knowledge import articles
from appliance.retrieval.service import KnowledgeIndex
from appliance.store import Database, now_iso, unique_violation

MAX_QUESTION_CHARS = 2000
T = TypeVar("T")


@dataclass(frozen=True)
class Golden:
    id: int
    question: str
    expected_article_id: int | None  # None: the assistant must refuse
    created_by: str
    created_at: str


@dataclass(frozen=True)
class GoldenResult:
    golden: Golden
    passed: bool
    outcome: str
    got_article_id: int | None  # the first cited article when answered
    confidence: int

    def public(self) -> dict[str, Any]:
        return {"id": self.golden.id, "question": self.golden.question,
                "expected_article_id": self.golden.expected_article_id, "passed": self.passed,
                "outcome": self.outcome, "got_article_id": self.got_article_id, "confidence": self.confidence}  # fmt: skip


@dataclass(frozen=True)
class GateReport:
    before: list[GoldenResult]
    after: list[GoldenResult]

    @property
    def regressions(self) -> list[GoldenResult]:
        passed_before = {r.golden.id for r in self.before if r.passed}
        return [r for r in self.after if not r.passed and r.golden.id in passed_before]

    @property
    def passed(self) -> bool:
        return not self.regressions

    def public(self) -> dict[str, Any]:
        return {"passed": self.passed, "regressions": [r.public() for r in self.regressions],
                "results": [r.public() for r in self.after]}  # fmt: skip


def _golden(row: Any) -> Golden:
    expected = row["expected_article_id"]
    return Golden(int(row["id"]), str(row["question"]), None if expected is None else int(expected),
                  str(row["created_by"]), str(row["created_at"]))  # fmt: skip


def list_golden(db: Database, org_id: int) -> list[Golden]:
    with db.read() as conn:
        rows = conn.execute("SELECT * FROM golden_questions WHERE org_id = ? ORDER BY id", (org_id,)).fetchall()
    return [_golden(r) for r in rows]


def add_golden(db: Database, ctx: Context, org_id: int, question: str, expected_article_id: int | None) -> Golden:
    question = " ".join(question.split())
    if not question or len(question) > MAX_QUESTION_CHARS:
        raise InvalidValue(f"a golden question needs 1 to {MAX_QUESTION_CHARS} characters")
    try:
        with db.write() as conn:
            if expected_article_id is not None and conn.execute(
                "SELECT 1 FROM articles WHERE id = ? AND org_id = ?", (expected_article_id, org_id)
            ).fetchone() is None:
                raise NotFound(f"article {expected_article_id} not found")
            row_id = conn.execute(
                "INSERT INTO golden_questions (org_id, question, expected_article_id, created_by, created_at)"
                " VALUES (?, ?, ?, ?, ?)", (org_id, question, expected_article_id, ctx.actor, now_iso()),
            ).lastrowid  # fmt: skip
            assert row_id is not None
            audit.record(conn, ctx, GoldenQuestionChanged(int(row_id), "created", expected_article_id))
    except Exception as exc:
        if unique_violation(exc):
            raise Conflict("this golden question already exists") from None
        raise
    return next(g for g in list_golden(db, org_id) if g.id == row_id)


def delete_golden(db: Database, ctx: Context, org_id: int, golden_id: int) -> None:
    with db.write() as conn:
        row = conn.execute(
            "SELECT * FROM golden_questions WHERE id = ? AND org_id = ?", (golden_id, org_id)
        ).fetchone()
        if row is None:
            raise NotFound(f"golden question {golden_id} not found")
        conn.execute("DELETE FROM golden_questions WHERE id = ?", (golden_id,))
        audit.record(conn, ctx, GoldenQuestionChanged(golden_id, "deleted", _golden(row).expected_article_id))


def evaluate(engine: AnswerEngine, org_id: int, questions: list[Golden]) -> list[GoldenResult]:
    out = []
    for g in questions:
        answer = engine.answer(org_id, g.question, use_cache=False)
        got = answer.sources[0].article_id if answer.answered and answer.sources else None
        passed = got is None if g.expected_article_id is None else got == g.expected_article_id
        out.append(GoldenResult(g, passed, answer.outcome, got, answer.confidence))
    return out


class _Staged(Exception):
    """Raised to roll the staging transaction back."""


def check(
    db: Database, live: AnswerEngine, staged: Callable[[], AbstractContextManager[tuple[KnowledgeIndex, AnswerEngine]]],
    org_id: int, change: Callable[[], object],
) -> GateReport:  # fmt: skip
    """The golden questions before and after `change`, which is applied and indexed in a transaction that is then
    rolled back: nothing of it stays."""
    questions = list_golden(db, org_id)
    before = evaluate(live, org_id, questions)
    after: list[GoldenResult] = []
    if not questions:
        return GateReport(before, after)
    with staged() as (knowledge, engine):
        try:
            with db.write():
                change()
                knowledge.indexer.process_pending(org_id)
                after = evaluate(engine, org_id, questions)
                raise _Staged
        except _Staged:
            pass
    return GateReport(before, after)


def gated(
    db: Database, ctx: Context, live: AnswerEngine,
    staged: Callable[[], AbstractContextManager[tuple[KnowledgeIndex, AnswerEngine]]], org_id: int, article_id: int,
    version: int, change: Callable[[], T], override: bool, may_override: bool,
) -> tuple[T, GateReport]:  # fmt: skip
    """Apply `change` (a change to what the organisation publishes) if it breaks no golden question, or if an
    admin overrides; every run that has golden questions to check is audited."""
    report = check(db, live, staged, org_id, change)
    if report.before:
        overridden = not report.passed and override and may_override
        audit.record_alone(db, ctx, PublishGateRun(article_id, version, report.passed, len(report.regressions),
                                                   overridden), "success" if report.passed or overridden else "denied")  # fmt: skip
    if not report.passed and not (override and may_override):
        failed = ", ".join(f"#{r.golden.id}" for r in report.regressions)
        hint = "" if may_override else " (an admin may override)"
        raise PublishBlocked(f"the change breaks golden questions {failed}{hint}", details=report.public())
    return change(), report


def set_status(
    db: Database, ctx: Context, live: AnswerEngine,
    staged: Callable[[], AbstractContextManager[tuple[KnowledgeIndex, AnswerEngine]]], org_id: int, article_id: int,
    status: str, override: bool = False, may_override: bool = False,
) -> tuple[articles.Article, GateReport]:  # fmt: skip
    """Publish, archive or withdraw an article through the golden-question gate."""
    current = articles.get_article(db, org_id, article_id)
    return gated(db, ctx, live, staged, org_id, article_id, current.current_version,
                 lambda: articles.set_status(db, ctx, org_id, article_id, status), override, may_override)  # fmt: skip
