"""The composition root: builds every long-lived part of the service from the settings.

The control plane's state (keys, policy, ACL overrides, quarantine, pause, job records, the
audit log) lives in files under data_dir by default, or with `database_url` in PostgreSQL,
shared by several replicas over one index; `open_*` below pick the one the settings name.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from answers.compose import AnswerComposer
from answers.llm import LlmClient
from answers.redaction import Redactor
from answers.standalone import StandaloneRewriter
from application.admin import AdminActions
from application.answering import RetrievalService
from application.build_jobs import JobRunner
from application.config_watch import ConfigRules
from application.documents import Documents
from application.feedback import FeedbackService
from application.index_facts import IndexFactsReader
from application.provisioning import Provisioning
from application.settings import Settings
from control.acl_overrides import AclOverrides
from control.audit import AuditLog, AuditStore
from control.backend import PgStateBackend
from control.directory import Directory
from control.feedback import FeedbackStore, FileFeedback, PgFeedback
from control.jobs import JobRecords, JobStore, PgJobStore
from control.keys import KeyStore
from control.pause import PauseSwitch
from control.pg_audit import PgAuditLog
from control.pg_state import seed_document
from control.policy_store import policy_document
from control.postgres import Database
from control.provisioning import ProvisionedDirectory
from control.quarantine import Quarantine
from control.web_signouts import SignedOutSessions
from identity.oidc import OidcVerifier
from identity.oidc_login import OidcLogin
from identity.web_session import SessionSealer
from policies.enforcer import PolicyEngine
from policies.policy_file import parse_policy
from retrieval.access import DocumentAccess
from retrieval.bm25 import Bm25Encoder
from retrieval.embedder import Embedder
from retrieval.readiness import Unwritable, audit_log_problem, filesystem_problem
from retrieval.retriever import Retriever
from retrieval.store import VectorBackend
from retrieval.versions import VersionCatalog


def open_backend(settings: Settings) -> VectorBackend:
    """A Qdrant server when `qdrant_url` is set, else the embedded engine under data_dir."""
    if settings.qdrant_url:
        from retrieval.server_store import ServerBackend

        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return ServerBackend.from_url(settings.qdrant_url, api_key=key)
    from retrieval.edge_store import EdgeBackend

    return EdgeBackend(settings.index_dir)


def open_catalog(settings: Settings, backend: VectorBackend | None = None) -> VersionCatalog:
    return VersionCatalog(settings.data_dir / "versions", backend or open_backend(settings))


_databases: dict[str, Database] = {}
_databases_lock = threading.Lock()


def open_database(settings: Settings) -> Database:
    """The control-plane database of `database_url`, one pool per process, its schema checked
    (DatabaseError names `clearance db migrate` if it is behind)."""
    assert settings.database_url is not None
    url = settings.database_url.get_secret_value()
    with _databases_lock:
        db = _databases.get(url)
        if db is None:
            db = Database(url)
            try:
                db.check_schema()
            except Exception:
                db.close()
                raise
            _databases[url] = db
        return db


def close_databases() -> None:
    """Close every pool opened by open_database (tests, before their server stops)."""
    with _databases_lock:
        dbs = list(_databases.values())
        _databases.clear()
    for db in dbs:
        db.close()


def _state(settings: Settings, file: Path) -> Path | PgStateBackend:
    """Where one state document lives: `file`, or the control-plane database."""
    return PgStateBackend(open_database(settings)) if settings.database_url else file


def open_acl_overrides(settings: Settings) -> AclOverrides:
    """Per-document ACLs set with `clearance acl set`, shared by the server, CLI and builds."""
    return AclOverrides(_state(settings, settings.data_dir / "document_acls.json"))


def open_quarantine(settings: Settings) -> Quarantine:
    """Documents and sources out of every caller's results, shared by the server and CLI."""
    return Quarantine(_state(settings, settings.data_dir / "quarantine.json"))


def open_pause_switch(settings: Settings) -> PauseSwitch:
    """Whether generation or the whole service is paused, shared by the server and CLI."""
    return PauseSwitch(_state(settings, settings.pause_file))


def open_directory(settings: Settings) -> Directory:
    """Users deactivated: refused at their next request, whatever key or token they hold."""
    return Directory(_state(settings, settings.data_dir / "directory.json"))


def open_web_signouts(settings: Settings) -> SignedOutSessions:
    """Web page sessions signed out before they expire: refused wherever a copy turns up."""
    return SignedOutSessions(_state(settings, settings.data_dir / "web_signouts.json"))


def open_provisioned(settings: Settings) -> ProvisionedDirectory:
    """Users and groups the organisation's directory provisioned over SCIM."""
    return ProvisionedDirectory(_state(settings, settings.data_dir / "provisioning.json"),
                                settings.scim.tenant)


