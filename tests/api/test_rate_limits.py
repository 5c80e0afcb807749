"""Rate limits on a real server: per key and per address with Retry-After, the lockout after
wrong keys, and refusals audited as counts (1,000 wrong keys, a handful of records).

Limits are set so that no outcome depends on the machine's speed: a bucket refilling once a
minute cannot refill during a test, and windows are long unless a test waits for one to close.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from api.ratelimit import FailedKeyLockout, TokenBuckets
from application.settings import load_settings
from ingest.errors import ConfigError
from retrieval.embedder import Embedder
from tests.api.limits_world import GUARD_S, Ingested, audit_records, ingest_example, serve_with

SEARCH = {"query": "How many days of annual leave do we get?", "top_k": 3}
OTHER_ADDRESS = "127.0.0.2"  # loopback too: Linux routes all of 127/8 to lo


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_its_rate():
    clock = FakeClock()
    buckets = TokenBuckets(per_minute=60, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(1.0)
    assert buckets.take("b") == 0.0  # names do not share
    clock.now += 0.5
    assert buckets.take("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert buckets.take("a") == 0.0


def test_the_lockout_counts_within_a_window_and_lifts_when_it_closes():
    clock = FakeClock()
    lockout = FailedKeyLockout(threshold=3, window_s=60, clock=clock)
    for _ in range(2):
        lockout.failed("10.0.0.1")
    assert lockout.locked_for("10.0.0.1") == 0.0
    lockout.failed("10.0.0.1")
    clock.now += 10
    assert lockout.locked_for("10.0.0.1") == pytest.approx(50)
    assert lockout.locked_for("10.0.0.2") == 0.0
    clock.now += 50
    assert lockout.locked_for("10.0.0.1") == 0.0


def test_a_misspelt_limit_is_refused_by_name(tmp_path: Path):
    config = tmp_path / "clearance.toml"
    config.write_text('[server.rate_limits]\nper_key_per_minut = 60\n')
    with pytest.raises(ConfigError) as refused:
        load_settings(config)
    assert "server.rate_limits.per_key_per_minut" in str(refused.value)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Ingested:
    return ingest_example(tmp_path_factory.mktemp("rate-limits"), embedder)


def _key(ingested: Ingested, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {ingested.keys[user]}"}


def _retry_after(response: httpx.Response, most: int) -> int:
    seconds = int(response.headers["Retry-After"])
    assert 1 <= seconds <= most
    return seconds


def test_each_key_has_its_own_limit(ingested: Ingested, embedder: Embedder):
    toml = "[server.rate_limits]\nper_key_per_minute = 1\nper_key_burst = 2\n"
    with serve_with(ingested, embedder, toml) as (url, settings):
        with httpx.Client(base_url=url, timeout=GUARD_S) as client:
            alice = [client.post("/v1/search", json=SEARCH, headers=_key(ingested, "alice"))
                     for _ in range(5)]
            bob = client.post("/v1/search", json=SEARCH, headers=_key(ingested, "bob"))
            completions = client.post(
                "/v1/chat/completions", headers=_key(ingested, "alice"),
                json={"model": "clearance", "messages": [{"role": "user", "content": "leave"}]})
        statuses = [r.status_code for r in alice]
        assert statuses[:2] == [200, 200]
        assert statuses.count(429) >= 2  # one token a minute cannot refill three times
        throttled = next(r for r in alice if r.status_code == 429)
        _retry_after(throttled, 60)
        assert "1 a minute" in throttled.json()["error"]
        assert bob.status_code == 200
        assert completions.status_code == 429
        assert completions.json()["error"]["type"] == "rate_limit_error"
        _retry_after(completions, 60)
    # Audited: the first throttled call has its own record, the rest are counted.
    records = [r for r in audit_records(settings)
               if r["outcome"] == "refused" and r.get("caller") == "user:alice"]
    assert sum(r.get("count", 1) for r in records) == statuses.count(429) + 1
    assert records[0]["request_id"] == throttled.headers["X-Request-ID"]


def test_each_address_has_its_own_limit(ingested: Ingested, embedder: Embedder):
    toml = "[server.rate_limits]\nper_address_per_minute = 1\nper_address_burst = 2\n"
    with serve_with(ingested, embedder, toml) as (url, _):
        with httpx.Client(base_url=url, timeout=GUARD_S) as here:
            statuses = [here.get("/healthz").status_code for _ in range(4)]
            throttled = here.post("/v1/search", json=SEARCH, headers=_key(ingested, "alice"))
        other = httpx.HTTPTransport(local_address=OTHER_ADDRESS)
        with httpx.Client(base_url=url, timeout=GUARD_S, transport=other) as there:
            elsewhere = there.post("/v1/search", json=SEARCH, headers=_key(ingested, "alice"))
    assert statuses[:2] == [200, 200] and statuses[2:] == [429, 429]
    assert throttled.status_code == 429
    _retry_after(throttled, 60)
    assert "too many requests from 127.0.0.1" in throttled.json()["error"]
    assert elsewhere.status_code == 200


def test_a_thousand_wrong_keys_lock_the_address_out_and_leave_a_handful_of_records(
        ingested: Ingested, embedder: Embedder):
    toml = "[server.rate_limits]\nfailed_keys = 5\nwindow_s = 3600\n"
    with serve_with(ingested, embedder, toml) as (url, settings):
        before = len(audit_records(settings))
        with httpx.Client(base_url=url, timeout=GUARD_S) as client:
            wrong = [client.post("/v1/search", json=SEARCH,
                                 headers={"Authorization": f"Bearer clr_guess-{i}"})
                     for i in range(1000)]
            # Locked out: even a good key from this address is not checked now.
            good_key_here = client.post("/v1/search", json=SEARCH,
                                        headers=_key(ingested, "alice"))
        other = httpx.HTTPTransport(local_address=OTHER_ADDRESS)
        with httpx.Client(base_url=url, timeout=GUARD_S, transport=other) as there:
            elsewhere = there.post("/v1/search", json=SEARCH, headers=_key(ingested, "alice"))
        # The window is open: its count is not written until it closes or the server stops.
        while_serving = audit_records(settings)[before:]
    after = audit_records(settings)[before:]

    statuses = [r.status_code for r in wrong]
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429] * 995
    assert "too many wrong API keys" in wrong[-1].json()["error"]
    _retry_after(wrong[-1], 3600)
    assert good_key_here.status_code == 429
    assert elsewhere.status_code == 200

    refused = [r for r in after if r["outcome"] == "refused" and r["address"] == "127.0.0.1"]
    assert len(refused) <= 3  # the first on its own, the rest in one aggregated record
    assert sum(r.get("count", 1) for r in refused) == 1001
    assert refused[0]["request_id"] == wrong[0].headers["X-Request-ID"]
    aggregated = next(r for r in refused if "count" in r)
    assert {(b["reason"], b["count"]) for b in aggregated["by"]} == {
        ("unknown, revoked or expired API key", 4), (
            "too many wrong API keys from this address; try again after Retry-After seconds",
            996)}
    assert aggregated not in while_serving  # written at shutdown, not lost


def test_a_closed_window_is_written_while_the_server_runs(ingested: Ingested,
                                                          embedder: Embedder):
    with serve_with(ingested, embedder, "[server.rate_limits]\nwindow_s = 1\n") as (url, st):
        before = len(audit_records(st))
        with httpx.Client(base_url=url, timeout=GUARD_S) as client:
            for _ in range(3):
                assert client.post("/v1/chat", json={"message": "leave"}).status_code == 401
        deadline = time.monotonic() + GUARD_S
        aggregated: list[dict] = []
        while not aggregated and time.monotonic() < deadline:
            time.sleep(0.2)
            aggregated = [r for r in audit_records(st)[before:] if "count" in r]
        assert aggregated, "the closed window's count was not written while serving"
    records = [r for r in audit_records(st)[before:] if r.get("address") == "127.0.0.1"]
    # However slow the requests were (a window may have closed between them), all 3 are there.
    assert sum(r.get("count", 1) for r in records) == 3
    assert all(r["reason"].startswith(("missing API key", "2 further", "1 further"))
               for r in records)
