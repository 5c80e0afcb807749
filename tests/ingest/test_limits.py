"""The limits settings, and the checks made before a file is parsed (ingest/limits.py)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pydantic
import pytest

from ingest.errors import LimitExceeded, ParseError
from ingest.limits import check_file, check_zip, describe_bytes
from ingest.settings import FileLimits, IngestSettings, SourceSettings
from tests.ingest.test_hostile_files import MiB, _docx, _entity_xml, _lie_about_size, _zeros
from tests.ingest.test_parser import write_docx


def test_defaults_and_units() -> None:
    limits = IngestSettings().limits
    assert limits.max_file_bytes == 100 * MiB
    assert limits.memory_bytes == 1024 * MiB
    assert FileLimits(max_text_bytes="2 MiB", memory_bytes="1.5 GiB").memory_bytes == 1536 * MiB
    assert FileLimits(max_file_bytes="10 MB").max_file_bytes == 10_000_000


@pytest.mark.parametrize(
    "bad",
    [{"memory_bytes": 0}, {"memory_bytes": "1 MiB"}, {"cpu_seconds": 0}, {"wall_seconds": -1},
     {"cpu_seconds": 10**6}, {"max_file_bytes": "2 TiB"}, {"max_inflation_ratio": 1},
     {"max_text_bytes": "lots"}, {"max_bytes": 5}],
)
def test_invalid_limits_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        FileLimits(**bad)  # type: ignore[arg-type]
    with pytest.raises(pydantic.ValidationError):
        SourceSettings(name="s", path=Path("."), owner="o", limits=bad)  # type: ignore[arg-type]


def test_a_source_overrides_only_the_limits_it_names() -> None:
    settings = IngestSettings(limits=FileLimits(cpu_seconds=30, memory_bytes="512 MiB"))
    source = SourceSettings(name="s", path=Path("."), owner="o",
                            limits={"memory_bytes": "2 GiB"})  # type: ignore[arg-type]
    limits = settings.limits.overridden(source.limits)
    assert limits.memory_bytes == 2048 * MiB
    assert limits.cpu_seconds == 30
    assert limits.max_file_bytes == FileLimits().max_file_bytes


def test_sizes_read_as_a_person_writes_them() -> None:
    assert [describe_bytes(n) for n in (17, 1024, 300 * 1024, 1536 * 1024, 129 * MiB + 5,
                                        1 << 30)] == ["17 bytes", "1 KiB", "300 KiB", "1.50 MiB",
                                                      "129 MiB", "1 GiB"]


def test_file_size_limits(tmp_path: Path) -> None:
    scan = tmp_path / "scan.pdf"
    with scan.open("wb") as handle:
        handle.truncate(3 * MiB)
    with pytest.raises(LimitExceeded, match=r"^scan\.pdf: 3 MiB, over the file size limit "
                                            r"\(2 MiB\)$"):
        check_file(scan, FileLimits(max_file_bytes="2 MiB"))
    assert check_file(scan, FileLimits(max_file_bytes="4 MiB", max_text_bytes="1 MiB")) == 3 * MiB
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"x" * 2048)
    with pytest.raises(LimitExceeded, match=r"^notes\.txt: 2 KiB, over the text size limit "
                                            r"\(1 KiB\)$"):
        check_file(notes, FileLimits(max_text_bytes=1024))
    (tmp_path / "folder.md").mkdir()
    with pytest.raises(ParseError, match=r"^folder\.md: not a regular file$"):
        check_file(tmp_path / "folder.md", FileLimits())


def test_a_normal_docx_passes_the_zip_checks(tmp_path: Path) -> None:
    check_zip(write_docx(tmp_path / "handbook.docx"), FileLimits(max_inflated_bytes="1 MiB"))


@pytest.mark.parametrize(
    ("member", "size", "reason"),
    [
        ("word/media/a.bin", 8 * MiB, r"its zip members declare 8\.\d\d MiB inflated, over the "
                                      r"inflated size limit \(4 MiB\)$"),
        ("word/media/a.bin", 3 * MiB, r"zip member 'word/media/a\.bin' inflates [\d,]+ times, "
                                      r"over the inflation ratio limit \(100\)$"),
        ("word/document.xml", 0, r"zip member 'word/document\.xml' declares a DTD"),
    ],
)
def test_zip_bombs_are_refused_before_parsing(
    tmp_path: Path, member: str, size: int, reason: str
) -> None:
    path = tmp_path / "bomb.docx"
    content = _zeros(size) if size else iter([_entity_xml()])
    path.write_bytes(_docx("Bomb.", {member: content}))
    with pytest.raises(ParseError, match=r"^bomb\.docx: " + reason):
        check_zip(path, FileLimits(max_inflated_bytes="4 MiB"))


def test_a_member_that_lies_about_its_size_is_caught_by_inflating_it(tmp_path: Path) -> None:
    path = tmp_path / "lying.docx"
    raw = _docx("Bomb.", {"word/media/x.bin": _zeros(4 * MiB)})
    path.write_bytes(_lie_about_size(raw, "word/media/x.bin", 1000))
    assert zipfile.ZipFile(path).read("word/media/x.bin") == bytes(1000)  # zipfile sees no lie
    with pytest.raises(LimitExceeded, match=r"'word/media/x\.bin' inflates to more than the "
                                            r"1000 bytes it declares"):
        check_zip(path, FileLimits())


def test_damaged_and_unsupported_zips_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "notzip.docx"
    path.write_bytes(b"this is not a zip archive at all" * 10)
    with pytest.raises(ParseError, match=r"^notzip\.docx: damaged file \(not a readable zip"):
        check_zip(path, FileLimits())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_BZIP2) as archive:
        archive.writestr("word/document.xml", b"<w:document/>")
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ParseError, match=r"uses compression method 12; DOCX allows only"):
        check_zip(path, FileLimits())
