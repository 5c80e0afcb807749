"""Which values of a token's groups claim count, and which principal each becomes
(identity/groups.py), for tokens signed by hand (tests/identity/signing_idp.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from identity.oidc import IssuerSettings, OidcSettings, OidcVerifier
from tests.identity.signing_idp import SigningIdp

ENTRA_FINANCE = "2a6c0f4e-6d1b-4c3a-9f0e-5b7d8c9a1e21"  # group object ids, as Entra sends them
ENTRA_OPS = "9b1d2e3f-0a4c-4b5d-8e6f-7a8b9c0d1e2f"


@pytest.fixture
def idp() -> Iterator[SigningIdp]:
    with SigningIdp() as provider:
        provider.add_key("k1")
        yield provider


def _groups(idp: SigningIdp, claims: dict[str, object], **settings: object) -> tuple[str, ...]:
    issuer = IssuerSettings(**{"issuer": idp.issuer, "audience": "clearance", **settings})
    verifier = OidcVerifier(OidcSettings(issuers=[issuer]))
    try:
        return verifier.verify(idp.token(**claims)).groups
    finally:
        verifier.close()


def test_the_claim_is_ignored_unless_the_issuer_names_it(idp: SigningIdp):
    assert _groups(idp, {"groups": ["finance"]}) == ()
    assert _groups(idp, {"groups": ["finance"]}, groups_claim="roles") == ()
    assert _groups(idp, {"roles": ["finance"]}, groups_claim="roles") == ("group:finance",)


def test_without_a_map_or_prefix_every_valid_value_is_a_group(idp: SigningIdp,
                                                              caplog: pytest.LogCaptureFixture):
    claims = {"groups": ["finance", "finance", "bad name", "a,b", "", 42, None, ["x"],
                        "caf\u0065\u0301", "user:root"]}
    with caplog.at_level(logging.WARNING, logger="identity.groups"):
        groups = _groups(idp, claims, groups_claim="groups")
    # "user:root" is a group of that odd name, never the user principal.
    assert groups == ("group:finance", "group:caf\u00e9", "group:user:root")
    logged = caplog.text
    assert "'bad name'" in logged and "'a,b'" in logged and "is a int, not a string" in logged


def test_a_claim_that_is_not_a_list_grants_nothing_and_the_token_is_still_accepted(
        idp: SigningIdp, caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.WARNING, logger="identity.groups"):
        assert _groups(idp, {"groups": "finance"}, groups_claim="groups") == ()
        assert _groups(idp, {"groups": {"finance": True}}, groups_claim="groups") == ()
    assert "is a str, not a list" in caplog.text and "is a dict, not a list" in caplog.text


def test_a_prefix_picks_the_values_that_count(idp: SigningIdp):
    claims = {"groups": ["clearance-finance", "finance", "Domain Users", "clearance-"]}
    assert _groups(idp, claims, groups_claim="groups", group_prefix="clearance-") == (
        "group:finance",)


def test_a_map_names_each_value_that_counts_and_its_tenant(idp: SigningIdp):
    table = {ENTRA_FINANCE: "group:finance", ENTRA_OPS: "acme/group:ops",
             "Auditors": "role:auditor"}
    claims = {"groups": [ENTRA_OPS, ENTRA_FINANCE, "Auditors", "finance",
                         "1e2d3c4b-0000-0000-0000-000000000000"]}
    assert _groups(idp, claims, groups_claim="groups", group_map=table) == (
        "acme/group:ops", "group:finance", "role:auditor")
    # In another tenant: the plain targets follow groups_tenant, a qualified one keeps its own.
    assert _groups(idp, claims, groups_claim="groups", group_map=table,
                   groups_tenant="globex") == (
        "acme/group:ops", "globex/group:finance", "globex/role:auditor")
    # Map and prefix together: the mapped values, and the prefixed ones.
    claims = {"groups": [ENTRA_FINANCE, "clr-legal", "legal"]}
    assert _groups(idp, claims, groups_claim="groups", group_map=table, group_prefix="clr-"
                   ) == ("group:finance", "group:legal")


def test_an_entra_overage_takes_no_groups(idp: SigningIdp, caplog: pytest.LogCaptureFixture):
    claims = {"_claim_names": {"groups": "src1"},
              "_claim_sources": {"src1": {"endpoint": "https://graph.microsoft.com/..."}}}
    with caplog.at_level(logging.WARNING, logger="identity.groups"):
        assert _groups(idp, claims, groups_claim="groups") == ()
    assert "too many groups" in caplog.text


@pytest.mark.parametrize(("settings", "error"), [
    ({"group_prefix": "clr-"}, "without groups_claim"),
    ({"group_map": {"x": "group:x"}}, "without groups_claim"),
    ({"groups_tenant": "acme"}, "without groups_claim"),
    ({"groups_claim": "groups", "group_map": {"x": "user:root"}}, "not group:NAME or role"),
    ({"groups_claim": "groups", "group_map": {"x": "group:a b"}}, "not group:NAME or role"),
    ({"groups_claim": "groups", "group_map": {"x": "Acme/group:x"}}, "not a tenant name"),
    ({"groups_claim": "groups", "groups_tenant": "Acme"}, "not a tenant name"),
    ({"groups_claim": ""}, "at least 1 character"),
])
def test_a_group_config_that_cannot_work_is_refused_at_load(settings: dict[str, object],
                                                            error: str):
    with pytest.raises(ValueError, match=error):
        IssuerSettings(issuer="https://idp.example", audience="x", **settings)
