"""Parsing in a child process (ingest/sandbox.py): same documents, limits that hold, crashes
that cost one file, and no worker left behind."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from ingest.errors import IngestError, LimitExceeded, ParseError, ParserUnavailable
from ingest.parser import parse_document
from ingest.pipeline import build_index_version
from ingest.sandbox import ParserSandbox
from ingest.settings import FileLimits, IngestSettings, SourceSettings
from policies.acl_rules import AclRule
from retrieval.edge_store import EdgeBackend
from retrieval.embedder import Embedder
from retrieval.versions import VersionCatalog
from tests.ingest.test_hostile_files import MiB, _docx, _prose
from tests.ingest.test_parser import (
    write_docx,
    write_eml,
    write_html,
    write_md,
    write_three_page_pdf,
    write_txt,
)

LIMITS = FileLimits()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ParserSandbox]:
    with ParserSandbox() as running:
        yield running


def test_the_worker_parses_as_the_build_process_would(tmp_path: Path,
                                                       sandbox: ParserSandbox) -> None:
    for path in (write_md(tmp_path / "a.md"), write_txt(tmp_path / "a.txt"),
                 write_html(tmp_path / "a.html"), write_eml(tmp_path / "a.eml"),
                 write_docx(tmp_path / "a.docx"), write_three_page_pdf(tmp_path / "a.pdf")):
        assert sandbox.parse(path, LIMITS) == parse_document(path), path.name
    with pytest.raises(ParseError, match=r"^empty\.txt: empty file$"):
        (tmp_path / "empty.txt").touch()
        sandbox.parse(tmp_path / "empty.txt", LIMITS)


def test_a_worker_killed_between_files_is_replaced(tmp_path: Path,
                                                   sandbox: ParserSandbox) -> None:
    path = write_md(tmp_path / "a.md")
    sandbox.parse(path, LIMITS)
    old = sandbox.worker_pid
    assert old is not None
    os.kill(old, signal.SIGKILL)
    _wait_for(lambda: not _alive(old))
    assert sandbox.parse(path, LIMITS).title == "Onboarding"  # not blamed on this file
    assert sandbox.worker_pid not in (None, old)


def test_a_crash_while_parsing_costs_that_file_only(tmp_path: Path,
                                                    sandbox: ParserSandbox) -> None:
    small = write_txt(tmp_path / "small.txt")
    slow = tmp_path / "slow.txt"
    slow.write_text(_prose(6 * MiB), encoding="utf-8")  # seconds of parsing on any machine
    sandbox.parse(small, LIMITS)  # a warm worker: what it does next is parsing slow.txt
    pid = sandbox.worker_pid
    assert pid is not None
    started = _cpu_seconds(pid)
    outcome: list[BaseException] = []
    limits = FileLimits(max_text_bytes="16 MiB")
    parsing = threading.Thread(target=_record, args=(outcome, sandbox.parse, slow, limits))
    parsing.start()
    _wait_for(lambda: _cpu_seconds(pid) > started + 0.3)
    os.kill(pid, signal.SIGSEGV)
    parsing.join(60)
    assert len(outcome) == 1 and isinstance(outcome[0], ParseError), outcome
    assert str(outcome[0]) == "slow.txt: the parser crashed while parsing it (SIGSEGV)"
    assert sandbox.parse(small, LIMITS).elements


def test_memory_over_the_limit_ends_the_file_not_the_worker_pool(tmp_path: Path,
                                                                 sandbox: ParserSandbox) -> None:
    # 16 MB of small paragraphs of random digits: it deflates only some 3 times, so it passes
    # the zip checks, and each paragraph costs kilobytes as a tree and as an element.
    paragraphs = (b"<w:p><w:r><w:t>%s</w:t></w:r></w:p>" % os.urandom(4).hex().encode()
                  for _ in range(16 * MiB // 46))
    xml = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w="'
           b'http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>',
           *paragraphs, b"</w:body></w:document>")
    path = tmp_path / "dense.docx"
    path.write_bytes(_docx("Dense.", {"word/document.xml": iter(xml)}))
    limits = FileLimits(memory_bytes="128 MiB", max_text_bytes="64 MiB")
    with pytest.raises(LimitExceeded, match=r"^dense\.docx: over the memory limit \(128 MiB\) "
                                            r"while parsing$"):
        sandbox.parse(path, limits)
    assert sandbox.parse(write_docx(tmp_path / "fine.docx"), limits).title == "Onboarding"


def test_a_parser_that_cannot_load_stops_the_build(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "broken" / "unstructured"  # a broken install shadows the real one
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('unstructured is broken')\n")
    monkeypatch.setenv("PYTHONPATH", str(broken.parent))
    with ParserSandbox() as alone, pytest.raises(ParserUnavailable,
                                                 match="unstructured is broken"):
        alone.parse(write_md(tmp_path / "a.md"), LIMITS)


@pytest.mark.parametrize("good", [True, False])
def test_a_build_leaves_no_worker_behind(tmp_path: Path, embedder: Embedder, good: bool) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bad.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    if good:
        write_md(docs / "good.md")
    source = SourceSettings(name="s", path=docs, owner="o",
                            acl=[AclRule(glob="*", allow=["group:staff"])])
    catalog = VersionCatalog(tmp_path / "versions", EdgeBackend(tmp_path / "index"))
    before = _workers()  # this module's own sandbox
    try:
        report = build_index_version([source], IngestSettings(), catalog=catalog,
                                     embedder=embedder)
    except IngestError as exc:  # nothing could be ingested: the build fails
        assert not good
        assert "no document could be ingested" in str(exc)
    else:
        assert good and [p.doc_id for p in report.errors] == ["s:bad.txt"]
    assert _workers() == before


def _workers() -> set[int]:
    return {child.pid for child in psutil.Process().children(recursive=True)
            if "ingest.parse_worker" in " ".join(_cmdline(child))}


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def _record(outcome: list[BaseException], parse: object, *args: object) -> None:
    try:
        parse(*args)  # type: ignore[operator]
    except BaseException as exc:
        outcome.append(exc)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _wait_for(condition: object, timeout: float = 60.0) -> None:
    """A hang guard, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
