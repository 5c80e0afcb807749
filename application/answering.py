"""Search and chat for one caller: retrieve within their scope, answer, and audit every call.

A use case (it composes retrieval/ and answers/), so it lives in application/, not retrieval/.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from answers.answer import Answer
from answers.compose import AnswerComposer
from answers.conversation import Question
from answers.redaction import Redactor
from answers.standalone import StandaloneRewriter
from control.audit import AuditStore, failure_record
from observability import metrics
from policies.principals import split_token
from retrieval.errors import RetrievalError
from retrieval.retriever import Retrieved, Retriever
from retrieval.scope import Scope
from retrieval.store import SearchMode


@dataclass(frozen=True)
class ChatResult:
    retrieved: Retrieved
    answer: Answer


@dataclass(frozen=True)
class Fetched:
    """A document as one caller may read it now: `retrieved.hits` are its chunks of the version
    asked for (none if it is not the indexed one); `current_version` is the version indexed,
    known only where the caller may read the document (None otherwise, as for none at all)."""

    retrieved: Retrieved
    current_version: str | None


def _now() -> str:
    return datetime.now(UTC).isoformat()


class RetrievalService:
    """The one place that turns a scoped question into hits or an answer plus an audit record.

    The audit record is written before the result is returned; if it cannot be written,
    AuditWriteError propagates and the caller must not be answered. Queries are written to the
    audit log redacted, with a keyed hash of the original for correlation.
    """

    def __init__(
        self,
        retriever: Retriever,
        composer: AnswerComposer,
        audit: AuditStore,
        redactor: Redactor,
        *,
        standalone: StandaloneRewriter,
    ) -> None:
        self._retriever = retriever
        self._composer = composer
        self._audit = audit
        self._redactor = redactor
        self._standalone = standalone

    def search(self, query: str, *, scope: Scope, top_k: int, request_id: str,
               mode: SearchMode | None = None) -> Retrieved:
        """Permitted chunks for the query, ranked in `mode` (default: configured), audited."""
        base = self._base_record("search", request_id, scope, query)
        retrieved = self._retrieve(base, query, scope=scope, top_k=top_k, mode=mode)
        outcome = "ok" if retrieved.hits else "empty"
        self._audit.append({**base, **_result_fields(retrieved), "outcome": outcome})
        return retrieved

    def chat(self, question: Question, *, scope: Scope, top_k: int, request_id: str,
             mode: SearchMode | None = None) -> ChatResult:
        """An answer from permitted chunks (extractive, generated, or an abstention), audited.

        A follow-up is made standalone from the earlier user turns first (answers/standalone.py):
        that is what is searched for and audited as the query, with how it was made and the
        keyed hash of the message as asked; what can be found is still only what the scope may
        read.
        """
        question = self._standalone.rewrite(question)
        query = question.search_text()
        base = self._base_record("chat", request_id, scope, query)
        if query != question.text:
            base["standalone"] = {"method": question.method,
                                  "original_hmac": self._redactor.fingerprint(question.text)}
        retrieved = self._retrieve(base, query, scope=scope, top_k=top_k, mode=mode)
        answer = self._composer.compose(question, retrieved.hits, permitted=retrieved.permitted)
        metrics.record_answer(answer.mode, {split_token(p)[0] for p in scope.principals})
        self._audit.append(
            {
                **base,
                **_result_fields(retrieved),
                "cited": [h.point_id for c in answer.citations for h in c.hits],
                "mode": answer.mode,
                **({"mode_detail": answer.detail} if answer.detail else {}),
                **({"answerability": round(answer.answerability, 4)}
                   if answer.answerability is not None else {}),
                "outcome": "abstain" if answer.mode == "abstain" else "ok",
            }
        )
        return ChatResult(retrieved, answer)

    def fetch(self, doc_id: str, *, scope: Scope, request_id: str,
              doc_version: str | None = None, action: str = "fetch") -> Fetched:
        """One document's chunks that the scope may read now, in order, audited like a search
        (as `action`: "fetch", or the source viewer's "view" and "download"): no chunks
        ("empty") for a document that does not exist and for one the caller may not read
        alike, nor, given `doc_version`, for a version that is not the one in the current index
        (the record names the version asked for)."""
        base = self._base_record(action, request_id, scope, doc_id)
        if doc_version is not None:
            base["doc_version"] = doc_version
        try:
            retrieved = self._retriever.document(doc_id, scope=scope)
        except RetrievalError as exc:
            self._audit.append({**base, "outcome": "error", "reason": str(exc)})
            raise
        current = retrieved.hits[0].payload.doc_version if retrieved.hits else None
        if doc_version is not None and current != doc_version:
            retrieved = replace(retrieved, hits=[])
        outcome = "ok" if retrieved.hits else "empty"
        self._audit.append({**base, **_result_fields(retrieved), "outcome": outcome})
        return Fetched(retrieved, current)

    def record_refusal(self, action: str, request_id: str | None, reason: str,
                       caller: str | None = None, **details: Any) -> None:
        """Audit a call refused before retrieval (no key, bad key, invalid input, paused,
        throttled); `details` add fields, e.g. the address or an aggregated count."""
        self._audit.append(
            {
                "time": _now(),
                "request_id": request_id,
                "action": action,
                "caller": caller,
                "outcome": "refused",
                "reason": reason,
                **details,
            }
        )

    def record_failure(self, action: str, request_id: str, reason: str) -> None:
        """Audit a call that failed with an error once under way, perhaps after its record was
        written: this follow-up makes its outcome "failed" (see control/audit.py)."""
        self._audit.append(failure_record(request_id, action, reason))

    def _retrieve(self, base: dict[str, Any], query: str, *, scope: Scope, top_k: int,
                  mode: SearchMode | None) -> Retrieved:
        try:
            return self._retriever.search(query, scope=scope, top_k=top_k, mode=mode)
        except RetrievalError as exc:
            self._audit.append({**base, "outcome": "error", "reason": str(exc)})
            raise

    def _base_record(self, action: str, request_id: str, scope: Scope, query: str
                     ) -> dict[str, Any]:
        redacted = self._redactor.redact(query)
        return {
            "time": _now(),
            "request_id": request_id,
            "action": action,
            "caller": f"user:{scope.user}",
            "principals": sorted(scope.principals),
            "denied": list(scope.denied),
            "policy_version": scope.policy_version,
            **({"via": scope.via} if scope.via else {}),
            **({"claimed_groups": sorted(scope.claimed)} if scope.claimed else {}),
            "query": redacted.text,
            "query_hmac": self._redactor.fingerprint(query),
            **({"redacted": dict(redacted.counts)} if redacted.counts else {}),
        }


def _result_fields(retrieved: Retrieved) -> dict[str, Any]:
    return {
        "index_version": retrieved.index_version,
        "ranking": str(retrieved.mode),
        "results": [
            {
                "chunk_id": h.point_id,
                "doc_id": h.payload.doc_id,
                "doc_version": h.payload.doc_version,
                "score": round(h.score, 6),
            }
            for h in retrieved.hits
        ],
        "dropped": retrieved.dropped,
    }
