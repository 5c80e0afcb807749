"""SCIM 2.0 provisioning (RFC 7643, RFC 7644): the organisation's directory creates, changes and
deletes users and groups here, and the memberships its groups make are in force at the next
query. The only module that reads or writes the protocol's payloads (through scim2-models).

- A User's `userName` is the Clearance user it is: the name itself, or with `[scim]
  user_domain` set, the local part of an address of that domain (`carol@larkspur.example` →
  carol; an address of another domain is refused). A Group is the principal
  `group:<displayName>`, each run of spaces or commas in the name written as "-" ("Finance
  Team" → group:Finance-Team), in the `[scim] tenant`. Both must be unique; a second resource
  with the same name is refused (409 uniqueness).
- A group's `members` are users or groups provisioned here (by id); each makes a membership
  (control/provisioning.py) that the policy engine adds to the policy file's.
- `active: false`, or a DELETE, deactivates the user in the user directory before anything
  else is written (control/directory.py), so the user is refused at their next request with any
  key, token or front-end; `active: true` lifts only a deactivation SCIM made, never one an
  administrator made with `clearance users deactivate`. A deleted user also leaves every group.
- Every change writes its audit record before it takes effect (one per document changed).

Passwords are never stored: Clearance does not sign anyone in with one.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    EnterpriseUser,
    Error,
    ETag,
    Filter,
    Group,
    InvalidValueException,
    ListResponse,
    Meta,
    NotFoundException,
    Patch,
    PatchOp,
    ResourceType,
    ResponseParameters,
    SCIMException,
    ScimPolicy,
    ScimProvider,
    SearchRequest,
    ServiceProviderConfig,
    Sort,
    UniquenessException,
    User,
)

from application.settings import ScimSettings
from control.audit import AuditStore, admin_record
from control.directory import Directory
from control.keys import user_of_address, validate_user
from control.provisioning import Provisioned, ProvisionedDirectory
from policies.principals import is_principal

UserModel = User[EnterpriseUser]
MAX_RESULTS = 100
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_MEDIA_TYPE = "application/scim+json"
SCIM_PREFIX = "/scim/v2"
_NAME_GAPS = re.compile(r"[\s,]+")


SERVICE = ScimProvider(
    models=[User, EnterpriseUser, Group],
    resource_types=[ResourceType.from_resource(UserModel), ResourceType.from_resource(Group)],
    config=ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=True),
        etag=ETag(supported=False),
        authentication_schemes=[AuthenticationScheme(
            type=AuthenticationScheme.Type.oauthbearertoken, name="Provisioning key",
            description="Authorization: Bearer <key> with a key from `clearance keys create "
                        "--provisioning NAME`", primary=True)],
    ),
    # What Microsoft Entra ID sends: a schema of its own on groups (its attributes are
    # dropped), a member to remove in `value`, and an e-mail filled in through a filter on an
    # entry that does not exist yet.
    policy=ScimPolicy(unknown=ScimPolicy.Unknown.ignore,
                      remove_value_as_filter=ScimPolicy.RemoveValue.apply,
                      unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create),
)


class ScimFailure(Exception):
    """A request refused with a SCIM Error (RFC 7644 §3.12): `status` and `body`."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("detail", ""))
        self.status = status
        self.body = body

    @staticmethod
    def of(exc: SCIMException | ValidationError) -> ScimFailure:
        if isinstance(exc, ValidationError):
            error = Error.from_validation_error(exc.errors()[0])
        else:
            error = exc.to_error()
        body = error.model_dump()
        return ScimFailure(int(body.get("status", 400)), body)

    @staticmethod
    def bad(detail: str, scim_type: str | None = "invalidValue") -> ScimFailure:
        body: dict[str, Any] = {"schemas": [SCIM_ERROR], "status": "400", "detail": detail}
        if scim_type:
            body["scimType"] = scim_type
        return ScimFailure(400, body)


@contextmanager
def _scim_errors() -> Iterator[None]:
    try:
        with SERVICE:
            yield
    except (SCIMException, ValidationError) as exc:
        raise ScimFailure.of(exc) from None


