"""The re-check after search fails closed on anything but a non-empty ACL sharing a principal."""

from __future__ import annotations

import pytest

from retrieval.scope import Scope

SCOPE = Scope(user="bob", principals=frozenset({"user:bob", "group:staff"}), policy_version="x")


@pytest.mark.parametrize(
    ("acl", "allowed"),
    [
        (["group:staff"], True),
        (["group:hr", "user:bob"], True),
        (["group:hr"], False),
        ([], False),
        (None, False),
        ("group:staff", False),  # a string is not a list of principals
        ([None, 3], False),
        (["GROUP:staff"], False),  # principals are case-sensitive
    ],
)
def test_can_read(acl, allowed):
    assert SCOPE.can_read(acl) is allowed
