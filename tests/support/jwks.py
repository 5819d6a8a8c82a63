"""An identity provider's JWKS endpoint on a real HTTP server, and tokens signed with its keys."""

from __future__ import annotations

import json
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.support.http import Answer, RecordingServer


class JwksServer:
    """Publishes the public halves of `published` RSA keys (by key id) at `url`; `unpublished`
    keys sign tokens too, as keys the provider rotated to after a client read the set.
    `down()` stops the server: what an outage of the identity provider looks like."""

    def __init__(self, published: tuple[str, ...] = ("key-1",), unpublished=("key-2",)):
        self.keys = {
            kid: rsa.generate_private_key(public_exponent=65537, key_size=2048)
            for kid in (*published, *unpublished)
        }
        jwks = []
        for kid in published:
            jwk = RSAAlgorithm.to_jwk(self.keys[kid].public_key(), as_dict=True)
            jwk.update(kid=kid, use="sig", alg="RS256")
            jwks.append(jwk)
        body = json.dumps({"keys": jwks}).encode()
        self.server = RecordingServer(
            lambda _request: Answer(200, body, {"Content-Type": "application/json"})
        )
        self.url = f"{self.server.url}/.well-known/jwks.json"
        self.up = True

    def token(self, kid: str = "key-1", sub: str = "alice", ttl: int = 600, **claims) -> str:
        payload = {"sub": sub, "exp": int(time.time()) + ttl, **claims}
        return jwt.encode(payload, self.keys[kid], algorithm="RS256", headers={"kid": kid})

    def fetches(self) -> int:
        return len(self.server.recorded())

    def down(self) -> None:
        if self.up:
            self.server.close()
            self.up = False

    def __enter__(self) -> JwksServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.down()
