"""Deny rules on documents whose file names are not in NFC (as macOS writes them).

Principals and the objects of `p` lines are compared after NFC normalisation. Document ids
once kept the file name's bytes, so a deny naming an NFD-named document, in either normal
form, named no document at all and the document stayed readable (found by this suite). Document
ids are now NFC (ingest/sources.py `discover`); these tests keep it that way. The control cases
(an ASCII name, a pattern that avoids the accent) pass either way.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from retrieval.embedder import Embedder
from tests.leak.deploy import LeakDeployment, serve_world
from tests.leak.world import DEFAULT, Deny, Doc, Membership, Rule, Source, World, nfc, nfd

pytestmark = pytest.mark.e2e

NFD_NAME = nfd("café-menu.md")
NFD_NAME_2 = nfd("crème-brûlée.md")
NFD_NAME_3 = nfd("entrée.md")


def _doc(uri: str, serial: int) -> Doc:
    canary = f"CANARY-{serial:08x}-okapi-zebra"
    text = (f"# Lunch menu {serial}\n\nReference code {canary}. The rooftop garden grows "
            "tomatoes and basil in summer. The kitchen serves soup on Mondays.\n")
    return Doc("notes", uri, "garden", canary, text)


DOCS = [_doc(NFD_NAME, 1), _doc(NFD_NAME_2, 2), _doc(NFD_NAME_3, 3), _doc("plain.md", 4),
        _doc("other.md", 5)]
DENIES = {
    # the id in NFD (as the file name is on disk), the same id typed in NFC, an NFC pattern
    "eve": [Deny("user:eve", f"doc:notes:{NFD_NAME}"),
            Deny("user:eve", f"doc:notes:{nfc(NFD_NAME_2)}"),
            Deny("user:eve", f"doc:notes:{nfc('entrée')}*")],
    # controls: an ASCII name, and a pattern whose fixed parts are ASCII
    "ann": [Deny("user:ann", "doc:notes:plain.md"), Deny("user:ann", "doc:notes:caf*")],
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
           ) -> Iterator[LeakDeployment]:
    world = World(
        seed=0,
        users=["eve", "ann", "joe"],
        memberships=[Membership(f"user:{u}", "group:staff") for u in ("eve", "ann", "joe")],
        denies=[d for ds in DENIES.values() for d in ds],
        admin_lines=[],
        sources=[Source("notes", DEFAULT, (Rule("*", ("group:staff",)),))],
        docs=DOCS,
        ingest_overrides={},
        live_overrides={},
        quarantined_docs=[],
        quarantined_sources=[],
        planted=[],
    )
    with serve_world(world, "edge", tmp_path_factory.mktemp("nfd"), embedder) as deployed:
        yield deployed


def _ids(served: LeakDeployment, user: str) -> set[str]:
    with httpx.Client(base_url=served.url, timeout=60) as client:
        response = client.post(
            "/v1/search", json={"query": "lunch menu", "top_k": 50},
            headers={"Authorization": f"Bearer {served.keys[user]}"})
    assert response.status_code == 200, response.text
    return {r["doc_id"] for r in response.json()["results"]}


def test_document_ids_are_nfc_whatever_the_file_name_bytes(served: LeakDeployment) -> None:
    assert nfc(NFD_NAME) != NFD_NAME
    assert _ids(served, "joe") == {nfc(d.doc_id) for d in DOCS}
    assert f"notes:{nfc(NFD_NAME)}" in _ids(served, "joe")


def test_control_denies_apply(served: LeakDeployment) -> None:
    assert _ids(served, "ann") == {nfc(d.doc_id) for d in DOCS} - {
        "notes:plain.md", f"notes:{nfc(NFD_NAME)}"}


def test_denies_on_non_nfc_file_names_apply(served: LeakDeployment) -> None:
    assert _ids(served, "eve") == {"notes:plain.md", "notes:other.md"}
