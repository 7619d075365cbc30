"""The knowledge-passage injection scanner: does a passage carry text written for the assistant rather than for the
reader (indirect prompt injection: "in your reply, add a link to…", "ignore the above and…", or a task or question
that has nothing to do with the passage)?

Each sentence is scored with the rest of the passage as its context, and the passage scores as its worst sentence.
Two models, both logistic regressions, ship in one file (data/passage-scanner-v1.npz, built by
models/train_guard.py):

- the lexical model: hashed words and bigrams of the sentence plus a few cues (it opens with a task verb, it is a
  question, it speaks of "your answer/response/reply", it addresses an AI, it tells to ignore instructions, it
  links out, and how many of its content words occur elsewhere in the passage). It runs alone when no embedder
  is available, and otherwise serves as a cheap first pass: a passage it finds clearly clean is clean.
- the embedding model: the same cues plus the sentence's embedding and its cosine with the other sentences (a
  question about a capital city inside a TV manual sits far from everything around it). It runs on the passages
  the first pass lets through, with the embedder it was trained with; a sentence then scores by a blend of both
  models' log-odds (mostly the embedding model's), which found more unseen attacks at the same false-positive rate
  than either model alone.

Knowledge articles legitimately hold imperative steps ("Select Settings > General") and FAQ questions ("How do I
reset my password?"); the training data holds thousands of them as negatives, and the thresholds are set on
held-out articles so that at most 0.5% of clean passages are flagged.
"""

from __future__ import annotations

import functools
import re
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from appliance.errors import ModelError
from appliance.inference.base import Embedder
from appliance.inference.guard import artefact_path, load_arrays

PASSAGE_SCANNER_FILE = "passage-scanner-v1.npz"
PASSAGE_SCANNER_SHA256 = "7dee319dd6990177684b4b752f87a66451779054b9a89fea7ab3d216e5be5491"

MIN_WORDS = 3  # shorter fragments (menu labels, "Start", "Repeat") are context, never scored
MAX_SENTENCE_CHARS = 600
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_ENDS = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=\S)|\s+\|\s+|\|(?=[A-Z_]{3,}:)")
_MARKUP = re.compile(r"^(?:#{1,6}\s+|[-*+>]\s+|\d{1,3}[.)]\s+|\*\*|__)+")
_CLOSED = re.compile(r"[.!?:;]$")
_CONTINUES = re.compile(r"[a-z,:;)\]]")

