"""Where the control plane's state documents live: files under data_dir, or PostgreSQL.

Each domain store (KeyStore, AclOverrides, Quarantine, PauseSwitch, the policy) opens its one
document through `open_document(where, NAME, ...codec)`: given a file path it is a JsonStateFile
(the embedded default), given a PgStateBackend a row of the PostgreSQL database. The stores'
logic is the same on both; only the document differs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from control.pg_state import PgStateDocument
from control.postgres import Database
from control.state_file import JsonStateFile, StateDocument

T = TypeVar("T")


class PgStateBackend:
    """State documents as rows of one PostgreSQL database's `control_state` table."""

    def __init__(self, db: Database) -> None:
        self.db = db


def open_document(
    where: Path | PgStateBackend,
    name: str,
    *,
    parse: Callable[[Any], T],
    dump: Callable[[T], Any],
    unreadable: Callable[[Any, Exception], Exception],
    what: str,
    mode: int = 0o644,
    fallback: Callable[[Any, Exception], T] | None = None,
    text: bool = False,
) -> StateDocument[T]:
    """The document `name` (a file at `where`, or a row in `where`'s database)."""
    if isinstance(where, PgStateBackend):
        return PgStateDocument(where.db, name, parse=parse, dump=dump, unreadable=unreadable,
                               what=what, fallback=fallback)
    return JsonStateFile(Path(where), parse=parse, dump=dump, unreadable=unreadable, what=what,
                         mode=mode, fallback=fallback, text=text)
