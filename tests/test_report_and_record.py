"""`clearance report` and `clearance record` (and their routes) on a copy of the example
deployment: the real corpus ingested, a seeded signed audit log (tests/report_world.py), ratings
made through the real use case. Figures are checked against counts made from the seeded events,
the record against the example's own config and policy files."""

from __future__ import annotations

import json
import os
import random
import time
import tomllib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from answers.redaction import Redactor
from api.app import ROUTERS, create_app
from api.cli import main
from application.feedback import FeedbackService
from application.record import ADMIN_PERMISSIONS
from application.services import build_services, open_audit, open_catalog, open_feedback
from application.settings import Settings, load_settings
from control.keys import KeyStore
from ingest.pipeline import build_index_version
from retrieval.embedder import Embedder
from tests.api.test_route_permissions import _permissions
from tests.conftest import REPO, LiveServer, shared_parser, write_example_config
from tests.report_world import TENANT_OF, Retrieval, World, fingerprint, seed

pytestmark = pytest.mark.e2e

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Seeded:
    def __init__(self, settings: Settings, world: World, down: Retrieval, up: Retrieval,
                 documents: Counter[str]) -> None:
        self.settings, self.world, self.down, self.up = settings, world, down, up
        self.documents = documents

    @property
    def config(self) -> str:
        return str(self.settings.config_path)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Seeded:
    root = tmp_path_factory.mktemp("report")
    config = write_example_config(root)
    config.write_text(config.read_text("utf-8") + "\n[report]\nstale_after_days = 200\n",
                      encoding="utf-8")
    old = time.time() - 400 * 86400  # the legal source's files last changed 400 days ago
    for path in (root / "docs" / "legal").rglob("*"):
        os.utime(path, (old, old))
    settings = load_settings(config)
    catalog = open_catalog(settings)
    build_index_version(settings.sources, settings.ingest, catalog=catalog, embedder=embedder,
                        parser=shared_parser())
    current = catalog.current()
    assert current is not None
    documents = Counter(e.source for e in catalog.documents(current).values())
    audit = open_audit(settings)
    world = seed(audit, datetime.now(UTC).date(), random.Random(17))
    answered = [r for r in world.retrievals if r.action == "chat" and r.outcome == "ok"]
    down, up = answered[0], answered[1]
    rate = FeedbackService(open_feedback(settings), audit,
                           Redactor(settings.redaction, settings.redaction_key_file)).rate
    rate(f"user:{down.user}", down.request_id, "up", None, request_id="f0")
    rate(f"user:{down.user}", down.request_id, "down", "wrong; mail eve@example.com",
         request_id="f1")  # replaces the first
    rate(f"user:{up.user}", f"chatcmpl-{up.request_id}", "up", None, request_id="f2")
    return Seeded(settings, world, down, up, documents)


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