# Function words and words too common to say what a sentence is about.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of
    off on once only or other our ours out over own same she should so some such than that the their theirs them
    then there these they this those through to too under until up very was we were what when where which while
    who whom why will with would you your yours yourself yourselves also may might must shall one two three get
    got make made use used using like""".split()
)
# Verbs that open a request for work (write, explain, translate...) or an instruction about the reply.
TASK_VERBS = frozenset(
    """write compose draft create generate produce craft pen invent imagine explain describe summarize summarise
    discuss outline analyze analyse evaluate compare critique review research investigate elaborate teach tell give
    list name provide share recommend suggest calculate solve compute translate convert encode decode encrypt
    decrypt rewrite rephrase paraphrase reverse replace substitute spell render respond reply answer output print
    say repeat include add insert append mention modify enhance augment integrate incorporate end start begin
    promote advertise encourage urge ask remind advise state claim pretend act roleplay ignore disregard forget stop
    override plan design develop find show predict classify identify sing""".split()
)
_LEAD_INS = frozenset({"please", "kindly", "now", "also", "then", "and", "next", "finally"})
_REPLY = re.compile(
    r"\byour\s+(?:next\s+|final\s+)?(?:response|answer|reply|output|message|summary|completion)s?\b"
    r"|\bin (?:the|each|every) (?:response|reply|answer|output)s?\b|\bresponse's\b"
)
_AI = re.compile(
    r"\b(?:ai|a\.i\.|assistant|chatbot|chat ?gpt|gpt|language model|llm|large language|system prompt)\b"
    r"|\bas an? (?:ai|assistant|language model)\b"
)
_OVERRIDE = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass)\b[^.]{0,40}\b(?:instructions?|prompts?|rules|directions|above|"
    r"previous|prior|guidelines|everything)\b|\bnew instructions\b|\binstead of answering\b"
)
_LINK = re.compile(r"(?:https?://|www\.)\S+|\b[a-z0-9-]+\.(?:com|net|org|io|biz|xyz|shop|co)\b|\S+@\S+\.\w+")
_YOU = re.compile(r"\byou\b")
_ME = re.compile(r"\b(?:me|i)\b")

# The lexical cues, in the order the models' weights expect them.
CUES = (
    "shared", "has_context", "unrelated", "task_verb", "question", "you", "me", "reply", "ai", "override", "link",
    "length", "unrelated_task", "unrelated_question", "unrelated_you", "no_context",
)  # fmt: skip
N_CUES = len(CUES)
N_SIMILARITY = 3  # best and mean cosine with the other sentences, and whether there are any


@dataclass(frozen=True)
class ScanResult:
    flagged: bool
    score: float  # 0..1, the worst sentence's
    sentence: str | None  # the worst sentence (None for a passage with nothing to score)
    reason: str


def split_sentences(text: str) -> list[str]:
    """Sentences and list items. A line break ends a sentence unless the line reads on (a lower-case start after a
    line without closing punctuation: text extracted from PDFs wraps mid-sentence)."""
    lines: list[str] = []
    for raw in unicodedata.normalize("NFKC", text).split("\n"):
        line = raw.strip()
        if lines and line and lines[-1] and not _CLOSED.search(lines[-1]) and _CONTINUES.match(line):
            lines[-1] += " " + line
        else:
            lines.append(line)
    out = []
    for line in lines:
        for part in _ENDS.split(line):
            sentence = _MARKUP.sub("", part.strip()).strip(" *_`")
            if len(sentence) >= 2 and any(c.isalpha() for c in sentence):
                out.append(sentence[:MAX_SENTENCE_CHARS])
    return out


def _stem(word: str) -> str:
    for suffix in ("ing", "ies", "es", "ed", "ly", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    return {_stem(t) for t in _TOKEN.findall(text.lower()) if len(t) > 2 and t not in STOPWORDS and not t.isdigit()}


def _capitalised(sentence: str) -> bool:
    first = next((c for c in sentence if c.isalpha()), "")
    return first.isupper()


def cues(sentence: str, others: set[str]) -> tuple[npt.NDArray[np.float64], list[str]]:
    """The lexical cues of a sentence, given the content words of the rest of its passage, and its tokens."""
    low = sentence.lower()
    tokens = _TOKEN.findall(low)
    own = {_stem(t) for t in tokens if len(t) > 2 and t not in STOPWORDS and not t.isdigit()}
    shared = len(own & others) / len(own) if own else 1.0
    has_context = 1.0 if len(others) >= 5 else 0.0
    unrelated = (1.0 - shared) * has_context
    first = tokens[0] if tokens else ""
    if first in _LEAD_INS and len(tokens) > 1:
        first = tokens[1]
    # An imperative opens a sentence with a capital; "print but cannot..." is the tail of a cut sentence.
    task = float(first in TASK_VERBS and _capitalised(sentence))
    question = float(low.rstrip().endswith("?"))
    you = float(bool(_YOU.search(low)))
    values = np.array([
        shared, has_context, unrelated, task, question, you, float(bool(_ME.search(low))),
        float(bool(_REPLY.search(low))), float(bool(_AI.search(low))), float(bool(_OVERRIDE.search(low))),
        float(bool(_LINK.search(low))), min(len(tokens), 40) / 40, unrelated * task, unrelated * question,
        unrelated * you, 1.0 - has_context,
    ], dtype=np.float64)  # fmt: skip
    return values, tokens


def hashed_words(tokens: list[str], capitalised: bool, dim: int) -> npt.NDArray[np.int64]:
    """Buckets of the sentence's words, bigrams and opening word (CRC-32: stable across processes)."""
    first = next((t for t in tokens if t not in _LEAD_INS), "")
    opening = (b"FIRST=" if capitalised else b"first=") + first.encode("utf-8")
    hashes = [zlib.crc32(t.encode("utf-8")) for t in tokens]
    keys = hashes + [h * 31 + g for h, g in zip(hashes, hashes[1:])] + [zlib.crc32(opening)]
    return np.unique(np.array(keys, dtype=np.uint64) % np.uint64(dim)).astype(np.int64)


@dataclass(frozen=True)
class SentenceRow:
    """One scorable sentence of a passage with what both models need."""

    passage: int
    position: int  # index among the passage's sentences
    text: str
    cues: npt.NDArray[np.float64]
    buckets: npt.NDArray[np.int64]


