"""Text layout that parsers lose: PDF lines rejoined into paragraphs, tables kept as rows.

unstructured reads a PDF's text layer line by line ("fast" strategy): each printed line comes
out as an element of its own, and a line cut mid-sentence is sometimes classed as a Title. A
table comes out as one flattened line, with its structure only in `metadata.text_as_html`.
Both are repaired here, from the elements alone, before sections are assigned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from html.parser import HTMLParser

# A line whose text reaches this share of the longest line on its page ran to the right
# margin: when it also ends without a sentence's punctuation, the next line continues it.
FULL_LINE_SHARE = 0.75
_ENDS_UNIT = re.compile(r"""[.!?:;]["')\]]*$""")
_LIST_START = re.compile(r"^\s*(?:[-*•◦▪\u2013]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s+")
ROW_SEPARATOR = " | "
HEADER_RULE = "---"  # the cell of the line under a header row, as Markdown writes tables


@dataclass(frozen=True)
class RawElement:
    """One element as the parser read it, before sections are assigned."""

    category: str
    text: str
    page: int | None


def rejoin_pdf_lines(elements: list[RawElement]) -> list[RawElement]:
    """Merge each PDF line into the one before it when that line ran to the margin unfinished.

    A line continues the previous one when the previous ended without sentence punctuation
    and was (nearly) as wide as the widest line on its page; a list item never continues one.
    Across a page break the same holds between the last line of a page and the first line of
    the next that is not repeated page furniture (a running header seen on the page before):
    the joined sentence stays on the page where it starts.
    """
    widest: dict[int | None, int] = {}
    for e in elements:
        widest[e.page] = max(widest.get(e.page, 0), max(len(x) for x in e.text.splitlines()))
    headers = _running_headers(elements)
    merged: list[RawElement] = []
    for element in elements:
        target = _continued(merged, element, widest, headers)
        if target is None:
            merged.append(element)
        else:
            merged[target] = replace(merged[target],
                                     text=join_lines(merged[target].text, element.text))
    return merged


def _continued(merged: list[RawElement], element: RawElement,
               widest: dict[int | None, int], headers: set[str]) -> int | None:
    """The index in `merged` of the line that `element` continues, or None."""
    if (element.category in {"ListItem", "Table"} or element.text in headers
            or _LIST_START.match(element.text)):
        return None
    index = len(merged) - 1
    # Running headers at the top of this page stand between a page's last line and the next's.
    while index >= 0 and merged[index].page == element.page and merged[index].text in headers:
        index -= 1
    if index < 0:
        return None
    previous = merged[index]
    if index != len(merged) - 1 and previous.page == element.page:
        return None  # what was skipped is not at the top of the page
    if previous.category == "Table" or _ENDS_UNIT.search(previous.text):
        return None
    last_line = previous.text.splitlines()[-1]
    if len(last_line) < FULL_LINE_SHARE * widest.get(previous.page, 0):
        return None
    return index


def _running_headers(elements: list[RawElement]) -> set[str]:
    """Texts among the first two lines of two or more pages: page furniture, not content."""
    seen: dict[str, set[int | None]] = {}
    by_page: dict[int | None, list[str]] = {}
    for e in elements:
        by_page.setdefault(e.page, []).append(e.text)
    for page, texts in by_page.items():
        for text in texts[:2]:
            seen.setdefault(text, set()).add(page)
    return {text for text, pages in seen.items() if len(pages) >= 2}


def join_lines(first: str, second: str) -> str:
    """Two lines of one sentence as one: a word hyphenated at the line break is kept whole."""
    if first.endswith("-") and second[:1].islower():
        return first + second
    return f"{first} {second}"


def table_rows(html: str) -> list[list[str]]:
    """The rows of an HTML table as lists of cell texts; a header row is followed by a row of
    HEADER_RULE cells, as Markdown marks it."""
    reader = _TableReader()
    reader.feed(html)
    reader.close()
    rows: list[list[str]] = []
    for i, (cells, is_header) in enumerate(reader.rows):
        rows.append(cells)
        if i == 0 and is_header:
            rows.append([HEADER_RULE] * len(cells))
    return rows


def table_text(html: str) -> str | None:
    """The table as text, one line per row, cells joined with ROW_SEPARATOR; None when the
    HTML holds no row with text."""
    rows = [r for r in table_rows(html) if any(c.strip() for c in r)]
    if not rows:
        return None
    return "\n".join(ROW_SEPARATOR.join(cells).strip() for cells in rows)


class _TableReader(HTMLParser):
    """Rows of <tr>, cells of <td>/<th>; whether each row is all <th> (a header row)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[tuple[list[str], bool]] = []
        self._cells: list[str] | None = None
        self._header = True
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self._finish_row()
            self._cells, self._header = [], True
        elif tag in {"td", "th"}:
            self._finish_cell()
            if self._cells is None:
                self._cells, self._header = [], True
            self._cell = []
            self._header = self._header and tag == "th"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in {"td", "th"}:
            self._finish_cell()

    def handle_endtag(self, tag: str) -> None:
        if tag in {"td", "th"}:
            self._finish_cell()
        elif tag in {"tr", "table"}:
            self._finish_row()

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def close(self) -> None:
        super().close()
        self._finish_row()

    def _finish_cell(self) -> None:
        if self._cell is not None and self._cells is not None:
            self._cells.append(" ".join("".join(self._cell).split()).replace("|", "/"))
        self._cell = None

    def _finish_row(self) -> None:
        self._finish_cell()
        if self._cells:
            self.rows.append((self._cells, self._header))
        self._cells = None
