"""The service's settings: one TOML file, composed once here from each package's section.

Resolution: `--config PATH`, else `CLEARANCE_CONFIG`, else `./clearance.toml`. Relative paths in
the file are relative to the file. Environment variables `CLEARANCE_<KEY>` override top-level
keys (e.g. `CLEARANCE_QDRANT_URL`), so a container can point the same file at a server.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from answers.settings import AnswerSettings, LlmSettings, RedactionSettings
from identity.oidc import OidcSettings
from identity.oidc_login import WebLoginSettings
from ingest.errors import ConfigError
from ingest.settings import IngestSettings, SourceSettings
from policies import DEFAULT_MODEL, DEFAULT_POLICY
from policies.principals import DEFAULT_TENANT, is_tenant
from retrieval.settings import RetrievalSettings

DEFAULT_CONFIG = "clearance.toml"


class RateLimitSettings(BaseModel):
    """Token buckets per key and per client address (0 = off), and the failed-key lockout.

    Buckets live in the memory of one process: N worker processes allow N times the limit.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_key_per_minute: int = Field(default=0, ge=0)
    per_key_burst: int = Field(default=20, ge=1)
    per_address_per_minute: int = Field(default=0, ge=0)
    per_address_burst: int = Field(default=40, ge=1)
    # Wrong or malformed keys from one address in a window before it gets 429 (0 = never).
    failed_keys: int = Field(default=10, ge=0)
    # The lockout window, and how long repeated refusals are counted into one audit record.
    window_s: int = Field(default=60, ge=1)


