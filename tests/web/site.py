"""A tiny web site on a free loopback port, in a thread: fixed replies by path, and a record of
every request it got (an OAuth redirect URI's query string, say).

The API itself is served the way the other tests serve it: tests/conftest.py's LiveServer
(uvicorn in a thread, with `clearance serve`'s protections), or its `deployment` fixture.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Reply:
    """What a path answers; a body of several chunks is sent chunk by chunk, each flushed, and
    the connection closed after it (an event stream)."""

    body: bytes | Sequence[bytes] = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Visit:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class LoopbackSite:
    """`with LoopbackSite() as site:` serves `site.replies` (path → Reply; others get 404)
    at `site.url(path)` and records each request in `site.visits`."""

    def __init__(self) -> None:
        self.replies: dict[str, Reply] = {}
        self.visits: list[Visit] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str = "/") -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def visits_to(self, path: str) -> list[Visit]:
        return [visit for visit in self.visits if visit.path == path]

    def __enter__(self) -> LoopbackSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                site.visits.append(Visit(self.command, parts.path, parse_qs(parts.query),
                                         dict(self.headers.items())))
                reply = site.replies.get(parts.path, Reply(b"not found\n", 404, "text/plain"))
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if isinstance(reply.body, bytes):
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                    return
                self.send_header("Connection", "close")
                self.end_headers()
                for chunk in reply.body:
                    self.wfile.write(chunk)
                    self.wfile.flush()

            do_POST = do_GET

        return Handler
