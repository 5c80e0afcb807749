"""Checks made before a file is parsed: its size, and what a zip-based file (.docx) inflates to.

A zip's central directory declares each member's sizes, and a bomb may declare them honestly
(a 2 GB document.xml) or lie (a small size over a huge deflate stream; Python's zipfile then
stops at the declared size, other readers may not). Both are checked: the declared total and
ratios first, then every member is inflated as a stream, never held, and stopped as soon as it
passes its declared size. XML members may not carry a DTD: OPC forbids them, and a DTD is
where entity-expansion bombs live.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

from ingest.errors import LimitExceeded, ParseError
from ingest.settings import FileLimits

# Parsing cost grows fast with the size of these: their file size counts against max_text_bytes.
TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm"})
RATIO_GRACE_BYTES = 1 << 20  # members smaller than this inflate as they like (a page of spaces)
_READ = 1 << 16
_PIECE = 1 << 20  # inflate at most this much at a time
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... file name length, extra field length
_LOCAL_SIGNATURE = b"PK\x03\x04"
_STORED, _DEFLATED = 0, 8  # the only methods OPC (the DOCX container) allows
_DTD = b"<!DOCTYPE"


def describe_bytes(size: int) -> str:
    """`size` for a person, to three digits: 512 MiB, 1.03 MiB, 12.5 GiB, 17 bytes."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            value = size / scale
            if value.is_integer():
                return f"{value:.0f} {unit}"
            return f"{value:.{max(0, 3 - len(str(int(value))))}f} {unit}"
    return f"{size} bytes"


def check_file(path: Path, limits: FileLimits) -> int:
    """The size of `path`; ParseError if it is not a regular non-empty file within the limits."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise ParseError(f"{path.name}: cannot read file ({exc.strerror or exc})") from exc
    if not path.is_file():
        raise ParseError(f"{path.name}: not a regular file")
    size = stat.st_size
    if size == 0:
        raise ParseError(f"{path.name}: empty file")
    if size > limits.max_file_bytes:
        raise LimitExceeded(f"{path.name}: {_over(size, limits.max_file_bytes)} the file size "
                            f"limit ({describe_bytes(limits.max_file_bytes)})")
    if path.suffix.lower() in TEXT_SUFFIXES and size > limits.max_text_bytes:
        raise LimitExceeded(f"{path.name}: {_over(size, limits.max_text_bytes)} the text size "
                            f"limit ({describe_bytes(limits.max_text_bytes)})")
    return size


def _over(size: int, limit: int) -> str:
    """'9 MiB, over', or exact bytes where three digits would read as the limit itself."""
    return f"{size:,} bytes, over" if size < limit * 1.01 else f"{describe_bytes(size)}, over"


def read_text_file(path: Path, limits: FileLimits) -> bytes:
    """The bytes of a text file, reading no more than the text size limit allows."""
    with path.open("rb") as handle:
        raw = handle.read(limits.max_text_bytes + 1)
    if len(raw) > limits.max_text_bytes:  # it grew after it was checked
        raise LimitExceeded(f"{path.name}: over the text size limit "
                            f"({describe_bytes(limits.max_text_bytes)})")
    return raw


def check_text_yield(name: str, texts: list[str], limits: FileLimits) -> None:
    """LimitExceeded if the parsed text is over the text limit: chunking it would cost too much."""
    total = sum(len(text.encode("utf-8")) for text in texts)
    if total > limits.max_text_bytes:
        raise LimitExceeded(f"{name}: yields {describe_bytes(total)} of text, over the text "
                            f"size limit ({describe_bytes(limits.max_text_bytes)})")


def check_zip(path: Path, limits: FileLimits) -> None:
    """ParseError (LimitExceeded for a limit) unless every member of the zip at `path` inflates
    to what it declares, within the inflated size and ratio limits, and no XML has a DTD."""
    name = path.name
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as exc:
        raise ParseError(f"{name}: damaged file (not a readable zip archive: {exc})") from exc
    declared = sum(member.file_size for member in members)
    if declared > limits.max_inflated_bytes:
        raise LimitExceeded(f"{name}: its zip members declare {describe_bytes(declared)} "
                            "inflated, over the inflated size limit "
                            f"({describe_bytes(limits.max_inflated_bytes)})")
    for member in members:
        _check_ratio(name, member.filename, member.file_size, member.compress_size, limits)
        if member.compress_type not in (_STORED, _DEFLATED):
            raise ParseError(f"{name}: zip member {member.filename!r} uses compression method "
                             f"{member.compress_type}; DOCX allows only stored and deflate")
        if member.flag_bits & 0x1:
            raise ParseError(f"{name}: zip member {member.filename!r} is encrypted")
    with path.open("rb") as handle:
        for member in members:
            inflated = _inflate(handle, name, member)
            if inflated > member.file_size:
                raise LimitExceeded(f"{name}: zip member {member.filename!r} inflates to more "
                                    f"than the {describe_bytes(member.file_size)} it declares "
                                    "(a zip bomb, or a damaged file)")


def _check_ratio(name: str, member: str, inflated: int, compressed: int,
                 limits: FileLimits) -> None:
    ratio = inflated / max(compressed, 1)
    if inflated > RATIO_GRACE_BYTES and ratio > limits.max_inflation_ratio:
        raise LimitExceeded(f"{name}: zip member {member!r} inflates {ratio:,.0f} times, over "
                            f"the inflation ratio limit ({limits.max_inflation_ratio})")


def _inflate(handle: BinaryIO, name: str, member: zipfile.ZipInfo) -> int:
    """How many bytes `member` inflates to, stopping once past its declared size."""
    where = f"zip member {member.filename!r}"
    handle.seek(member.header_offset)
    header = handle.read(_LOCAL_HEADER.size)
    if len(header) < _LOCAL_HEADER.size or not header.startswith(_LOCAL_SIGNATURE):
        raise ParseError(f"{name}: damaged file ({where} has no local header)")
    _, name_length, extra_length = _LOCAL_HEADER.unpack(header)
    handle.seek(name_length + extra_length, 1)
    xml = member.filename.endswith((".xml", ".rels"))
    inflater = zlib.decompressobj(-zlib.MAX_WBITS) if member.compress_type == _DEFLATED else None
    left, inflated, tail = member.compress_size, 0, b""
    while left > 0 and inflated <= member.file_size:
        data = handle.read(min(_READ, left))
        if not data:
            raise ParseError(f"{name}: damaged file ({where} is cut short)")
        left -= len(data)
        while data and inflated <= member.file_size:
            if inflater is None:
                piece, data = data, b""
            else:
                try:
                    piece = inflater.decompress(data, _PIECE)
                except zlib.error as exc:
                    raise ParseError(f"{name}: damaged file ({where}: {exc})") from exc
                data = inflater.unconsumed_tail
            inflated += len(piece)
            if xml and (_DTD in piece or _DTD in tail + piece[: len(_DTD)]):
                raise ParseError(f"{name}: {where} declares a DTD, which DOCX does not allow "
                                 "(entity expansion: an XML bomb?)")
            tail = (tail + piece[-len(_DTD):])[-len(_DTD):]  # a DTD split across two pieces
    return inflated
