"""Search and chat for one caller: retrieve within their scope, answer, and audit every call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from retrieval.answerer import Answer, extractive_answer
from retrieval.audit import AuditLog
from retrieval.embedder import Embedder
from retrieval.errors import RetrievalError
from retrieval.retriever import Retrieved, Retriever
from retrieval.scope import Scope
from retrieval.settings import RetrievalSettings


@dataclass(frozen=True)
class ChatResult:
    retrieved: Retrieved
    answer: Answer


def _now() -> str:
    return datetime.now(UTC).isoformat()


class RetrievalService:
    """The one place that turns a scoped question into hits or an answer plus an audit record.

    The audit record is written before the result is returned; if it cannot be written,
    AuditWriteError propagates and the caller must not be answered.
    """

    def __init__(
        self,
        retriever: Retriever,
        embedder: Embedder,
        audit: AuditLog,
        settings: RetrievalSettings,
    ) -> None:
        self._retriever = retriever
        self._embedder = embedder
        self._audit = audit
        self._settings = settings

    def search(self, query: str, *, scope: Scope, top_k: int, request_id: str) -> Retrieved:
        """Permitted chunks for the query, audited."""
        base = self._base_record("search", request_id, scope, query)
        retrieved = self._retrieve(base, query, scope=scope, top_k=top_k)
        outcome = "ok" if retrieved.hits else "empty"
        self._audit.append({**base, **_result_fields(retrieved), "outcome": outcome})
        return retrieved

    def chat(self, message: str, *, scope: Scope, top_k: int, request_id: str) -> ChatResult:
        """An extractive answer from permitted chunks, or an abstention, audited."""
        base = self._base_record("chat", request_id, scope, message)
        retrieved = self._retrieve(base, message, scope=scope, top_k=top_k)
        answer = extractive_answer(
            message,
            retrieved.hits,
            embedder=self._embedder,
            min_score=self._settings.min_score,
            max_sentences=self._settings.answer_sentences,
        )
        cited = {c.hit.point_id for c in answer.citations}
        self._audit.append(
            {
                **base,
                **_result_fields(retrieved),
                "cited": sorted(cited),
                "mode": answer.mode,
                "outcome": "abstain" if answer.mode == "abstain" else "ok",
            }
        )
        return ChatResult(retrieved, answer)

    def record_refusal(self, action: str, request_id: str, reason: str) -> None:
        """Audit a call refused before retrieval (no key, bad key, invalid input)."""
        self._audit.append(
            {
                "time": _now(),
                "request_id": request_id,
                "action": action,
                "caller": None,
                "outcome": "refused",
                "reason": reason,
            }
        )

    def _retrieve(self, base: dict[str, Any], query: str, *, scope: Scope, top_k: int) -> Retrieved:
        try:
            return self._retriever.search(query, scope=scope, top_k=top_k)
        except RetrievalError as exc:
            self._audit.append({**base, "outcome": "error", "reason": str(exc)})
            raise

    @staticmethod
    def _base_record(action: str, request_id: str, scope: Scope, query: str) -> dict[str, Any]:
        return {
            "time": _now(),
            "request_id": request_id,
            "action": action,
            "caller": f"user:{scope.user}",
            "principals": sorted(scope.principals),
            "denied": list(scope.denied),
            "policy_version": scope.policy_version,
            "query": query,
        }


def _result_fields(retrieved: Retrieved) -> dict[str, Any]:
    return {
        "index_version": retrieved.index_version,
        "results": [
            {
                "chunk_id": h.point_id,
                "doc_id": h.payload.get("doc_id"),
                "doc_version": h.payload.get("doc_version"),
                "score": round(h.score, 6),
            }
            for h in retrieved.hits
        ],
        "dropped": retrieved.dropped,
    }
