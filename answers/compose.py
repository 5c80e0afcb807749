"""From permitted evidence to an answer: abstain, extract, or ask the LLM and check its citations.

The order of decisions, each one visible in the answer's `mode`:
1. no permitted chunk's embedding is at least `retrieval.min_score` similar to the query: abstain;
2. no LLM configured, or generation paused by an operator: the extractive answer;
3. the LLM fails or is too slow: the extractive answer ("fallback"), never an error;
4. the LLM cites nothing it was given: the extractive answer ("replaced");
5. the LLM cites some sources it was not given: those markers removed ("repaired");
6. otherwise the LLM's answer ("generated").
Every answer and snippet then loses invisible characters and links to hosts off the allowlist.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from answers.answer import ABSTAIN_ANSWER, SNIPPET_CHARS, Answer, Citation, Mode, Usage
from answers.citations import check_citations
from answers.conversation import Question
from answers.extractive import extractive_answer, snippet
from answers.llm import LlmClient, LlmError
from answers.prompt import build_prompt
from answers.redaction import Redactor
from answers.sanitize import safe_answer_text
from answers.settings import AnswerSettings
from control.pause import PauseSwitch
from retrieval.embedder import Embedder
from retrieval.payload import ChunkHit, ChunkPayload
from retrieval.settings import RetrievalSettings

log = logging.getLogger(__name__)

GENERATION_PAUSED = ("Answer generation is paused by an administrator: this answer quotes the "
                     "sources directly.")
LLM_UNAVAILABLE = ("The language model did not answer in time or failed: this answer quotes the "
                   "sources directly.")
LLM_UNCITED = ("The language model's answer cited none of the sources it was given, so it was "
               "replaced: this answer quotes the sources directly.")


class AnswerComposer:
    def __init__(self, embedder: Embedder, retrieval: RetrievalSettings,
                 settings: AnswerSettings, *, llm: LlmClient | None, redactor: Redactor,
                 pause: PauseSwitch) -> None:
        self._embedder = embedder
        self._retrieval = retrieval
        self._settings = settings
        self._llm = llm
        self._redactor = redactor
        self._pause = pause

    def compose(self, question: Question, hits: list[ChunkHit], *,
                permitted: Callable[[ChunkPayload], bool]) -> Answer:
        """The answer to `question` from `hits`, which the caller may read (`permitted` is the
        caller's permission check, applied again where the prompt is built)."""
        evidence = [h for h in hits if h.similarity >= self._retrieval.min_score]
        if not evidence:
            return Answer(ABSTAIN_ANSWER, "abstain", [])
        if self._llm is None:
            return self._extractive(question, evidence, "extractive")
        if self._pause.current().generation_paused:
            return self._extractive(question, evidence, "extractive", notice=GENERATION_PAUSED)

        prompt = build_prompt(question, evidence, permitted=permitted, redactor=self._redactor)
        try:
            reply = self._llm.complete(prompt.messages)
        except LlmError as exc:
            log.warning("LLM fallback: %s", exc)
            return self._extractive(question, evidence, "fallback", notice=LLM_UNAVAILABLE,
                                    detail=str(exc))
        usage = (Usage(reply.prompt_tokens, reply.completion_tokens or 0)
                 if reply.prompt_tokens is not None else None)
        checked = check_citations(self._safe(reply.text), len(evidence))
        if not checked.sources:
            return self._extractive(question, evidence, "replaced", notice=LLM_UNCITED,
                                    detail="no valid citation", usage=usage)
        citations = [Citation(new, evidence[old - 1], self._safe(_chunk_snippet(evidence[old - 1])))
                     for new, old in enumerate(checked.sources, start=1)]
        mode: Mode = "repaired" if checked.invalid else "generated"
        detail = f"removed citations of sources not given: {checked.invalid}" if checked.invalid \
            else None
        return Answer(checked.text, mode, citations, usage=usage, detail=detail)

    def _extractive(self, question: Question, evidence: list[ChunkHit], mode: Mode, *,
                    notice: str | None = None, detail: str | None = None,
                    usage: Usage | None = None) -> Answer:
        answer = extractive_answer(
            question.search_text(),
            evidence,
            embedder=self._embedder,
            min_score=self._retrieval.min_score,
            max_sentences=self._retrieval.answer_sentences,
        )
        if answer.mode == "abstain":  # no sentence of the evidence is long enough to quote
            return answer
        citations = [dataclasses.replace(c, snippet=self._safe(c.snippet))
                     for c in answer.citations]
        return Answer(self._safe(answer.text), mode, citations, usage=usage, notice=notice,
                      detail=detail)

    def _safe(self, text: str) -> str:
        return safe_answer_text(text, self._settings.link_allowlist)

    def warm_up(self) -> None:
        """Make the LLM client ready before the first question (see LlmClient.warm_up)."""
        if self._llm is not None:
            self._llm.warm_up()

    def close(self) -> None:
        if self._llm is not None:
            self._llm.close()


def _chunk_snippet(hit: ChunkHit) -> str:
    text = " ".join(hit.payload.text.split())
    return snippet([text]) if len(text) > SNIPPET_CHARS else text
