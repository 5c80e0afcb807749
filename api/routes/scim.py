"""/scim/v2: the organisation's directory provisions users and groups (SCIM 2.0, RFC 7644).

Thin: each route reads the request, calls application/provisioning.py, and answers
`application/scim+json`. Guarded by a provisioning key (`clearance keys create --provisioning
NAME`) and by nothing else: no user's key or token is accepted here.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from fastapi.responses import JSONResponse

from api.deps import ProvisionerDep, ServicesDep
from application.provisioning import (
    GROUPS,
    SCIM_MEDIA_TYPE,
    SCIM_PREFIX,
    USERS,
    Kind,
)

# Not in the OpenAPI document: SCIM describes itself (RFC 7644 §4: ServiceProviderConfig,
# Schemas, ResourceTypes), and identity providers read that, not OpenAPI.
router = APIRouter(prefix=SCIM_PREFIX, include_in_schema=False)


class ScimResponse(JSONResponse):
    media_type = SCIM_MEDIA_TYPE


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + SCIM_PREFIX


# The body as JSON (FastAPI reads application/scim+json as JSON); not JSON: a SCIM 400.
Payload = Annotated[dict[str, Any], Body()]


@router.get("/ServiceProviderConfig")
def service_provider_config(request: Request, services: ServicesDep,
                            _: ProvisionerDep) -> ScimResponse:
    return ScimResponse(services.provisioning.service_provider_config(_base(request)))


@router.get("/Schemas")
def schemas(request: Request, services: ServicesDep, _: ProvisionerDep) -> ScimResponse:
    return ScimResponse(services.provisioning.schemas(_base(request)))


@router.get("/Schemas/{schema_id}")
def schema(schema_id: str, request: Request, services: ServicesDep,
           _: ProvisionerDep) -> ScimResponse:
    return ScimResponse(services.provisioning.schemas(_base(request), schema_id))


@router.get("/ResourceTypes")
def resource_types(request: Request, services: ServicesDep, _: ProvisionerDep) -> ScimResponse:
    return ScimResponse(services.provisioning.resource_types(_base(request)))


@router.get("/ResourceTypes/{type_id}")
def resource_type(type_id: str, request: Request, services: ServicesDep,
                  _: ProvisionerDep) -> ScimResponse:
    return ScimResponse(services.provisioning.resource_types(_base(request), type_id))


@router.post("/.search")
def search_every_type(payload: Payload, request: Request, services: ServicesDep,
                      _: ProvisionerDep) -> ScimResponse:
    return ScimResponse(services.provisioning.list_resources((USERS, GROUPS), _base(request),
                                                             payload, search=True))


def _resource_routes(kind: Kind) -> None:
    """The five routes of one resource type, at /Users or /Groups."""
    path = f"/{kind.endpoint}"

    @router.get(path, name=f"list {kind.endpoint}")
    def list_resources(request: Request, services: ServicesDep,
                       _: ProvisionerDep) -> ScimResponse:
        return ScimResponse(services.provisioning.list_resources((kind,), _base(request),
                                                                 request.query_params))

    @router.post(path + "/.search", name=f"search {kind.endpoint}")
    def search_resources(payload: Payload, request: Request, services: ServicesDep,
                         _: ProvisionerDep) -> ScimResponse:
        return ScimResponse(services.provisioning.list_resources((kind,), _base(request), payload,
                                                                 search=True))

    @router.post(path, status_code=201, name=f"create {kind.name}")
    def create_resource(payload: Payload, request: Request, services: ServicesDep,
                        actor: ProvisionerDep) -> ScimResponse:
        body = services.provisioning.create(kind, actor, payload, _base(request))
        return ScimResponse(body, status_code=201,
                            headers={"Location": body["meta"]["location"]})

    @router.get(path + "/{resource_id}", name=f"get {kind.name}")
    def get_resource(resource_id: str, request: Request, services: ServicesDep,
                     _: ProvisionerDep) -> ScimResponse:
        return ScimResponse(services.provisioning.get(kind, resource_id, _base(request),
                                                      request.query_params))

    @router.put(path + "/{resource_id}", name=f"replace {kind.name}")
    def replace_resource(resource_id: str, payload: Payload, request: Request,
                         services: ServicesDep, actor: ProvisionerDep) -> ScimResponse:
        return ScimResponse(services.provisioning.replace(kind, actor, resource_id, payload,
                                                          _base(request)))

    @router.patch(path + "/{resource_id}", name=f"patch {kind.name}")
    def patch_resource(resource_id: str, payload: Payload, request: Request,
                       services: ServicesDep, actor: ProvisionerDep) -> ScimResponse:
        return ScimResponse(services.provisioning.patch(kind, actor, resource_id, payload,
                                                        _base(request)))

    @router.delete(path + "/{resource_id}", status_code=204, name=f"delete {kind.name}")
    def delete_resource(resource_id: str, services: ServicesDep,
                        actor: ProvisionerDep) -> Response:
        services.provisioning.delete(kind, actor, resource_id)
        return Response(status_code=204)


_resource_routes(USERS)
_resource_routes(GROUPS)
