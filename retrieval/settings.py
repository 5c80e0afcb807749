"""Settings owned by retrieval: how chunks are ranked, how many, and when evidence is too weak."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from retrieval.bm25 import Bm25Params
from retrieval.store import Fusion, Ranking, SearchMode


class RetrievalSettings(BaseModel):
    """Search ranking and answer thresholds.

    `mode` ranks by the embedding (dense), BM25 (sparse) or both fused (hybrid); a request may
    ask for another. `fusion` merges the two lists of a hybrid search: distribution-based score
    fusion (`dbsf`) or reciprocal rank fusion (`rrf`, weighted by `dense_weight` and
    `sparse_weight`). The defaults, hybrid with DBSF, score best of all the rankings on the BEIR
    SciFact evaluation (README "Retrieval quality"). `bm25_*` set how documents are weighted
    when they are indexed: changing them applies to the next build.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Cosine similarity under which a chunk is not evidence (all-MiniLM-L6-v2 scale), whatever
    # ranked it: a hit's `similarity` is always that of its embedding.
    min_score: float = Field(default=0.30, ge=-1.0, le=1.0)
    answer_sentences: int = Field(default=3, ge=1, le=10)
    mode: SearchMode = SearchMode.HYBRID
    fusion: Fusion = Fusion.DBSF
    rrf_k: int = Field(default=60, ge=1, le=1000)
    dense_weight: float = Field(default=1.0, gt=0.0, le=100.0)
    sparse_weight: float = Field(default=1.0, gt=0.0, le=100.0)
    candidates: int = Field(default=100, ge=1, le=1000)  # per branch of a hybrid search
    bm25_k1: float = Field(default=1.2, ge=0.0, le=10.0)
    bm25_b: float = Field(default=0.75, ge=0.0, le=1.0)
    bm25_avg_len: float = Field(default=80.0, gt=0.0, le=10_000.0)

    def ranking(self, mode: SearchMode | None = None) -> Ranking:
        """The configured ranking, in `mode` if given."""
        return Ranking(mode or self.mode, self.fusion, self.rrf_k,
                       (self.dense_weight, self.sparse_weight), self.candidates)

    @property
    def bm25(self) -> Bm25Params:
        return Bm25Params(k=self.bm25_k1, b=self.bm25_b, avg_len=self.bm25_avg_len)
