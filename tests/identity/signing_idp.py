"""A stand-in identity provider for negative cases: it serves a discovery document and a JWKS
on loopback and signs tokens by hand (PyJWT), so a test can make exactly the bad token it
needs (expired, wrong audience, tampered, `alg: none`...). Named as what it is: not a real
OpenID provider (tests/identity/test_oidc_provider.py runs one)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

_MADE: dict[tuple[str, str], Any] = {}


class SigningIdp:
    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}  # kid → private key
        self.fetches = {"discovery": 0, "jwks": 0}
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    idp.fetches["discovery"] += 1
                    body = {"issuer": idp.issuer, "jwks_uri": idp.issuer + "/jwks"}
                elif self.path == "/jwks":
                    idp.fetches["jwks"] += 1
                    body = {"keys": [idp.public_jwk(kid) for kid in list(idp.keys)]}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> SigningIdp:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_key(self, kid: str, kind: str = "RSA") -> None:
        if (kid, kind) not in _MADE:  # an RSA key takes a while to make: once per run
            _MADE[kid, kind] = (rsa.generate_private_key(public_exponent=65537, key_size=2048)
                                if kind == "RSA" else ec.generate_private_key(ec.SECP256R1()))
        self.keys[kid] = _MADE[kid, kind]

    def public_jwk(self, kid: str) -> dict[str, Any]:
        key = self.keys[kid]
        algorithm = jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) \
            else jwt.algorithms.ECAlgorithm
        jwk = json.loads(algorithm.to_jwk(key.public_key()))
        return {**jwk, "kid": kid, "use": "sig"}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": "clearance", "sub": "alice", "iat": now,
                  "exp": now + 300}
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, kid: str = "k1", alg: str | None = None, **overrides: Any) -> str:
        key = self.keys[kid]
        alg = alg or ("RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256")
        return jwt.encode(self.claims(**overrides), key, algorithm=alg, headers={"kid": kid})
