"""A question and the conversation it belongs to."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

# as_asked: the question stands alone (or there is nothing before it)
# rules:    made standalone from the earlier user turns by answers/standalone.py's rules
# llm:      rewritten by the LLM
StandaloneMethod = Literal["as_asked", "rules", "llm"]


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    content: str


@dataclass(frozen=True)
class Question:
    text: str  # the last user message
    history: tuple[Turn, ...] = ()  # earlier user and assistant turns, oldest first
    standalone: str | None = None  # the question made standalone, once it has been
    method: StandaloneMethod = "as_asked"

    def search_text(self) -> str:
        """What is searched for and what sentences are scored against: the standalone
        question once made (answers/standalone.py), else the question as asked."""
        return self.standalone if self.standalone is not None else self.text

    def earlier_questions(self, turns: int) -> list[str]:
        """The last `turns` earlier user messages, oldest first."""
        earlier = [t.content for t in self.history if t.role == "user"]
        return earlier[-turns:] if turns else []

    def made_standalone(self, text: str, method: StandaloneMethod) -> Question:
        return replace(self, standalone=text, method=method)
