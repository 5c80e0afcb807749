"""Errors of the control plane's state.

ControlError
├── StateUnreadable   a state file exists but cannot be read; what it guards fails closed
├── StateWriteError   a change could not be written, so nothing changed
├── AuditWriteError   an audit record could not be written; the request must fail
└── AuditReadError    the audit log cannot be read back (reports, feedback checks)
"""

from __future__ import annotations

import errno


class ControlError(Exception):
    """Base class of control-plane errors."""


class StateUnreadable(ControlError):
    """A state file exists but cannot be read or parsed; the message names it and what to do."""


class StateWriteError(ControlError):
    """A state file could not be written, so the change was not made; `full` when for want of
    space (ENOSPC, EDQUOT) rather than permission or a read-only filesystem."""

    def __init__(self, message: str, *, full: bool) -> None:
        super().__init__(message)
        self.full = full


class AuditWriteError(ControlError):
    """An audit record could not be written; the request must not be answered."""


def is_full(exc: BaseException) -> bool:
    """Whether `exc`, or what caused it, is a filesystem out of space or quota."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen = seen.__cause__
    return False


class AuditReadError(ControlError):
    """The audit log cannot be read back; what needs it (a report, a rating) is refused."""
