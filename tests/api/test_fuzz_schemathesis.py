"""Schemathesis against the running API, as staff (alice) and as an admin (root).

Every operation of the OpenAPI document is called over real HTTP (uvicorn on loopback, the
example corpus ingested with the real parser, embedder, embedded Qdrant and Casbin) with
generated valid and invalid input: Schemathesis' examples, coverage and fuzzing phases, a fixed
number of fuzzed examples per operation, derandomized, no deadline. No response may be a 5xx;
each must have a documented status, content type, headers and body (SSE events included);
invalid input must be refused with a 4xx; a 2xx must need the key (ignored_auth sends it again
without one and with a wrong one, two requests the counts below leave out). The key itself is
not fuzzed, or most invalid input would be a mangled key and a 401.

The fuzz runs on a deployment of its own, so what it changes (keys, policy lines, quarantine,
pauses) cannot reach other tests; its failed-key lockout is off, as the fuzz sends missing keys
on purpose. Even there it leaves alone what would stop the fuzz itself: POST /v1/admin/reindex
is not called (a real build in a child process, minutes of CPU; its only input is the key, and
tests/test_admin.py covers it), nor a source's re-index by a real source's name, nor the
revocation of the fuzzing users' own keys; a pause it makes is resumed at once. How many
requests each user sent, by status, is printed at the end.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from retrieval.embedder import Embedder
from tests.conftest import Deployment, serve_config, write_example_config

pytestmark = pytest.mark.e2e

FUZZERS = ("alice", "root")  # staff (group hr) and the admin role
MAX_EXAMPLES = 20  # per operation and user in the fuzzing phase; the coverage phase adds its own
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "ignored_auth",  # a 2xx is sent again without the key, and with a wrong one: both 401
]
NOT_CALLED = {"POST /v1/admin/reindex"}
HANG_S = 300  # only a hung server takes this long


@dataclass
class Tally:
    """What the fuzz sent, per user: requests by operation and by status."""

    operations: dict[str, Counter[str]] = field(default_factory=dict)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)

    def add(self, user: str, operation: str, status: int) -> None:
        self.operations[user][operation] += 1
        self.statuses[user][status] += 1

    def start(self, user: str) -> None:
        self.operations[user], self.statuses[user] = Counter(), Counter()


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
           ) -> Iterator[Deployment]:
    config = write_example_config(tmp_path_factory.mktemp("fuzzed"))
    # Locking the address out after a few missing keys would answer 429 to the rest.
    with config.open("a", encoding="utf-8") as f:
        f.write("\n[server.rate_limits]\nfailed_keys = 0\n")
    with serve_config(config, embedder, FUZZERS) as deployed:
        yield deployed


@pytest.fixture(scope="module")
def tally(request: pytest.FixtureRequest, fuzzed: Deployment) -> Iterator[Tally]:
    """The counts, reported and checked once the users are done: each called every operation."""
    counts = Tally()
    yield counts
    with httpx.Client(base_url=fuzzed.url) as client:
        operations = {f"{method.upper()} {path}"
                      for path, ops in client.get("/openapi.json").json()["paths"].items()
                      for method in ops}
    for user in sorted(counts.operations):
        called = counts.operations[user]
        _report(request, f"schemathesis as {user}: {called.total()} requests to {len(called)} "
                f"operations, statuses {dict(sorted(counts.statuses[user].items()))}")
        assert set(called) == operations - NOT_CALLED, f"{user} did not call every operation"


def _report(request: pytest.FixtureRequest, line: str) -> None:
    """A line in pytest's own output, past its capture: the counts belong in the CI log."""
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)


@pytest.fixture(scope="module", params=FUZZERS)
def fuzzer(request: pytest.FixtureRequest) -> str:
    user: str = request.param
    return user


@pytest.fixture(scope="module")
def api_schema(fuzzer: str, fuzzed: Deployment, tally: Tally) -> schemathesis.BaseSchema:
    tally.start(fuzzer)
    config = schemathesis.Config.from_dict({
        # The key is not fuzzed (see the module docstring).
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none",
                       "with-security-parameters": False},
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        "phases": {"stateful": {"enabled": False}},
        "auth": {"openapi": {"apiKey": {"bearer": fuzzed.keys[fuzzer]}}},
        "request-timeout": HANG_S,
    })
    return schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json", config=config)


def _leave_alone(case: schemathesis.Case, fuzzed: Deployment) -> bool:
    """Calls that would stop the fuzz itself (see the module docstring)."""
    label = case.operation.label
    parameters = case.path_parameters or {}
    if label == "POST /v1/admin/sources/{name}/reindex":
        return parameters.get("name") in {s.name for s in fuzzed.settings.sources}
    if label == "DELETE /v1/admin/keys/{user}":
        return parameters.get("user") in FUZZERS
    return False


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32.5 relabels the running node through `_nodeid`, which pytest 9.2 no longer
    # has (it keeps `_id`); giving the node the attribute back is all it needs.
    request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema").exclude(
    func=lambda ctx: ctx.operation.label in NOT_CALLED)


@schema.parametrize()
# Hypothesis' health checks time generation, and patterns filter it; neither is the API's fault.
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                HealthCheck.data_too_large])
def test_every_operation_answers_as_documented(case: schemathesis.Case, fuzzer: str,
                                               fuzzed: Deployment, tally: Tally) -> None:
    if _leave_alone(case, fuzzed):
        return
    response = case.call_and_validate(timeout=HANG_S)
    tally.add(fuzzer, case.operation.label, response.status_code)
    if case.operation.label == "POST /v1/admin/pause" and response.status_code == 200:
        assert isinstance(case.body, dict)  # what was accepted: a PauseBody
        with fuzzed.client(fuzzer) as client:
            resumed = client.post("/v1/admin/resume", json={"target": case.body["target"]})
        assert resumed.status_code == 200, resumed.text