def _report(seeded: Seeded, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    return json.loads(_cli(capsys, "report", "--json", "--config", seeded.config, *args))


def test_usage_by_day_tenant_and_source_and_answer_modes(seeded: Seeded, capsys):
    report = _report(seeded, capsys)
    retrievals = seeded.world.retrievals
    days = {d["day"]: (d["requests"], d["chats"], d["abstained"])
            for d in report["usage"]["days"]}
    assert days == seeded.world.expected_days() and len(days) == 10
    assert report["usage"]["by_tenant"] == dict(Counter(TENANT_OF[r.user] for r in retrievals))
    by_source = {s: {"requests": sum(s in r.sources for r in retrievals),
                     "results": sum(r.sources.count(s) for r in retrievals)}
                 for s in {s for r in retrievals for s in r.sources}}
    assert report["usage"]["by_source"] == by_source
    chats = [r for r in retrievals if r.action == "chat"]
    abstained = sum(r.outcome == "abstain" for r in chats)
    assert report["answers"]["chats"] == len(chats)
    assert report["answers"]["modes"] == {"abstain": abstained,
                                          "extractive": len(chats) - abstained}
    assert report["answers"]["abstention_rate"] == round(abstained / len(chats), 4)
    assert report["answers"]["ratings"] == {"up": 1, "down": 1}


def test_content_gaps_are_redacted_and_worded_only_when_several_asked(seeded: Seeded, capsys):
    report = _report(seeded, capsys)
    groups: dict[str, list[Retrieval]] = {}
    for r in seeded.world.retrievals:
        if r.action == "chat" and r.outcome == "abstain":
            groups.setdefault(r.query, []).append(r)
    gaps = report["content_gaps"]
    assert len(gaps) == min(10, len(groups))
    top = gaps[0]  # asked three times, by two callers: shown in words, with its owners
    assert (top["question"], top["asked"], top["askers"]) == (
        "Where is the parking policy?", 3, 2)
    assert top["nearest_sources"] == ["handbook"] and top["owners"] == ["people-ops"]
    for gap in gaps:
        asked = next(g for q, g in groups.items() if fingerprint(q)[:16] == gap["query_hmac"])
        assert gap["asked"] == len(asked)
        assert gap["askers"] == len({r.user for r in asked})
        assert (gap["question"] is None) == (gap["askers"] < 2)
    markdown = _cli(capsys, "report", "--config", seeded.config)
    section = markdown.split("## Content gaps")[1].split("## Answers rated")[0]
    assert "Where is the parking policy?" in section and "Salary of" not in section
    assert not [q for q, g in groups.items() if len({r.user for r in g}) < 2 and q in section]
    assert not [u for u in TENANT_OF if u in section]  # who asked is never shown


def test_down_rated_answers_with_their_cited_documents(seeded: Seeded, capsys):
    [row] = _report(seeded, capsys)["down_rated"]
    down = seeded.down
    assert row["request_id"] == down.request_id and row["question"] == down.query
    assert row["cited"] == [{"doc_id": f"{down.sources[0]}:doc0.md", "doc_version": "v0"}]
    assert row["comment"] == "wrong; mail [EMAIL]"


def test_unusual_access(seeded: Seeded, capsys):
    unusual = _report(seeded, capsys)["unusual_access"]
    expected = sorted(seeded.world.refusals_by_subject().items(), key=lambda kv: (-kv[1], kv[0]))
    assert [(r["caller"], r["refusals"]) for r in unusual["most_refused"]] == expected[:10]
    assert unusual["denied_hits"] == [{"caller": "user:dave", "dropped": 2, "requests": 1}]
    rising = seeded.world.rising(3.0, 5, 28)
    # bob: 4 today, under the minimum; the address: 7 against no history at all.
    assert rising == {"user:mallory", "address:10.0.0.9"}
    assert {r["caller"] for r in unusual["rises"]} == rising


def test_stale_sources_and_the_window(seeded: Seeded, capsys):
    report = _report(seeded, capsys, "--since", datetime.now(UTC).date().isoformat())
    assert [d["day"] for d in report["usage"]["days"]] == [datetime.now(UTC).date().isoformat()]
    rows = {s["name"]: s for s in report["sources"]}
    assert {n: r["stale"] for n, r in rows.items()} == {
        n: n == "legal" for n in ("handbook", "hr", "engineering", "finance", "legal")}
    assert {n: r["documents"] for n, r in rows.items()} == dict(seeded.documents)


def test_plot_writes_a_png(seeded: Seeded, capsys, tmp_path: Path):
    chart = tmp_path / "usage.png"
    _cli(capsys, "report", "--config", seeded.config, "--plot", str(chart))
    data = chart.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    assert main(["report", "--config", seeded.config, "--plot", str(tmp_path / "no" / "x.png")
                 ]) == 1
    assert "cannot write the chart" in capsys.readouterr().err


def test_the_record_lists_every_source_owner_admin_and_outbound_endpoint(seeded: Seeded, capsys):
    example = tomllib.loads((REPO / "clearance.toml").read_text("utf-8"))
    admins = {line.split(",")[1].strip() for line in
              (REPO / "examples" / "policy.csv").read_text("utf-8").splitlines()
              if line.startswith("g,") and line.rstrip().endswith("role:admin")}
    record = json.loads(_cli(capsys, "record", "--json", "--config", seeded.config))
    assert [(s["name"], s["owner"], s["path"]) for s in record["sources"]] == [
        (s["name"], s["owner"], s["path"].removeprefix("examples/")) for s in example["sources"]]
    assert {s["name"]: s["documents"] for s in record["sources"]} == dict(seeded.documents)
    assert all(s["last_ingested"] for s in record["sources"])
    assert {(a["resource"], a["action"]) for a in record["admin"]} == set(ADMIN_PERMISSIONS)
    assert all(set(a["holders"]) == admins for a in record["admin"]) and admins == {"user:root"}
    assert record["may_pause"] == sorted(admins) and record["outbound"] == []
    markdown = _cli(capsys, "record", "--config", seeded.config)
    for s in example["sources"]:
        assert f"| {s['name']} | " in markdown and f" | {s['owner']} | " in markdown
    assert "p, role:admin, *, *" in markdown and "Log: data/audit/audit.jsonl;" in markdown


def test_the_record_names_the_llm_and_identity_provider_when_configured(seeded: Seeded,
                                                                         capsys, tmp_path):
    config = tmp_path / "clearance.toml"
    text = Path(seeded.config).read_text("utf-8").replace(
        'data_dir = "data"', f'data_dir = "{seeded.settings.data_dir}"')
    text = text.replace('"docs/', f'"{seeded.settings.data_dir.parent}/docs/').replace(
        '"policy.csv"', f'"{seeded.settings.casbin_policy}"')
    config.write_text(text + '\n[llm]\nprovider = "openai"\nbase_url = "https://llm.example/v1"'
                      '\nmodel = "m-7b"\n\n[[oidc.issuers]]\nissuer = "https://idp.example"\n'
                      'audience = "clearance"\n', encoding="utf-8")
    record = json.loads(_cli(capsys, "record", "--json", "--config", str(config)))
    assert [(o["endpoint"], o["model"]) for o in record["outbound"]] == [
        ("https://llm.example/v1", "m-7b"), ("https://idp.example", None)]
    assert "email, phone, card, iban" in record["outbound"][0]["sends"]


def test_admin_permissions_are_those_the_routes_require():
    declared = {p for module in ROUTERS for route in module.router.routes
                for p in _permissions(route.dependant) if p[0] not in ("documents", "public",
                                                                        "scim")}
    assert declared == set(ADMIN_PERMISSIONS)


def test_the_routes_give_what_the_cli_gives_to_admins_only(seeded: Seeded, capsys,
                                                          embedder: Embedder):
    settings = seeded.settings
    keys = {u: KeyStore(settings.keys_file).create(u) for u in ("root", "alice")}
    cli_report = _report(seeded, capsys)
    cli_record = json.loads(_cli(capsys, "record", "--json", "--config", seeded.config))
    with LiveServer(create_app(settings, build_services(settings, embedder=embedder))) as url:
        def get(user: str, path: str) -> httpx.Response:
            return httpx.get(f"{url}{path}", headers={"Authorization": f"Bearer {keys[user]}"},
                             timeout=60)

        report = get("root", "/v1/admin/report").json()
        record = get("root", "/v1/admin/record").json()
        refused = [get("alice", p) for p in ("/v1/admin/report", "/v1/admin/record")]
        bad_days = [get("root", f"/v1/admin/report?since={d}") for d in ("0", "2026-02-30")]
    skip = {"generated_at", "records"}
    assert {k: v for k, v in report.items() if k not in skip} == {
        k: v for k, v in cli_report.items() if k not in skip}
    assert record == cli_record
    assert [r.status_code for r in refused] == [403, 403]
    assert "may not read audit" in refused[0].json()["error"]
    assert [r.status_code for r in bad_days] == [422, 422]
    assert all("since" in r.json()["error"] for r in bad_days)


def test_the_readme_shows_the_record_as_it_is(seeded: Seeded, capsys):
    readme = (REPO / "README.md").read_text("utf-8")
    markdown = _cli(capsys, "record", "--config", seeded.config)
    for section in ("## Admin actions", "## What leaves the boundary", "## Who may pause"):
        body = markdown.split(section)[1].split("\n## ")[0]
        assert section + body in readme, f"README's record is behind at {section}"
    record = json.loads(_cli(capsys, "record", "--json", "--config", seeded.config))
    for s in record["sources"]:
        assert (f"| {s['name']} | examples/{s['path']} | {s['owner']} | {s['tenant']} | "
                f"{s['documents']} | ") in readme
