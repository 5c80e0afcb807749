"""Errors raised by retrieval.

RetrievalError
├── StoreError          the vector store failed, or a version is missing or incompatible
└── NoIndexError        no index version has been built yet

From control/errors.py: AuditWriteError (an audit record could not be written: the request
must fail) and StateWriteError (a state file could not be written; nothing changed).
"""

from control.errors import AuditWriteError, StateWriteError, is_full

__all__ = ["AuditWriteError", "NoIndexError", "RetrievalError", "StateWriteError", "StoreError",
           "is_full"]


class RetrievalError(Exception):
    """Base class of retrieval errors."""


class StoreError(RetrievalError):
    """The vector store failed, or a version is missing or incompatible."""


class NoIndexError(RetrievalError):
    """No index version has been built yet: run `clearance ingest`."""


