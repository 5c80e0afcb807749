"""Document access as it is now, applied to every index version when it is searched.

A version's chunks carry the ACL their document had when the version was built, and versions
are never rewritten (several processes load them). ACLs change afterwards: an `acl` rule edited
in the config, or `clearance acl set`. So each version's document table (the ACL each document
was built with) is compared with each document's ACL now, and the documents that differ are
handled inside the search filter: their stored ACL is ignored, and they are matched by id for
the callers their ACL now admits (see retrieval.store.ReadFilter). The comparison is cached per
version until the rules or the overrides change. A version served again by a rollback therefore
answers with today's ACLs, never with the ones it was built with.

A document's ACL now: its override (`clearance acl set`, in data_dir/document_acls.json) if it
has one, else the first config rule of its source that matches its path, else nobody (fail
closed: also when its source is no longer declared); as tokens of its source's tenant. For a
symbolic link followed within its source, only the tokens its target's ACL now also has.

Two more things take documents out of a caller's results, in every version and inside the same
filter: the caller's read denials from the policy (`p, SUBJECT, source:NAME|doc:ID, read, deny`;
a `*` pattern is expanded against the version's document table), and quarantine
(control/quarantine.py), which applies to everyone.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from control.acl_overrides import Acl, AclOverrides
from control.errors import StateUnreadable
from control.quarantine import Quarantine, Quarantined
from policies.acl_rules import AclSource, effective_acl
from policies.policy_file import document_pattern_matches
from retrieval.errors import StoreError
from retrieval.payload import ChunkPayload
from retrieval.scope import Scope
from retrieval.store import ReadFilter
from retrieval.versions import DocumentEntry, VersionCatalog

log = logging.getLogger(__name__)

SourceRules = Mapping[str, AclSource]  # the declared sources (ingest.settings.SourceSettings)
# Returns (a key that changes whenever the rules change, the sources by name).
RulesProvider = Callable[[], tuple[object, SourceRules]]



@dataclass(frozen=True)
class VersionAccess:
    """How one version's stored ACLs differ from today's, and the filter for one caller."""

    version_id: str
    changed: Mapping[str, Acl] = field(default_factory=dict)  # doc id → ACL now (() = nobody)
    documents: Mapping[str, DocumentEntry] = field(default_factory=dict)
    quarantined: Quarantined = field(default_factory=Quarantined)

    def read_filter(self, scope: Scope) -> ReadFilter:
        readable = frozenset(d for d, acl in self.changed.items() if scope.can_read(list(acl)))
        denied_docs, denied_sources = self._denied(scope)
        return ReadFilter(
            principals=scope.principals,
            acl_changed=frozenset(self.changed),
            include_docs=readable,
            exclude_docs=denied_docs | self.quarantined.documents,
            exclude_sources=denied_sources | self.quarantined.sources,
        )

    def _denied(self, scope: Scope) -> tuple[frozenset[str], frozenset[str]]:
        """The caller's read denials as document ids and source names of this version."""
        docs: set[str] = set()
        sources: set[str] = set()
        for pattern in scope.denied:
            kind, _, name = pattern.partition(":")
            if kind == "source" and "*" not in name:
                sources.add(name)
            elif kind == "doc" and "*" not in name:
                docs.add(name)
            else:  # a pattern: expanded against this version's documents
                docs.update(d for d, e in self.documents.items()
                            if document_pattern_matches(pattern, d, e.source))
        return frozenset(docs), frozenset(sources)

    def acl_now(self, payload: ChunkPayload) -> Acl:
        """The ACL a hit's document has now: today's if it changed, else the stored one."""
        return self.changed.get(payload.doc_id, payload.acl)

    def admits(self, scope: Scope, payload: ChunkPayload, access: ReadFilter) -> bool:
        """The re-check of one hit, after the search: today's ACL, denials and quarantine."""
        if payload.doc_id in access.exclude_docs:
            return False
        if payload.source in access.exclude_sources:
            return False
        return scope.can_read(self.acl_now(payload))


class DocumentAccess:
    """Today's document ACLs, compared with each version's (see the module docstring)."""

    def __init__(
        self,
        catalog: VersionCatalog,
        rules: RulesProvider,
        overrides: AclOverrides,
        quarantine: Quarantine,
    ) -> None:
        self._catalog = catalog
        self._rules = rules
        self.overrides = overrides
        self.quarantine = quarantine
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[object, VersionAccess]] = {}

    def sources(self) -> list[AclSource]:
        """The declared sources as the config says now."""
        return list(self._rules()[1].values())

    def acl_now(self, entry: DocumentEntry, doc_id: str) -> Acl:
        _, rules = self._rules()
        with _state_read():
            _, overrides = self.overrides.current()
        return _acl_now(doc_id, entry, rules, overrides)

    def for_version(self, version_id: str) -> VersionAccess:
        rules_key, rules = self._rules()
        with _state_read():
            overrides_key, overrides = self.overrides.current()
            quarantined = self.quarantine.current()
        key = (rules_key, overrides_key, quarantined)
        with self._lock:
            cached = self._cache.get(version_id)
            if cached is not None and cached[0] == key:
                return cached[1]
        documents = self._catalog.documents(version_id)
        changed = {}
        for doc_id, entry in documents.items():
            now = _acl_now(doc_id, entry, rules, overrides)
            if now != entry.acl:
                changed[doc_id] = now
        access = VersionAccess(version_id, changed, documents, quarantined)
        with self._lock:
            self._cache[version_id] = (key, access)
        if changed:
            log.info("index version %s: %d document(s) served with an ACL changed since its "
                     "build", version_id, len(changed))
        return access

    def forget(self, version_id: str) -> None:
        """Drop what is cached for a version no longer served (its document table)."""
        with self._lock:
            self._cache.pop(version_id, None)


@contextlib.contextmanager
def _state_read() -> Iterator[None]:
    """A state file that cannot be read fails the query as the store would: it may hold a
    revocation or a quarantine, so nothing is served without it."""
    try:
        yield
    except StateUnreadable as exc:
        raise StoreError(str(exc)) from exc


def _acl_now(
    doc_id: str, entry: DocumentEntry, rules: SourceRules, overrides: Mapping[str, Acl]
) -> Acl:
    source = rules.get(entry.source)
    if source is None:
        return ()  # the source is no longer declared: nobody reads it
    # A followed link (entry.target) is readable only by what its target's ACL also allows.
    return effective_acl(source, entry.uri, overrides, entry.target) or ()
