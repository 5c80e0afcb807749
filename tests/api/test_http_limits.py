"""HTTP limits on a real uvicorn over loopback: the body size cap (by Content-Length and by the
bytes of a chunked body), the header, keep-alive and body deadlines, and the connection cap.

Limits are configured small so each test is quick; every wait is a hang guard (30 s), never an
assertion about how fast the machine is.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest

from api.logs import RepeatFilter
from application.settings import Settings
from retrieval.embedder import Embedder
from tests.api.limits_world import (
    GUARD_S,
    Ingested,
    audit_records,
    closed_by_peer,
    connect,
    ingest_example,
    is_open,
    read_response,
    serve_with,
)

CAP = 4096
LIMITS = f"""
[server]
max_body_bytes = {CAP}
header_timeout_s = 1
keep_alive_timeout_s = 1
body_timeout_s = 1
"""


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Ingested:
    return ingest_example(tmp_path_factory.mktemp("http-limits"), embedder)


@pytest.fixture(scope="module")
def served(ingested: Ingested, embedder: Embedder) -> Iterator[tuple[str, Settings]]:
    with serve_with(ingested, embedder, LIMITS) as deployed:
        yield deployed


def _headers(ingested: Ingested) -> dict[str, str]:
    return {"Authorization": f"Bearer {ingested.keys['alice']}"}


def test_a_declared_length_over_the_cap_is_refused_before_the_body_is_sent(
        served: tuple[str, Settings]):
    url, settings = served
    with connect(url) as sock:
        # 50 MB announced, not one byte of it sent: the answer cannot have waited for the body.
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n")
        status, headers, body = read_response(sock)
        assert status == 413
        assert headers["connection"] == "close"
        error = json.loads(body)
        assert f"limit is {CAP} bytes" in error["error"]["message"]  # the OpenAI route's shape
        assert error["request_id"] == headers["x-request-id"]
        assert closed_by_peer(sock)
    record = next(r for r in audit_records(settings) if r["request_id"] == error["request_id"])
    assert record["outcome"] == "refused" and record["address"] == "127.0.0.1"


def test_a_chunked_body_over_the_cap_is_refused_by_its_bytes(served: tuple[str, Settings],
                                                             ingested: Ingested):
    url, _ = served
    piece = b" " * 1000
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(10))
    with connect(url) as sock:
        sock.sendall(b"POST /v1/search HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"Content-Type: application/json\r\nAuthorization: "
                     + _headers(ingested)["Authorization"].encode() + b"\r\n\r\n"
                     + chunks + b"0\r\n\r\n")
        status, _, body = read_response(sock)
    assert status == 413
    assert f"limit is {CAP} bytes" in json.loads(body)["error"]  # the plain shape


def test_bodies_under_the_cap_pass_whole_or_chunked(served: tuple[str, Settings],
                                                    ingested: Ingested):
    url, _ = served
    query = json.dumps({"query": "How many days of annual leave do we get?", "top_k": 3})
    padded = query + " " * (CAP - 100 - len(query))  # valid JSON, most of the cap
    with httpx.Client(base_url=url, headers=_headers(ingested), timeout=GUARD_S) as client:
        whole = client.post("/v1/search", content=padded,
                            headers={"Content-Type": "application/json"})
        chunked = client.post("/v1/search", content=iter([padded[:2000].encode(),
                                                          padded[2000:].encode()]),
                              headers={"Content-Type": "application/json"})
        over = client.post("/v1/search", content=padded + " " * 200,
                           headers={"Content-Type": "application/json"})
    assert whole.status_code == 200, whole.text
    assert whole.json()["results"]
    assert chunked.status_code == 200, chunked.text
    assert chunked.json()["results"] == whole.json()["results"]
    assert over.status_code == 413


def test_a_connection_that_never_finishes_its_headers_is_closed(served: tuple[str, Settings]):
    url, _ = served
    with connect(url) as silent, connect(url) as trickle:
        silent.sendall(b"GET /healthz HTT")  # and nothing more
        # One byte at a time keeps data coming, which must not extend the deadline.
        started = time.monotonic()
        closed = False
        header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 10_000
        for byte in header:
            try:
                trickle.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            if not is_open(trickle):
                closed = True
                break
            if time.monotonic() - started > GUARD_S:
                break
            time.sleep(0.05)
        assert closed, "a trickled header was let run for the whole guard"
        assert closed_by_peer(silent)
    assert httpx.get(f"{url}/healthz", timeout=GUARD_S).status_code == 200


def test_an_idle_kept_alive_connection_is_closed(served: tuple[str, Settings]):
    url, _ = served
    with connect(url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = read_response(sock)
        assert status == 200 and headers.get("connection") != "close"
        assert closed_by_peer(sock)


def test_a_body_that_stops_arriving_gets_408(served: tuple[str, Settings], ingested: Ingested):
    url, _ = served
    with connect(url) as sock:
        sock.sendall(b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\nAuthorization: "
                     + _headers(ingested)["Authorization"].encode() + b"\r\n\r\n{\"query\"")
        status, headers, body = read_response(sock)
        assert status == 408 and headers["connection"] == "close"
        assert "not received within 1 s" in json.loads(body)["error"]
        assert closed_by_peer(sock)


def _held(url: str) -> int:
    """Connections the server (a thread of this process) has accepted and holds now."""
    port = int(url.rsplit(":", 1)[1])
    return sum(1 for c in psutil.Process().net_connections("tcp")
               if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED)


def _held_once_accepted(url: str, expected: int) -> int:
    """Connections held once the server has taken in `expected` (or the hang guard is up)."""
    deadline = time.monotonic() + GUARD_S
    while _held(url) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return _held(url)


def _open_idle(url: str) -> socket.socket:
    """A connection that sends a cut-short request line once connected, without waiting for
    the server to accept it."""
    sock = socket.socket()
    sock.setblocking(False)
    sock.connect_ex(("127.0.0.1", int(url.rsplit(":", 1)[1])))
    return sock


def _send_when_connected(socks: list[socket.socket], data: bytes) -> None:
    pending = list(socks)
    deadline = time.monotonic() + GUARD_S
    while pending and time.monotonic() < deadline:
        for sock in list(pending):
            try:
                sock.send(data)
                pending.remove(sock)
            except BlockingIOError:
                pass
        time.sleep(0.01)


def test_past_the_cap_new_connections_wait_while_callers_are_served(ingested: Ingested,
                                                                    embedder: Embedder):
    cap = 5
    toml = f"[server]\nmax_connections = {cap}\nheader_timeout_s = 300\n"
    with serve_with(ingested, embedder, toml) as (url, _), connect(url) as kept:
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(kept)[0] == 200
        idle = [connect(url) for _ in range(cap - 1)]
        try:
            for sock in idle:
                sock.sendall(b"GET /v1/sea")
            with connect(url) as waiting:  # the kernel's backlog completes the handshake
                waiting.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                time.sleep(2)
                assert _held(url) <= cap
                # The caller already connected is served; the one past the cap waits.
                kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_response(kept)[0] == 200
                waiting.setblocking(False)
                with pytest.raises(BlockingIOError):
                    waiting.recv(1, socket.MSG_PEEK)
                waiting.setblocking(True)
                idle.pop().close()  # a slot frees: the waiting one is taken in
                assert read_response(waiting)[0] == 200
        finally:
            for sock in idle:
                sock.close()


def test_a_new_caller_past_the_cap_pushes_out_the_oldest_idle_opener(ingested: Ingested,
                                                                     embedder: Embedder):
    cap = 10
    # Room is made once an opener has waited half of this; all time out only at the end of it.
    toml = f"[server]\nmax_connections = {cap}\nheader_timeout_s = 40\n"
    with serve_with(ingested, embedder, toml) as (url, _):
        idle = [connect(url) for _ in range(cap)]
        try:
            for sock in idle:
                sock.sendall(b"GET /v1/sea")
            assert _held_once_accepted(url, cap) == cap
            assert httpx.get(f"{url}/healthz", timeout=2 * GUARD_S).status_code == 200
            # One idle opener made room; the others are still held, not timed out.
            assert sum(map(is_open, idle)) == cap - 1
        finally:
            for sock in idle:
                sock.close()


def test_idle_openers_waiting_past_the_cap_are_taken_in_turn_and_closed(ingested: Ingested,
                                                                         embedder: Embedder):
    cap = 20
    toml = f"[server]\nmax_connections = {cap}\nheader_timeout_s = 2\n"
    with serve_with(ingested, embedder, toml) as (url, _):
        idle = [_open_idle(url) for _ in range(3 * cap)]
        try:
            _send_when_connected(idle, b"GET /v1/sea")
            held = []
            deadline = time.monotonic() + GUARD_S
            while any(map(is_open, idle)) and time.monotonic() < deadline:
                held.append(_held(url))
                time.sleep(0.1)
            assert not any(map(is_open, idle))
            assert 0 < max(held) <= cap
            assert httpx.get(f"{url}/healthz", timeout=GUARD_S).status_code == 200
        finally:
            for sock in idle:
                sock.close()


@pytest.mark.parametrize("exempt", [False, True], ids=["capped", "trusted-proxy"])
def test_past_its_cap_one_address_is_refused_and_others_are_served(ingested: Ingested,
                                                                    embedder: Embedder,
                                                                    exempt: bool):
    # 127.0.0.2 is another address of loopback: a flood from elsewhere than the caller.
    per_address = 3
    toml = (f"[server]\nmax_connections_per_address = {per_address}\nheader_timeout_s = 300\n"
            + ('forwarded_allow_ips = ["127.0.0.2/32"]\n' if exempt else ""))
    with serve_with(ingested, embedder, toml) as (url, _):
        # Accepted in the order they connect. One over the cap may be reset before connect()
        # returns (the server's thread accepts and resets it at once): refused all the same.
        idle = [_connect_or_reset(url, "127.0.0.2") for _ in range(per_address + 2)]
        try:
            if exempt:  # every caller behind a proxy shares its address
                held = [sock for sock in idle if sock is not None]
                assert len(held) == len(idle)
                assert _held_once_accepted(url, len(idle)) == len(idle)
            else:  # the last two are over the cap
                held = [sock for sock in idle[:per_address] if sock is not None]
                assert len(held) == per_address
                assert all(sock is None or closed_by_peer(sock) for sock in idle[per_address:])
            assert all(map(is_open, held))
            with connect(url) as other:  # from 127.0.0.1
                other.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_response(other)[0] == 200
            held[-1].close()  # a slot of 127.0.0.2 frees: a new one from it is let in
            status, deadline = None, time.monotonic() + GUARD_S
            while status is None and time.monotonic() < deadline:
                try:
                    with connect(url, source="127.0.0.2") as again:
                        again.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                        status = read_response(again)[0]
                except (ConnectionError, BrokenPipeError):  # the close had not reached it yet
                    time.sleep(0.1)
            assert status == 200
        finally:
            for sock in idle:
                if sock is not None:
                    sock.close()


def _connect_or_reset(url: str, source: str) -> socket.socket | None:
    """A connection from `source` that has sent a cut-short request line, or None if the
    server reset it while it was being made."""
    try:
        sock = connect(url, source=source)
    except ConnectionResetError:
        return None
    with contextlib.suppress(ConnectionResetError, BrokenPipeError):
        sock.sendall(b"GET /v1/sea")  # if reset just after, closed_by_peer sees it
    return sock


def test_a_flood_of_one_log_line_is_let_through_once_per_interval():
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logger = logging.getLogger("tests.flooded")
    logger.propagate = False
    logger.addHandler(Keep())
    logger.addFilter(RepeatFilter(logging.WARNING, interval_s=3600))
    for i in range(100):
        logger.warning("Invalid HTTP request received.")
        logger.warning("socket.accept() out of system resource\nsocket: fd=%d", i)
    logger.error("Exception in ASGI application")  # above the level held back: always kept
    logger.error("Exception in ASGI application")
    assert [r.getMessage().split("\n")[0] for r in seen] == [
        "Invalid HTTP request received.", "socket.accept() out of system resource",
        "Exception in ASGI application", "Exception in ASGI application"]
