"""FAKE: a stand-in for an external LLM that speaks the OpenAI chat completions protocol.

The real thing (a hosted model, or vLLM / llama.cpp on a GPU box) cannot run in CI, so tests of
the LLM path talk to this loopback server instead. It records every request it receives, so a
test can read the exact prompt the service sent, and it answers with whatever the test's
`reply` function returns, after an optional delay, or with an HTTP error.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[list[dict[str, Any]]], str]


def sources_in(messages: list[dict[str, Any]]) -> list[int]:
    """The source numbers the service put in the prompt."""
    return [int(n) for n in re.findall(r'<source n="(\d+)"', messages[-1]["content"])]


def cite_every_source(messages: list[dict[str, Any]]) -> str:
    """A well-behaved model: one sentence per source, each citing it."""
    return " ".join(f"Source {n} says something relevant [{n}]." for n in sources_in(messages))


@dataclass
class FakeLlm:
    url: str  # base URL, ending in /v1
    reply: Reply = cite_every_source
    delay_s: float = 0.0
    status: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)

    def prompts(self) -> list[str]:
        """Every message text of every request, joined: what left the service."""
        return ["\n".join(m["content"] for m in r["messages"]) for r in self.requests]


@contextmanager
def fake_llm(reply: Reply = cite_every_source) -> Iterator[FakeLlm]:
    state = FakeLlm(url="", reply=reply)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append(body)
            if state.delay_s:
                time.sleep(state.delay_s)
            if state.status != 200:
                self._send(state.status, {"error": {"message": "fake failure",
                                                    "type": "server_error"}})
                return
            text = state.reply(body["messages"])
            self._send(200, {
                "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 123, "completion_tokens": 45, "total_tokens": 168},
            })

        def _send(self, status: int, data: dict[str, Any]) -> None:
            raw = json.dumps(data).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
