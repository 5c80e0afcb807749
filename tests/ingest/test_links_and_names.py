"""Symbolic links in sources and file names that cannot be document ids (issue 13).

Real files, links and names on disk; the builds use the real parser, embedder and embedded
Qdrant. The symlink leak over the example corpus, served over HTTP, is tests/leak/test_symlinks.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from api.cli import main
from control.acl_overrides import AclOverrides
from control.quarantine import Quarantine
from ingest.pipeline import build_index_version
from ingest.settings import IngestSettings, SourceSettings
from ingest.sources import Skipped, content_hash, discover, locate, printable, read_version
from policies.acl_rules import AclRule
from retrieval.access import DocumentAccess
from retrieval.edge_store import EdgeBackend
from retrieval.embedder import Embedder
from retrieval.versions import VersionCatalog
from tests.conftest import REPO

RULES = [AclRule(glob="board/*", allow=["group:finance", "user:carol"]),
         AclRule(glob="public/*", allow=["group:staff", "group:finance"]),
         AclRule(glob="*", allow=["group:staff"])]
PLAN = "# Plan\n\nThe board meets on the first Tuesday of every month in the north room.\n"


def _tree(tmp_path: Path) -> Path:
    """A source with a link of every kind, and a directory outside it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("# Secret\n\nOutside the source.\n")
    root = tmp_path / "src"
    for d in ("board", "public", ".private"):
        (root / d).mkdir(parents=True)
    (root / "board" / "plan.md").write_text(PLAN)
    (root / ".private" / "x.md").write_text("# Hidden\n\nNever read.\n")
    (root / "real.md").write_text("# Real\n\nA plain file.\n")
    links = {
        "public/notes.md": "../board/plan.md",  # inside the source
        "public/chain.md": "notes.md",  # a link to a link
        "public/hidden.md": "../.private/x.md",
        "public/passwd.md": str(outside / "secret.md"),  # absolute, outside
        "public/up.md": "../../outside/secret.md",  # relative, outside
        "public/gone.md": "missing.md",  # dangling
        "public/loop.md": "loop.md",
        "linked-board": "board",  # a directory inside
        "outside-dir": str(outside),  # a directory outside
    }
    for path, target in links.items():
        (root / path).symlink_to(target)
    return root


def _source(root: Path, links: str = "skip", name: str = "fin") -> SourceSettings:
    return SourceSettings(name=name, path=root, owner="cfo", acl=RULES, links=links)  # type: ignore[arg-type]


def test_no_link_is_followed_by_default_and_each_is_reported(tmp_path: Path):
    root = _tree(tmp_path)
    skipped: list[Skipped] = []
    files = list(discover([_source(root)], skipped))
    assert [f.uri for f in files] == ["real.md", "board/plan.md"]
    assert all(f.link_target is None and not f.path.is_symlink() for f in files)
    outside = tmp_path / "outside"
    assert {s.doc_id: s.reason for s in skipped} == {
        "fin:linked-board": 'symbolic link to the directory board, not followed (links = "skip")',
        "fin:outside-dir": f"symbolic link to {outside}, which leads outside the source, "
                           "not followed",
        "fin:public/chain.md": 'symbolic link to board/plan.md, not followed (links = "skip")',
        "fin:public/gone.md": "symbolic link to missing.md, which does not exist (a dangling "
                              "link), not followed",
        "fin:public/hidden.md": 'symbolic link to .private/x.md, not followed (links = "skip")',
        "fin:public/loop.md": "symbolic link to loop.md, which cannot be resolved (Too many "
                              "levels of symbolic links), not followed",
        "fin:public/notes.md": 'symbolic link to board/plan.md, not followed (links = "skip")',
        "fin:public/passwd.md": f"symbolic link to {outside / 'secret.md'}, which leads outside "
                                "the source, not followed",
        "fin:public/up.md": "symbolic link to ../../outside/secret.md, which leads outside the "
                            "source, not followed",
    }


def test_within_source_follows_one_hop_to_a_file_with_the_strictest_acl(tmp_path: Path):
    root = _tree(tmp_path)
    skipped: list[Skipped] = []
    files = {f.uri: f for f in discover([_source(root, "within_source")], skipped)}
    assert sorted(files) == ["board/plan.md", "public/notes.md", "real.md"]
    link = files["public/notes.md"]
    assert link.link_target == "board/plan.md"
    assert link.path == root / "board" / "plan.md"  # read directly, not through the link
    assert link.acl == ("group:finance",)  # {staff, finance} ∩ {finance, carol}
    reasons = {s.doc_id: s.reason for s in skipped}
    assert reasons["fin:linked-board"] == ("symbolic link to the directory board, not followed "
                                           "(only links to files are followed)")
    assert reasons["fin:public/chain.md"] == ("symbolic link to board/plan.md through other "
                                              "links, not followed")
    assert reasons["fin:public/hidden.md"] == ("symbolic link to .private/x.md, a hidden file, "
                                               "not followed")
    assert "leads outside the source" in reasons["fin:public/up.md"]
    assert "leads outside the source" in reasons["fin:outside-dir"]
    assert "leads outside the source" in reasons["fin:public/passwd.md"]
    assert "dangling" in reasons["fin:public/gone.md"]
    assert "cannot be resolved" in reasons["fin:public/loop.md"]


