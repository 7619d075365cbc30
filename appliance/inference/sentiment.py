"""Sentiment scoring: the appliance's trained classifier, and a clearly named baseline.

The trained model (`load_sentiment`, built by models/train_sentiment.py from tweeteval_sentiment) is one linear
layer over two feature blocks of the cleaned text: the sentence embedding from the appliance's embedder and hashed
word/character n-grams (the prompt guard's features). It ships inside the package as data/sentiment-v1/:
`head.onnx` (inputs `embedding` float32 (n, dim) and, optionally, `ngram_index` int64 (n, k) with `ngram_value`
float32 (n, k), padded with index 0 / value 0; output `logits` (n, labels)) and `labels.json`. The graph's metadata
names the version, the embedder it was trained on, the text cleaner and the n-gram space. Each file's SHA-256 is
fixed here, next to the code that reads it: a changed file is refused.

`LexiconSentimentBaseline` is a word list, not a model: it misses negation scope, sarcasm and support-style
complaints written in neutral words, and nothing may be called done on it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from appliance.errors import ConfigError, ModelError
from appliance.inference.base import Embedder, Score

LABELS = ("negative", "neutral", "positive")
SENTIMENT_VERSION = "sentiment-v1"
SENTIMENT_DIR = "sentiment-v1"
HEAD_FILE, LABELS_FILE = "head.onnx", "labels.json"
SENTIMENT_SHA256 = {
    HEAD_FILE: "f392211990e101fb4f972bb519cb606ffc93fd0eb9c1b06b735fc39bc701e1e7",
    LABELS_FILE: "22d4a1959b01b4ccceef6be83f9019a61fb8c5794e05c574685bae04d84e9a91",
}

# The cleaner of the training tweets (yzse/nlp-final-tweeteval preprocessing.py), applied to every text the model
# sees: a model trained on cleaned text scores raw text worse. Alternatives are tried left to right at each
# position, so "://" inside a URL goes with the URL; "^rt" runs before lower-casing, so only a lower-case "rt"
# opening the text is cut ("RT" goes later, as a 2-letter word).
_NOISE = re.compile(r"(@[A-Za-z0-9]+)|([^0-9A-Za-z \t])|(\w+:\/\/\S+)|^rt|http.+?")
_DIGITS = re.compile(r"\d+")


def clean_text(text: str) -> str:
    """Remove @mentions, URLs, non-alphanumerics and a leading "rt"; lower-case; remove digits and the substrings
    "user" and "semst"; keep the words of more than 2 characters."""
    text = _DIGITS.sub("", _NOISE.sub("", text).lower()).replace("user", "").replace("semst", "")
    return " ".join(w for w in text.split() if len(w) > 2)


CLEANERS: dict[str, Callable[[str], str]] = {"none": lambda text: text, "yzse": clean_text}


def _softmax(logits: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    out: np.ndarray[Any, Any] = exp / exp.sum(axis=1, keepdims=True)
    return out


def polarity_score(probabilities: Sequence[float], labels: Sequence[str]) -> float:
    """0 = certainly negative, 50 = neutral, 100 = certainly positive: 50 + 50 * (P(pos) - P(neg))."""
    p = dict(zip(labels, probabilities, strict=True))
    return round(50.0 + 50.0 * (p.get("positive", 0.0) - p.get("negative", 0.0)), 2)


def ngram_inputs(texts: Sequence[str], dim: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The hashed n-gram features of each (cleaned) text as padded (n, k) index and value arrays."""
    from appliance.inference.guard import message_features

    features = [message_features(text, dim) for text in texts]
    width = max([1, *(len(index) for index, _ in features)])
    index = np.zeros((len(texts), width), dtype=np.int64)
    value = np.zeros((len(texts), width), dtype=np.float32)
    for row, (i, v) in enumerate(features):
        index[row, : len(i)], value[row, : len(v)] = i, v
    return index, value


