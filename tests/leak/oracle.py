"""Who may read which document, computed from the generated world alone.

Written from the access rules as documented (README "Policy", policies/policy_file.py and
ingest/sources.py docstrings), without importing Casbin, policies/, ingest/ or retrieval/:

- A user's tenants are those where a `g` line names them as a member; none: the default tenant.
- In tenant T they hold `user:NAME` and every group or role reachable from it through the `g`
  lines of T (transitively). Names are compared exactly, after NFC normalisation.
- A document is in the index if, when it was built, it had an ACL override or a source rule
  matched its path (first matching glob wins, fnmatch semantics, `*` crosses `/`).
- Its ACL now is its current override, else the first matching rule of its source. A caller
  may read it if they hold one of its principals in the source's tenant.
- A deny `p, S, OBJ, read|*, deny[, T]` takes documents away from callers holding S in T (in
  any of their tenants when T is `*`): OBJ `*` all, `source:NAME`, `doc:SOURCE:PATH` (`*`
  matches any characters); any other object takes nothing.
- Quarantined documents and sources are nobody's.
"""

from __future__ import annotations

import fnmatch
import unicodedata
from collections import deque
from collections.abc import Iterable, Mapping

from tests.leak.world import DEFAULT, Doc, Source, World


def _nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value)


def wildcard(pattern: str, text: str) -> bool:
    """`*` matches any run of characters (also none); everything else matches itself."""
    parts = pattern.split("*")
    if len(parts) == 1:
        return pattern == text
    first, *middle, last = parts
    if not text.startswith(first) or len(text) < len(first) + len(last):
        return False
    if not text.endswith(last):
        return False
    pos, end = len(first), len(text) - len(last)
    for part in middle:
        found = text.find(part, pos, end)
        if found < 0:
            return False
        pos = found + len(part)
    return True


class Oracle:
    def __init__(
        self,
        world: World,
        *,
        overrides: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.world = world
        self._sources: dict[str, Source] = {s.name: s for s in world.sources}
        self._edges: dict[str, dict[str, set[str]]] = {}
        self._tenants: dict[str, set[str]] = {}
        for m in world.memberships:
            member, group = _nfc(m.member), _nfc(m.group)
            self._edges.setdefault(m.tenant, {}).setdefault(member, set()).add(group)
            if member.startswith("user:"):
                self._tenants.setdefault(member, set()).add(m.tenant)
        now = world.overrides if overrides is None else overrides
        self._overrides_now = {d: tuple(_nfc(p) for p in acl) for d, acl in now.items()}
        self._overrides_built = {
            d: tuple(_nfc(p) for p in acl) for d, acl in world.ingest_overrides.items()
        }
        self._readable: dict[str, frozenset[str]] = {}
        self._held: dict[str, dict[str, frozenset[str]]] = {}

    # -- callers ----------------------------------------------------------------------------

    def tenants(self, user: str) -> list[str]:
        return sorted(self._tenants.get(f"user:{_nfc(user)}", set())) or [DEFAULT]

    def held(self, user: str) -> dict[str, frozenset[str]]:
        """tenant -> every principal the user holds there."""
        cached = self._held.get(user)
        if cached is not None:
            return cached
        me = f"user:{_nfc(user)}"
        out = {}
        for tenant in self.tenants(user):
            edges = self._edges.get(tenant, {})
            seen = {me}
            queue = deque([me])
            while queue:
                for group in edges.get(queue.popleft(), ()):
                    if group not in seen:
                        seen.add(group)
                        queue.append(group)
            out[tenant] = frozenset(seen)
        self._held[user] = out
        return out

    # -- documents --------------------------------------------------------------------------

    def rule_acl(self, doc: Doc) -> tuple[str, ...] | None:
        for rule in self._sources[doc.source].rules:
            if fnmatch.fnmatchcase(doc.uri, rule.glob):
                return tuple(_nfc(p) for p in rule.allow)
        return None

    def indexed(self, doc: Doc) -> bool:
        """Whether the build put the document in the index at all."""
        acl = self._overrides_built.get(doc.doc_id)
        if acl is None:
            acl = self.rule_acl(doc)
        return bool(acl)

    def acl_now(self, doc: Doc) -> tuple[str, ...]:
        acl = self._overrides_now.get(doc.doc_id)
        if acl is None:
            acl = self.rule_acl(doc)
        return acl or ()

    def quarantined(self, doc: Doc) -> bool:
        return (doc.doc_id in self.world.quarantined_docs
                or doc.source in self.world.quarantined_sources)

    def denied(self, user: str, doc: Doc) -> bool:
        held = self.held(user)
        for deny in self.world.denies:
            if deny.action not in ("read", "*"):
                continue
            subject = _nfc(deny.subject)
            applies = any(
                subject in principals and deny.tenant in ("*", tenant)
                for tenant, principals in held.items()
            )
            if applies and self._covers(_nfc(deny.obj), doc):
                return True
        return False

    @staticmethod
    def _covers(obj: str, doc: Doc) -> bool:
        if obj == "*":
            return True
        if obj.startswith("source:"):
            return wildcard(obj[len("source:"):], doc.source)
        if obj.startswith("doc:"):
            return wildcard(obj[len("doc:"):], doc.doc_id)
        return False

    def granted(self, user: str, doc: Doc) -> bool:
        """The ACL alone (before denials and quarantine) lets the user in."""
        tenant = self._sources[doc.source].tenant
        principals = self.held(user).get(tenant, frozenset())
        return any(p in principals for p in self.acl_now(doc))

    def can_read(self, user: str, doc: Doc) -> bool:
        return (
            self.indexed(doc)
            and self.granted(user, doc)
            and not self.denied(user, doc)
            and not self.quarantined(doc)
        )

    def readable(self, user: str) -> frozenset[str]:
        cached = self._readable.get(user)
        if cached is None:
            cached = frozenset(d.doc_id for d in self.world.docs if self.can_read(user, d))
            self._readable[user] = cached
        return cached

    def near_misses(self, user: str) -> list[Doc]:
        """Documents the user is kept from by one rule only: their ACL (now or at build time)
        admits the user, but a deny, quarantine, override or the missing index entry does not."""
        out = []
        for doc in self.world.docs:
            if doc.doc_id in self.readable(user):
                continue
            tenant = self._sources[doc.source].tenant
            principals = self.held(user).get(tenant, frozenset())
            rule = self.rule_acl(doc) or ()
            if self.granted(user, doc) or any(p in principals for p in rule):
                out.append(doc)
        return out