def open_keys(settings: Settings) -> KeyStore:
    return KeyStore(_state(settings, settings.keys_file))


def open_audit(settings: Settings) -> AuditStore:
    if settings.database_url:
        return PgAuditLog(open_database(settings), settings.audit_key)
    return AuditLog(settings.audit_log, settings.audit_key)


def open_feedback(settings: Settings) -> FeedbackStore:
    """Ratings of answers (`POST /v1/feedback`): data_dir/feedback.json, or the database."""
    if settings.database_url:
        return PgFeedback(open_database(settings))
    return FileFeedback(settings.data_dir / "feedback.json")


def open_job_store(settings: Settings) -> JobRecords:
    if settings.database_url:
        return PgJobStore(open_database(settings))
    return JobStore(settings.data_dir / "jobs")


def open_jobs(settings: Settings) -> JobRunner:
    return JobRunner(settings.config_path, settings.data_dir, open_job_store(settings))


def import_file_state(settings: Settings) -> dict[str, str]:
    """Copy the policy, keys, ACL overrides, quarantine and pause from their files into the
    database, each only where the database holds none yet (nothing is overwritten); each file
    is read and checked first, as the service would read it. What happened to each."""
    db = open_database(settings)
    files: dict[str, tuple[Path, Callable[[Path], object]]] = {
        "policy": (settings.casbin_policy, lambda p: parse_policy(p.read_text("utf-8"), p)),
        "keys": (settings.keys_file, lambda p: KeyStore(p).users()),
        "acl_overrides": (settings.data_dir / "document_acls.json",
                          lambda p: AclOverrides(p).current()),
        "quarantine": (settings.data_dir / "quarantine.json", lambda p: Quarantine(p).entries()),
        "pause": (settings.pause_file, _readable_pause),
        "directory": (settings.data_dir / "directory.json",
                      lambda p: Directory(p).all_deactivated()),
        "provisioning": (settings.data_dir / "provisioning.json",
                         lambda p: ProvisionedDirectory(p, settings.scim.tenant).current()),
    }
    outcomes: dict[str, str] = {}
    for name, (path, check) in files.items():
        if not path.exists():
            outcomes[name] = f"no file {path}, nothing to copy"
            continue
        check(path)
        raw = path.read_text("utf-8") if name == "policy" else json.loads(path.read_bytes())
        copied = seed_document(db, name, raw)
        outcomes[name] = (f"copied from {path}" if copied
                          else "the database holds it already; left as it is")
    return outcomes


def _readable_pause(path: Path) -> None:
    state = PauseSwitch(path).current()
    if state.problem is not None:
        raise ValueError(state.problem)


def open_document_access(settings: Settings, catalog: VersionCatalog) -> DocumentAccess:
    return DocumentAccess(catalog, ConfigRules(settings), open_acl_overrides(settings),
                          open_quarantine(settings))


def open_policy(settings: Settings,
                provisioned: ProvisionedDirectory | None = None) -> PolicyEngine:
    """The policy file's rules and memberships, with the memberships provisioned over SCIM."""
    return PolicyEngine(settings.casbin_model,
                        policy_document(_state(settings, settings.casbin_policy)),
                        provisioned or open_provisioned(settings))


def open_admin(settings: Settings, *, policy: PolicyEngine | None = None,
               access: DocumentAccess | None = None, catalog: VersionCatalog | None = None,
               jobs: JobRunner | None = None, audit: AuditStore | None = None,
               keys: KeyStore | None = None, pause: PauseSwitch | None = None,
               directory: Directory | None = None) -> AdminActions:
    """The admin use cases; what is not given is opened from the settings (the CLI's case: the
    index catalog only when an action needs it)."""
    opened: list[VersionCatalog] = [catalog] if catalog is not None else []

    def the_catalog() -> VersionCatalog:
        if not opened:
            opened.append(open_catalog(settings))
        return opened[0]

    return AdminActions(
        audit=audit or open_audit(settings),
        keys=keys or open_keys(settings),
        policy=policy or open_policy(settings),
        overrides=access.overrides if access else open_acl_overrides(settings),
        quarantine=access.quarantine if access else open_quarantine(settings),
        pause=pause or open_pause_switch(settings),
        catalog=the_catalog,
        sources=access.sources if access else (lambda: settings.sources),
        jobs=(lambda: jobs) if jobs else (lambda: open_jobs(settings)),
        directory=directory or open_directory(settings),
    )


