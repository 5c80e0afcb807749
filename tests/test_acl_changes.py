"""ACL changes after a version was built: applied to every version, within a second, no re-index.

A revoked document ACL (an edited config rule, or `clearance acl set`) and a revoked group
membership stay revoked when an older version is served again by a rollback.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from retrieval.embedder import Embedder
from tests.conftest import Deployment, serve_example
from tests.test_versions_and_audit import clearance

pytestmark = pytest.mark.e2e

QUERY = "security passwords laptops leave holidays expenses welcome"
IT_SECURITY = "handbook:it-security.txt"
WELCOME = "handbook:welcome.md"


@pytest.fixture(scope="module")
def acl_deployment(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
                   ) -> Iterator[Deployment]:
    with serve_example(tmp_path_factory.mktemp("acl"), embedder) as deployed:
        yield deployed


def seen(deployment: Deployment, user: str) -> tuple[set[str], str]:
    """The documents `user` gets for a broad query (all their chunks fit in top_k), and the
    version that answered."""
    with deployment.client(user) as client:
        response = client.post("/v1/search", json={"query": QUERY, "top_k": 50})
    assert response.status_code == 200, response.text
    body = response.json()
    return {r["doc_id"] for r in body["results"]}, body["index_version"]


def versions(deployment: Deployment) -> list[str]:
    """Version ids as `clearance index versions` lists them, oldest first."""
    listing = clearance(deployment, "index", "versions")
    assert listing.returncode == 0, listing.stderr
    return [line[2:].split()[0] for line in listing.stdout.splitlines()[1:]]


def seconds_until(condition: Callable[[], bool], limit: float = 5.0) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > limit:
            pytest.fail(f"condition not met within {limit} s")
        time.sleep(0.02)
    return time.monotonic() - started


def test_an_edited_config_rule_applies_at_once_and_survives_a_rollback(
    acl_deployment: Deployment,
):
    dep = acl_deployment
    v1 = dep.first_report.version_id
    assert IT_SECURITY in seen(dep, "dave")[0]
    assert IT_SECURITY in seen(dep, "bob")[0]

    # it-security.txt becomes platform-only: dave (staff) loses it, bob (platform) keeps it.
    text = dep.config.read_text(encoding="utf-8")
    rule = 'acl = [{ glob = "*", allow = ["group:staff"] }]'
    assert text.count(rule) == 1
    dep.config.write_text(text.replace(rule, (
        'acl = [{ glob = "it-security.txt", allow = ["group:platform"] },\n'
        '       { glob = "*", allow = ["group:staff"] }]')), encoding="utf-8")
    assert seconds_until(lambda: IT_SECURITY not in seen(dep, "dave")[0]) < 1.0
    assert seen(dep, "dave") [1] == v1  # the same version, not a re-index
    assert IT_SECURITY in seen(dep, "bob")[0]
    assert IT_SECURITY not in seen(dep, "alice")[0]
    assert WELCOME in seen(dep, "dave")[0]  # the rest of the source is untouched

    ingest = clearance(dep, "ingest")
    assert ingest.returncode == 0, ingest.stderr
    v2 = seen(dep, "dave")[1]
    assert v2 != v1
    assert IT_SECURITY not in seen(dep, "dave")[0]

    rollback = clearance(dep, "index", "rollback", "--to", v1)
    assert rollback.returncode == 0, rollback.stderr
    docs, version = seen(dep, "dave")
    assert version == v1
    assert IT_SECURITY not in docs  # v1 was built when dave could read it: still revoked
    assert IT_SECURITY in seen(dep, "bob")[0]

    show = clearance(dep, "acl", "show", IT_SECURITY)
    assert show.returncode == 0, show.stderr
    assert f"{v1}: built with group:staff; served with group:platform" in show.stdout
    assert f"{v2}: built with group:platform; served with group:platform" in show.stdout


def test_acl_set_applies_to_every_version_and_clear_restores_the_rule(
    acl_deployment: Deployment,
):
    dep = acl_deployment
    assert WELCOME in seen(dep, "dave")[0]
    before = seen(dep, "dave")[1]

    result = clearance(dep, "acl", "set", WELCOME, "--allow", "user:root")
    assert result.returncode == 0, result.stderr
    assert seconds_until(lambda: WELCOME not in seen(dep, "dave")[0]) < 1.0
    assert WELCOME in seen(dep, "root")[0]
    assert seen(dep, "dave")[1] == before

    for version in versions(dep):
        rollback = clearance(dep, "index", "rollback", "--to", version)
        assert rollback.returncode == 0, rollback.stderr
        docs, served = seen(dep, "dave")
        assert served == version
        assert WELCOME not in docs, f"revoked document came back on version {version}"
        assert WELCOME in seen(dep, "root")[0]

    assert clearance(dep, "acl", "clear", WELCOME).returncode == 0
    assert seconds_until(lambda: WELCOME in seen(dep, "dave")[0]) < 1.0


def test_acl_commands_refuse_bad_input_clearly(acl_deployment: Deployment):
    unknown = clearance(acl_deployment, "acl", "set", "handbook:nope.md", "--allow", "user:x")
    assert unknown.returncode == 1
    assert "handbook:nope.md is in no index version" in unknown.stderr
    bad = clearance(acl_deployment, "acl", "set", WELCOME, "--allow", "dave")
    assert bad.returncode == 1
    assert "not principals" in bad.stderr
    assert "Traceback" not in unknown.stderr + bad.stderr
    assert clearance(acl_deployment, "acl", "clear", WELCOME).returncode == 1  # none set


def test_a_removed_group_membership_applies_at_once_and_survives_a_rollback(
    acl_deployment: Deployment,
):
    dep = acl_deployment
    policy = dep.root / "policy.csv"
    original = policy.read_text(encoding="utf-8")
    assert WELCOME in seen(dep, "dave")[0]
    try:
        policy.write_text(original.replace("g, user:dave, group:staff\n", ""), encoding="utf-8")
        assert seconds_until(lambda: not seen(dep, "dave")[0]) < 1.0
        built = versions(dep)
        rollback = clearance(dep, "index", "rollback", "--to", built[0])
        assert rollback.returncode == 0, rollback.stderr
        docs, served = seen(dep, "dave")
        assert served == built[0]
        assert docs == set()
        assert WELCOME in seen(dep, "alice")[0]  # the others keep theirs
    finally:
        policy.write_text(original, encoding="utf-8")
