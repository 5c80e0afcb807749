"""Access tokens: every bad token is refused with a reason, good ones name the user, and a key
rotated at the provider is picked up without a restart (tests/identity/signing_idp.py signs the
tokens by hand, so each bad one is exactly the one wanted)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from identity.oidc import IssuerSettings, OidcSettings, OidcVerifier, TokenRejected
from tests.identity.signing_idp import SigningIdp


@pytest.fixture
def idp() -> Iterator[SigningIdp]:
    with SigningIdp() as provider:
        provider.add_key("k1")
        provider.add_key("ec1", "EC")
        yield provider


def _verifier(idp: SigningIdp, **settings: object) -> OidcVerifier:
    issuer = IssuerSettings(**{"issuer": idp.issuer, "audience": "clearance",
                               "refetch_min_s": 0, **settings})
    return OidcVerifier(OidcSettings(issuers=[issuer]))


def _tampered(token: str, **changes: object) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _hs256_with_public_key(idp: SigningIdp) -> str:
    """The classic confusion: HMAC "signed" with the RSA public key a verifier might use."""
    pem = idp.keys["k1"].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = {"alg": "HS256", "kid": "k1", "typ": "JWT"}
    signing = (base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=") + b"." +
               base64.urlsafe_b64encode(json.dumps(idp.claims()).encode()).rstrip(b"="))
    import hashlib
    import hmac

    mac = base64.urlsafe_b64encode(hmac.new(pem, signing, hashlib.sha256).digest()).rstrip(b"=")
    return (signing + b"." + mac).decode()


def _unsigned(idp: SigningIdp) -> str:
    return jwt.encode(idp.claims(), None, algorithm="none", headers={"kid": "k1"})


BAD_TOKENS = {
    "alg none": (_unsigned, "algorithm 'none'"),
    "HS256 signed with the RSA public key": (_hs256_with_public_key, "algorithm 'HS256'"),
    "expired": (lambda idp: idp.token(exp=int(time.time()) - 120), "expired"),
    "nbf in the future": (lambda idp: idp.token(nbf=int(time.time()) + 600), "not valid yet"),
    "iat in the future": (lambda idp: idp.token(iat=int(time.time()) + 600), "not valid yet"),
    "wrong iss": (lambda idp: idp.token(iss="https://evil.example"), "is not one this service"),
    "wrong aud": (lambda idp: idp.token(aud="another-service"), "not for this service"),
    "no aud": (lambda idp: idp.token(aud=None), "'aud'"),
    "no exp": (lambda idp: idp.token(exp=None), "'exp'"),
    "unknown kid": (lambda idp: _with_kid(idp, "k-made-up"), "unknown signing key"),
    "tampered payload": (lambda idp: _tampered(idp.token(), sub="root"), "does not verify"),
    "ES256 when only RS256 is allowed": (lambda idp: idp.token("ec1"), "algorithm 'ES256'"),
    "not a JWT": (lambda idp: "a.b.c", "not a well-formed JWT"),
    "a user name that is not one": (lambda idp: idp.token(sub="../root"), "not a valid user"),
}


def _with_kid(idp: SigningIdp, kid: str) -> str:
    return jwt.encode(idp.claims(), idp.keys["k1"], algorithm="RS256", headers={"kid": kid})


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_a_bad_token_is_refused_with_its_reason(idp: SigningIdp, case: str):
    make, reason = BAD_TOKENS[case]
    verifier = _verifier(idp)
    with pytest.raises(TokenRejected) as refused:
        verifier.verify(make(idp))
    assert reason in str(refused.value)


def test_good_tokens_name_the_user_within_the_clock_skew(idp: SigningIdp):
    verifier = _verifier(idp, algorithms=["RS256", "ES256"])
    assert verifier.verify(idp.token()).user == "alice"
    assert verifier.verify(idp.token("ec1", sub="bob")).user == "bob"
    assert verifier.verify(idp.token(exp=int(time.time()) - 30)).user == "alice"  # skew 60 s
    assert verifier.verify(idp.token(aud=["other", "clearance"])).user == "alice"


def test_the_user_from_an_email_claim_of_the_configured_domain_only(idp: SigningIdp):
    verifier = _verifier(idp, user_claim="email", email_domain="larkspur.example")
    assert verifier.verify(idp.token(email="carol@larkspur.example")).user == "carol"
    with pytest.raises(TokenRejected, match=r"not an address of larkspur\.example"):
        verifier.verify(idp.token(email="carol@evil.example"))
    with pytest.raises(TokenRejected, match="'email'"):
        verifier.verify(idp.token())
    with pytest.raises(ValueError, match="email_domain"):
        IssuerSettings(issuer=idp.issuer, audience="x", user_claim="email")


def test_a_key_rotated_at_the_provider_is_picked_up_without_a_restart(idp: SigningIdp):
    verifier = _verifier(idp)
    assert verifier.verify(idp.token()).user == "alice"
    idp.add_key("k2")  # rotation: a new key, then the old one withdrawn
    del idp.keys["k1"]
    assert verifier.verify(idp.token("k2", sub="bob")).user == "bob"
    assert idp.fetches["jwks"] == 2 and idp.fetches["discovery"] == 1


def test_made_up_kids_do_not_make_a_fetch_each(idp: SigningIdp):
    verifier = _verifier(idp, refetch_min_s=60)
    assert verifier.verify(idp.token()).user == "alice"
    for i in range(50):
        with pytest.raises(TokenRejected, match="unknown signing key"):
            verifier.verify(_with_kid(idp, f"made-up-{i}"))
    assert idp.fetches["jwks"] == 1


def test_a_discovery_document_naming_another_issuer_is_refused(idp: SigningIdp):
    verifier = _verifier(idp, discovery_url=idp.issuer + "/.well-known/openid-configuration")
    original = idp.issuer
    try:
        # The provider says it is someone else: nothing from it is trusted.
        idp.issuer = "https://other.example"
        token = jwt.encode({**idp.claims(), "iss": original}, idp.keys["k1"], algorithm="RS256",
                           headers={"kid": "k1"})
        with pytest.raises(TokenRejected, match="names issuer"):
            verifier.verify(token)
    finally:
        idp.issuer = original


def test_an_issuer_is_reached_over_https_only_except_on_loopback():
    with pytest.raises(ValueError, match="https"):
        IssuerSettings(issuer="http://idp.example", audience="x")
    IssuerSettings(issuer="https://idp.example", audience="x")
