"""A question and the conversation it belongs to."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    content: str


@dataclass(frozen=True)
class Question:
    text: str  # the last user message
    history: tuple[Turn, ...] = ()  # earlier user and assistant turns, oldest first

    def retrieval_text(self, history_turns: int) -> str:
        """What is searched for: the question after the last few earlier user turns, so a
        follow-up ("and for contractors?") is read in the context it was asked in."""
        earlier = [t.content for t in self.history if t.role == "user"]
        kept = earlier[-history_turns:] if history_turns else []
        return "\n".join([*kept, self.text])
