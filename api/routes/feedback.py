"""POST /v1/feedback: the caller rates an answer they were given (application/feedback.py)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import CallerDep, RequestIdDep, ServicesDep
from api.openapi import BODY, KEYED, errors
from api.schemas import RequestBody
from application.feedback import MAX_COMMENT_CHARS

router = APIRouter()


class FeedbackRequest(RequestBody):
    request_id: str = Field(
        pattern=r"^(chatcmpl-)?[A-Za-z0-9_-]{1,128}$",
        description="The `request_id` of a /v1/chat response, or the `id` of a "
                    "/v1/chat/completions one (chatcmpl-...)")
    rating: Literal["up", "down"]
    comment: str | None = Field(default=None, max_length=MAX_COMMENT_CHARS,
                                description="Why; stored and audited with personal data "
                                            "redacted")


class FeedbackResponse(BaseModel):
    request_id: str = Field(description="The request rated")
    rating: Literal["up", "down"]
    ratings: int = Field(description="How many times it was rated; the last rating is kept")
    at: str


@router.post("/v1/feedback", response_model=FeedbackResponse, responses=errors(
    *KEYED, *BODY, 404, 503, when={404: "No answer of the caller's has that request id (the "
                                        "same for an unknown id and for another caller's)"}))
def feedback(body: FeedbackRequest, scope: CallerDep, services: ServicesDep,
             request_id: RequestIdDep) -> dict[str, Any]:
    entry = services.feedback.rate(f"user:{scope.user}", body.request_id, body.rating,
                                   body.comment, request_id=request_id)
    return {"request_id": entry.request_id, "rating": entry.rating, "ratings": entry.ratings,
            "at": entry.at}
