"""The alert rules are valid (promtool check rules), each fires in its unit test (promtool test
rules ops/prometheus/alerts_test.yml), and every rule has such a test; the dashboard's queries
name only series Clearance exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

OPS = REPO / "ops"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed "
                                    "(Debian's prometheus package; .ci/run installs it)")


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)


def _rules() -> list[dict[str, object]]:
    doc = yaml.safe_load((OPS / "prometheus" / "alerts.yml").read_text("utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


@needs_promtool
def test_the_rules_are_valid():
    run = _promtool("check", "rules", "alerts.yml", cwd=OPS / "prometheus")
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in run.stdout


@needs_promtool
def test_every_rule_fires_in_its_unit_test():
    run = _promtool("test", "rules", "alerts_test.yml", cwd=OPS / "prometheus")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout


@needs_promtool
def test_the_scrape_config_is_valid(tmp_path: Path):
    # The config names the compose secret and the mounted rules: point both at copies here.
    text = (OPS / "prometheus" / "prometheus.yml").read_text("utf-8")
    (tmp_path / "token").write_text("t" * 32)
    shutil.copy(OPS / "prometheus" / "alerts.yml", tmp_path / "alerts.yml")
    text = text.replace("/run/secrets/metrics_token", str(tmp_path / "token"))
    text = text.replace("/etc/prometheus/alerts.yml", str(tmp_path / "alerts.yml"))
    (tmp_path / "prometheus.yml").write_text(text)
    run = _promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_rule_has_a_firing_case():
    tests = yaml.safe_load((OPS / "prometheus" / "alerts_test.yml").read_text("utf-8"))
    firing = {case["alertname"] for test in tests["tests"]
              for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    names = {str(rule["alert"]) for rule in _rules()}
    assert len(names) >= 8
    assert names - firing == set(), "rules without a test that makes them fire"


def test_rules_and_dashboard_use_only_exported_series():
    exported = set(re.findall(r'"(clearance_[a-z_]+)"',
                              (REPO / "observability" / "metrics.py").read_text("utf-8")))
    exported |= set(re.findall(r'"(clearance_[a-z_]+)"',
                               (REPO / "api" / "routes" / "metrics.py").read_text("utf-8")))
    dashboard = json.loads((OPS / "grafana" / "clearance-dashboard.json").read_text("utf-8"))
    exprs = [str(rule["expr"]) for rule in _rules()] + [
        t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    for expr in exprs:
        for name in re.findall(r"\bclearance_[a-z_]+", expr):
            base = re.sub(r"_(total|count|sum|bucket)$", "", name)
            assert base in exported, f"{name} in {expr!r} is not exported"
