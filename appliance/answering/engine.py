"""The answer engine: a customer's question in, a cited answer or a refusal out, with a calibrated confidence and
the record of what produced it.

    question -> prompt-attack check -> small talk (a fixed reply) or urgent (the emergency guidance), before any
                search and whatever the threshold -> follow-up resolved into a standalone query -> cache
             -> hybrid search -> confidence features -> calibrated confidence
             -> below the organisation's threshold: refusal with suggested articles (the caller records a
                knowledge gap and counts a failed attempt)
             -> extractive answer (default), or generative with a capable model, checked sentence by sentence,
                falling back to the extractive answer when too little of it is supported
"""

from __future__ import annotations

import copy
import hashlib
import logging
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from appliance.answering import (
    emergency, extractive, features, followup, recalibration, smalltalk, suggest, templates, urgent,
)  # fmt: skip
from appliance.answering.calibration import Calibration
from appliance.answering.types import Answer, Source, Suggestion
from appliance.errors import ApplianceError, InvalidValue
from appliance.inference.base import Embedder, Generator
from appliance.knowledge import articles
from appliance.retrieval import flags, lexical
from appliance.retrieval.dense import read_state
from appliance.retrieval.index import CHUNK_WORDS
from appliance.retrieval.search import ArticleHit, Retriever, SearchResult
from appliance.store import Database

log = logging.getLogger("appliance.answering")
MAX_QUESTION_CHARS = 2000
SEARCH_K = 5
GENERATIVE_ARTICLES = 3  # articles whose best passages a generated answer may cite
GENERATIVE_PASSAGES = 2  # passages per article
CACHE_SIZE = 2048
ENGINE_VERSION = "answer-engine-v1"
DEFAULT_THRESHOLD = 85


@dataclass(frozen=True)
class ModelInfo:
    name: str
    role: str
    sha256: str  # of the model's main file ("" when unknown)


@dataclass
class EngineParts:
    """What the engine works with; built by the instance from its settings and installed models."""

    db: Database
    retriever: Callable[[], Retriever]
    calibration: Calibration
    embedder: Callable[[], Embedder | None] = lambda: None
    generator: Callable[[], Generator | None] = lambda: None  # only a model validated for answers
    attack_check: Callable[[str], bool] | None = None
    models: Callable[[], list[ModelInfo]] = lambda: []
    guard_version: str = ""
    help_url: Callable[[int, int], str] = lambda org_id, article_id: f"/help/{org_id}/articles/{article_id}"
    threshold: Callable[[int], int] = lambda org_id: DEFAULT_THRESHOLD
    org_settings: Callable[[int], dict[str, Any]] = lambda org_id: {}  # emergency_terms, emergency_article_id


def article_content(db: Database, org_id: int, article_id: int, version: int) -> str:
    return articles.get_version(db, org_id, article_id, version).content


def normalise(question: str) -> str:
    """The cache's form of a question: NFKC, case-folded, single spaces, no trailing punctuation."""
    text = " ".join(unicodedata.normalize("NFKC", question).casefold().split())
    return text.rstrip(" ?!.")


