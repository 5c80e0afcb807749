"""A follow-up question made standalone before retrieval, by rules or by the LLM.

"And the hotel limit?" after "What is the daily meal limit when travelling?" is searched as
"What is the hotel limit when travelling?". Without an LLM the rules below decide: a question
is a follow-up when it opens like one ("and ...", "what about ..."), leans on a pronoun with
few words of its own, or has almost no content words; its new words then replace the phrase
of the previous question they stand for (the one ending in the same noun), or its pronoun is
replaced by the previous question's topic, or failing both it is appended. A question that
stands alone is searched as asked. With an LLM, the LLM rewrites; on any failure or an
unusable reply, the rules do.
"""

from __future__ import annotations

import logging
import re

from answers.conversation import Question, StandaloneMethod
from answers.llm import LlmClient, LlmError, LlmMessage
from answers.redaction import Redactor

log = logging.getLogger(__name__)

def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'&.-]*[A-Za-z0-9]|[A-Za-z0-9]")
_LEADS = re.compile(
    r"^\s*(?:(?:and|but|also|or|so)\s+)?(?:what|how)\s+about\s+|"
    r"^\s*(?:and|but|also|or)\s+(?:(?:what|how)\s+(?:is|are|was|were|about)\s+)?|"
    r"^\s*(?:same|likewise)\s+for\s+", re.IGNORECASE)
_PRONOUNS = _words("it its they them their theirs this that these those there he she him "
                      "her his")
_STOP = _words("""a an the of in on at to for from by with about as is are was were be been
do does did can could should would will shall may might must have has had what which who whom
whose when where why how much many long and or but also so if than then please tell me us we
i you your our my any some there here not no yes just only same each every get gets after
before""")
_CODE = re.compile(r"[A-Za-z]{0,3}\d+[A-Za-z]?")  # L3, Q4, SEV1, 2026
_MAX_FOLLOW_UP_WORDS = 3  # content words a question leaning on a pronoun may have of its own
MAX_STANDALONE_CHARS = 500

REWRITE_PROMPT = """\
Rewrite the user's last question so that it can be understood without the conversation: \
replace pronouns and elliptical phrases with what they refer to in the earlier questions. \
If it already stands alone, repeat it unchanged. Do not answer it. Reply with the question \
only, on one line."""


def content_words(text: str) -> list[str]:
    """The words of `text` that carry its topic: not function words, not pronouns."""
    return [w for w in _WORD.findall(text)
            if w.lower() not in _STOP and w.lower() not in _PRONOUNS]


def is_follow_up(text: str) -> bool:
    """Whether `text` reads as depending on an earlier question."""
    if _LEADS.match(text):
        return True
    words = [w.lower() for w in _WORD.findall(text)]
    content = content_words(text)
    if any(w in _PRONOUNS for w in words) and len(content) <= _MAX_FOLLOW_UP_WORDS:
        return True
    return len(content) <= 1


def rules_standalone(question: Question, history_turns: int) -> str:
    """The question made standalone from the last `history_turns` earlier user turns, each
    of them made standalone in turn; the question as asked when it stands alone."""
    previous: str | None = None
    for earlier in [*question.earlier_questions(history_turns), question.text]:
        previous = earlier.strip() if previous is None else combine(previous, earlier.strip())
    return previous or question.text


def combine(previous: str, follow_up: str) -> str:
    """`follow_up` read in the context of `previous`; itself when it is no follow-up."""
    if not is_follow_up(follow_up):
        return follow_up
    rest = _LEADS.sub("", follow_up).strip().rstrip("?.! ")
    new = content_words(rest)
    clause = bool(re.match(r"(?:who|what|when|where|which|why|how)\b", rest, re.IGNORECASE))
    if new and not clause:  # a noun phrase ("the hotel limit"), not a question of its own
        replaced = _replace_code(previous, new) or _replace_phrase(previous, new)
        if replaced is not None:
            return replaced
    topic = _topic(previous)
    words = _WORD.findall(rest)
    pronoun = next((w for w in words if w.lower() in _PRONOUNS), None)
    if topic and pronoun is not None:
        resolved = _LEADS.sub("", _resolve(follow_up, pronoun, topic)).strip()
        return resolved[:1].upper() + resolved[1:]
    if not new:
        return previous
    return f"{previous.rstrip('?.! ')}, {rest}?"


def _resolve(follow_up: str, pronoun: str, topic: str) -> str:
    """`follow_up` with `pronoun` replaced by `topic`; "those claims" by the topic up to
    "claims" when the pronoun is a determiner of a word of the topic."""
    after = re.search(rf"\b{re.escape(pronoun)}\s+(\w+)", follow_up)
    words = topic.split()
    if after and after.group(1).lower() in (w.lower() for w in words):
        cut = [w.lower() for w in words].index(after.group(1).lower()) + 1
        return follow_up[:after.start()] + " ".join(words[:cut]) + follow_up[after.end():]
    return re.sub(rf"\b{re.escape(pronoun)}\b", topic, follow_up, count=1)


