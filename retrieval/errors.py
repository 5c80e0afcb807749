"""Errors raised by retrieval.

RetrievalError
├── StoreError          the vector store failed, or a version is missing or incompatible
├── NoIndexError        no index version has been built yet
└── AuditWriteError     an audit record could not be written (the request must fail)
"""


class RetrievalError(Exception):
    """Base class of retrieval errors."""


class StoreError(RetrievalError):
    """The vector store failed, or a version is missing or incompatible."""


class NoIndexError(RetrievalError):
    """No index version has been built yet: run `clearance ingest`."""


class AuditWriteError(RetrievalError):
    """An audit record could not be written; the request must not be answered."""
