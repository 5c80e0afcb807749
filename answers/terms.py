"""A question's words and how much each one says: the vocabulary of the answerability decision.

A word is lower-cased, stop words and question words are dropped, and it is stemmed (Snowball,
as BM25 does), so "owns" in a question matches "owner" in a passage. Each stem weighs by how
rare its word is in general English (wordfreq's Zipf scale, a list shipped inside the pinned
package): "telemetry" says much more about what is asked than "service". The weights come
from that fixed list and never from the index, so they cannot reveal what documents the caller
may not read contain.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

ZIPF_CEILING = 7.5  # a word this common or more weighs the minimum
MIN_WEIGHT = 0.5
MAX_WEIGHT = 8.0


def _split(words: str) -> list[str]:
    return words.split()



_WORD = re.compile(r"[0-9a-zà-öø-ÿ]+(?:[-'.][0-9a-zà-öø-ÿ]+)*")
STOP_WORDS = frozenset(_split(
    "a an the and or but if then else of to in on at by for with about against between into "
    "through during before after above below from up down out off over under again further "
    "once here there when where why how all any both each few more most other some such no "
    "nor not only own same so than too very can will just don should now is are was were be "
    "been being have has had having do does did doing i me my myself we our ours ourselves "
    "you your yours yourself yourselves he him his himself she her hers herself it its itself "
    "they them their theirs themselves what which who whom whose this that these those am "
    "would could shall may might must also get got tell please much many us let "
))

_lock = threading.Lock()


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import snowballstemmer

    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    with _lock:  # a Snowball stemmer keeps state while it stems
        return str(_stemmer().stemWord(word))


@lru_cache(maxsize=65536)
def word_weight(word: str) -> float:
    """How much a word says: 7.5 minus its Zipf frequency, within [0.5, 8] (a word wordfreq
    does not know weighs the most)."""
    from wordfreq import zipf_frequency

    zipf = zipf_frequency(word, "en")
    return min(MAX_WEIGHT, max(MIN_WEIGHT, ZIPF_CEILING - zipf))


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def question_terms(question: str) -> dict[str, float]:
    """The question's content stems, each with the weight of its rarest word."""
    terms: dict[str, float] = {}
    for word in words(question):
        if word in STOP_WORDS or len(word) < 2:
            continue
        key = stem(word)
        terms[key] = max(terms.get(key, 0.0), word_weight(word))
    return terms


def text_stems(text: str) -> frozenset[str]:
    """The stems of a passage's words, and of each part of a hyphenated word ("KESTREL-4417"
    holds "kestrel")."""
    found: set[str] = set()
    for word in words(text):
        found.add(stem(word))
        if "-" in word:
            found.update(stem(part) for part in word.split("-") if part)
    return frozenset(found)


def warm_up() -> None:
    """Load the stemmer and the word list before the first question."""
    question_terms("warm up the answerability vocabulary")