def _replace_code(previous: str, new: list[str]) -> str | None:
    """`previous` with a code such as L3, Q3 or 2025 replaced by the follow-up's only word
    when that is a code too ("What about L5?"); None otherwise."""
    if len(new) != 1 or not _CODE.fullmatch(new[0]):
        return None
    codes = [m for m in _WORD.finditer(previous) if _CODE.fullmatch(m.group())]
    if not codes:
        return None
    last = codes[-1]
    return previous[:last.start()] + new[0] + previous[last.end():]


def _replace_phrase(previous: str, new: list[str]) -> str | None:
    """`previous` with the phrase ending in the follow-up's last word replaced by the
    follow-up's words, as many words as the follow-up has ("meal limit" by "hotel limit");
    None when no phrase ends so."""
    head = new[-1].lower()
    tokens = re.findall(r"\w[\w'&.-]*\w|\w|\W+", previous)
    ends = [i for i, t in enumerate(tokens) if t.lower() == head]
    if not ends:
        return None
    end = ends[-1]
    start = end
    while (start - 2 >= 0 and (end - start) // 2 < len(new) - 1 and tokens[start - 1].isspace()
           and _is_content(tokens[start - 2])):
        start -= 2
    phrase = " ".join(new)
    return "".join([*tokens[:start], phrase, *tokens[end + 1:]])


def _is_content(token: str) -> bool:
    return bool(_WORD.fullmatch(token)) and token.lower() not in _STOP \
        and token.lower() not in _PRONOUNS


def _topic(text: str) -> str | None:
    """The longest run of content words in `text` (the last of equal runs): what it is about."""
    best: list[str] = []
    run: list[str] = []
    for word in _WORD.findall(text):
        if word.lower() in _STOP or word.lower() in _PRONOUNS:
            run = []
            continue
        run.append(word)
        if len(run) >= len(best):
            best = list(run)
    return " ".join(best) or None


class StandaloneRewriter:
    """Makes each question standalone before retrieval: by the LLM when one is configured
    (its own client, with a small timeout and token limit), else, or when it fails, by rules."""

    def __init__(self, *, history_turns: int, llm: LlmClient | None, redactor: Redactor) -> None:
        self._history_turns = history_turns
        self._llm = llm
        self._redactor = redactor

    def rewrite(self, question: Question) -> Question:
        """The question with its standalone text and how it was made."""
        earlier = question.earlier_questions(self._history_turns)
        if not earlier:
            return question.made_standalone(question.text, "as_asked")
        if self._llm is not None:
            text = self._ask_llm(earlier, question.text)
            if text is not None:
                method: StandaloneMethod = "as_asked" if text == question.text.strip() else "llm"
                return question.made_standalone(text, method)
        text = rules_standalone(question, self._history_turns)
        return question.made_standalone(text, "as_asked" if text == question.text.strip()
                                        else "rules")

    def _ask_llm(self, earlier: list[str], text: str) -> str | None:
        """The LLM's standalone question, or None when it failed or its reply shares no content
        word with the questions asked (an answer, or a question of its own making).
        Personal data is redacted from what is sent, as in the answer's prompt."""
        assert self._llm is not None

        def clean(s: str) -> str:
            return self._redactor.redact(s).text

        lines = [f"Earlier question: {clean(q)}" for q in earlier]
        messages = [LlmMessage("system", REWRITE_PROMPT),
                    LlmMessage("user", "\n".join([*lines, f"Last question: {clean(text)}"]))]
        try:
            reply = self._llm.complete(messages)
        except LlmError as exc:
            log.warning("standalone question by rules, the LLM failed: %s", exc)
            return None
        rewritten = _one_line(reply.text)
        asked = {w.lower() for q in [*earlier, text] for w in content_words(q)}
        if (not rewritten or len(rewritten) > MAX_STANDALONE_CHARS
                or not asked & {w.lower() for w in content_words(rewritten)}):
            # Empty, too long, or about nothing that was asked: not a rewrite of the question.
            log.warning("standalone question by rules, the LLM's reply was unusable")
            return None
        return rewritten

    def close(self) -> None:
        if self._llm is not None:
            self._llm.close()


def _one_line(text: str) -> str:
    """The reply's first non-empty line, without quotes or a label such as "Question:"."""
    line = next((s.strip() for s in text.splitlines() if s.strip()), "")
    line = re.sub(r"^(?:standalone\s+)?question\s*:\s*", "", line, flags=re.IGNORECASE)
    return line.strip().strip("\"'“”").strip()
