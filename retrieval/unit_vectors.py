"""The embeddings of a chunk's units (retrieval/passages.py), made at ingest and stored with it.

Answering ranks the sentences and table rows of the evidence by their similarity to the
question (answers/extractive.py, answers/answerability.py). Embedding them at question time
costs about 6 ms a unit on 2 cores, 150 ms for the 25 units of five chunks; stored with the
chunk, ranking them is one matrix product.

Stored in the chunk's payload under `unit_vectors` as base64 of float16 rows, one row per unit
of `split_units(text)` in order, each row of the embedder's dimension (float16 keeps the cosine
within about 1e-3 of float32's). A stored value is trusted only as far as it fits: rows that
do not match the text's units or the embedder's dimension are ignored and the units embedded
again, so a version built by another splitter or model still answers, only slower.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

import numpy as np

from retrieval.embedder import Embedder
from retrieval.passages import split_units

_DTYPE = np.dtype("<f2")
# Part of a version's chunking fingerprint (ingest/pipeline.py): chunks of a version built
# without stored unit embeddings, or with another split, are embedded again, not lent.
UNITS_FORMAT = "f16-v1"


def encode_unit_vectors(vectors: np.ndarray) -> str:
    """The stored form of a chunk's unit embeddings (rows of float32)."""
    return base64.b64encode(np.asarray(vectors, dtype=_DTYPE).tobytes()).decode("ascii")


def decode_unit_vectors(stored: str | None, *, units: int, dim: int) -> np.ndarray | None:
    """The stored rows as float32, or None when absent or not `units` rows of `dim`."""
    if not stored or units == 0:
        return None
    try:
        raw = base64.b64decode(stored, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != units * dim * _DTYPE.itemsize:
        return None
    return np.frombuffer(raw, dtype=_DTYPE).astype(np.float32).reshape(units, dim)


def embed_chunk_units(texts: Sequence[str], embedder: Embedder) -> list[str | None]:
    """The stored unit embeddings of each chunk text (None for a text without units), the
    units of all texts embedded in one batch."""
    units = [[u.text for u in split_units(text)] for text in texts]
    flat = [u for chunk in units for u in chunk]
    vectors = embedder.embed_documents(flat)
    out: list[str | None] = []
    start = 0
    for chunk in units:
        rows = vectors[start:start + len(chunk)]
        start += len(chunk)
        out.append(encode_unit_vectors(rows) if chunk else None)
    return out