@dataclass(frozen=True)
class Kind:
    """Users or Groups: the endpoint, the model, and where the document keeps them."""

    name: str  # "User" or "Group"
    endpoint: str  # "Users" or "Groups"
    model: type[Any]
    table: str  # "users" or "groups"


USERS = Kind("User", "Users", UserModel, "users")
GROUPS = Kind("Group", "Groups", Group, "groups")


class QueryParameters(BaseModel):
    """A list request's parameters (RFC 7644 §3.4.2), as the query string gives them."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    filter: str | None = None
    start_index: int | None = Field(default=None, alias="startIndex")
    count: int | None = None
    sort_by: str | None = Field(default=None, alias="sortBy")
    sort_order: str | None = Field(default=None, alias="sortOrder")
    attributes: str | list[str] | None = None
    excluded_attributes: str | list[str] | None = Field(default=None,
                                                        alias="excludedAttributes")


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def group_principal(display_name: str | None) -> str:
    """`group:<displayName>`, spaces and commas written as "-"; ValueError if none is left."""
    name = _NAME_GAPS.sub("-", unicodedata.normalize("NFC", (display_name or "").strip()))
    principal = f"group:{name.strip('-')}"
    if not name.strip("-") or not is_principal(principal):
        raise ValueError(f"displayName {display_name!r} gives no group name")
    return principal


class Provisioning:
    """The SCIM use cases over the provisioned users and groups, the user directory and the
    audit log. `actor` names who asks (`provisioning:NAME`, the provisioning key's name)."""

    def __init__(self, store: ProvisionedDirectory, directory: Directory, audit: AuditStore,
                 settings: ScimSettings, policy_version: Callable[[], str]) -> None:
        self.store = store
        self.directory = directory
        self.audit = audit
        self.settings = settings
        self._policy_version = policy_version

    # Discovery (RFC 7644 §4)

    def service_provider_config(self, base: str) -> dict[str, Any]:
        config = SERVICE.config
        assert config is not None
        body = config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        body["meta"] = {"resourceType": "ServiceProviderConfig",
                        "location": f"{base}/ServiceProviderConfig"}
        return body

    def schemas(self, base: str, schema_id: str | None = None) -> dict[str, Any]:
        found = [s.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE) for s in SERVICE.schemas]
        for s in found:
            s["meta"] = {"resourceType": "Schema", "location": f"{base}/Schemas/{s['id']}"}
        return self._discovery(found, schema_id, "schema")

    def resource_types(self, base: str, type_id: str | None = None) -> dict[str, Any]:
        found = [t.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
                 for t in SERVICE.resource_types]
        for t in found:
            t["meta"] = {"resourceType": "ResourceType",
                         "location": f"{base}/ResourceTypes/{t['id']}"}
        return self._discovery(found, type_id, "resource type")

    @staticmethod
    def _discovery(found: list[dict[str, Any]], wanted: str | None, what: str
                   ) -> dict[str, Any]:
        if wanted is not None:
            for item in found:
                if item["id"] == wanted:
                    return item
            raise ScimFailure(404, {"schemas": [SCIM_ERROR], "status": "404",
                                    "detail": f"no {what} {wanted!r}"})
        return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": len(found), "startIndex": 1, "itemsPerPage": len(found),
                "Resources": found}

    # Reading

    def get(self, kind: Kind, resource_id: str, base: str, params: Mapping[str, str]
            ) -> dict[str, Any]:
        value = self.store.current()
        entry = getattr(value, kind.table).get(resource_id)
        if entry is None:
            raise self._not_found(kind, resource_id)
        with _scim_errors():
            shown = _of(ResponseParameters, kind).model_validate(
                QueryParameters.model_validate(params).model_dump(
                    by_alias=True, exclude_none=True, include={"attributes",
                                                               "excluded_attributes"}))
            resource = self._resource(kind, value, resource_id, base)
            body: dict[str, Any] = resource.model_dump(
                scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=shown)
        return body

    def list_resources(self, kinds: tuple[Kind, ...], base: str, params: Mapping[str, Any], *,
                       search: bool = False) -> dict[str, Any]:
        """A page of the resources of `kinds` the filter matches: GET /Users?filter=..., or
        (`search`) POST /Users/.search (or /.search, every kind) with a SearchRequest body."""
        query = QueryParameters.model_validate(params)
        if query.count is not None and query.count > MAX_RESULTS:
            query = query.model_copy(update={"count": MAX_RESULTS})
        model: Any = kinds[0].model if len(kinds) == 1 else Union[tuple(k.model for k in kinds)]  # noqa: UP007
        value = self.store.current()
        with _scim_errors():
            request = SearchRequest[model].model_validate(
                query.model_dump(by_alias=True, exclude_none=True),
                scim_ctx=Context.SEARCH_REQUEST if search else Context.RESOURCE_QUERY_REQUEST)
            resources = [self._resource(kind, value, rid, base) for kind in kinds
                         for rid in sorted(getattr(value, kind.table))]
            if request.filter is not None:
                resources = [r for r in resources if request.filter.match(r)]
            if request.sort_by is not None:
                resources = request.sort(resources)
            start = request.start_index_0 or 0
            stop = request.stop_index_0
            stop = start + MAX_RESULTS if stop is None else min(stop, start + MAX_RESULTS)
            page = resources[start:stop]
            response = ListResponse[model](
                total_results=len(resources), start_index=start + 1,
                items_per_page=len(page), resources=page)
            body: dict[str, Any] = response.model_dump(
                scim_ctx=Context.SEARCH_RESPONSE if search else Context.RESOURCE_QUERY_RESPONSE,
                response_parameters=request)
        return body

    def _resource(self, kind: Kind, value: Provisioned, resource_id: str, base: str) -> Any:
        """The stored resource as a model, with its location and (for a user) its groups."""
        raw = dict(getattr(value, kind.table)[resource_id]["resource"])
        raw["meta"] = {**raw.get("meta", {}), "location": f"{base}/{kind.endpoint}/{resource_id}"}
        if kind is USERS:
            raw["groups"] = [
                {"value": gid, "$ref": f"{base}/Groups/{gid}", "type": "direct",
                 **({"display": g["resource"]["displayName"]}
                    if g["resource"].get("displayName") else {})}
                for gid, g in sorted(value.groups.items())
                if any(m.get("value") == resource_id for m in g["resource"].get("members") or [])
            ] or None
            if raw["groups"] is None:
                del raw["groups"]
        return kind.model.model_validate(raw)

    # Changing

    def create(self, kind: Kind, actor: tuple[str, str], payload: Any, base: str
               ) -> dict[str, Any]:
        with _scim_errors():
            resource = kind.model.model_validate(payload,
                                                 scim_ctx=Context.RESOURCE_CREATION_REQUEST)
        resource_id = uuid.uuid4().hex
        now = _now()
        resource.id = resource_id
        resource.meta = Meta(resource_type=kind.name, created=now, last_modified=now,
                             version='W/"1"')
        self._store(kind, actor, "create", resource_id, resource, created=True)
        return self.respond(kind, resource_id, base, Context.RESOURCE_CREATION_RESPONSE)

    def replace(self, kind: Kind, actor: tuple[str, str], resource_id: str, payload: Any,
                base: str) -> dict[str, Any]:
        value = self.store.current()
        if resource_id not in getattr(value, kind.table):
            raise self._not_found(kind, resource_id)
        existing = self._resource(kind, value, resource_id, base)
        with _scim_errors():
            resource = kind.model.model_validate(payload,
                                                 scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST)
            resource.replace(existing)
        self._store(kind, actor, "replace", resource_id, resource)
        return self.respond(kind, resource_id, base, Context.RESOURCE_REPLACEMENT_RESPONSE)

    def patch(self, kind: Kind, actor: tuple[str, str], resource_id: str, payload: Any,
              base: str) -> dict[str, Any]:
        value = self.store.current()
        if resource_id not in getattr(value, kind.table):
            raise self._not_found(kind, resource_id)
        resource = self._resource(kind, value, resource_id, base)
        with _scim_errors():
            patch = _of(PatchOp, kind).model_validate(
                payload, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
            patch.patch(resource)
        self._store(kind, actor, "patch", resource_id, resource)
        return self.respond(kind, resource_id, base, Context.RESOURCE_PATCH_RESPONSE)

    def delete(self, kind: Kind, actor: tuple[str, str], resource_id: str) -> None:
        value = self.store.current()
        entry = getattr(value, kind.table).get(resource_id)
        if entry is None:
            raise self._not_found(kind, resource_id)
        if kind is USERS:
            # Refused first: nothing after this can leave a deleted user able to read.
            self._deactivate(actor, entry["user"], "deleted through SCIM")
        detail: dict[str, Any] = {}

        with self._change(actor, f"scim.{kind.table}.delete", detail) as value:
            entry = getattr(value, kind.table).pop(resource_id, None)
            if entry is None:
                raise self._not_found(kind, resource_id)
            detail.update(id=resource_id, name=entry.get("user") or entry.get("principal"))
            for group in value.groups.values():  # a deleted member leaves every group
                members = group["resource"].get("members") or []
                kept = [m for m in members if m.get("value") != resource_id]
                if len(kept) != len(members):
                    group["resource"]["members"] = kept

    def respond(self, kind: Kind, resource_id: str, base: str, context: Context
                ) -> dict[str, Any]:
        resource = self._resource(kind, self.store.current(), resource_id, base)
        with _scim_errors():
            body: dict[str, Any] = resource.model_dump(scim_ctx=context)
        return body

    def _store(self, kind: Kind, actor: tuple[str, str], verb: str, resource_id: str,
               resource: Any, *, created: bool = False) -> None:
        """Check the resource's name, write it (audited), and bring the user directory in line
        with `active`: a deactivation before the write, the lifting of one after it."""
        raw = resource.model_dump(scim_ctx=Context.DEFAULT)
        for computed in ("groups", "password"):
            raw.pop(computed, None)
        raw.get("meta", {}).pop("location", None)
        if kind is USERS:
            user = self._user_name(resource.user_name)
            entry: dict[str, Any] = {"user": user, "resource": raw}
            if resource.active is False:
                self._deactivate(actor, user, "deactivated through SCIM (active: false)")
        else:
            try:
                entry = {"principal": group_principal(resource.display_name), "resource": raw}
            except ValueError as exc:
                raise ScimFailure.bad(str(exc)) from None
        detail: dict[str, Any] = {"id": resource_id,
                                  "name": entry.get("user") or entry.get("principal")}
        with self._change(actor, f"scim.{kind.table}.{verb}", detail) as value:
            table = getattr(value, kind.table)
            if not created and resource_id not in table:
                raise self._not_found(kind, resource_id)
            self._check_unique(kind, value, resource_id, entry)
            if kind is GROUPS:
                self._check_members(value, resource_id, raw.get("members") or [])
                detail["members"] = len(raw.get("members") or [])
            if not created:
                old = table[resource_id]["resource"].get("meta", {})
                version = int(str(old.get("version", 'W/"0"')).strip('W/"') or 0) + 1
                raw["meta"] = {**old, "lastModified": _now().isoformat().replace("+00:00", "Z"),
                               "version": f'W/"{version}"'}
            table[resource_id] = entry
        if kind is USERS and resource.active is not False:
            self._lift_scim_deactivation(actor, entry["user"])

    @contextmanager
    def _change(self, actor: tuple[str, str], action: str, detail: dict[str, Any]
                ) -> Iterator[Provisioned]:
        caller, request_id = actor
        # The policy in force before the change: read now, since reading it inside the change
        # would wait for the provisioning document's own lock.
        policy_version = self._policy_version()

        def record() -> None:
            self.audit.append(admin_record(action, caller=caller, request_id=request_id,
                                           policy_version=policy_version,
                                           tenant=self.settings.tenant, **detail))

        with self.store.change(record) as edit:
            yield edit.value

    def _user_record(self, actor: tuple[str, str], action: str, user: str, reason: str
                     ) -> Callable[[], None]:
        caller, request_id = actor

        def record() -> None:
            self.audit.append(admin_record(action, caller=caller, request_id=request_id,
                                           user=user, reason=reason,
                                           policy_version=self._policy_version()))
        return record

    def _deactivate(self, actor: tuple[str, str], user: str, reason: str) -> None:
        if self.directory.deactivated(user) is not None:
            return
        self.directory.deactivate(user, by=actor[0], reason=reason,
                                  before_commit=self._user_record(actor, "users.deactivate",
                                                                  user, reason))

    def _lift_scim_deactivation(self, actor: tuple[str, str], user: str) -> None:
        entry = self.directory.deactivated(user)
        if entry is None or not entry.by.startswith("provisioning:"):
            return  # an administrator's deactivation stays until an administrator lifts it
        self.directory.activate(user, before_commit=self._user_record(
            actor, "users.activate", user, "active through SCIM"))

    def _user_name(self, user_name: str | None) -> str:
        name = unicodedata.normalize("NFC", (user_name or "").strip())
        try:
            if self.settings.user_domain and "@" in name:
                return user_of_address(name, self.settings.user_domain)
            return validate_user(name)
        except ValueError as exc:
            where = "a user name (letters, digits, '.', '_', '-')"
            if self.settings.user_domain:
                where = f"an address of {self.settings.user_domain} or {where}"
            raise ScimFailure.bad(f"userName {user_name!r} must be {where}: {exc}") from None

    @staticmethod
    def _check_unique(kind: Kind, value: Provisioned, resource_id: str,
                      entry: dict[str, Any]) -> None:
        # A userName is compared as SCIM says (caseExact false); a group by its principal,
        # exactly, as the policy compares principals (group:Finance is not group:finance).
        key = "user" if kind is USERS else "principal"

        def same(a: str, b: str) -> bool:
            return a.casefold() == b.casefold() if kind is USERS else a == b

        for other_id, other in getattr(value, kind.table).items():
            if other_id != resource_id and same(other[key], entry[key]):
                what = "userName" if kind is USERS else "displayName"
                raise ScimFailure.of(UniquenessException(
                    detail=f"{what} gives {entry[key]!r}, which {kind.endpoint}/{other_id} "
                           "already is"))

    @staticmethod
    def _check_members(value: Provisioned, group_id: str, members: list[dict[str, Any]]
                       ) -> None:
        for member in members:
            ref = str(member.get("value", ""))
            if ref == group_id or group_id in _groups_within(value, ref):
                raise ScimFailure.bad(f"group {ref!r} holds this group: a group cannot be a "
                                      "member of itself, directly or through other groups")
            if ref not in value.users and ref not in value.groups:
                raise ScimFailure.of(InvalidValueException(
                    detail=f"member {ref!r} is no provisioned user or group: provision it "
                           "first"))

    @staticmethod
    def _not_found(kind: Kind, resource_id: str) -> ScimFailure:
        return ScimFailure.of(NotFoundException(detail=f"no {kind.name} {resource_id!r}"))


def _of(generic: Any, kind: Kind) -> Any:
    """A generic scim2-models message (SearchRequest, ListResponse, ...) of `kind`'s model."""
    return generic[kind.model]


def _groups_within(value: Provisioned, group_id: str) -> set[str]:
    """The ids of the groups that are members of `group_id`, directly or through others."""
    found: set[str] = set()
    todo = [group_id]
    while todo:
        entry = value.groups.get(todo.pop())
        for member in (entry or {}).get("resource", {}).get("members") or []:
            ref = str(member.get("value", ""))
            if ref in value.groups and ref not in found:
                found.add(ref)
                todo.append(ref)
    return found
