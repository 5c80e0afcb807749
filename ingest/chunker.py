"""Split a parsed document into token-bounded chunks; the only importer of llama_index."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby
from typing import TYPE_CHECKING

from ingest.layout import HEADER_RULE
from ingest.parser import ParsedDocument

if TYPE_CHECKING:
    from llama_index.core.node_parser import SentenceSplitter

# Text -> tokens. Pass the embedder's own tokenizer to bound chunks in its units.
Tokenizer = Callable[[str], Sequence[object]]


@dataclass(frozen=True)
class TextChunk:
    """A piece of one document, small enough to embed whole."""

    index: int  # 0-based position in the document
    text: str
    page: int | None
    section: str | None


def chunk_document(
    doc: ParsedDocument,
    *,
    chunk_size: int = 200,
    chunk_overlap: int = 30,
    tokenizer: Tokenizer | None = None,
) -> list[TextChunk]:
    """Split `doc` into chunks of at most `chunk_size` tokens that never straddle a page or section.

    Tokens are counted with `tokenizer`, or llama-index's default (tiktoken cl100k_base) when None.
    cl100k tokens undercount all-MiniLM-L6-v2's word pieces: 200 of them stayed under 256 word
    pieces on prose, but not on identifier- or URL-heavy text; pass the embedder's tokenizer
    where the 256 limit must hold for any text.
    """
    splitter = _splitter(chunk_size, chunk_overlap, tokenizer)
    count = _counter(tokenizer)
    chunks: list[TextChunk] = []
    for (page, section), group in groupby(doc.elements, key=lambda e: (e.page, e.section)):
        pieces: list[str] = []
        prose: list[str] = []
        for element in group:
            if element.table and len(count(element.text)) > chunk_size:
                # Split between rows, the header on every piece, and never overlapped.
                pieces += splitter.split_text("\n\n".join(prose)) if prose else []
                pieces += table_pieces(element.text, chunk_size, count)
                prose = []
            else:
                prose.append(element.text)
        pieces += splitter.split_text("\n\n".join(prose)) if prose else []
        for piece in pieces:
            piece = piece.strip()
            if piece:
                chunks.append(TextChunk(len(chunks), piece, page, section))
    return chunks


def table_pieces(text: str, chunk_size: int, count: Tokenizer) -> list[str]:
    """A table's rows in pieces of at most about `chunk_size` tokens, each piece headed by the
    table's header row (when it has one), so that no piece is split inside a row or loses
    what its columns mean."""
    lines = text.splitlines()
    header = lines[:2] if len(lines) > 1 and lines[1].startswith(HEADER_RULE) else []
    budget = chunk_size - len(count("\n".join(header)))
    pieces: list[list[str]] = [[]]
    used = 0
    for row in lines[len(header):]:
        size = len(count(row)) + 1
        if pieces[-1] and used + size > budget:
            pieces.append([])
            used = 0
        pieces[-1].append(row)
        used += size
    return ["\n".join([*header, *rows]) for rows in pieces if rows]


def _counter(tokenizer: Tokenizer | None) -> Tokenizer:
    if tokenizer is not None:
        return tokenizer
    from llama_index.core.utils import get_tokenizer

    return get_tokenizer()


@lru_cache(maxsize=16)
def _splitter(chunk_size: int, chunk_overlap: int, tokenizer: Tokenizer | None) -> SentenceSplitter:
    # Imported here: llama_index takes about 1 s to import. It splits offline: the tiktoken and
    # NLTK punkt data it needs ship inside llama-index-core (llama_index/core/_static).
    from llama_index.core.node_parser import SentenceSplitter

    return SentenceSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap, tokenizer=tokenizer)
