"""Removal of personal data: email addresses, phone numbers, card numbers, IBANs, and the
deployment's own patterns.

Applied to chunk text (and the conversation) before it is sent to an external LLM, and to
queries before they are written to the audit log. Card numbers must pass the Luhn check and
IBANs the ISO 13616 mod-97 check, so order numbers and dates are left alone. A keyed hash of the
original (HMAC-SHA256 with a key kept in the data dir) lets an operator correlate records of the
same query without the log holding it: an unkeyed hash of a short query could be guessed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from answers.settings import RedactionSettings

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}(?![A-Za-z0-9])")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d\s().\-/]{5,20}\d(?!\w)")
_DATE_LIKE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    iban = candidate.replace(" ", "")
    if not 15 <= len(iban) <= 34:
        return False
    rearranged = iban[4:] + iban[:4]
    try:
        number = int("".join(str(int(ch, 36)) for ch in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


def _card(match: re.Match[str]) -> bool:
    digits = re.sub(r"\D", "", match.group(0))
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _phone(match: re.Match[str]) -> bool:
    text = match.group(0).strip()
    digits = re.sub(r"\D", "", text)
    if not 7 <= len(digits) <= 15 or _DATE_LIKE.match(text):
        return False
    # A bare run of digits is a phone number only when long enough not to be an amount or id.
    has_separators = bool(re.search(r"[\s().\-/]", text))
    return text.startswith(("+", "00", "(")) or has_separators or len(digits) >= 10


def _always(match: re.Match[str]) -> bool:
    return True


# Order matters: IBANs and card numbers before phone numbers, which would match their digits.
_BUILT_IN: dict[str, tuple[re.Pattern[str], Callable[[re.Match[str]], bool]]] = {
    "iban": (_IBAN, lambda m: iban_valid(m.group(0))),
    "card": (_CARD, _card),
    "email": (_EMAIL, _always),
    "phone": (_PHONE, _phone),
}


@dataclass(frozen=True)
class Redacted:
    text: str
    counts: Counter[str] = field(default_factory=Counter)


class Redactor:
    """Replaces each match with [EMAIL], [PHONE], [CARD], [IBAN] or [<CUSTOM NAME>]."""

    def __init__(self, settings: RedactionSettings, key_file: Path | None = None) -> None:
        self.enabled = settings.enabled
        rules: list[tuple[str, re.Pattern[str], Callable[[re.Match[str]], bool]]] = [
            (k, *_BUILT_IN[k]) for k in _BUILT_IN if k in settings.kinds]
        rules += [(c.name, re.compile(c.pattern), _always) for c in settings.custom]
        self._rules = rules
        self._key_file = key_file
        self._key: bytes | None = None

    def redact(self, text: str) -> Redacted:
        if not self.enabled:
            return Redacted(text)
        counts: Counter[str] = Counter()
        for name, pattern, accept in self._rules:
            label = f"[{name.upper()}]"

            def replace(m: re.Match[str], name: str = name, label: str = label,
                        accept: Callable[[re.Match[str]], bool] = accept) -> str:
                if not accept(m):
                    return m.group(0)
                counts[name] += 1
                return label

            text = pattern.sub(replace, text)
        return Redacted(text, counts)

    def fingerprint(self, text: str) -> str:
        """HMAC-SHA256 of the original text under this deployment's key, for correlation."""
        return hmac.new(self._hash_key(), text.encode("utf-8"), hashlib.sha256).hexdigest()

    def _hash_key(self) -> bytes:
        if self._key is None:
            self._key = _load_or_create_key(self._key_file) if self._key_file else b""
        return self._key


def _load_or_create_key(path: Path) -> bytes:
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key.hex())
    return key
