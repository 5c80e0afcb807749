"""Server-sent events: an answer already checked and audited, sent in pieces.

The whole answer is composed, its citations validated and its audit record written before the
first byte is sent, so a stream never shows text that is later withdrawn and never ends half
way with an error. Pieces are a few words each, so clients render progressively.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from fastapi.responses import StreamingResponse

_PIECE = re.compile(r"\S+\s*|\s+")
WORDS_PER_PIECE = 4


def text_pieces(text: str) -> Iterator[str]:
    """`text` in pieces of a few words, whitespace kept, so joining them gives `text` back."""
    words = _PIECE.findall(text)
    for i in range(0, len(words), WORDS_PER_PIECE):
        yield "".join(words[i:i + WORDS_PER_PIECE])


def sse_event(data: Any, event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"{head}data: {payload}\n\n"


def sse_response(events: Iterator[str], request_id: str) -> StreamingResponse:
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                 "X-Request-ID": request_id},
    )
