"""From permitted evidence to an answer: abstain, extract, or ask the LLM and check its citations.

The order of decisions, each one visible in the answer's `mode`:
1. no permitted chunk's embedding is at least `retrieval.min_score` similar to the query, or
   the answerability decision (answers/answerability.py) finds that the permitted evidence does
   not answer the question: abstain, saying who keeps the nearest sources the caller can read
   and how to ask for access; the LLM is not asked;
2. no LLM configured, or generation paused by an operator: the extractive answer;
3. the LLM fails or is too slow: the extractive answer ("fallback"), never an error;
4. the LLM says the sources do not answer: abstain;
5. the LLM cites nothing it was given: the extractive answer ("replaced");
6. the LLM cites some sources it was not given: those markers removed ("repaired");
7. otherwise the LLM's answer ("generated").
Every answer and snippet then loses invisible characters and links to hosts off the allowlist.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping

from answers.answer import SNIPPET_CHARS, Answer, Citation, Mode, Usage, abstain_text
from answers.answerability import AnswerabilityJudge
from answers.citations import check_citations
from answers.conversation import Question
from answers.extractive import Candidate, answer_from_ranked, extractive_answer, snippet
from answers.llm import LlmClient, LlmError
from answers.prompt import build_prompt, says_not_in_sources
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
                 pause: PauseSwitch, owners: Mapping[str, str] | None = None,
                 judge: AnswerabilityJudge | None = None) -> None:
        self._embedder = embedder
        self._retrieval = retrieval
        self._settings = settings
        self._llm = llm
        self._redactor = redactor
        self._pause = pause
        self._owners = dict(owners or {})  # source name -> its owner
        gating = settings.answerability == "model"
        self._judge = (judge or AnswerabilityJudge(embedder)) if gating else None

    def compose(self, question: Question, hits: list[ChunkHit], *,
                permitted: Callable[[ChunkPayload], bool]) -> Answer:
        """The answer to `question` from `hits`, which the caller may read (`permitted` is the
        caller's permission check, applied again where the prompt is built)."""
        min_score = self._retrieval.min_score
        evidence = [h for h in hits if h.similarity >= min_score]
        if not evidence:
            return self._abstain(evidence, "no permitted chunk reaches retrieval.min_score")
        judgement = None
        if self._judge is not None:
            judgement = self._judge.decide(question.search_text(), hits, min_score=min_score)
            if not judgement.answerable:
                return self._abstain(evidence, f"answerability {judgement.probability:.3f} "
                                     f"below the threshold {self._judge.threshold:.3f}",
                                     answerability=judgement.probability)
        ranked = [u.candidate for u in judgement.units] if judgement is not None else None
        p = judgement.probability if judgement is not None else None
        if self._llm is None:
            return self._extractive(question, evidence, "extractive", ranked=ranked,
                                    answerability=p)
        if self._pause.current().generation_paused:
            return self._extractive(question, evidence, "extractive", notice=GENERATION_PAUSED,
                                    ranked=ranked, answerability=p)

        prompt = build_prompt(question, evidence, permitted=permitted, redactor=self._redactor)
        try:
            reply = self._llm.complete(prompt.messages)
        except LlmError as exc:
            log.warning("LLM fallback: %s", exc)
            return self._extractive(question, evidence, "fallback", notice=LLM_UNAVAILABLE,
                                    detail=str(exc), ranked=ranked, answerability=p)
        usage = (Usage(reply.prompt_tokens, reply.completion_tokens or 0)
                 if reply.prompt_tokens is not None else None)
        if says_not_in_sources(reply.text):
            return self._abstain(evidence, "the LLM said the sources do not answer",
                                 usage=usage, answerability=p)
        checked = check_citations(self._safe(reply.text), len(evidence))
        if not checked.sources:
            return self._extractive(question, evidence, "replaced", notice=LLM_UNCITED,
                                    detail="no valid citation", usage=usage, ranked=ranked,
                                    answerability=p)
        citations = [Citation(new, evidence[old - 1], self._safe(_chunk_snippet(evidence[old - 1])))
                     for new, old in enumerate(checked.sources, start=1)]
        mode: Mode = "repaired" if checked.invalid else "generated"
        detail = f"removed citations of sources not given: {checked.invalid}" if checked.invalid \
            else None
        return Answer(checked.text, mode, citations, usage=usage, detail=detail,
                      answerability=p)

    def _extractive(self, question: Question, evidence: list[ChunkHit], mode: Mode, *,
                    notice: str | None = None, detail: str | None = None,
                    usage: Usage | None = None, ranked: list[Candidate] | None = None,
                    answerability: float | None = None) -> Answer:
        if ranked is not None:  # ranked once by the answerability decision
            answer = answer_from_ranked(ranked, evidence,
                                        max_sentences=self._retrieval.answer_sentences)
        else:
            answer = extractive_answer(
                question.search_text(),
                evidence,
                embedder=self._embedder,
                min_score=self._retrieval.min_score,
                max_sentences=self._retrieval.answer_sentences,
            )
        if answer.mode == "abstain":  # no sentence of the evidence is long enough to quote
            return self._abstain(evidence, "no quotable sentence in the evidence")
        citations = [dataclasses.replace(c, snippet=self._safe(c.snippet))
                     for c in answer.citations]
        return Answer(self._safe(answer.text), mode, citations, usage=usage, notice=notice,
                      detail=detail, answerability=answerability)

    def _abstain(self, evidence: list[ChunkHit], detail: str, *, usage: Usage | None = None,
                 answerability: float | None = None) -> Answer:
        """Not found in the sources the caller can access, with whom to ask: the owners of the
        sources of the nearest permitted evidence (nothing about any other document)."""
        owners = sorted({self._owners[h.payload.source] for h in evidence
                         if h.payload.source in self._owners})
        return Answer(abstain_text(owners, self._settings.access_requests), "abstain", [],
                      usage=usage, detail=detail, answerability=answerability)

    def _safe(self, text: str) -> str:
        return safe_answer_text(text, self._settings.link_allowlist)

    def warm_up(self) -> None:
        """Load the answerability decision's word lists and make the LLM client ready before
        the first question (see LlmClient.warm_up)."""
        if self._judge is not None:
            self._judge.warm_up()
        if self._llm is not None:
            self._llm.warm_up()

    def close(self) -> None:
        if self._llm is not None:
            self._llm.close()


def _chunk_snippet(hit: ChunkHit) -> str:
    text = " ".join(hit.payload.text.split())
    return snippet([text]) if len(text) > SNIPPET_CHARS else text