@dataclass
class Services:
    """What the API needs per request, built once per app."""

    settings: Settings
    embedder: Embedder
    policy: PolicyEngine
    keys: KeyStore
    catalog: VersionCatalog
    access: DocumentAccess
    retriever: Retriever
    retrieval: RetrievalService
    jobs: JobRunner
    audit: AuditStore
    pause: PauseSwitch
    composer: AnswerComposer
    standalone: StandaloneRewriter
    admin: AdminActions
    oidc: OidcVerifier
    directory: Directory
    provisioning: Provisioning
    feedback: FeedbackService
    index_facts: IndexFactsReader
    documents: Documents
    llm: LlmClient | None = None
    # The web page's sessions and its sign-in at the identity provider ([web]); None when off.
    web_sessions: SessionSealer | None = None
    web_login: OidcLogin | None = None
    web_signouts: SignedOutSessions | None = None

    def audit_problem(self) -> Unwritable | None:
        """Why an audit record could not be written now, or None (for /healthz, and before a
        pause or resume)."""
        if self.settings.database_url:
            problem = open_database(self.settings).problem()
            return None if problem is None else Unwritable(problem)
        return audit_log_problem(self.settings.audit_log)

    def pause_problem(self) -> Unwritable | None:
        """Why the pause switch could not be changed now, or None."""
        if self.settings.database_url:
            return self.audit_problem()
        return filesystem_problem(self.settings.pause_file.parent, "the pause file")

    def close(self) -> None:
        self.oidc.close()
        if self.web_login is not None:
            self.web_login.close()
        self.composer.close()
        self.standalone.close()
        self.retriever.close()
        self.catalog.backend.close()


def _rewriting_llm(settings: Settings) -> LlmClient | None:
    """A client of the configured LLM for rewriting follow-ups, with their own small deadline
    and token limit (llama-index fixes both per client), or None without an LLM."""
    if settings.llm.provider != "openai":
        return None
    answers = settings.answers
    return LlmClient(settings.llm.model_copy(update={
        "timeout_s": min(settings.llm.timeout_s, answers.standalone_timeout_s),
        "max_tokens": answers.standalone_max_tokens}))


def open_web_login(settings: Settings) -> OidcLogin | None:
    """The page's authorization code client, for the configured issuer's audience."""
    login = settings.web.login
    if login is None or not settings.web.enabled:
        return None
    issuer = next(i for i in settings.oidc.issuers if i.issuer == login.issuer)
    return OidcLogin(login, login.resource or issuer.audience,
                     discovery_url=issuer.discovery_url)


def build_services(settings: Settings, embedder: Embedder | None = None) -> Services:
    embedder = embedder or Embedder()
    catalog = open_catalog(settings)
    access = open_document_access(settings, catalog)
    audit = open_audit(settings)
    retriever = Retriever(catalog, embedder, access, bm25=Bm25Encoder(settings.retrieval.bm25),
                          ranking=settings.retrieval.ranking())
    pause = open_pause_switch(settings)
    redactor = Redactor(settings.redaction, settings.redaction_key_file)
    llm = LlmClient(settings.llm) if settings.llm.provider == "openai" else None
    composer = AnswerComposer(embedder, settings.retrieval, settings.answers, llm=llm,
                              redactor=redactor, pause=pause,
                              owners={s.name: s.owner for s in settings.sources})
    standalone = StandaloneRewriter(history_turns=settings.answers.history_turns,
                                    llm=_rewriting_llm(settings), redactor=redactor)
    provisioned = open_provisioned(settings)
    policy = open_policy(settings, provisioned)
    keys = open_keys(settings)
    jobs = open_jobs(settings)
    directory = open_directory(settings)
    retrieval = RetrievalService(retriever, composer, audit, redactor, standalone=standalone)
    return Services(
        settings=settings,
        embedder=embedder,
        policy=policy,
        keys=keys,
        catalog=catalog,
        access=access,
        retriever=retriever,
        retrieval=retrieval,
        jobs=jobs,
        audit=audit,
        pause=pause,
        composer=composer,
        standalone=standalone,
        admin=open_admin(settings, policy=policy, access=access, catalog=catalog, jobs=jobs,
                         audit=audit, keys=keys, pause=pause, directory=directory),
        oidc=OidcVerifier(settings.oidc),
        directory=directory,
        provisioning=Provisioning(provisioned, directory, audit, settings.scim,
                                  lambda: policy.version),
        feedback=FeedbackService(open_feedback(settings), audit, redactor),
        index_facts=IndexFactsReader(catalog),
        documents=Documents(retrieval, settings.sources, settings.ingest.limits),
        llm=llm,
        web_sessions=(SessionSealer.from_file(settings.web_session_key)
                      if settings.web.enabled else None),
        web_login=open_web_login(settings),
        web_signouts=open_web_signouts(settings) if settings.web.enabled else None,
    )
