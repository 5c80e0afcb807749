"""The one wrapper around an external LLM: any OpenAI-compatible endpoint, through llama-index.

A call either returns text within `timeout_s` or raises LlmError; the caller falls back to an
extractive answer. The deadline is enforced here as well as in the HTTP client, because a
server that trickles bytes never trips a read timeout. It counts from the call, and nothing of
the client is built inside a call: the client is constructed up front, and `warm_up()` (run at
start-up) loads the code that llama-index and openai import on first use (about 0.6 s) and opens
a connection, so the first question after a restart gets the same deadline as every other.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from dataclasses import dataclass

from answers.settings import LlmSettings
from observability import metrics

log = logging.getLogger(__name__)

# /readyz waits at most this long for the endpoint to answer.
PROBE_S = 2.0
# The warm-up request waits at most this long (or timeout_s if shorter): start-up must not hang
# on a model that does not answer.
WARM_UP_S = 10.0


class LlmError(Exception):
    """The LLM did not answer in time or answered with an error."""


@dataclass(frozen=True)
class LlmReply:
    text: str
    prompt_tokens: int | None
    completion_tokens: int | None


@dataclass(frozen=True)
class LlmMessage:
    role: str  # "system", "user" or "assistant"
    content: str


class LlmClient:
    def __init__(self, settings: LlmSettings) -> None:
        from llama_index.llms.openai_like import OpenAILike

        self.settings = settings
        self.model = str(settings.model)
        self._llm = OpenAILike(
            model=self.model,
            api_base=str(settings.base_url),
            api_key=settings.key(),
            timeout=settings.timeout_s,
            max_retries=0,  # a retry would double the wait; the fallback answers instead
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
            is_chat_model=True,
            is_function_calling_model=False,
            context_window=32768,
        )
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=8,
                                                           thread_name_prefix="llm")

    def complete(self, messages: list[LlmMessage]) -> LlmReply:
        """The model's answer, within `timeout_s` of this call (time queued for a worker
        included); LlmError otherwise."""
        started = time.monotonic()
        future = self._pool.submit(self._chat, messages)
        try:
            reply = future.result(timeout=self.settings.timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            metrics.record_llm("timeout", time.monotonic() - started)
            raise LlmError(f"no answer from {self.model} within {self.settings.timeout_s:g} s"
                           ) from None
        except LlmError:
            metrics.record_llm("error", time.monotonic() - started)
            raise
        except Exception as exc:  # the client raises many types: all mean "no answer"
            metrics.record_llm("error", time.monotonic() - started)
            raise LlmError(f"{self.model} failed: {type(exc).__name__}: {exc}"[:500]) from exc
        metrics.record_llm("ok", time.monotonic() - started, reply.prompt_tokens,
                           reply.completion_tokens)
        return reply

    def warm_up(self) -> bool:
        """Send one tiny request ("Reply with OK."), so that the client's lazily imported
        code is loaded and a connection is open before the first question. Never raises: a
        model that is down or slow is logged, and questions fall back until it answers."""
        started = time.monotonic()
        future = self._pool.submit(self._ping)
        try:
            future.result(timeout=min(self.settings.timeout_s, WARM_UP_S))
        except concurrent.futures.TimeoutError:
            log.warning("LLM %s did not answer the warm-up request within %g s; answers fall "
                        "back to extractive until it does", self.model,
                        min(self.settings.timeout_s, WARM_UP_S))
            return False
        except Exception as exc:  # the client raises many types: all mean "not answering"
            log.warning("LLM %s failed the warm-up request (%s: %s); answers fall back to "
                        "extractive until it answers", self.model, type(exc).__name__,
                        str(exc)[:300])
            return False
        log.info("LLM %s warmed up in %.2f s", self.model, time.monotonic() - started)
        return True

    def problem(self) -> str | None:
        """Why the endpoint cannot be reached now, or None (for /readyz): an HTTP answer to
        GET <base_url>/models counts as reachable (costing no tokens matters more here than
        what it lists; not every server lists models), unless it is a gateway's 502, 503 or
        504. Names neither the address nor the key."""
        import httpx

        url = str(self.settings.base_url).rstrip("/") + "/models"
        try:
            response = httpx.get(url, timeout=min(self.settings.timeout_s, PROBE_S),
                                 headers={"Authorization": f"Bearer {self.settings.key()}"})
        except httpx.HTTPError as exc:
            return f"the LLM endpoint cannot be reached ({type(exc).__name__})"
        if response.status_code in (502, 503, 504):
            return f"the LLM endpoint answers {response.status_code}"
        return None

    def _ping(self) -> None:
        from llama_index.core.llms import ChatMessage

        # llama-index sends its own max_tokens whatever a call asks: the prompt keeps it short.
        self._llm.chat([ChatMessage(role="user", content="Reply with OK.")])

    def _chat(self, messages: list[LlmMessage]) -> LlmReply:
        from llama_index.core.llms import ChatMessage

        response = self._llm.chat([ChatMessage(role=m.role, content=m.content)
                                   for m in messages])
        text = response.message.content
        if not isinstance(text, str) or not text.strip():
            raise LlmError(f"{self.model} returned an empty answer")
        usage = getattr(response.raw, "usage", None)
        return LlmReply(text, getattr(usage, "prompt_tokens", None),
                        getattr(usage, "completion_tokens", None))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
