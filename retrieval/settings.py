"""Settings owned by retrieval: how many results, and when evidence is too weak to answer."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RetrievalSettings(BaseModel):
    """Search and answer thresholds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Cosine similarity under which a chunk is not evidence (all-MiniLM-L6-v2 scale).
    min_score: float = Field(default=0.30, ge=-1.0, le=1.0)
    answer_sentences: int = Field(default=3, ge=1, le=10)