def test_a_file_replaced_by_a_link_after_discovery_is_not_read(tmp_path: Path):
    root = _tree(tmp_path)
    (root / "sub").mkdir()
    (root / "sub" / "a.md").write_text("# A\n\nText.\n")
    files = {f.uri: f for f in discover([_source(root)])}
    content_hash(files["real.md"].path)  # readable as discovered
    files["real.md"].path.unlink()
    files["real.md"].path.symlink_to(root / "board" / "plan.md")
    with pytest.raises(OSError):
        content_hash(files["real.md"].path)
    (root / "sub").rename(root / "sub-moved")
    (root / "sub").symlink_to(root / "sub-moved")
    with pytest.raises(OSError, match="replaced by a symbolic link"):
        content_hash(files["sub/a.md"].path)


@pytest.mark.parametrize("links", ["skip", "within_source"])
def test_locate_finds_a_file_again_exactly_as_discovery_finds_it(tmp_path: Path, links: str):
    root = _tree(tmp_path)
    nfd = "cafe\u0301.md"  # as macOS saves it; its uri is NFC
    (root / nfd).write_text("# Cafe\n\nMenu.\n")
    source = _source(root, links)
    found = {f.uri: f for f in discover([source])}
    assert "caf\u00e9.md" in found
    listed = [p.relative_to(root).as_posix() for p in root.rglob("*")]
    for uri in {*listed, *found, "caf\u00e9.md"}:
        assert locate(source, uri) == found.get(uri), uri
    # What discovery never reads: out of the source, hidden, through a link to a directory.
    for uri in ("../outside/secret.md", ".private/x.md", "board/../real.md", "./real.md",
                "/etc/passwd", "board//plan.md", "", "linked-board/plan.md",
                "outside-dir/secret.md", "public/no-such.md", "real.md/x", "real\u202e.md"):
        assert locate(source, uri) is None, uri


def test_read_version_gives_the_bytes_only_while_they_are_that_version(tmp_path: Path):
    root = _tree(tmp_path)
    path = root / "real.md"
    data = path.read_bytes()
    version = content_hash(path)
    assert read_version(path, version, len(data)) == data
    assert read_version(path, version, len(data) - 1) is None  # over the limit
    path.write_bytes(data + b"more\n")
    assert read_version(path, version, 1 << 20) is None
    path.unlink()
    path.symlink_to(root / "board" / "plan.md")
    with pytest.raises(OSError):
        read_version(path, content_hash(root / "board" / "plan.md"), 1 << 20)


def _catalog(tmp_path: Path) -> VersionCatalog:
    return VersionCatalog(tmp_path / "versions", EdgeBackend(tmp_path / "index"))


def _access(tmp_path: Path, catalog: VersionCatalog, sources: list[SourceSettings]
            ) -> DocumentAccess:
    rules = {s.name: s for s in sources}
    return DocumentAccess(catalog, lambda: (0, rules), AclOverrides(tmp_path / "acls.json"),
                          Quarantine(tmp_path / "quarantine.json"))


