"""Admin routes for the pause switch: generation (answers become extractive) or the service."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from api.deps import RequestIdDep, ServicesDep, require
from retrieval.pause import PauseState, Target
from retrieval.scope import Scope

router = APIRouter(prefix="/v1/admin")

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


@router.get("/pause")
def pause_state(scope: CanPause, services: ServicesDep) -> dict[str, Any]:
    return pause_fields(services.pause.current())


@router.post("/pause")
def pause(body: PauseBody, scope: CanPause, services: ServicesDep,
          request_id: RequestIdDep) -> dict[str, Any]:
    services.pause.pause(body.target, by=f"user:{scope.user}", reason=body.reason)
    services.audit_admin("pause", caller=f"user:{scope.user}", request_id=request_id,
                         target=body.target, reason=body.reason)
    return pause_fields(services.pause.current())


@router.post("/resume")
def resume(body: ResumeBody, scope: CanPause, services: ServicesDep,
           request_id: RequestIdDep) -> dict[str, Any]:
    if services.pause.resume(body.target) is None:
        raise HTTPException(status_code=409, detail=f"{body.target} is not paused")
    services.audit_admin("resume", caller=f"user:{scope.user}", request_id=request_id,
                         target=body.target)
    return pause_fields(services.pause.current())