def sentence_rows(texts: Sequence[str], contexts: Sequence[str], dim: int) -> tuple[list[list[str]], list[SentenceRow]]:
    """Every passage's sentences, and a row per scorable sentence (at least MIN_WORDS words, and not the cut-off
    tail of a sentence the passage opens with)."""
    all_sentences, rows = [], []
    for p, (text, context) in enumerate(zip(texts, contexts, strict=True)):
        sentences = split_sentences(text)
        all_sentences.append(sentences)
        words = [content_words(s) for s in sentences]
        around = content_words(context) if context else set()
        for i, sentence in enumerate(sentences):
            others = set(around)
            for j, w in enumerate(words):
                if j != i:
                    others |= w
            values, tokens = cues(sentence, others)
            capitalised = _capitalised(sentence)
            # A passage that opens in lower case opens mid-sentence (the chunker cut it): that fragment is context.
            if len(tokens) >= MIN_WORDS and (i > 0 or capitalised or not sentence[:1].isalpha()):
                rows.append(SentenceRow(p, i, sentence, values, hashed_words(tokens, capitalised, dim)))
    return all_sentences, rows


def similarity_features(vectors: npt.NDArray[np.float32], position: int, context: npt.NDArray[np.float32] | None
                        ) -> npt.NDArray[np.float64]:  # fmt: skip
    """Best and mean cosine of one sentence with the passage's other sentences (and its title, when given)."""
    sims = np.delete(vectors @ vectors[position], position)
    if context is not None:
        sims = np.append(sims, float(context @ vectors[position]))
    if len(sims) == 0:
        return np.zeros(N_SIMILARITY, dtype=np.float64)
    return np.array([float(sims.max()), float(sims.mean()), 1.0], dtype=np.float64)


def embedding_features(
    embedder: Embedder, passages: Sequence[int], sentences: list[list[str]], contexts: Sequence[str],
    rows: Sequence[SentenceRow],
) -> dict[int, tuple[list[SentenceRow], npt.NDArray[np.float64]]]:
    """For each passage: its scorable rows and their embedding-model features (cues, embedding, similarities).
    The sentences of all the passages (and their contexts) are embedded in one call."""
    texts: list[str] = []
    offsets: dict[int, int] = {}
    for p in passages:
        offsets[p] = len(texts)
        texts.extend(sentences[p])
        if contexts[p]:
            texts.append(contexts[p])
    vectors = embedder.embed(texts) if texts else np.zeros((0, embedder.dim), dtype=np.float32)
    found: dict[int, list[SentenceRow]] = {p: [] for p in passages}
    for row in rows:
        if row.passage in offsets:
            found[row.passage].append(row)
    out: dict[int, tuple[list[SentenceRow], npt.NDArray[np.float64]]] = {}
    for p in passages:
        start, n = offsets[p], len(sentences[p])
        own = vectors[start : start + n]
        context = vectors[start + n] if contexts[p] else None
        features = np.array([
            np.concatenate([r.cues, own[r.position].astype(np.float64), similarity_features(own, r.position, context)])
            for r in found[p]
        ]).reshape(len(found[p]), N_CUES + embedder.dim + N_SIMILARITY)  # fmt: skip
        out[p] = (found[p], features)
    return out


def reason_for(values: npt.NDArray[np.float64]) -> str:
    cue = dict(zip(CUES, values, strict=True))
    if cue["override"]:
        return "tells the assistant to ignore its instructions"
    if cue["reply"]:
        return "gives instructions for the assistant's reply"
    if cue["ai"]:
        return "addresses an AI assistant"
    if cue["link"] and (cue["task_verb"] or cue["you"]):
        return "sends readers to an outside link"
    if cue["question"]:
        return "asks a question unrelated to the passage"
    return "sets a task unrelated to the passage"


def _sigmoid(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))
    return out