def test_a_followed_link_keeps_the_strictest_acl_in_every_version_and_override(
    tmp_path: Path, embedder: Embedder
):
    root = tmp_path / "src"
    (root / "board").mkdir(parents=True)
    (root / "public").mkdir()
    (root / "board" / "plan.md").write_text(PLAN)
    (root / "public" / "notes.md").symlink_to("../board/plan.md")
    other = tmp_path / "other"
    other.mkdir()
    (other / "hello.md").write_text("# Hello\n\nThe canteen opens at eight.\n")
    sources = [_source(root, "within_source"), _source(other, name="misc")]
    catalog = _catalog(tmp_path)

    report = build_index_version(sources, IngestSettings(), catalog=catalog, embedder=embedder)
    assert report.documents == 3 and report.skipped == [] and report.no_acl == []
    table = catalog.documents(report.version_id)
    assert table["fin:public/notes.md"].acl == ("group:finance",)
    assert table["fin:public/notes.md"].target == "board/plan.md"
    reader = catalog.backend.open(report.version_id)
    try:
        link_chunks = [c.payload for c in reader.iter_chunks()
                       if c.payload["doc_id"] == "fin:public/notes.md"]
    finally:
        reader.close()
    assert link_chunks and all(p["acl"] == ["group:finance"] for p in link_chunks)
    assert all(p["link_target"] == "board/plan.md" for p in link_chunks)

    # Served now: the link's rule alone would say {staff, finance}; the target still counts.
    access = _access(tmp_path, catalog, sources)
    assert access.for_version(report.version_id).changed == {}
    entry = table["fin:public/notes.md"]
    overrides = access.overrides
    overrides.set("fin:board/plan.md", ["user:carol"])  # the target narrowed: nobody via the link
    assert access.acl_now(entry, "fin:public/notes.md") == ()
    assert access.for_version(report.version_id).changed["fin:public/notes.md"] == ()
    overrides.clear("fin:board/plan.md")
    overrides.set("fin:public/notes.md", ["group:staff", "user:dave"])  # the link widened: no
    assert access.acl_now(entry, "fin:public/notes.md") == ()
    overrides.set("fin:board/plan.md", ["group:finance", "user:dave"])  # both allow dave
    assert access.acl_now(entry, "fin:public/notes.md") == ("user:dave",)
    overrides.clear("fin:board/plan.md")
    overrides.clear("fin:public/notes.md")

    # A build of the other source carries the link over with its target, and its ACL holds.
    (other / "hello.md").write_text("# Hello\n\nThe canteen opens at nine.\n")
    again = build_index_version(sources, IngestSettings(), catalog=catalog, embedder=embedder,
                                only_source="misc")
    assert again.carried == 2
    carried = catalog.documents(again.version_id)["fin:public/notes.md"]
    assert carried.target == "board/plan.md" and carried.acl == ("group:finance",)
    assert access.for_version(again.version_id).changed == {}

    # An override at ingest time that leaves no common principal: reported, not indexed.
    narrowed = build_index_version(sources, IngestSettings(), catalog=catalog,
                                   embedder=embedder,
                                   acl_overrides={"fin:board/plan.md": ("user:carol",)})
    assert [(p.doc_id, p.reason) for p in narrowed.no_acl] == [
        ("fin:public/notes.md", "symbolic link to board/plan.md: no principal is allowed by "
                                "both the link's ACL and its target's")]
    assert "fin:public/notes.md" not in catalog.documents(narrowed.version_id)


def test_printable_escapes_what_would_forge_or_hide_text():
    assert printable("plain/name é.txt") == "plain/name é.txt"
    assert printable("a\nerror   forged: x.txt") == "a\\nerror   forged: x.txt"
    assert printable("\x1b[31mred\r\t") == "\\x1b[31mred\\r\\t"
    assert printable("invoice\u202etxt.exe") == "invoice\\u202etxt.exe"
    assert printable("zero\u200bwidth\u2028line") == "zero\\u200bwidth\\u2028line"
    assert printable("bad\udcffbyte") == "bad\\udcffbyte"
    assert printable("back\\slash") == "back\\\\slash"


FORGED = "a\nerror   forged: x.txt"


def test_a_newline_in_a_file_name_prints_one_escaped_line_and_is_not_ingested(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / FORGED).write_text("# Forged\n\nA file with a newline in its name.\n")
    (docs / "invoice\u202etxt.md").write_text("# Bidi\n\nA name that shows reversed.\n")
    os.close(os.open(bytes(docs) + b"/latin1-\xe9.md", os.O_CREAT | os.O_WRONLY, 0o644))
    (docs / "fine.md").write_text("# Fine\n\nThe canteen opens at eight.\n")
    (docs / "link.md").symlink_to("fine.md")
    config = tmp_path / "clearance.toml"
    config.write_text(
        f'data_dir = "data"\ncasbin_model = "{REPO / "policies" / "model.conf"}"\n'
        f'casbin_policy = "{REPO / "examples" / "policy.csv"}"\n\n'
        '[[sources]]\nname = "notes"\npath = "docs"\nowner = "ops"\n'
        'acl = [{ glob = "*", allow = ["group:staff"] }]\n', encoding="utf-8")

    assert main(["ingest", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    forged = [line for line in lines if "forged" in line]
    assert forged == ["skipped notes:a\\nerror   forged: x.txt: file name has the character "
                      "U+000A, which a document id may not hold; not read (rename the file)"]
    assert not any(line.startswith("error") for line in lines), out
    assert ("skipped notes:invoice\\u202etxt.md: file name has the character U+202E, which a "
            "document id may not hold; not read (rename the file)") in lines
    assert any(line.startswith("skipped notes:latin1-\\udce9.md: file name has the character "
                               "U+DCE9") for line in lines), out
    assert ('skipped notes:link.md: symbolic link to fine.md, not followed (links = "skip")'
            in lines)
    summary = [line for line in lines if line.startswith("index version ")]
    assert len(summary) == 1 and len(lines) == 5, out  # 4 skipped, the summary
    assert ": 1 documents (0 reused)," in summary[0]
    assert summary[0].endswith("0 errors, 0 without ACL, 4 not read (links, unsafe names)")
    assert "\u202e" not in out

    from application.services import open_catalog
    from application.settings import load_settings

    catalog = open_catalog(load_settings(config))
    current = catalog.current()
    assert current is not None
    assert list(catalog.documents(current)) == ["notes:fine.md"]
