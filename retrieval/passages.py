"""A chunk's text as the units an extractive answer quotes: whole sentences and table rows.

Chunk text is the document's blocks joined by blank lines (ingest/chunker.py). Within a block,
a single line break is only where a line was wrapped, so lines are rejoined; a blank line, a
list item or a table row still ends a unit, and a heading (a short block without a sentence's
punctuation) is no evidence. A table row (cells joined by " | ", ingest/layout.py) is quoted
as one unit, its cells named by the table's header row when the chunk holds it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MIN_UNIT_CHARS = 20
_BLOCKS = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"""(?<=[.!?])["')\]]*\s+(?=["'(\[]?[A-Z0-9])""")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•◦▪\u2013]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s+")
_ENDS_SENTENCE = re.compile(r"""[.!?:]["')\]]*$""")
_CELL = " | "
_HEADER_RULE = re.compile(r"^\s*-{3,}(?:\s*\|\s*-{3,})*\s*\|?\s*$")
_HEADING_MAX_WORDS = 8


@dataclass(frozen=True)
class Unit:
    """One quotable piece of a chunk."""

    text: str  # as quoted in the answer
    position: int  # its order in the chunk, from 0
    row: bool = False  # a table row

    @property
    def key(self) -> str:
        """The text as compared for repeats: case and whitespace ignored."""
        return normalise(self.text)


def normalise(text: str) -> str:
    """Lower case, runs of whitespace as one space, no end punctuation."""
    return " ".join(text.lower().split()).rstrip(" .!?;:")


def split_units(text: str) -> list[Unit]:
    """The sentences and table rows of `text`, in reading order, each long enough to quote."""
    pieces: list[tuple[str, bool]] = []
    for block in _BLOCKS.split(text):
        pieces += _block_pieces(block)
    units: list[Unit] = []
    for piece, row in pieces:
        if row or len(piece) >= MIN_UNIT_CHARS:
            units.append(Unit(piece, len(units), row))
    return units


def split_sentences(text: str) -> list[str]:
    """The text of split_units, for callers that need the strings only."""
    return [u.text for u in split_units(text)]


def _block_pieces(block: str) -> list[tuple[str, bool]]:
    lines = [line.strip() for line in block.splitlines() if line.strip()]
    pieces: list[tuple[str, bool]] = []
    prose: list[str] = []
    header: list[str] | None = None

    def flush() -> None:
        if prose:
            pieces.extend((s, False) for s in _sentences(" ".join(prose)))
            prose.clear()

    for i, line in enumerate(lines):
        if _CELL in line or _HEADER_RULE.match(line):
            flush()
            if _HEADER_RULE.match(line):
                continue
            cells = [c.strip() for c in line.split("|")]
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if _HEADER_RULE.match(nxt):
                header = cells
                continue
            pieces.append((_row_text(cells, header), True))
            continue
        if _LIST_ITEM.match(line):
            flush()
        if prose and prose[-1].endswith("-") and line[:1].islower():
            prose[-1] = prose[-1] + line  # a word hyphenated at a wrapped line
        else:
            prose.append(line)
    flush()
    if len(pieces) == 1 and not pieces[0][1] and _is_heading(pieces[0][0]):
        return []
    return pieces


def _sentences(text: str) -> list[str]:
    return [" ".join(s.split()) for s in _SENTENCE_END.split(text) if s.strip()]


def _is_heading(text: str) -> bool:
    return (not _ENDS_SENTENCE.search(text) and ":" not in text
            and len(text.split()) <= _HEADING_MAX_WORDS)


def _row_text(cells: list[str], header: list[str] | None) -> str:
    """A row as a sentence: "Header: cell; ..." when the header fits, else the cells."""
    if header and len(header) == len(cells):
        named = [f"{h}: {c}" if h else c for h, c in zip(header, cells, strict=True) if c]
        return "; ".join(named) + "."
    return _CELL.join(c for c in cells if c)
