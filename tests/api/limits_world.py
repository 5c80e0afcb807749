"""The example corpus ingested once, served again for each test with its own [server] limits,
and raw loopback sockets for what a polite HTTP client never does."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from api.app import create_app
from application.services import build_services, open_catalog
from application.settings import Settings, load_settings
from control.keys import KeyStore
from ingest.pipeline import build_index_version
from retrieval.embedder import Embedder
from tests.conftest import LiveServer, shared_parser, write_example_config

# Generous hang guard: nothing here asserts how fast the server is, only what it eventually does.
GUARD_S = 30.0
USERS = ("alice", "bob")


@dataclass
class Ingested:
    root: Path
    keys: dict[str, str]


def ingest_example(root: Path, embedder: Embedder) -> Ingested:
    config = write_example_config(root)
    settings = load_settings(config)
    build_index_version(settings.sources, settings.ingest, catalog=open_catalog(settings),
                        embedder=embedder, parser=shared_parser())
    store = KeyStore(settings.keys_file)
    return Ingested(root, {user: store.create(user) for user in USERS})


_configs = 0


@contextmanager
def serve_with(ingested: Ingested, embedder: Embedder, server_toml: str
               ) -> Iterator[tuple[str, Settings]]:
    """Serve the ingested corpus with `server_toml` appended to its config ([server] ...)."""
    global _configs
    _configs += 1
    base = (ingested.root / "clearance.toml").read_text(encoding="utf-8")
    config = ingested.root / f"clearance-{_configs}.toml"
    config.write_text(base + "\n" + server_toml, encoding="utf-8")
    settings = load_settings(config)
    app = create_app(settings, build_services(settings, embedder=embedder))
    with LiveServer(app) as url:
        yield url, settings


def audit_records(settings: Settings) -> list[dict[str, Any]]:
    path = settings.audit_log
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def connect(url: str, source: str | None = None) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=GUARD_S,
                                    source_address=(source, 0) if source else None)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body: (status, headers, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a whole response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip()
               for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def closed_by_peer(sock: socket.socket, within_s: float = GUARD_S) -> bool:
    """Whether the server closes `sock` (EOF or reset) within `within_s`, reading and
    discarding whatever it sends first."""
    sock.settimeout(within_s)
    deadline = time.monotonic() + within_s
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return False


def is_open(sock: socket.socket) -> bool:
    """Whether `sock` is still open right now, without waiting."""
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)
