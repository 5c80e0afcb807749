"""The composition root: builds every long-lived part of the service from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from answers.compose import AnswerComposer
from answers.llm import LlmClient
from answers.redaction import Redactor
from application.admin import AdminActions
from application.answering import RetrievalService
from application.config_watch import ConfigRules
from application.settings import Settings
from control.acl_overrides import AclOverrides
from control.audit import AuditLog
from control.keys import KeyStore
from control.pause import PauseSwitch
from control.quarantine import Quarantine
from ingest.jobs import JobRunner
from policies.enforcer import PolicyEngine
from retrieval.access import DocumentAccess
from retrieval.bm25 import Bm25Encoder
from retrieval.embedder import Embedder
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


def open_acl_overrides(settings: Settings) -> AclOverrides:
    """Per-document ACLs set with `clearance acl set`, shared by the server, CLI and builds."""
    return AclOverrides(settings.data_dir / "document_acls.json")


def open_quarantine(settings: Settings) -> Quarantine:
    """Documents and sources out of every caller's results, shared by the server and CLI."""
    return Quarantine(settings.data_dir / "quarantine.json")


def open_pause_switch(settings: Settings) -> PauseSwitch:
    """Whether generation or the whole service is paused, shared by the server and CLI."""
    return PauseSwitch(settings.pause_file)


def open_document_access(settings: Settings, catalog: VersionCatalog) -> DocumentAccess:
    return DocumentAccess(catalog, ConfigRules(settings), open_acl_overrides(settings),
                          open_quarantine(settings))


def open_policy(settings: Settings) -> PolicyEngine:
    return PolicyEngine(settings.casbin_model, settings.casbin_policy)


def open_admin(settings: Settings, *, policy: PolicyEngine | None = None,
               access: DocumentAccess | None = None, catalog: VersionCatalog | None = None,
               jobs: JobRunner | None = None, audit: AuditLog | None = None,
               keys: KeyStore | None = None, pause: PauseSwitch | None = None) -> AdminActions:
    """The admin use cases; what is not given is opened from the settings (the CLI's case: the
    index catalog only when an action needs it)."""
    opened: list[VersionCatalog] = [catalog] if catalog is not None else []

    def the_catalog() -> VersionCatalog:
        if not opened:
            opened.append(open_catalog(settings))
        return opened[0]

    return AdminActions(
        audit=audit or AuditLog(settings.audit_log, settings.audit_key),
        keys=keys or KeyStore(settings.keys_file),
        policy=policy or open_policy(settings),
        overrides=access.overrides if access else open_acl_overrides(settings),
        quarantine=access.quarantine if access else open_quarantine(settings),
        pause=pause or open_pause_switch(settings),
        catalog=the_catalog,
        sources=access.sources if access else (lambda: settings.sources),
        jobs=(lambda: jobs) if jobs else (lambda: JobRunner(settings.config_path,
                                                             settings.data_dir)),
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
    audit: AuditLog
    pause: PauseSwitch
    composer: AnswerComposer
    admin: AdminActions

    def close(self) -> None:
        self.composer.close()
        self.retriever.close()
        self.catalog.backend.close()


def build_services(settings: Settings, embedder: Embedder | None = None) -> Services:
    embedder = embedder or Embedder()
    catalog = open_catalog(settings)
    access = open_document_access(settings, catalog)
    audit = AuditLog(settings.audit_log, settings.audit_key)
    retriever = Retriever(catalog, embedder, access, bm25=Bm25Encoder(settings.retrieval.bm25),
                          ranking=settings.retrieval.ranking())
    pause = open_pause_switch(settings)
    redactor = Redactor(settings.redaction, settings.redaction_key_file)
    llm = LlmClient(settings.llm) if settings.llm.provider == "openai" else None
    composer = AnswerComposer(embedder, settings.retrieval, settings.answers, llm=llm,
                              redactor=redactor, pause=pause)
    policy = open_policy(settings)
    keys = KeyStore(settings.keys_file)
    jobs = JobRunner(settings.config_path, settings.data_dir)
    return Services(
        settings=settings,
        embedder=embedder,
        policy=policy,
        keys=keys,
        catalog=catalog,
        access=access,
        retriever=retriever,
        retrieval=RetrievalService(retriever, composer, audit, redactor,
                                   history_turns=settings.answers.history_turns),
        jobs=jobs,
        audit=audit,
        pause=pause,
        composer=composer,
        admin=open_admin(settings, policy=policy, access=access, catalog=catalog, jobs=jobs,
                         audit=audit, keys=keys, pause=pause),
    )
