"""What a use case refuses, in words an adapter passes on: HTTP maps them to a status, the CLI
to its exit code.

AdminError
├── NotFound   the thing named does not exist (404)
│   ├── NoReadableVersion  no such document version that the caller may read now (404)
│   └── OriginalGone       the version's original file is no longer at its source (404)
├── Conflict   it cannot be done to the state as it is (409)
└── Invalid    the request itself is wrong (422)
"""

from __future__ import annotations


class AdminError(Exception):
    """A use case refused the request; the message says what was wrong and what to do."""

    status = 400


class NotFound(AdminError):
    status = 404


# One message for every document version the caller cannot have: none, not theirs, not current.
NO_READABLE_VERSION = ("no document version with that id and version that you can read: open "
                       "one from a citation or a search result of the current index")


class NoReadableVersion(NotFound):
    """The same for a document that does not exist, one the caller may not read, and a version
    not in the current index; `current_version` is set only for a document they may read."""

    def __init__(self, current_version: str | None = None) -> None:
        super().__init__(NO_READABLE_VERSION)
        self.current_version = current_version


class OriginalGone(NotFound):
    pass


class Conflict(AdminError):
    status = 409


class Invalid(AdminError):
    status = 422
