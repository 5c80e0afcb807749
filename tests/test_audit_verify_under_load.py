"""`clearance audit verify` on a deployment that is serving: 20 runs while 16 clients query,
20 verdicts of ok (issue 14). Before verify read the head and the log's length under the
appenders' lock, such runs reported "head mismatch" 10 times in 10."""

from __future__ import annotations

import threading

import pytest

from api.cli import main
from tests.conftest import EXAMPLE_USERS, Deployment

pytestmark = pytest.mark.e2e

CLIENTS = 16
RUNS = 20


def test_verify_says_ok_every_time_while_16_clients_query(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
):
    stop = threading.Event()
    answered: list[int] = []
    failures: list[str] = []

    def query(user: str) -> None:
        with deployment.client(user) as client:
            while not stop.is_set():
                response = client.post("/v1/search", json={"query": "parental leave", "top_k": 3})
                if response.status_code != 200:
                    failures.append(response.text)
                answered.append(1)

    users = [u for u in EXAMPLE_USERS if u != "root"]
    threads = [threading.Thread(target=query, args=(users[i % len(users)],))
               for i in range(CLIENTS)]
    for t in threads:
        t.start()
    verdicts, during = [], []
    try:
        while len(answered) < CLIENTS:  # every client is under way
            stop.wait(0.05)
        for _ in range(RUNS):
            before = len(answered)
            verdicts.append(main(["audit", "verify", "--config", str(deployment.config)]))
            during.append(len(answered) - before)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    out = capsys.readouterr().out
    assert failures == []
    assert verdicts == [0] * RUNS, out
    assert out.count(", ok\n") == RUNS and "BROKEN" not in out
    # The runs overlapped the queries: requests were answered (and audited) during them.
    assert sum(during) > 0, during
