"""The config file: paths relative to it, environment overrides, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from application.settings import load_settings
from ingest.errors import ConfigError

GOOD = """
data_dir = "state"
casbin_policy = "policy.csv"
[[sources]]
name = "hr"
path = "docs/hr"
owner = "people-ops"
acl = [{ glob = "*", allow = ["group:hr"] }]
"""


def test_paths_are_relative_to_the_config_file(tmp_path: Path):
    config = tmp_path / "clearance.toml"
    config.write_text(GOOD)
    settings = load_settings(config)
    assert settings.data_dir == tmp_path / "state"
    assert settings.casbin_policy == tmp_path / "policy.csv"
    assert settings.sources[0].path == tmp_path / "docs" / "hr"
    assert settings.qdrant_url is None


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    config = tmp_path / "clearance.toml"
    config.write_text(GOOD)
    monkeypatch.setenv("CLEARANCE_QDRANT_URL", "http://127.0.0.1:6333")
    assert load_settings(config).qdrant_url == "http://127.0.0.1:6333"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace('"group:hr"', '"hr"'), "not principals"),
        (GOOD.replace('name = "hr"', 'name = "h r"'), "sources.0.name"),
        (GOOD + "unknown_key = 1\n", "unknown_key"),
        (GOOD + GOOD[GOOD.index("[[sources]]"):], "unique"),
        ("data_dir = [", "cannot be read"),
    ],
)
def test_invalid_config_names_the_problem(tmp_path: Path, text: str, message: str):
    config = tmp_path / "clearance.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config)


def test_missing_config_says_how_to_fix_it(tmp_path: Path):
    with pytest.raises(ConfigError, match="--config"):
        load_settings(tmp_path / "nope.toml")
