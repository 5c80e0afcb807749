"""Errors raised by retrieval.

RetrievalError
├── StoreError          the vector store failed, or a version is missing or incompatible
├── NoIndexError        no index version has been built yet
├── AuditWriteError     an audit record could not be written (the request must fail)
└── StateWriteError     a state file (the pause switch) could not be written; nothing changed
"""

import errno


class RetrievalError(Exception):
    """Base class of retrieval errors."""


class StoreError(RetrievalError):
    """The vector store failed, or a version is missing or incompatible."""


class NoIndexError(RetrievalError):
    """No index version has been built yet: run `clearance ingest`."""


class AuditWriteError(RetrievalError):
    """An audit record could not be written; the request must not be answered."""


class StateWriteError(RetrievalError):
    """A state file could not be written, so the change was not made; `full` when for want of
    space (ENOSPC, EDQUOT) rather than permission or a read-only filesystem."""

    def __init__(self, message: str, *, full: bool) -> None:
        super().__init__(message)
        self.full = full


def is_full(exc: BaseException) -> bool:
    """Whether `exc`, or what caused it, is a filesystem out of space or quota."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen = seen.__cause__
    return False
