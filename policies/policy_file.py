"""The policy's line format, its validation, and edits of its text.

The text lives in the policy file (`casbin_policy`), or with a `database_url` in the PostgreSQL
control plane; policies/enforcer.py reads it through one state document either way.

    # comment
    g, MEMBER, GROUP[, TENANT]                 MEMBER (user:, group: or role:) joins GROUP
    p, SUBJECT, OBJECT, ACTION[, EFFECT[, TENANT]]

TENANT defaults to "default" for `g` lines and to "*" (every tenant) for `p` lines; EFFECT is
"allow" (the default) or "deny", and a deny overrides every allow. Admin permissions are `p`
lines on admin objects (index, policy, keys, audit, quarantine, answering, ...). Reading
documents is granted by the sources' ACL rules, not here; a `p` line can only take it away
(and a `p, SUBJECT, *, *, deny` takes away everything, reading included):
`p, SUBJECT, source:NAME, read, deny` or `p, SUBJECT, doc:SOURCE:PATH, read, deny` (a `*` in the
object matches any characters). Every name is checked, and a file with one bad line is refused
whole, with the line number, so a typo never half-applies a policy.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from policies.principals import DEFAULT_TENANT, is_principal, is_tenant, normalize

EFFECTS = ("allow", "deny")
READ = "read"


class PolicyError(Exception):
    """The Casbin model or policy file cannot be loaded or changed; the message says where."""


@dataclass(frozen=True)
class Membership:
    member: str
    group: str
    tenant: str = DEFAULT_TENANT

    def line(self) -> str:
        tail = "" if self.tenant == DEFAULT_TENANT else f", {self.tenant}"
        return f"g, {self.member}, {self.group}{tail}"


@dataclass(frozen=True)
class Rule:
    subject: str
    obj: str
    action: str
    effect: str = "allow"
    tenant: str = "*"

    def line(self) -> str:
        tail = "" if (self.effect, self.tenant) == ("allow", "*") else f", {self.effect}"
        tail += "" if self.tenant == "*" else f", {self.tenant}"
        return f"p, {self.subject}, {self.obj}, {self.action}{tail}"


@dataclass(frozen=True)
class Policy:
    memberships: tuple[Membership, ...]
    rules: tuple[Rule, ...]


def _principal(value: str, where: str) -> str:
    value = normalize(value)
    if not is_principal(value):
        raise PolicyError(f"{where}: {value!r} is not a principal; "
                          "write user:<name>, group:<name> or role:<name>")
    return value


def _tenant(value: str, where: str, *, wildcard: bool) -> str:
    if wildcard and value == "*":
        return value
    if not is_tenant(value):
        raise PolicyError(f"{where}: {value!r} is not a tenant name (lower-case letters, digits, "
                          "'_' and '-')" + (" or *" if wildcard else ""))
    return value


def _word(value: str, what: str, where: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise PolicyError(f"{where}: {what} {value!r} must be one word")
    return normalize(value)


def parse_membership(fields: Sequence[str], where: str) -> Membership:
    if len(fields) not in (2, 3):
        raise PolicyError(f"{where}: a membership is 'g, MEMBER, GROUP[, TENANT]'")
    member = _principal(fields[0], where)
    group = _principal(fields[1], where)
    if group.startswith("user:"):
        raise PolicyError(f"{where}: {group!r} is a user; only groups and roles have members")
    tenant = _tenant(fields[2], where, wildcard=False) if len(fields) == 3 else DEFAULT_TENANT
    return Membership(member, group, tenant)


def parse_rule(fields: Sequence[str], where: str) -> Rule:
    if len(fields) not in (3, 4, 5):
        raise PolicyError(f"{where}: a rule is 'p, SUBJECT, OBJECT, ACTION[, EFFECT[, TENANT]]'")
    subject = _principal(fields[0], where)
    obj = _word(fields[1], "object", where)
    action = _word(fields[2], "action", where)
    effect = fields[3] if len(fields) > 3 else "allow"
    if effect not in EFFECTS:
        raise PolicyError(f"{where}: effect {effect!r} must be allow or deny")
    tenant = _tenant(fields[4], where, wildcard=True) if len(fields) > 4 else "*"
    if is_document_object(obj):
        if effect == "allow":
            raise PolicyError(f"{where}: reading is granted by the sources' acl rules (or "
                              "`clearance acl set`), not by policy; a document rule can only "
                              "deny")
        if action not in (READ, "*"):
            raise PolicyError(f"{where}: the only action on {obj!r} is read")
    return Rule(subject, obj, action, effect, tenant)


def is_document_object(obj: str) -> bool:
    """True for "source:NAME" and "doc:ID" (patterns too): objects that reading applies to."""
    return obj.startswith(("source:", "doc:"))


def document_pattern_matches(pattern: str, doc_id: str, source: str) -> bool:
    """Whether a read deny's object ("*", "source:NAME" or "doc:ID", `*` for any characters)
    covers a document; the same matching as Casbin's keyMatch."""
    if pattern == "*":
        return True
    kind, _, name = pattern.partition(":")
    regex = ".*".join(re.escape(part) for part in name.split("*"))
    return re.fullmatch(regex, source if kind == "source" else doc_id) is not None


def parse_policy(text: str, path: Path | str = "policy") -> Policy:
    """Every line checked; PolicyError names the first bad one."""
    memberships: list[Membership] = []
    rules: list[Rule] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        fields = [f.strip() for f in next(csv.reader([line], skipinitialspace=True))]
        kind, rest = fields[0], fields[1:]
        if kind == "g":
            memberships.append(parse_membership(rest, where))
        elif kind == "p":
            rules.append(parse_rule(rest, where))
        else:
            raise PolicyError(f"{where}: a line starts with 'g,' (membership) or 'p,' (rule), "
                              f"not {kind!r}")
    return Policy(tuple(memberships), tuple(rules))


def edit_policy_text(
    text: str, where: Path | str, *, add: Sequence[Membership | Rule] = (),
    remove: Sequence[Membership | Rule] = (),
) -> tuple[str, int, int]:
    """The policy `text` with `add` appended (lines not already there) and `remove` deleted;
    (the new text, lines added, lines removed). Comments and other lines are kept. The result
    is parsed before it is returned, so an edit never yields a policy that does not load.
    Whoever keeps the text (a file, a database row) writes it back under its own lock.
    """
    current = parse_policy(text, where)
    present = set(current.memberships) | set(current.rules)
    doomed = set(remove)
    kept, removed = [], 0
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            one = parse_policy(line)  # the whole text parsed above, so every line does
            if {*one.memberships, *one.rules} & doomed:
                removed += 1
                continue
        kept.append(raw)
    new = [item for item in dict.fromkeys(add) if item not in present]
    kept += [item.line() for item in new]
    result = "\n".join(kept) + "\n"
    parse_policy(result, where)
    return result, len(new), removed
