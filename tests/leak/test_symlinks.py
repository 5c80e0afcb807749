"""The symlink leak of issue 13, over the example corpus served over HTTP.

`finance/public/shared-notes.docx -> ../board/kestrel-acquisition.docx`, with `public/*`
readable by all staff (and carol), once made the board document's code name and price readable
by every staff member, and `policy explain` said allowed. By default the link is not followed
and is reported with its target. With `links = "within_source"` it is followed, and the link
document is readable only by principals both ACLs allow: carol (the board document's only
reader) finds it, dave (staff) does not.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.cli import main
from retrieval.embedder import Embedder
from tests.conftest import EXAMPLE_USERS, Deployment, serve_config, write_example_config

pytestmark = pytest.mark.e2e

LINK = "finance:public/shared-notes.docx"
BOARD = "finance:board/kestrel-acquisition.docx"
# The board document's code name, target and price; ROT13 so a grep of the repository finds
# them only inside the document (examples/README.md, "The canary document").
CANARIES = [codecs.decode(s, "rot13") for s in ("Oevtugjngre", "XRFGERY-4417", "Xrfgery")]
SECRETS = [*CANARIES, "38.5 million"]
QUESTIONS = [f"{CANARIES[0]} acquisition {CANARIES[1]} price",
             "What price is planned for the acquisition, and when is signing?",
             "shared notes"]


def _config(root: Path, links: str) -> Path:
    config = write_example_config(root)
    text = config.read_text(encoding="utf-8")
    finance = 'owner = "cfo-office"\n'
    rules = '  { glob = "reports/*", allow = ["group:finance"] },\n]'
    assert text.count(finance) == 1 and text.count(rules) == 1
    text = text.replace(finance, f'{finance}links = "{links}"\n').replace(
        rules, rules[:-1] + '  { glob = "public/*", allow = ["group:staff", "user:carol"] },\n]')
    config.write_text(text, encoding="utf-8")
    public = root / "docs" / "finance" / "public"
    public.mkdir()
    (public / "shared-notes.docx").symlink_to("../board/kestrel-acquisition.docx")
    return config


@pytest.fixture(scope="module", params=["skip", "within_source"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           embedder: Embedder) -> Iterator[tuple[str, Deployment]]:
    root = tmp_path_factory.mktemp(f"links-{request.param}")
    with serve_config(_config(root, request.param), embedder, EXAMPLE_USERS) as deployed:
        yield request.param, deployed


def test_the_link_is_reported_or_readable_only_by_both_acls(served: tuple[str, Deployment]):
    links, deployed = served
    report = deployed.first_report
    if links == "skip":
        assert [(p.doc_id, p.reason) for p in report.skipped] == [
            (LINK, 'symbolic link to board/kestrel-acquisition.docx, not followed '
                   '(links = "skip")')]
        assert report.documents == 14
    else:
        assert report.skipped == []
        assert report.documents == 15
    assert report.errors == []


@pytest.mark.parametrize("user", sorted(set(EXAMPLE_USERS) - {"carol", "root"}))
def test_staff_cannot_read_the_board_document_through_the_link(
    served: tuple[str, Deployment], user: str
):
    _, deployed = served
    with deployed.client(user) as client:
        for question in QUESTIONS:
            for path, body in (("/v1/search", {"query": question, "top_k": 50}),
                               ("/v1/chat", {"message": question, "top_k": 50})):
                response = client.post(path, json=body)
                assert response.status_code == 200, response.text
                found = response.json().get("results") or response.json().get("citations")
                assert {LINK, BOARD}.isdisjoint(r["doc_id"] for r in found or [])
                for secret in SECRETS:
                    assert secret.lower() not in response.text.lower(), (user, path, secret)


def test_carol_reads_the_link_only_when_it_is_followed(served: tuple[str, Deployment]):
    links, deployed = served
    with deployed.client("carol") as client:
        response = client.post("/v1/search", json={"query": QUESTIONS[0], "top_k": 50})
    assert response.status_code == 200, response.text
    ids = {r["doc_id"] for r in response.json()["results"]}
    assert BOARD in ids
    assert (LINK in ids) == (links == "within_source")


def test_policy_explain_does_not_say_allowed_for_the_link(
    served: tuple[str, Deployment], capsys: pytest.CaptureFixture[str]
):
    links, deployed = served
    with deployed.client("root") as client:
        dave = client.get("/v1/admin/policy/explain", params={"user": "dave", "doc": LINK})
        carol = client.get("/v1/admin/policy/explain", params={"user": "carol", "doc": LINK})
    assert dave.status_code == 200 and carol.status_code == 200, (dave.text, carol.text)
    assert dave.json()["allowed"] is False
    assert carol.json()["allowed"] is (links == "within_source")
    if links == "within_source":
        assert any("symbolic link to finance:board/kestrel-acquisition.docx" in r
                   for r in carol.json()["reasons"]), carol.json()
    capsys.readouterr()
    assert main(["policy", "explain", "dave", LINK, "--config", str(deployed.config)]) == 2
    assert capsys.readouterr().out.startswith(f"DENIED: user:dave reading {LINK}")
