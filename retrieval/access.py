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
(retrieval/quarantine.py), which applies to everyone.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ingest.settings import SourceSettings
from ingest.sources import effective_acl
from policies.policy_file import document_pattern_matches
from policies.principals import is_principal, normalize
from retrieval.errors import StoreError
from retrieval.files import file_stamp, write_json_atomic
from retrieval.quarantine import Quarantine, Quarantined
from retrieval.scope import Scope
from retrieval.store import ReadFilter
from retrieval.versions import DocumentEntry, VersionCatalog

log = logging.getLogger(__name__)

Acl = tuple[str, ...]
SourceRules = Mapping[str, SourceSettings]
# Returns (a key that changes whenever the rules change, the sources by name).
RulesProvider = Callable[[], tuple[object, SourceRules]]



class AclOverrides:
    """Per-document ACLs set by an operator, which win over the config rules.

    One JSON file ({doc_id: [principal, ...]}), written atomically, re-read when it changes, so
    a change made by the CLI in another process applies to the server's next query. A file
    that cannot be read fails the queries (StoreError) instead of falling back to the rules:
    an override may be a revocation.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._key: object = ()
        self._acls: dict[str, Acl] = {}

    def current(self) -> tuple[object, dict[str, Acl]]:
        """(a key that changes with the file, doc id → ACL)."""
        with self._lock:
            key = file_stamp(self.path)
            if key != self._key:
                self._acls = self._read() if key is not None else {}
                self._key = key
            return self._key, self._acls

    def _read(self) -> dict[str, Acl]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
            acls = {str(doc): tuple(_check_acl(acl)) for doc, acl in raw.items()}
        except (OSError, ValueError) as exc:
            raise StoreError(
                f"document ACL overrides {self.path} cannot be read ({exc}); fix or remove the "
                "file (`clearance acl` rewrites it)"
            ) from exc
        return acls

    def set(self, doc_id: str, acl: Sequence[str]) -> None:
        with self._lock:
            acls = self._read() if self.path.exists() else {}
            acls[doc_id] = tuple(_check_acl(list(acl)))
            self._write(acls)

    def clear(self, doc_id: str) -> bool:
        """Remove a document's override (its config rule applies again); False if it had none."""
        with self._lock:
            acls = self._read() if self.path.exists() else {}
            found = acls.pop(doc_id, None) is not None
            if found:
                self._write(acls)
            return found

    def _write(self, acls: Mapping[str, Acl]) -> None:
        write_json_atomic(self.path, {doc: list(acl) for doc, acl in sorted(acls.items())})
        self._key = ()  # re-read on the next call


def _check_acl(acl: object) -> list[str]:
    if not isinstance(acl, list) or not all(isinstance(p, str) for p in acl):
        raise ValueError(f"an ACL must be a list of principals, got {acl!r}")
    acl = [normalize(p) for p in acl]
    bad = [p for p in acl if not is_principal(p)]
    if bad:
        raise ValueError(
            f"{bad} are not principals: write user:<name>, group:<name> or role:<name>"
        )
    return list(dict.fromkeys(acl))


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

    def acl_now(self, payload: Mapping[str, object]) -> object:
        """The ACL a hit's document has now: today's if it changed, else the stored one."""
        doc_id = payload.get("doc_id")
        if isinstance(doc_id, str) and doc_id in self.changed:
            return list(self.changed[doc_id])
        return payload.get("acl")

    def admits(self, scope: Scope, payload: Mapping[str, object], access: ReadFilter) -> bool:
        """The re-check of one hit, after the search: today's ACL, denials and quarantine."""
        if payload.get("doc_id") in access.exclude_docs:
            return False
        if payload.get("source") in access.exclude_sources:
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

    def sources(self) -> list[SourceSettings]:
        """The declared sources as the config says now."""
        return list(self._rules()[1].values())

    def acl_now(self, entry: DocumentEntry, doc_id: str) -> Acl:
        _, rules = self._rules()
        _, overrides = self.overrides.current()
        return _acl_now(doc_id, entry, rules, overrides)

    def for_version(self, version_id: str) -> VersionAccess:
        rules_key, rules = self._rules()
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


def _acl_now(
    doc_id: str, entry: DocumentEntry, rules: SourceRules, overrides: Mapping[str, Acl]
) -> Acl:
    source = rules.get(entry.source)
    if source is None:
        return ()  # the source is no longer declared: nobody reads it
    # A followed link (entry.target) is readable only by what its target's ACL also allows.
    return effective_acl(source, entry.uri, overrides, entry.target) or ()
