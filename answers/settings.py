"""Settings owned by answering: the LLM, redaction of personal data, and links in answers."""

from __future__ import annotations

import os
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

RedactionKind = Literal["email", "phone", "card", "iban"]


class LlmSettings(BaseModel):
    """`provider = "none"` (the default) answers extractively; "openai" is any endpoint that
    speaks the OpenAI chat completions protocol (OpenAI, vLLM, llama.cpp, Ollama, LiteLLM...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Literal["none", "openai"] = "none"
    base_url: str | None = None  # e.g. "http://localhost:8001/v1"
    model: str | None = None
    api_key: SecretStr | None = None  # or api_key_env: the name of a variable holding it
    api_key_env: str | None = None
    timeout_s: float = Field(default=20.0, gt=0, le=300)
    max_tokens: int = Field(default=512, ge=16, le=8192)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)

    @model_validator(mode="after")
    def _endpoint_complete(self) -> LlmSettings:
        if self.provider == "openai":
            missing = [k for k in ("base_url", "model") if not getattr(self, k)]
            if missing:
                raise ValueError(f"provider 'openai' needs {' and '.join(missing)}")
            if not str(self.base_url).startswith(("http://", "https://")):
                raise ValueError("base_url must start with http:// or https://")
        return self

    def key(self) -> str:
        """The API key to send; endpoints without auth accept any value."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.api_key_env:
            value = os.environ.get(self.api_key_env)
            if not value:
                raise ValueError(f"llm.api_key_env names {self.api_key_env}, which is not set")
            return value
        return "none"


class CustomPattern(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
    pattern: str = Field(min_length=1, max_length=500)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        if compiled.match(""):
            raise ValueError("must not match the empty string")
        return value


class RedactionSettings(BaseModel):
    """Personal data removed from chunk text before it goes to an external LLM, and from queries
    before they are written to the audit log (which keeps a keyed hash for correlation)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    kinds: tuple[RedactionKind, ...] = ("email", "phone", "card", "iban")
    custom: tuple[CustomPattern, ...] = ()


class AnswerSettings(BaseModel):
    """What answers may contain and how much of a conversation interprets the question."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Hosts that links and images in answers may point to; "*.example.com" covers subdomains.
    # Everything else is removed (link text kept, images dropped).
    link_allowlist: tuple[str, ...] = ()
    # Earlier user turns a follow-up is made standalone from before retrieval
    # (answers/standalone.py); 0 searches every question as asked. All earlier turns go to
    # the LLM that answers.
    history_turns: int = Field(default=2, ge=0, le=10)
    # "model": answer only when answers/answerability.py judges that the permitted evidence
    # answers the question; "similarity": whenever a chunk reaches retrieval.min_score (the
    # behaviour before the decision, kept for comparison).
    answerability: Literal["model", "similarity"] = "model"
    # What an abstention tells the caller to do to get access, e.g. "open a ticket at
    # https://it.example.com/access"; by default, to ask the documents' owner or an admin.
    access_requests: str | None = Field(default=None, min_length=1, max_length=300)
    # The LLM's rewrite of a follow-up, when an LLM is configured: its own deadline (at most
    # llm.timeout_s) and token limit; past either, the rules rewrite instead.
    standalone_timeout_s: float = Field(default=3.0, gt=0, le=60)
    standalone_max_tokens: int = Field(default=64, ge=16, le=512)