class EmbeddingHeadScorer:
    """An ONNX head over an embedder's vectors (and hashed n-grams when the graph takes them). The graph's metadata
    chooses the text cleaner; without it texts are embedded as given."""

    def __init__(
        self, embedder: Embedder, model_dir: Path, threads: int = 1, name: str = "sentiment",
        head: bytes | None = None, sha256: str = "",
    ) -> None:  # fmt: skip
        head_file, labels_file = model_dir / HEAD_FILE, model_dir / LABELS_FILE
        for required in (labels_file,) if head is not None else (head_file, labels_file):
            if not required.is_file():
                raise ConfigError(f"sentiment model: {required} not found")
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._session = onnxruntime.InferenceSession(
                head if head is not None else str(head_file), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises bare Exception subclasses; name the file instead
            raise ModelError(f"sentiment model: cannot load {head_file}: {exc}") from None
        self.meta: dict[str, str] = dict(self._session.get_modelmeta().custom_metadata_map)
        self.labels: list[str] = json.loads(labels_file.read_text("utf-8"))
        inputs = {i.name for i in self._session.get_inputs()}
        self.ngram_dim = int(self.meta.get("ngram_dim", "0")) if "ngram_index" in inputs else 0
        cleaner = self.meta.get("text_cleaner", "none")
        if cleaner not in CLEANERS:
            raise ModelError(f"sentiment model {head_file}: unknown text cleaner {cleaner!r}")
        self.clean = CLEANERS[cleaner]
        self.version = self.meta.get("version", name)
        self.sha256 = sha256
        self.embedder = embedder
        self.name = name

    def score(self, texts: Sequence[str]) -> list[Score]:
        if not texts:
            return []
        cleaned = [self.clean(t) for t in texts]
        feed: dict[str, Any] = {"embedding": self.embedder.embed(cleaned).astype(np.float32)}
        if self.ngram_dim:
            feed["ngram_index"], feed["ngram_value"] = ngram_inputs(cleaned, self.ngram_dim)
        logits = self._session.run(["logits"], feed)[0]
        probabilities = _softmax(np.asarray(logits, dtype=np.float64))
        out = []
        for text, row in zip(cleaned, probabilities, strict=True):
            if not text:  # nothing left once cleaned ("ok", "?"): no evidence either way
                out.append(Score("neutral", 50.0))
            else:
                out.append(Score(self.labels[int(row.argmax())], polarity_score(row.tolist(), self.labels)))
        return out


def model_dir() -> Path:
    from importlib import resources

    return Path(str(resources.files("appliance.inference.data").joinpath(SENTIMENT_DIR)))


def load_sentiment(embedder: Embedder, threads: int = 1, directory: Path | None = None) -> EmbeddingHeadScorer:
    """The shipped sentiment model on `embedder`, its files verified against the digests this release expects.
    Refused (ModelError) when the embedder is not the one the model was trained on."""
    from appliance.inference.guard import verified_bytes

    directory = directory or model_dir()
    head = verified_bytes(directory / HEAD_FILE, SENTIMENT_SHA256[HEAD_FILE])
    verified_bytes(directory / LABELS_FILE, SENTIMENT_SHA256[LABELS_FILE])
    scorer = EmbeddingHeadScorer(
        embedder, directory, threads, SENTIMENT_VERSION, head=head, sha256=SENTIMENT_SHA256[HEAD_FILE]
    )
    wanted, dim = scorer.meta.get("embedder", ""), int(scorer.meta.get("embedding_dim", "0"))
    if embedder.name != wanted or embedder.dim != dim:
        raise ModelError(
            f"sentiment model {scorer.version} was trained on the embedder {wanted} ({dim}-d); "
            f"the configured one is {embedder.name} ({embedder.dim}-d)"
        )
    return scorer


# -- training (models/train_sentiment.py and `appliance eval sentiment --train`; needs the `build` extra) --------

BUILD_HINT = "pip install 'support-appliance[build]' scikit-learn"
OPSET = 17


@dataclass(frozen=True)
class HeadRecipe:
    """A class-balanced multinomial logistic regression over [embedding * embedding_scale, hashed n-grams]: the
    scale sets how much of the shared L2 penalty each block pays, so it weighs the two blocks against each other."""

    c: float = 1.0
    embedding_scale: float = 2.0
    ngram_dim: int = 1 << 17


@dataclass(frozen=True)
class HeadWeights:
    embedding: np.ndarray[Any, Any]  # (dim, labels), the embedding scale folded in
    ngram: np.ndarray[Any, Any]  # (ngram_dim, labels)
    bias: np.ndarray[Any, Any]  # (labels,)


def ngram_matrix(texts: Sequence[str], dim: int) -> Any:
    """The hashed n-gram features of (cleaned) texts as a scipy CSR matrix (n, dim)."""
    from scipy import sparse

    from appliance.inference.guard import message_features

    indptr, cols, vals = [0], [np.zeros(0, dtype=np.int64)], [np.zeros(0)]
    for text in texts:
        index, value = message_features(text, dim)
        indptr.append(indptr[-1] + len(index))
        cols.append(index)
        vals.append(value)
    return sparse.csr_matrix((np.concatenate(vals), np.concatenate(cols), indptr), shape=(len(texts), dim))


def fit_head(embeddings: np.ndarray[Any, Any], ngrams: Any, labels: Sequence[int], recipe: HeadRecipe) -> HeadWeights:
    """Fit the recipe on embeddings of cleaned texts (n, dim), their n-gram matrix and label indices into LABELS."""
    try:
        from scipy import sparse
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise ConfigError(f"training a sentiment head needs scikit-learn: {BUILD_HINT}") from None
    y = np.asarray(labels)
    missing = [LABELS[k] for k in range(len(LABELS)) if not (y == k).any()]
    if missing:
        raise ConfigError(f"training a sentiment head needs examples of every label; none of: {', '.join(missing)}")
    x = sparse.hstack([sparse.csr_matrix(embeddings * recipe.embedding_scale), ngrams]).tocsr()
    model = LogisticRegression(C=recipe.c, max_iter=3000, class_weight="balanced", solver="lbfgs")
    model.fit(x, y)
    coef = model.coef_.T.astype(np.float32)
    dim = embeddings.shape[1]
    return HeadWeights(coef[:dim] * recipe.embedding_scale, coef[dim:], model.intercept_.astype(np.float32))


def write_head(weights: HeadWeights, out_dir: Path, metadata: dict[str, str]) -> None:
    """head.onnx (logits = embedding @ E + sum_k value_k * N[index_k] + b) and labels.json into out_dir."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise ConfigError(f"exporting a sentiment head needs onnx: {BUILD_HINT}") from None
    n_labels = len(LABELS)
    nodes = [
        helper.make_node("Gemm", ["embedding", "E", "b"], ["dense"]),
        helper.make_node("Gather", ["N", "ngram_index"], ["picked"]),  # (n, k, labels)
        helper.make_node("Unsqueeze", ["ngram_value", "axis2"], ["scale"]),  # (n, k, 1)
        helper.make_node("Mul", ["picked", "scale"], ["weighted"]),
        helper.make_node("ReduceSum", ["weighted", "axis1"], ["sparse"], keepdims=0),
        helper.make_node("Add", ["dense", "sparse"], ["logits"]),
    ]
    initialisers = [
        numpy_helper.from_array(weights.embedding.astype(np.float32), "E"),
        numpy_helper.from_array(weights.bias.astype(np.float32), "b"),
        numpy_helper.from_array(weights.ngram.astype(np.float32), "N"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
    ]
    graph = helper.make_graph(
        nodes, "sentiment_head",
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["n", weights.embedding.shape[0]]),
         helper.make_tensor_value_info("ngram_index", TensorProto.INT64, ["n", "k"]),
         helper.make_tensor_value_info("ngram_value", TensorProto.FLOAT, ["n", "k"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", n_labels])],
        initialisers,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="appliance")
    model.ir_version = 8  # readable by every onnxruntime the appliance accepts
    meta = {**metadata, "ngram_dim": str(weights.ngram.shape[0]), "embedding_dim": str(weights.embedding.shape[0])}
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out_dir / HEAD_FILE))
    (out_dir / LABELS_FILE).write_text(json.dumps(list(LABELS)) + "\n", "utf-8")


def train_head(
    embed: Callable[[Sequence[str]], np.ndarray[Any, Any]], texts: Sequence[str], labels: Sequence[int],
    out_dir: Path, recipe: HeadRecipe, metadata: dict[str, str],
) -> None:  # fmt: skip
    """The whole recipe on raw or cleaned texts: clean, embed, fit, export. Texts that clean to nothing are left
    out (the scorer calls them neutral without asking the model)."""
    pairs = [(c, y) for c, y in zip((clean_text(t) for t in texts), labels, strict=True) if c]
    cleaned = [c for c, _ in pairs]
    weights = fit_head(embed(cleaned), ngram_matrix(cleaned, recipe.ngram_dim), [y for _, y in pairs], recipe)
    write_head(weights, out_dir, {"text_cleaner": "yzse", **metadata})


_WORD = re.compile(r"[a-z']+")
_NEGATORS = {"not", "no", "never", "don't", "doesn't", "didn't", "isn't", "wasn't", "can't", "won't", "nobody"}
_POSITIVE = {
    "thanks", "thank", "great", "good", "excellent", "helpful", "perfect", "love", "happy", "appreciate",
    "resolved", "works", "wonderful", "amazing", "fast", "easy", "glad", "pleased",
}  # fmt: skip
_NEGATIVE = {
    "angry", "terrible", "awful", "bad", "worst", "useless", "broken", "hate", "frustrated", "furious", "waiting",
    "ridiculous", "unacceptable", "wrong", "fail", "failed", "failing", "problem", "complaint", "disappointed",
    "never", "scam", "slow", "lost", "stolen", "fraud", "refund", "cancel", "annoyed", "upset",
}  # fmt: skip


class LexiconSentimentBaseline:
    """Word-list polarity with one-word negation. A placeholder, named as one."""

    name = "lexicon-baseline"
    labels = LABELS

    def score(self, texts: Sequence[str]) -> list[Score]:
        out = []
        for text in texts:
            words = _WORD.findall(text.lower())
            total = 0
            for i, word in enumerate(words):
                polarity = (word in _POSITIVE) - (word in _NEGATIVE)
                if polarity and i > 0 and words[i - 1] in _NEGATORS:
                    polarity = -polarity
                total += polarity
            score = max(0.0, min(100.0, 50.0 + 15.0 * total))
            label = "positive" if score > 60 else "negative" if score < 40 else "neutral"
            out.append(Score(label, score))
        return out
