"""Tests for API key storage and authentication."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from control.keys import KeyStore, KeyStoreError, hash_key, principal
from control.state_file import JsonStateFile


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "keys" / "keys.json")


def test_create_and_authenticate(store: KeyStore) -> None:
    key = store.create("alice")
    assert key.startswith("clr_")
    assert len(key) > 40
    assert store.authenticate(key) == "alice"
    assert principal("alice") == "user:alice"


def test_wrong_key_is_rejected(store: KeyStore) -> None:
    key = store.create("alice")
    assert store.authenticate(key + "x") is None
    assert store.authenticate("clr_" + "A" * 43) is None
    assert store.authenticate("") is None


def test_missing_file_means_no_keys(store: KeyStore) -> None:
    assert not store.path.exists()
    assert store.authenticate("clr_anything") is None


def test_keys_are_distinct_per_create(store: KeyStore) -> None:
    first, second = store.create("alice"), store.create("alice")
    assert first != second
    assert store.authenticate(first) == store.authenticate(second) == "alice"


def test_revoke(store: KeyStore) -> None:
    a1, a2, b = store.create("alice"), store.create("alice"), store.create("bob")
    assert store.revoke("alice") == 2
    assert store.authenticate(a1) is None
    assert store.authenticate(a2) is None
    assert store.authenticate(b) == "bob"
    # Already revoked keys are not counted again.
    assert store.revoke("alice") == 0
    entries = json.loads(store.path.read_text())["keys"]
    assert all(e["revoked_at"] for e in entries if e["user"] == "alice")


def test_second_instance_sees_create_and_revoke(store: KeyStore) -> None:
    # Another KeyStore on the same file stands in for the server while `store` is the CLI.
    server = KeyStore(store.path)
    assert server.authenticate("clr_x") is None
    key = store.create("alice")
    assert server.authenticate(key) == "alice"
    store.revoke("alice")
    assert server.authenticate(key) is None
    again = store.create("alice")
    assert server.authenticate(again) == "alice"


def test_unchanged_file_is_not_reread(store: KeyStore, monkeypatch: pytest.MonkeyPatch) -> None:
    key = store.create("alice")
    assert store.authenticate(key) == "alice"
    reads: list[int] = []
    original = JsonStateFile._read

    def counting_read(self: JsonStateFile[object]) -> object:
        reads.append(1)
        return original(self)

    monkeypatch.setattr(JsonStateFile, "_read", counting_read)
    for _ in range(5):
        assert store.authenticate(key) == "alice"
    assert reads == []


def test_writers_from_two_instances_keep_each_others_keys(store: KeyStore) -> None:
    other = KeyStore(store.path)
    a = store.create("alice")
    b = other.create("bob")  # other's cache never saw alice: it must reread before writing
    assert store.authenticate(a) == "alice"
    assert store.authenticate(b) == "bob"


@pytest.mark.parametrize(
    "name", ["", "a" * 65, "al ice", "alice/bob", "user:alice", "ünï", "alice\n", None]
)
def test_invalid_user_names_rejected(store: KeyStore, name: object) -> None:
    with pytest.raises(ValueError, match="invalid user name"):
        store.create(name)  # type: ignore[arg-type]
    assert not store.path.exists()


@pytest.mark.parametrize("name", ["a", "a" * 64, "alice.b_c-9", "A.B"])
def test_valid_user_names_accepted(store: KeyStore, name: str) -> None:
    assert store.authenticate(store.create(name)) == name


def test_file_mode_is_0600(store: KeyStore) -> None:
    store.create("alice")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    store.revoke("alice")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_plaintext_key_not_stored(store: KeyStore) -> None:
    key = store.create("alice")
    text = store.path.read_text()
    assert key not in text
    assert key[len("clr_") :] not in text
    assert hash_key(key) in text
    assert [p.name for p in store.path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_corrupt_file_raises_and_authenticates_nobody(store: KeyStore) -> None:
    key = store.create("alice")
    assert store.authenticate(key) == "alice"
    store.path.write_text('{"keys": [')
    with pytest.raises(KeyStoreError, match=str(store.path)):
        store.authenticate(key)
    # Still refused on the next call: the old cache must not come back.
    with pytest.raises(KeyStoreError):
        store.authenticate(key)
    with pytest.raises(KeyStoreError):
        store.create("bob")


@pytest.mark.parametrize(
    "content",
    [
        "[]",
        '{"keys": {}}',
        '{"keys": [{"id": "x", "user": "a", "hash": "zz", "created_at": "t", "revoked_at": null}]}',
        '{"keys": [{"id": "x", "user": "a", "hash": "' + "0" * 64 + '", "created_at": "t"}]}',
    ],
)
def test_malformed_file_is_corrupt(store: KeyStore, content: str) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_text(content)
    with pytest.raises(KeyStoreError, match="corrupt"):
        store.authenticate("clr_x")
