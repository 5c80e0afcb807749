"""Server start-up removes what a killed build left behind, and nothing else."""

from __future__ import annotations

from pathlib import Path

from api.app import create_app
from application.services import build_services
from application.settings import load_settings
from retrieval.embedder import Embedder
from tests.conftest import LiveServer


def test_start_up_removes_abandoned_builds(tmp_path: Path, embedder: Embedder):
    config = tmp_path / "clearance.toml"
    config.write_text('data_dir = "data"\n')
    settings = load_settings(config)
    index = settings.index_dir
    (index / ".building-v20260101T000000-dead").mkdir(parents=True)
    (index / ".building-v20260101T000000-dead" / "segment.bin").write_bytes(b"half")
    (index / "unrelated-note.txt").write_text("kept")

    app = create_app(settings, build_services(settings, embedder=embedder))
    with LiveServer(app):
        pass

    assert not (index / ".building-v20260101T000000-dead").exists()
    assert (index / "unrelated-note.txt").exists()
