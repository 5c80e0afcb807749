"""Text to BM25 sparse vectors with the Qdrant engine's own BM25 model (qdrant-edge-py's `Bm25`).

The same vectors go to both backends: the embedded engine and a Qdrant server. A document's
vector holds, per term, the BM25 term-frequency part `tf * (k + 1) / (tf + k * (1 - b + b *
len / avg_len))`; a query's holds 1.0 per distinct term. The inverse document frequency is
applied by the store at query time (the IDF modifier of the sparse vector), over the chunks the
caller may read (see the stores' search), so it always reflects the version being searched.

Terms are English words, lower-cased, stop words removed, stemmed (Snowball), each hashed to a
32-bit index by the engine. The tokenizer settings are part of `name`: a version records it, and
a query is encoded the same way as the version it searches.
"""

from __future__ import annotations

from dataclasses import dataclass

from qdrant_edge import Bm25, Bm25Config

from retrieval.store import SparseVector

LANGUAGE = "english"


@dataclass(frozen=True)
class Bm25Params:
    """BM25's term-frequency saturation `k`, length normalisation `b` and the length (in terms,
    after stop words are removed) that counts as average for a chunk."""

    k: float = 1.2
    b: float = 0.75
    avg_len: float = 80.0


class Bm25Encoder:
    """Documents and queries to sparse vectors; thread-safe (the model holds no state)."""

    def __init__(self, params: Bm25Params | None = None) -> None:
        self.params = params or Bm25Params()
        self._model = Bm25(
            Bm25Config(k=self.params.k, b=self.params.b, avg_len=self.params.avg_len,
                       language=LANGUAGE)
        )

    @property
    def name(self) -> str:
        """How terms are made and weighted; a version built otherwise needs re-encoding."""
        p = self.params
        return f"bm25/{LANGUAGE}/snowball;k={p.k:g},b={p.b:g},avg_len={p.avg_len:g}"

    @property
    def tokenizer_name(self) -> str:
        """How terms are made: what a query must share with the version it searches."""
        return f"bm25/{LANGUAGE}/snowball"

    def encode_document(self, text: str) -> SparseVector:
        vector = self._model.embed_document(text)
        return SparseVector(tuple(vector.indices), tuple(vector.values))

    def encode_query(self, text: str) -> SparseVector:
        vector = self._model.embed_query(text)
        return SparseVector(tuple(vector.indices), tuple(vector.values))
