"""A deactivated user is refused at their next request, whatever they hold: their API key, an
access token from the identity provider, or a front-end naming them; until activated again."""

from __future__ import annotations

from tests.identity.conftest import IdentityWorld
from tests.identity.oidc_provider import access_token
from tests.test_acl_changes import QUERY

EMAIL = "X-OpenWebUI-User-Email"


def test_a_deactivated_user_is_refused_with_any_key_or_token(identity_world: IdentityWorld):
    world = identity_world
    deployed = world.deployed
    ways = {
        "api key": {"Authorization": f"Bearer {deployed.keys['alice']}"},
        "hand-signed token": {"Authorization": f"Bearer {world.idp.token(sub='alice')}"},
        "provider token": {"Authorization":
                           f"Bearer {access_token(world.provider.issuer, 'alice')}"},
        "front-end": {"Authorization": f"Bearer {world.frontend_key}",
                      EMAIL: "alice@larkspur.example"},
    }

    def statuses() -> dict[str, int]:
        with deployed.client() as client:
            return {way: client.post("/v1/search", json={"query": QUERY},
                                     headers=headers).status_code
                    for way, headers in ways.items()}

    assert set(statuses().values()) == {200}
    with deployed.client("root") as admin:
        done = admin.post("/v1/admin/users/alice/deactivate", json={"reason": "left"})
        assert done.status_code == 200, done.text
        try:
            assert statuses() == dict.fromkeys(ways, 401)
            with deployed.client("alice") as alice:
                refused = alice.post("/v1/search", json={"query": QUERY})
            assert "user:alice is deactivated" in refused.text
            listed = admin.get("/v1/admin/users/deactivated").json()["deactivated"]
            assert listed["alice"]["reason"] == "left" and listed["alice"]["by"] == "user:root"
            with deployed.client("dave") as dave:  # nobody else is affected
                assert dave.post("/v1/search", json={"query": QUERY}).status_code == 200
        finally:
            assert admin.post("/v1/admin/users/alice/activate").status_code == 200
    assert set(statuses().values()) == {200}
    with deployed.client("root") as admin:
        assert admin.post("/v1/admin/users/alice/activate").status_code == 404