class ServerSettings(BaseModel):
    """Where `clearance serve` listens, and what one request or connection may cost."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_body_bytes: int = Field(default=1_048_576, ge=1)
    header_timeout_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0)
    keep_alive_timeout_s: int = Field(default=5, ge=1)
    max_connections: int = Field(default=1024, ge=1)
    # Connections one client address may hold (0: no cap); proxies in forwarded_allow_ips are
    # exempt.
    max_connections_per_address: int = Field(default=256, ge=0)
    # Proxies whose X-Forwarded-For is believed; none by default, so a client cannot pick the
    # address it is rate-limited as.
    forwarded_allow_ips: list[str] = Field(default_factory=list)
    rate_limits: RateLimitSettings = RateLimitSettings()


class FrontendSettings(BaseModel):
    """A trusted front-end (`[[frontends]]`): its key's user NAME, the header naming the
    signed-in user, and the domain when that header is an e-mail address (api/frontends.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    user_header: str = Field(default="X-OpenWebUI-User-Email", pattern=r"^[A-Za-z0-9-]{1,64}$")
    email_domain: str | None = None


class ScimSettings(BaseModel):
    """`[scim]`: how users and groups provisioned over SCIM become principals
    (application/provisioning.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: str = DEFAULT_TENANT  # the tenant the provisioned memberships are in
    # With a domain, a userName is an address of it and the user is its local part; without,
    # the userName must itself be a user name (letters, digits, '.', '_', '-').
    user_domain: str | None = None

    @model_validator(mode="after")
    def _tenant(self) -> ScimSettings:
        if not is_tenant(self.tenant):
            raise ValueError(f"{self.tenant!r} is not a tenant name (lower-case letters, "
                             "digits, '_' and '-')")
        return self


class ReportSettings(BaseModel):
    """`[report]`: the thresholds of `clearance report` (application/report.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # A source whose newest file changed longer ago than this is listed as stale.
    stale_after_days: int = Field(default=180, ge=1)
    # A caller's refusals on the last day are a rise when at least rise_min and more than
    # rise_factor times their daily median over the history_days before it.
    rise_factor: float = Field(default=3.0, gt=0)
    rise_min: int = Field(default=5, ge=1)
    history_days: int = Field(default=28, ge=1, le=366)
    # A question abstained is shown in words only when this many different callers asked it.
    gap_min_askers: int = Field(default=2, ge=1)
    top: int = Field(default=10, ge=1, le=1000)  # rows in each ranked list


class MetricsSettings(BaseModel):
    """`[metrics]`: GET /metrics in the Prometheus text format, off by default.

    On only with a `token` (at least 32 characters), which a scraper sends as
    `Authorization: Bearer <token>`; API keys do not open it. Every process of a deployment
    records into `data_dir/metrics` (observability/metrics.py), so any of them serves the sum.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: SecretStr | None = None

    @model_validator(mode="after")
    def _long_token(self) -> MetricsSettings:
        if self.token is not None and len(self.token.get_secret_value()) < 32:
            raise ValueError("token must be at least 32 characters (e.g. `openssl rand -hex "
                             "32`)")
        return self

    @property
    def enabled(self) -> bool:
        return self.token is not None


class WebSettings(BaseModel):
    """The staff web page at / (api/routes/web.py) and its sign-in (identity/web_session.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True  # off: / and /auth answer 404; the API is unchanged
    # How long a sign-in lasts at most; one with an access token ends when the token does.
    session_hours: float = Field(default=8.0, gt=0, le=168)
    # The key that seals session cookies; default data_dir/web-session.key, made on first use.
    # Replicas behind one address must share it (point them at one secret mount).
    session_key_file: Path | None = None
    # "auto": cookies are Secure when the browser reached the service over https (through a
    # proxy: with forwarded_allow_ips, from its X-Forwarded-Proto); "always" behind TLS that
    # the service cannot see.
    cookie_secure: Literal["auto", "always"] = "auto"
    # Sign-in at the organisation's identity provider (identity/oidc_login.py); unset: the
    # page offers sign-in with a personal API key only.
    login: WebLoginSettings | None = None


class Settings(BaseSettings):
    """Everything the service reads, with paths already resolved."""

    model_config = SettingsConfigDict(env_prefix="CLEARANCE_", extra="forbid", frozen=True)

    config_path: Path
    data_dir: Path
    sources: list[SourceSettings] = Field(default_factory=list)
    casbin_model: Path = DEFAULT_MODEL
    casbin_policy: Path = DEFAULT_POLICY
    qdrant_url: str | None = None
    qdrant_api_key: SecretStr | None = None
    # The key that signs audit records (control/audit.py); default data_dir/audit/audit.jsonl.key.
    # Point it outside the data directory (a secret mount) so that whoever can write the data
    # directory or read its backups cannot forge a log that verifies.
    audit_key_file: Path | None = None
    # The PostgreSQL control plane (keys, policy, overrides, quarantine, pause, jobs, audit),
    # e.g. "postgresql://clearance@db/clearance"; unset: files under data_dir. Several
    # `clearance serve` replicas over one index share it. `clearance db migrate` sets it up.
    database_url: SecretStr | None = None
    ingest: IngestSettings = IngestSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    llm: LlmSettings = LlmSettings()
    redaction: RedactionSettings = RedactionSettings()
    answers: AnswerSettings = AnswerSettings()
    server: ServerSettings = ServerSettings()
    # Identity providers whose access tokens are accepted beside API keys (identity/oidc.py).
    oidc: OidcSettings = OidcSettings()
    frontends: list[FrontendSettings] = Field(default_factory=list)
    scim: ScimSettings = ScimSettings()
    report: ReportSettings = ReportSettings()
    metrics: MetricsSettings = MetricsSettings()
    web: WebSettings = WebSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file, which is passed in as init values.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _unique_sources(self) -> Settings:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {dupes}")
        return self

    @model_validator(mode="after")
    def _login_issuer(self) -> Settings:
        login = self.web.login
        if login is not None and login.issuer not in {i.issuer for i in self.oidc.issuers}:
            raise ValueError(f"web.login.issuer {login.issuer!r} is not one of "
                             "[[oidc.issuers]]: the page's sign-in gives that issuer's access "
                             "tokens, which only a configured issuer's can be checked")
        return self

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def audit_log(self) -> Path:
        return self.data_dir / "audit" / "audit.jsonl"

    @property
    def audit_key(self) -> Path:
        return self.audit_key_file or self.audit_log.with_name(self.audit_log.name + ".key")

    @property
    def keys_file(self) -> Path:
        return self.data_dir / "keys.json"

    @property
    def pause_file(self) -> Path:
        return self.data_dir / "pause.json"

    @property
    def metrics_dir(self) -> Path:
        """Where every process of the deployment records its metrics (observability/)."""
        return self.data_dir / "metrics"

    @property
    def redaction_key_file(self) -> Path:
        return self.data_dir / "redaction.key"

    @property
    def web_session_key(self) -> Path:
        return self.web.session_key_file or self.data_dir / "web-session.key"


def config_path_from(arg: str | None) -> Path:
    """The config file named by the flag, the environment, or the default, in that order."""
    return Path(arg or os.environ.get("CLEARANCE_CONFIG") or DEFAULT_CONFIG).resolve()


def _resolve(base: Path, raw: dict[str, Any]) -> dict[str, Any]:
    """Make the file's relative paths relative to the file's directory."""
    out = dict(raw)
    for key in ("data_dir", "casbin_model", "casbin_policy", "audit_key_file"):
        if key in out:
            out[key] = base / out[key]
    out["sources"] = [
        {**s, "path": base / s["path"]} if isinstance(s, dict) and "path" in s else s
        for s in out.get("sources", [])
    ]
    web = out.get("web")
    if isinstance(web, dict) and "session_key_file" in web:
        out["web"] = {**web, "session_key_file": base / web["session_key_file"]}
    return out


def load_settings(path: Path) -> Settings:
    """Read and validate the TOML file; ConfigError says what is wrong and where."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found: create it (see README) or pass --config PATH"
        ) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    raw.setdefault("data_dir", "data")
    try:
        return Settings(config_path=path, **_resolve(path.parent, raw))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"config file {path} is invalid: {problems}") from None
