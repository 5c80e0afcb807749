"""What a use case refuses, in words an adapter passes on: HTTP maps them to a status, the CLI
to its exit code.

AdminError
├── NotFound   the thing named does not exist (404)
├── Conflict   it cannot be done to the state as it is (409)
└── Invalid    the request itself is wrong (422)
"""

from __future__ import annotations


class AdminError(Exception):
    """A use case refused the request; the message says what was wrong and what to do."""

    status = 400


class NotFound(AdminError):
    status = 404


class Conflict(AdminError):
    status = 409


class Invalid(AdminError):
    status = 422
