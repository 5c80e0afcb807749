"""Checking a model's [n] citations against the sources it was given.

Every marker must name a source that was in the prompt. Markers naming other numbers are
removed; the numbers that remain are renumbered 1, 2, ... in order of first use, so the
references at the end of an answer are exactly the sources it cites.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# [3], [1, 2] and [1][2]; a bracketed word, link text or a year such as [2026] is not a marker.
_MARKER = re.compile(r"\[\s*(\d{1,3}(?:\s*,\s*\d{1,3})*)\s*\]")


@dataclass(frozen=True)
class CheckedCitations:
    text: str  # the answer with only valid markers, renumbered
    sources: list[int]  # for each new number n (position n-1), the given source's number
    invalid: list[int]  # numbers the model used that name no given source


def check_citations(text: str, given: int) -> CheckedCitations:
    """Keep markers naming sources 1..given, renumbered; drop the rest."""
    order: dict[int, int] = {}
    invalid: list[int] = []

    def renumber(match: re.Match[str]) -> str:
        kept: list[int] = []
        for part in match.group(1).split(","):
            number = int(part)
            if 1 <= number <= given:
                new = order.setdefault(number, len(order) + 1)
                if new not in kept:
                    kept.append(new)
            elif number not in invalid:
                invalid.append(number)
        return "".join(f"[{n}]" for n in kept)

    checked = _MARKER.sub(renumber, text)
    # Removing a marker can leave a space before punctuation or a double space.
    checked = re.sub(r"[ \t]+([.,;:!?])", r"\1", checked)
    checked = re.sub(r"[ \t]{2,}", " ", checked).strip()
    return CheckedCitations(checked, list(order), invalid)
