"""GET /metrics of a real server after real requests: guarded by its own token, parseable,
counting what happened, labelled without users, keys or queries, and summed over processes."""

from __future__ import annotations

import httpx

from control.keys import KeyStore
from tests.ops.conftest import TOKEN, Monitored, value

QUERY = "What is the travel policy for hotels?"


def test_metrics_need_their_own_token(monitored: Monitored):
    url = monitored.urls[0] + "/metrics"
    assert httpx.get(url, timeout=30).status_code == 401
    api_key = {"Authorization": f"Bearer {monitored.keys['alice']}"}
    refused = httpx.get(url, headers=api_key, timeout=30)
    assert refused.status_code == 401 and "Traceback" not in refused.text
    assert refused.json()["error"].startswith("send 'Authorization: Bearer <token>'")


def test_a_scrape_parses_and_counts_what_happened(monitored: Monitored):
    search = monitored.call("alice", "POST", "/v1/search", json={"query": QUERY, "top_k": 5})
    assert search.status_code == 200, search.text
    chat = monitored.call("alice", "POST", "/v1/chat",
                          json={"message": QUERY})
    assert chat.status_code == 200, chat.text
    mode = chat.json()["mode"]
    wrong = httpx.post(monitored.urls[0] + "/v1/search", json={"query": QUERY}, timeout=30,
                       headers={"Authorization": "Bearer not-a-key"})
    assert wrong.status_code == 401

    samples = monitored.samples()
    assert value(samples, "clearance_http_request_duration_seconds_count",
                 route="/v1/search", method="POST", status="200", outcome="ok") >= 1
    assert value(samples, "clearance_http_refusals_total", route="/v1/search",
                 reason="unauthenticated") >= 1
    assert value(samples, "clearance_answers_total", mode=mode, tenant="default") >= 1
    # The second permission check ran and dropped nothing: the series exists, at 0.
    assert "clearance_permission_dropped_hits_total" in samples
    assert value(samples, "clearance_permission_dropped_hits_total") == 0
    assert value(samples, "clearance_embedding_duration_seconds_count") >= 2
    assert value(samples, "clearance_search_duration_seconds_count") >= 2
    assert value(samples, "clearance_audit_append_duration_seconds_count", store="file") >= 3
    assert value(samples, "clearance_audit_append_failures_total") == 0
    assert value(samples, "clearance_index_documents") > 0
    assert value(samples, "clearance_index_version_age_seconds") >= 0
    sources = {labels["source"] for labels, _ in samples["clearance_source_documents"]}
    assert {"hr", "engineering"} <= sources
    assert sum(v for _, v in samples["clearance_source_documents"]) == value(
        samples, "clearance_index_documents")


def test_labels_name_no_user_key_or_query(monitored: Monitored):
    for user in ("alice", "dave"):
        response = monitored.call(user, "POST", "/v1/search", json={"query": QUERY})
        assert response.status_code == 200
    keys = monitored.call("alice", "GET", "/v1/admin/keys")  # alice may not: 403
    assert keys.status_code == 403
    text = monitored.scrape()
    samples = monitored.samples()
    label_values = {v for family in samples.values() for labels, _ in family
                    for v in labels.values()}
    secrets = {"alice", "dave", QUERY, TOKEN, *monitored.keys.values()}
    key_ids = {info.id for info in KeyStore(monitored.data_dir / "keys.json").list_keys()}
    assert key_ids
    for secret in secrets | key_ids:
        assert secret not in text, secret
        assert not any(secret in v for v in label_values), secret
    assert not any("hotels" in v.lower() for v in label_values)
    assert {"/v1/search", "/v1/admin/keys"} <= {labels.get("route") for family in
                                                  samples.values() for labels, _ in family}


def test_two_processes_counts_add_up(monitored: Monitored):
    def readyz_count(replica: int) -> float:
        return value(monitored.samples(replica), "clearance_http_request_duration_seconds_count",
                     route="/readyz")

    before = readyz_count(0)
    assert readyz_count(1) == before  # either process serves the same sum
    for replica, times in ((0, 3), (1, 2)):
        for _ in range(times):
            assert httpx.get(monitored.urls[replica] + "/readyz", timeout=30).status_code == 200
    assert readyz_count(0) == before + 5
    assert readyz_count(1) == before + 5
