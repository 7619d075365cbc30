"""One installation's knowledge index: the dense indexes, the indexer and the retriever, sharing one embedder that
is loaded on first use. A model that cannot be loaded does not stop indexing or search: both fall back to the
lexical leg, and the failure is logged once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from appliance.errors import ApplianceError
from appliance.inference.base import Embedder
from appliance.retrieval.dense import DenseIndexes
from appliance.retrieval.index import Indexer
from appliance.retrieval.search import FusionConfig, Retriever
from appliance.store import Database

log = logging.getLogger("appliance.retrieval")


class KnowledgeIndex:
    def __init__(
        self, db: Database, directory: Path, key: bytes, embedder_factory: Callable[[], Embedder],
        approximate_above: int, fusion: FusionConfig | None = None,
    ) -> None:  # fmt: skip
        self.db = db
        self.dense = DenseIndexes(db, directory, key, approximate_above)
        self.fusion = fusion or FusionConfig()
        self._factory = embedder_factory
        self._embedder: Embedder | None = None
        self._failed: str | None = None
        self._lock = threading.Lock()

    @property
    def embedder(self) -> Embedder | None:
        with self._lock:
            if self._embedder is None and self._failed is None:
                try:
                    self._embedder = self._factory()
                except ApplianceError as exc:
                    self._failed = exc.message
                    log.warning("embedder unavailable; lexical search only", extra={"fields": {"error": exc.message}})
            return self._embedder

    @property
    def embedder_error(self) -> str | None:
        return self._failed

    @property
    def indexer(self) -> Indexer:
        return Indexer(self.db, self.embedder, self.dense)

    @property
    def retriever(self) -> Retriever:
        return Retriever(self.db, self.embedder, self.dense, self.fusion)