class AnswerEngine:
    def __init__(self, parts: EngineParts) -> None:
        self.parts = parts
        self._cache: OrderedDict[tuple[int, str, str, int, str], Answer] = OrderedDict()
        self._lock = threading.Lock()
        self._warned = False

    # -- the knowledge version an answer depends on: any index run or article change moves it ------------------
    def knowledge_version(self, org_id: int) -> str:
        with self.parts.db.read() as conn:
            state = read_state(conn, org_id)
            row = conn.execute(
                "SELECT count(*), coalesce(max(updated_at), '') FROM articles WHERE org_id = ?", (org_id,)
            ).fetchone()
        return f"{state.generation}:{int(row[0])}:{row[1]}"

    def answer(
        self, org_id: int, question: str, previous: Sequence[str] = (), on_delta: Callable[[str], None] | None = None,
        use_cache: bool = True,
    ) -> Answer:  # fmt: skip
        """Answer one customer question. `previous` holds the standalone queries of the conversation's earlier
        customer questions (oldest first), used to resolve a follow-up."""
        started = time.perf_counter()
        question = " ".join(question.split())
        if not question:
            raise InvalidValue("the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise InvalidValue(f"the question is longer than {MAX_QUESTION_CHARS} characters")
        threshold = self.parts.threshold(org_id)
        if self.parts.attack_check is not None and self.parts.attack_check(question):
            return self._refusal(question, question, threshold, "prompt_attack", "blocked", {}, None, started)
        screened = self.screen(org_id, question, threshold, started)
        if screened is not None:
            return screened
        query = followup.resolve(smalltalk.without_opening(question), previous)
        version = self.knowledge_version(org_id)
        adjustment = self.adjustment(org_id)  # a recalibration changes every confidence: answers cached before go
        key = (org_id, normalise(query), version, threshold, repr(adjustment.public()) if adjustment else "")
        if use_cache:
            with self._lock:
                hit = self._cache.get(key)
                if hit is not None:
                    self._cache.move_to_end(key)
            if hit is not None:
                out = copy.deepcopy(hit)
                out.question, out.cached, out.ms = question, True, (time.perf_counter() - started) * 1000
                return out
        result = self.parts.retriever().search(org_id, query, SEARCH_K)
        answer = self.answer_from(org_id, question, query, result, threshold, on_delta)
        if answer.outcome == "refused":
            self._suggest(org_id, answer, result)
        answer.provenance["knowledge_version"] = version
        answer.ms = (time.perf_counter() - started) * 1000
        if use_cache and answer.mode == "extractive":
            with self._lock:
                self._cache[key] = copy.deepcopy(answer)
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        return answer

    def draft(self, org_id: int, query: str) -> tuple[Answer | None, list[ArticleHit]]:
        """For a person, not a customer: the extractive answer from the best article whatever its confidence (the
        confidence says how far to trust it), and the articles found. (None, []) when nothing matches."""
        query = " ".join(query.split())[:MAX_QUESTION_CHARS]
        if not query:
            return None, []
        result = self.parts.retriever().search(org_id, query, SEARCH_K)
        if not result.articles:
            return None, []
        q = self.question_terms(org_id, query)
        values = features.compute(q, result)
        raw = self.parts.calibration.confidence(values, result.dense_used)
        adjustment = self.adjustment(org_id)
        confidence = adjustment.apply(raw) if adjustment is not None else raw
        threshold = self.parts.threshold(org_id)
        answer = self.extractive(org_id, q, result.articles[0], query, query, threshold, confidence, values, result)
        self._stamp(answer, raw, adjustment)
        return answer, list(result.articles)

    def adjustment(self, org_id: int) -> recalibration.Adjustment | None:
        """The organisation's own recalibration of the shipped confidence, if it has one for this calibration."""
        return recalibration.current(self.parts.org_settings(org_id), self.parts.calibration.version)

    @staticmethod
    def _stamp(answer: Answer, raw: int, adjustment: recalibration.Adjustment | None) -> Answer:
        """Provenance: the shipped calibration's confidence and the organisation's adjustment of it (replay and
        the next recalibration read them)."""
        answer.provenance["calibrated_confidence"] = raw
        if adjustment is not None:
            answer.provenance["adjustment"] = adjustment.public()
        return answer

    def question_terms(self, org_id: int, query: str) -> features.QuestionTerms:
        def frequencies(terms: list[str]) -> tuple[int, dict[str, int]]:
            with self.parts.db.read() as conn:
                return lexical.article_frequencies(conn, org_id, terms)

        return features.QuestionTerms(query, frequencies)

    def answer_from(
        self, org_id: int, question: str, query: str, result: SearchResult, threshold: int,
        on_delta: Callable[[str], None] | None = None,
    ) -> Answer:  # fmt: skip
        """Everything after the search: features, confidence, gate, composition and provenance."""
        started = time.perf_counter()
        q = self.question_terms(org_id, query)
        values = features.compute(q, result)
        calibration = self.parts.calibration
        raw = calibration.confidence(values, result.dense_used) if result.articles else 0
        adjustment = self.adjustment(org_id) if result.articles else None
        confidence = adjustment.apply(raw) if adjustment is not None else raw
        best = result.articles[0] if result.articles else None
        if best is None:
            out = self._refusal(question, query, threshold, "no_match", "refused", values, result, started)
            return self._stamp(out, raw, adjustment)
        if confidence < threshold:
            out = self._refusal(question, query, threshold, "low_confidence", "refused", values, result, started)
            out.confidence = confidence
            return self._stamp(out, raw, adjustment)
        answer = self.extractive(org_id, q, best, question, query, threshold, confidence, values, result)
        self._stamp(answer, raw, adjustment)
        try:
            generator = self.parts.generator()
        except ApplianceError as exc:  # answers stay extractive; the reason is on every answer and logged once
            generator = None
            answer.provenance["generative_unavailable"] = exc.message
            if not self._warned:
                self._warned = True
                log.warning("generative answers unavailable; answering extractively",
                            extra={"fields": {"error": exc.message}})  # fmt: skip
        if generator is not None:
            answer = self._stamp(self._generative(org_id, generator, answer, result, on_delta), raw, adjustment)
        answer.ms = (time.perf_counter() - started) * 1000
        return answer

    def extractive(
        self, org_id: int, q: features.QuestionTerms, best: ArticleHit, question: str, query: str, threshold: int,
        confidence: int, values: dict[str, float], result: SearchResult | None,
    ) -> Answer:  # fmt: skip
        content = article_content(self.parts.db, org_id, best.article_id, best.version)
        evidence = [extractive.Evidence(p.chunk_id, p.start, p.end, p.score) for p in best.passages]
        held = flags.held_spans(self.parts.db, org_id, best.article_id, content, CHUNK_WORDS)
        groups = extractive.select(q, content, evidence, held)
        url = self.parts.help_url(org_id, best.article_id)
        sources = [Source(n, best.article_id, best.version, best.title, url, g.chunk_id, g.start, g.end,
                          content[g.start : g.end]) for n, g in enumerate(groups, start=1)]  # fmt: skip
        answer = Answer("answered", extractive.render(groups), confidence, sources, "extractive", question, query,
                        threshold, features=values)  # fmt: skip
        answer.provenance = self._provenance(answer, result)
        answer.provenance["extractive"] = {
            "article_id": best.article_id, "version": best.version, "title": best.title, "term_weights": q.weights,
            "evidence": [{"chunk_id": e.chunk_id, "start": e.start, "end": e.end, "score": e.score} for e in evidence],
            "held": [list(span) for span in held],
        }  # fmt: skip
        return answer

    def _generative(
        self, org_id: int, generator: Generator, fallback: Answer, result: SearchResult,
        on_delta: Callable[[str], None] | None,
    ) -> Answer:  # fmt: skip
        from appliance.answering import generative

        sources: list[Source] = []
        for hit in result.articles[:GENERATIVE_ARTICLES]:
            for p in hit.passages[:GENERATIVE_PASSAGES]:
                sources.append(Source(len(sources) + 1, p.article_id, p.version, p.title,
                                      self.parts.help_url(org_id, p.article_id), p.chunk_id, p.start, p.end, p.text))  # fmt: skip
        draft = generative.generate(generator, fallback.question, sources, self.parts.embedder(), on_delta=on_delta)
        if not draft.usable:
            fallback.provenance["generative_fallback"] = {
                "model": draft.model, "prompt_version": draft.prompt_version, "finish_reason": draft.finish_reason,
                "reason": draft.reason, "kept": sum(c.kept for c in draft.checks), "sentences": len(draft.checks),
                "sources_sent": list(draft.sources_sent),
            }  # fmt: skip
            return fallback
        used = [s for s in sources if s.number in draft.sources_used]
        renumber = {s.number: i for i, s in enumerate(used, start=1)}
        text = draft.text
        for old, new in sorted(renumber.items()):
            text = text.replace(f"[{old}]", f"[§{new}]")
        text = text.replace("[§", "[")
        cited = [Source(renumber[s.number], s.article_id, s.version, s.title, s.url, s.chunk_id, s.start, s.end, s.text)
                 for s in used]  # fmt: skip
        answer = Answer("answered", text, fallback.confidence, cited, "generative", fallback.question, fallback.query,
                        fallback.threshold, features=fallback.features, checks=list(draft.checks))  # fmt: skip
        answer.provenance = self._provenance(answer, result)
        answer.provenance["generation"] = {
            "model": draft.model, "prompt_version": draft.prompt_version, "prompt_tokens": draft.prompt_tokens,
            "completion_tokens": draft.completion_tokens, "finish_reason": draft.finish_reason, "raw": draft.raw,
            "sources_sent": list(draft.sources_sent),
            "checks": [{"sentence": c.sentence, "cited": list(c.cited), "support": c.support, "kept": c.kept}
                       for c in draft.checks],
        }  # fmt: skip
        return answer

    def _refusal(
        self, question: str, query: str, threshold: int, reason: str, outcome: str, values: dict[str, float],
        result: SearchResult | None, started: float,
    ) -> Answer:  # fmt: skip
        answer = Answer(outcome, templates.text(f"refusal.{reason}"), 0, [], "extractive", question, query,  # type: ignore[arg-type]
                        threshold, reason=reason, features=values)  # fmt: skip
        answer.provenance = self._provenance(answer, result)
        answer.ms = (time.perf_counter() - started) * 1000
        return answer

    def _suggest(self, org_id: int, answer: Answer, result: SearchResult) -> None:
        """A refusal offers the articles that may still help (suggest.suggestions chooses them)."""
        found = suggest.suggestions(result, answer.confidence)
        answer.suggestions = [Suggestion(a.article_id, a.version, a.title, self.parts.help_url(org_id, a.article_id))
                              for a in found]  # fmt: skip
        if answer.suggestions:
            answer.text = f"{answer.text}\n\n{templates.text('refusal.suggestions')}"
            answer.provenance["suggestions"] = [s.public() for s in answer.suggestions]

    def screen(self, org_id: int, question: str, threshold: int | None = None, started: float | None = None,
               small_talk: bool = True) -> Answer | None:  # fmt: skip
        """Before any search: the emergency guidance for an urgent message (whatever the threshold: the gate cannot
        turn it off), a fixed reply for a message that is only small talk; None for a question."""
        started = time.perf_counter() if started is None else started
        threshold = self.parts.threshold(org_id) if threshold is None else threshold
        question = " ".join(question.split())
        settings = self.parts.org_settings(org_id)
        terms = settings.get("emergency_terms")
        found = urgent.detect(question, terms if isinstance(terms, list) else ())
        if found is not None:
            wanted = settings.get("emergency_article_id")
            guidance = emergency.guidance(self.parts.db, org_id, wanted if isinstance(wanted, int) else None)
            handover = templates.text("urgent.handover")
            if guidance is None:
                answer = Answer("urgent", f"{templates.text('urgent.no_article')} {handover}", 100, [], "template",
                                question, question, threshold, reason="urgent")  # fmt: skip
            else:
                answer = Answer("urgent", f"{templates.text('urgent.lead')}\n\n{guidance.text} [1]\n\n{handover}", 100,
                                [emergency.source(guidance, self.parts.help_url, org_id)], "extractive", question,
                                question, threshold, reason="urgent")  # fmt: skip
            answer.provenance = self._provenance(answer, None)
            answer.provenance["urgent"] = {"phrase": found.phrase, "always": found.always,
                                           "article_id": guidance.article_id if guidance else None}  # fmt: skip
        elif small_talk and (kind := smalltalk.detect(question)) is not None:
            answer = Answer("smalltalk", templates.text(f"smalltalk.{kind}"), 100, [], "template", question, question,
                            threshold, reason=kind)  # fmt: skip
            answer.provenance = self._provenance(answer, None)
        else:
            return None
        answer.ms = (time.perf_counter() - started) * 1000
        return answer

    def _provenance(self, answer: Answer, result: SearchResult | None) -> dict[str, Any]:
        calibration = self.parts.calibration
        best = result.articles[0] if result is not None and result.articles else None
        return {
            "engine": ENGINE_VERSION,
            "mode": answer.mode,
            "query": answer.query,
            "articles": [{"article_id": s.article_id, "version": s.version} for s in answer.sources],
            "chunks": [s.chunk_id for s in answer.sources],
            "passages": [{"number": s.number, "chunk_id": s.chunk_id, "article_id": s.article_id,
                          "version": s.version, "start": s.start, "end": s.end,
                          "sha256": hashlib.sha256(s.text.encode()).hexdigest()} for s in answer.sources],  # fmt: skip
            "retrieved": [{"article_id": a.article_id, "version": a.version, "score": round(a.score, 6)}
                          for a in (result.articles if result is not None else [])],  # fmt: skip
            "best": {"article_id": best.article_id, "version": best.version, "score": best.score} if best else None,
            "dense_used": bool(result.dense_used) if result is not None else False,
            "models": [{"name": m.name, "role": m.role, "sha256": m.sha256} for m in self.parts.models()],
            "template_version": templates.TEMPLATE_VERSION,
            "calibration": {"version": calibration.version, "sha256": calibration.sha256},
            "guard_version": self.parts.guard_version,
            "threshold": answer.threshold,
            "confidence": answer.confidence,
            "features": dict(answer.features),
        }
