"""Each redaction pattern, what it must leave alone, custom patterns and the keyed hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from answers.redaction import Redactor, iban_valid, luhn_valid
from answers.settings import CustomPattern, RedactionSettings


@pytest.fixture
def redactor(tmp_path: Path) -> Redactor:
    return Redactor(RedactionSettings(custom=(CustomPattern(name="employee_id",
                                                            pattern=r"EMP-\d{6}"),)),
                    tmp_path / "redaction.key")


@pytest.mark.parametrize(("text", "expected", "kind"), [
    ("write to jane.doe+hr@larkspur.example.com today", "write to [EMAIL] today", "email"),
    ("call +44 20 7946 0958 now", "call [PHONE] now", "phone"),
    ("call (555) 123-4567 now", "call [PHONE] now", "phone"),
    ("call 0049 30 1234567 now", "call [PHONE] now", "phone"),
    ("call 5551234567 now", "call [PHONE] now", "phone"),
    ("card 4111 1111 1111 1111 on file", "card [CARD] on file", "card"),
    ("card 5500-0000-0000-0004 on file", "card [CARD] on file", "card"),
    ("IBAN GB82 WEST 1234 5698 7654 32 for pay", "IBAN [IBAN] for pay", "iban"),
    ("IBAN DE89370400440532013000 for pay", "IBAN [IBAN] for pay", "iban"),
    ("badge EMP-123456 was used", "badge [EMPLOYEE_ID] was used", "employee_id"),
])
def test_each_pattern_is_redacted(redactor: Redactor, text: str, expected: str, kind: str):
    result = redactor.redact(text)
    assert result.text == expected
    assert result.counts == {kind: 1}


@pytest.mark.parametrize("text", [
    "the incident on 2026-03-14 cost 1500000 EUR",  # a date and an amount
    "order 4111111111111112 shipped",  # 16 digits failing Luhn: not a card
    "reference DE89370400440532013001 sent",  # fails mod-97: not an IBAN
    "version 1.2.3 at 10.0.0.1, ticket 12345, room 4.17",
    "email the helpdesk",
])
def test_lookalikes_are_left_alone(redactor: Redactor, text: str):
    assert redactor.redact(text).text == text


def test_checksums():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("GB82WEST12345698765432") and not iban_valid("GB82WEST12345698765433")


def test_only_the_configured_kinds_apply(tmp_path: Path):
    only_email = Redactor(RedactionSettings(kinds=("email",)))
    assert only_email.redact("a@b.example +44 20 7946 0958").text == "[EMAIL] +44 20 7946 0958"
    assert Redactor(RedactionSettings(enabled=False)).redact("a@b.example").text == "a@b.example"


def test_the_hash_is_keyed_and_stable(tmp_path: Path):
    first = Redactor(RedactionSettings(), tmp_path / "k1")
    again = Redactor(RedactionSettings(), tmp_path / "k1")
    other = Redactor(RedactionSettings(), tmp_path / "k2")
    digest = first.fingerprint("salary of jane.doe@larkspur.example")
    assert digest == again.fingerprint("salary of jane.doe@larkspur.example")
    assert digest != other.fingerprint("salary of jane.doe@larkspur.example")
    assert (tmp_path / "k1").stat().st_mode & 0o077 == 0  # readable by the service only


def test_a_bad_custom_pattern_is_a_config_error():
    with pytest.raises(ValueError, match="not a valid regular expression"):
        CustomPattern(name="x", pattern="([unclosed")
    with pytest.raises(ValueError, match="empty string"):
        CustomPattern(name="x", pattern="a*")