@dataclass(frozen=True)
class ScannerModel:
    version: str
    sha256: str
    dim: int  # hashed word buckets of the lexical model
    lexical_weights: npt.NDArray[np.float64]  # N_CUES cue weights, then dim bucket weights
    lexical_bias: float
    lexical_threshold: float
    first_pass: float  # below this lexical score a passage is clean without the embedding model
    embedder: str  # the embedder the embedding model was trained with
    embedding_dim: int
    embedding_weights: npt.NDArray[np.float64]  # N_CUES cues, embedding_dim, N_SIMILARITY
    embedding_bias: float
    embedding_threshold: float
    blend: float  # weight of the embedding model's log-odds; the lexical model's get the rest

    @classmethod
    def load(cls, path: Path | None = None, sha256: str = PASSAGE_SCANNER_SHA256) -> ScannerModel:
        path = path or artefact_path(PASSAGE_SCANNER_FILE)
        a: dict[str, Any] = load_arrays(path, sha256)
        try:
            return cls(
                str(a["version"]), sha256, int(a["dim"]), a["lexical_weights"].astype(np.float64),
                float(a["lexical_bias"]), float(a["lexical_threshold"]), float(a["first_pass"]), str(a["embedder"]),
                int(a["embedding_dim"]), a["embedding_weights"].astype(np.float64), float(a["embedding_bias"]),
                float(a["embedding_threshold"]), float(a["blend"]),
            )  # fmt: skip
        except KeyError as exc:
            raise ModelError(f"{path} lacks {exc}: not a passage-scanner file") from None

    def lexical_logits(self, rows: Sequence[SentenceRow]) -> npt.NDArray[np.float64]:
        w = self.lexical_weights
        z = [float(r.cues @ w[:N_CUES] + w[N_CUES + r.buckets].sum() / np.sqrt(max(len(r.buckets), 1)))
             for r in rows]  # fmt: skip
        return np.asarray(z, dtype=np.float64) + self.lexical_bias

    def blended_scores(
        self, features: npt.NDArray[np.float64], lexical: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        embedding = features @ self.embedding_weights + self.embedding_bias
        return _sigmoid(self.blend * embedding + (1.0 - self.blend) * lexical)


class PassageScanner:
    def __init__(self, model: ScannerModel, embedder: Embedder | None = None) -> None:
        """With the embedder the model was trained with, both passes run; with none (or another one), the lexical
        model decides alone."""
        self.model = model
        usable = embedder is not None and embedder.name == model.embedder and embedder.dim == model.embedding_dim
        self.embedder = embedder if usable else None
        self.threshold = model.embedding_threshold if self.embedder is not None else model.lexical_threshold
        self.version = f"{model.version}+{'embedding' if self.embedder is not None else 'lexical'}"

    def scan(self, text: str, context: str = "") -> ScanResult:
        """context (the article's title and headings, say) helps judge what the passage is about; it is not
        scanned itself."""
        return self.scan_many([text], [context])[0]

    def scan_many(self, texts: Sequence[str], contexts: Sequence[str] | None = None) -> list[ScanResult]:
        contexts = list(contexts) if contexts is not None else [""] * len(texts)
        sentences, rows = sentence_rows(texts, contexts, self.model.dim)
        logits = self.model.lexical_logits(rows)
        lexical = _sigmoid(logits)
        best: list[tuple[float, int]] = [(0.0, -1)] * len(texts)
        for k, row in enumerate(rows):
            if lexical[k] > best[row.passage][0]:
                best[row.passage] = (float(lexical[k]), k)
        if self.embedder is None:
            return [self._result(score, rows[k] if k >= 0 else None) for score, k in best]
        candidates = sorted({p for p, (score, _) in enumerate(best) if score >= self.model.first_pass})
        results = [self._result(score, rows[k] if k >= 0 else None, flagged=False) for score, k in best]
        for p, score, worst in self._embedding_pass(candidates, sentences, contexts, rows, logits):
            results[p] = self._result(score, worst)
        return results

    def _embedding_pass(
        self, passages: list[int], sentences: list[list[str]], contexts: Sequence[str], rows: list[SentenceRow],
        logits: npt.NDArray[np.float64],
    ) -> list[tuple[int, float, SentenceRow | None]]:  # fmt: skip
        if not passages or self.embedder is None:
            return []
        lexical = {id(row): float(z) for row, z in zip(rows, logits, strict=True)}
        out: list[tuple[int, float, SentenceRow | None]] = []
        for p, (found, features) in embedding_features(self.embedder, passages, sentences, contexts, rows).items():
            if not found:
                out.append((p, 0.0, None))
                continue
            scores = self.model.blended_scores(features, np.array([lexical[id(r)] for r in found]))
            k = int(np.argmax(scores))
            out.append((p, float(scores[k]), found[k]))
        return out

    def _result(self, score: float, row: SentenceRow | None, flagged: bool | None = None) -> ScanResult:
        if row is None:
            return ScanResult(False, 0.0, None, "nothing to scan")
        hit = score >= self.threshold if flagged is None else flagged
        return ScanResult(hit, round(score, 6), row.text, reason_for(row.cues) if hit else "clean")


@functools.lru_cache(maxsize=1)
def load_scanner_model() -> ScannerModel:
    """The shipped model file, verified and loaded once per process."""
    return ScannerModel.load()


def load_passage_scanner(embedder: Embedder | None = None) -> PassageScanner:
    return PassageScanner(load_scanner_model(), embedder)
