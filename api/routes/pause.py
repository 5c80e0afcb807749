"""Admin routes for the pause switch: generation (answers become extractive) or the service.

A change is written, then audited, then put in place: when the data directory is full (507) or
cannot be written (503), the answer says so and the pause state is as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from api.deps import RequestIdDep, ServicesDep, actor, require
from api.openapi import ADMIN, BODY, errors
from application.services import Services
from control.pause import PauseState, Target
from retrieval.errors import AuditWriteError, StateWriteError, is_full
from retrieval.scope import Scope

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/admin", responses=errors(*ADMIN))

CanPause = Annotated[Scope, Depends(require("answering", "pause"))]


class PauseBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    target: Target
    reason: str = Field(default="", max_length=2000)


class ResumeBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    target: Target


def pause_fields(state: PauseState) -> dict[str, Any]:
    return {
        "generation": asdict(state.generation) if state.generation else None,
        "service": asdict(state.service) if state.service else None,
        "problem": state.problem,
    }


_UNWRITABLE = errors(503, 507, when={
    503: "The data directory cannot be written (read-only, say): nothing was changed",
    507: "The data directory is full: nothing was changed"})


def _unwritable(problem: str, *, full: bool) -> HTTPException:
    if full:
        return HTTPException(status_code=507, detail=f"the data directory is full: {problem}; "
                             "nothing was changed")
    return HTTPException(status_code=503, detail=f"the data directory cannot be written: "
                         f"{problem}; nothing was changed")


@contextmanager
def _changing(services: Services) -> Iterator[None]:
    """Refuse before anything is written when the pause file or the audit log cannot be
    written; answer a write that fails anyway the same way (the switch left the state as it
    was)."""
    for problem in (services.pause_problem(), services.audit_problem()):
        if problem is not None:
            raise _unwritable(problem.message, full=problem.full)
    try:
        yield
    except StateWriteError as exc:
        log.error("%s", exc)
        raise _unwritable(str(exc), full=exc.full) from None
    except AuditWriteError as exc:
        log.error("%s", exc)
        raise _unwritable("the audit log could not be written", full=is_full(exc)) from None


@router.get("/pause")
def pause_state(scope: CanPause, services: ServicesDep) -> dict[str, Any]:
    return pause_fields(services.pause.current())


@router.post("/pause", responses={**errors(*BODY), **_UNWRITABLE})
def pause(body: PauseBody, scope: CanPause, services: ServicesDep,
          request_id: RequestIdDep) -> dict[str, Any]:
    with _changing(services):
        services.admin.pause(actor(scope, request_id), body.target, body.reason)
    return pause_fields(services.pause.current())


@router.post("/resume", responses={**errors(*BODY, 409, when={409: "It is not paused"}),
                                    **_UNWRITABLE})
def resume(body: ResumeBody, scope: CanPause, services: ServicesDep,
           request_id: RequestIdDep) -> dict[str, Any]:
    state = services.pause.current()
    if getattr(state, body.target) is None and state.problem is None:
        # Nothing to write, so 409 whatever the disk (a damaged pause file counts as paused).
        raise HTTPException(status_code=409, detail=f"{body.target} is not paused")
    with _changing(services):
        services.admin.resume(actor(scope, request_id), body.target)  # Conflict: 409
    return pause_fields(services.pause.current())
