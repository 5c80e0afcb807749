"""The bytes of a text file (.txt, .md, .html) as text, in a declared or detected encoding.

In order: a byte-order mark; for HTML, the charset its <meta> declares; strict UTF-8; the
encoding charset-normalizer detects, taken only when it is confident. A file that none of
these decodes is refused rather than indexed as mojibake, and so is binary content under a
text suffix (a known magic number, NUL bytes, control characters).
"""

from __future__ import annotations

import codecs
import re

from ingest.errors import ParseError

_BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF"),
    (b"PK\x03\x04", "a zip archive, e.g. a DOCX"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an OLE file, e.g. a .doc or .xls"),
    (b"\x1f\x8b", "gzip data"),
    (b"\x7fELF", "an executable"),
)
# The HTML prescan reads the first 1024 bytes; a little more costs nothing.
_META_CHARSET = re.compile(rb"""<meta[^>]{0,512}?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]{1,40})""",
                           re.IGNORECASE)
# What browsers read instead of some declared labels (WHATWG Encoding): latin-1 and ASCII
# pages are windows-1252, and a <meta> cannot declare UTF-16 (the bytes it is in are ASCII).
_HTML_LABELS = {"iso8859-1": "cp1252", "latin-1": "cp1252", "ascii": "cp1252",
                "utf-16": "utf-8", "utf-16-le": "utf-8", "utf-16-be": "utf-8"}
# A multi-byte UTF-8 sequence: a file with these and invalid bytes is damaged UTF-8, which a
# detector would "decode" as mojibake in some legacy code page.
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
_NON_ASCII = bytes(range(0x80, 0x100))
# Without a BOM these are not told apart from binary by a detector, only guessed.
_NO_BOM_UNICODE = ["utf_16", "utf_16_be", "utf_16_le", "utf_32", "utf_32_be", "utf_32_le", "utf_7"]
_MAX_CHAOS = 10.0  # charset-normalizer's mess ratio, percent: above it the guess is not text
_MIN_COHERENCE = 10.0  # its language fit, percent: short snippets score 0 in any code page
_NEAR_CHAOS, _NEAR_COHERENCE = 2.0, 5.0  # how close to the best guess counts as a tie
# Control characters (Unicode category Cc) other than tab, line and page breaks and escape.
_CONTROL = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f-\x9f]")
UNDECODABLE = "not valid UTF-8 and no encoding could be detected"


def decode_text(raw: bytes, name: str, *, html: bool = False) -> str:
    """`raw` as text; ParseError naming `name` if it is binary or cannot be decoded."""
    text = _decode(raw, name, html)
    controls = len(_CONTROL.findall(text))
    if controls > max(8, len(text) // 100):
        raise ParseError(f"{name}: binary content ({controls} control characters) under a "
                         "text file's name")
    return text


def _decode(raw: bytes, name: str, html: bool) -> str:
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError as exc:
                raise ParseError(f"{name}: starts with a {encoding.upper()} byte-order mark but "
                                 f"is not valid {encoding.upper()} (at byte {exc.start})") from exc
    for magic, what in _MAGIC:
        if raw.startswith(magic):
            raise ParseError(f"{name}: binary content ({what}) under a text file's name")
    if b"\x00" in raw:
        raise ParseError(f"{name}: binary content (NUL bytes) under a text file's name")
    declared = _declared_charset(raw) if html else None
    for candidate in (declared, "utf-8"):
        if candidate is not None:
            try:
                return raw.decode(candidate)
            except UnicodeDecodeError:
                pass
    bad = _first_invalid_utf8(raw)
    if _mostly_utf8(raw):
        raise ParseError(f"{name}: {UNDECODABLE} (UTF-8 text with invalid bytes at byte {bad}: "
                         "damaged or cut short?)")
    detected = _detect(raw)
    if detected is None:
        raise ParseError(f"{name}: {UNDECODABLE} (first invalid byte at {bad})")
    return raw.decode(detected)


def _declared_charset(raw: bytes) -> str | None:
    found = _META_CHARSET.search(raw[:4096])
    if found is None:
        return None
    try:
        encoding = codecs.lookup(found.group(1).decode("ascii")).name
    except LookupError:
        return None  # an unknown label: decode as if nothing were declared
    return _HTML_LABELS.get(encoding, encoding)


def _mostly_utf8(raw: bytes) -> bool:
    """Whether nearly all of the non-ASCII bytes form UTF-8 sequences."""
    non_ascii = len(raw) - len(raw.translate(None, _NON_ASCII))
    in_sequences = sum(map(len, _UTF8_SEQUENCE.findall(raw)))
    return non_ascii > 0 and in_sequences >= 0.9 * non_ascii


def _first_invalid_utf8(raw: bytes) -> int:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return -1


def _detect(raw: bytes) -> str | None:
    """A confident detection's encoding, else None; windows-1252 where it ties with the best."""
    from charset_normalizer import from_bytes

    matches = from_bytes(raw, cp_exclusion=_NO_BOM_UNICODE)
    best = matches.best()
    if best is None or best.percent_chaos > _MAX_CHAOS or best.percent_coherence < _MIN_COHERENCE:
        return None
    encoding = best.encoding
    # Single-byte Latin code pages score alike on Western text, and the detector's pick among
    # them is close to a coin toss (mac_latin2 for French, cp1250 reading ñ as ń). Legacy
    # Western text is windows-1252 far more often than any of them: it wins a near tie.
    if any(m.encoding == "cp1252" and m.percent_chaos <= best.percent_chaos + _NEAR_CHAOS
           and m.percent_coherence >= best.percent_coherence - _NEAR_COHERENCE
           for m in matches):
        encoding = "cp1252"
    try:
        raw.decode(encoding)  # the detector reads samples; the whole file must decode
    except UnicodeDecodeError:
        return None
    return encoding
