"""One example deployment for the identity tests, built once: API keys for alice, dave and
root, access tokens from three issuers (a real OpenID provider, tests/identity/oidc_provider.py,
and two of the hand-signing stand-in, tests/identity/signing_idp.py, one of them using its
tokens' groups claim) and a trusted front-end."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from application.services import open_keys
from retrieval.embedder import Embedder
from tests.conftest import Deployment, serve_config, write_example_config
from tests.identity.oidc_provider import (
    AUDIENCE,
    OidcProvider,
    free_port,
    oidc_provider,
    signing_key,
)
from tests.identity.signing_idp import SigningIdp

USERS = ["alice", "dave", "root"]
MCP_AUDIENCE = "clearance-mcp"  # the hand-signing issuer's tokens for /mcp
# The real provider's client zoe, whom the policy does not name, has groups in her tokens.
PROVIDER_GROUPS = {"zoe": ["legal"]}
# Lines for tests/identity/test_group_claims_over_http.py: a group only tokens claim, nested
# in the example's group:hr and denied one document, and one nested in role:admin.
GROUP_CLAIM_POLICY = ("\ng, group:temps, group:hr\ng, group:it-admins, role:admin\n"
                      "p, group:temps, doc:hr:salary-bands.docx, read, deny\n")


@pytest.fixture(scope="package")
def groups_idp() -> Iterator[SigningIdp]:
    """A stand-in issuer whose tokens' "groups" claim the deployment uses (audience
    "clearance"); every value counts, as group:<value>."""
    with SigningIdp() as idp:
        idp.add_key("k1")
        yield idp


@dataclass
class IdentityWorld:
    deployed: Deployment
    idp: SigningIdp  # audience "clearance"
    provider: OidcProvider  # audience AUDIENCE
    provider_key: dict[str, Any]  # the provider's first signing key
    frontend_key: str  # the key of the front-end "open-webui"
    provisioning_key: str  # the SCIM provisioning key of "entra"


@pytest.fixture(scope="package")
def identity_world(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder,
                   groups_idp: SigningIdp) -> Iterator[IdentityWorld]:
    first = signing_key("first")
    with SigningIdp() as idp, oidc_provider(free_port(), [first], USERS,
                                            PROVIDER_GROUPS) as provider:
        idp.add_key("k1")
        config = write_example_config(tmp_path_factory.mktemp("identity"))
        with (config.parent / "policy.csv").open("a", encoding="utf-8") as f:
            f.write(GROUP_CLAIM_POLICY)
        with config.open("a", encoding="utf-8") as f:
            f.write(f'\n[[oidc.issuers]]\nissuer = "{groups_idp.issuer}"\naudience = "clearance"'
                    '\ngroups_claim = "groups"\n')
        with config.open("a", encoding="utf-8") as f:
            f.write(f'\n[[oidc.issuers]]\nissuer = "{idp.issuer}"\naudience = "clearance"\n'
                    f'mcp_audience = "{MCP_AUDIENCE}"\n'
                    f'\n[[oidc.issuers]]\nissuer = "{provider.issuer}"\n'
                    f'audience = "{AUDIENCE}"\nrefetch_min_s = 0\ngroups_claim = "groups"\n'
                    '\n[[frontends]]\nname = "open-webui"\n'
                    'user_header = "X-OpenWebUI-User-Email"\nemail_domain = "larkspur.example"\n'
                    '\n[scim]\nuser_domain = "larkspur.example"\n')
        with serve_config(config, embedder, USERS) as deployed:
            frontend_key = open_keys(deployed.settings).create("open-webui", kind="frontend",
                                                               scope="query")
            provisioning_key = open_keys(deployed.settings).create(
                "entra", kind="provisioning", scope="query")
            yield IdentityWorld(deployed, idp, provider, first, frontend_key, provisioning_key)
