"""Tests for dueflow.adapters.auth, using real PyJWT and a real local JWKS HTTP server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from dueflow.adapters.auth import (
    AuthError,
    AuthSettings,
    AuthUnavailable,
    Principal,
    authenticate,
    bearer_token,
)
from tests.support.http import Answer, RecordingServer

SECRET = "s3cret-for-tests-that-is-at-least-32-bytes-long"
HS = AuthSettings(jwt_secret=SECRET)


def _claims(**overrides):
    claims = {"sub": "user-1", "exp": int(time.time()) + 600, "email": "a@example.com"}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _hs(claims=None, secret=SECRET) -> str:
    return jwt.encode(claims if claims is not None else _claims(), secret, algorithm="HS256")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hand_made(header: dict, claims: dict, sign=lambda signing_input: b"") -> str:
    head = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    return head + "." + _b64(sign(head.encode()))


# --- local JWKS server --------------------------------------------------------------


@pytest.fixture(scope="module")
def keys():
    return {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ed": ed25519.Ed25519PrivateKey.generate(),
        "ec": ec.generate_private_key(ec.SECP256R1()),
    }


def _serve(body: bytes) -> tuple[RecordingServer, str]:
    json_body = Answer(200, body, {"Content-Type": "application/json"})
    server = RecordingServer(lambda _request: json_body)
    return server, f"{server.url}/.well-known/jwks.json"


def _stop(server: RecordingServer) -> None:
    server.close()


@pytest.fixture(scope="module")
def jwks_url(keys):
    jwks = []
    for kid, algo, key in [
        ("rsa-1", RSAAlgorithm, keys["rsa"]),
        ("ed-1", OKPAlgorithm, keys["ed"]),
        ("ec-1", ECAlgorithm, keys["ec"]),
    ]:
        jwk = algo.to_jwk(key.public_key(), as_dict=True)
        jwk.update(kid=kid, use="sig")
        jwks.append(jwk)
    server, url = _serve(json.dumps({"keys": jwks}).encode())
    yield url
    _stop(server)


def _signed(key, alg: str, kid: str, claims=None) -> str:
    payload = claims if claims is not None else _claims()
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


# --- bearer header parsing ----------------------------------------------------------


def test_bearer_token_accepts_case_insensitive_scheme():
    assert bearer_token("bearer abc.def.ghi") == "abc.def.ghi"
    assert bearer_token("Bearer  abc.def.ghi ") == "abc.def.ghi"


@pytest.mark.parametrize("header", [None, "", "Basic x", "Bearer", "Bearer a b", "Token abc"])
def test_malformed_authorization_header_is_rejected(header):
    with pytest.raises(AuthError, match="missing or malformed bearer token"):
        authenticate(header, HS)


# --- HS256 ---------------------------------------------------------------------------


def test_valid_hs256_returns_principal():
    assert authenticate(f"Bearer {_hs()}", HS) == Principal("user-1", "a@example.com")


def test_non_string_email_is_ignored():
    token = _hs(_claims(email=["a@example.com"]))
    assert authenticate(f"Bearer {token}", HS) == Principal("user-1", None)


def test_expired_token_is_rejected_without_echoing_token():
    token = _hs(_claims(exp=int(time.time()) - 120))
    with pytest.raises(AuthError, match="token expired") as exc:
        authenticate(f"Bearer {token}", HS)
    assert token not in str(exc.value)


def test_clock_leeway_of_30_seconds():
    recently_expired = _hs(_claims(exp=int(time.time()) - 10))
    assert authenticate(f"Bearer {recently_expired}", HS).user_id == "user-1"
    too_old = _hs(_claims(exp=int(time.time()) - 60))
    with pytest.raises(AuthError, match="token expired"):
        authenticate(f"Bearer {too_old}", HS)


def test_missing_exp_is_rejected():
    with pytest.raises(AuthError, match="invalid token"):
        authenticate(f"Bearer {_hs(_claims(exp=None))}", HS)


def test_missing_sub_is_rejected():
    with pytest.raises(AuthError, match="invalid token"):
        authenticate(f"Bearer {_hs(_claims(sub=None))}", HS)


@pytest.mark.parametrize("sub", ["", "x" * 256])
def test_empty_or_overlong_sub_is_rejected(sub):
    with pytest.raises(AuthError, match="invalid subject"):
        authenticate(f"Bearer {_hs(_claims(sub=sub))}", HS)


def test_wrong_secret_is_rejected():
    token = _hs(secret="another-secret-that-is-also-32-bytes-long!!")
    with pytest.raises(AuthError, match="invalid token"):
        authenticate(f"Bearer {token}", HS)


def test_alg_none_is_rejected():
    token = _hand_made({"alg": "none", "typ": "JWT"}, _claims())
    assert token.endswith(".")  # really an unsigned token
    with pytest.raises(AuthError, match="unsupported token algorithm"):
        authenticate(f"Bearer {token}", HS)


def test_hs256_rejected_when_no_secret_configured():
    with pytest.raises(AuthError, match="HS256 tokens not accepted"):
        authenticate(f"Bearer {_hs()}", AuthSettings(jwt_secret=None))


def test_garbage_token_is_rejected():
    with pytest.raises(AuthError, match="malformed token"):
        authenticate("Bearer not-a-jwt", HS)


def test_issuer_is_enforced_when_configured():
    settings = AuthSettings(jwt_secret=SECRET, issuer="https://auth.example.com")
    good = _hs(_claims(iss="https://auth.example.com"))
    assert authenticate(f"Bearer {good}", settings).user_id == "user-1"
    with pytest.raises(AuthError, match="invalid token"):
        authenticate(f"Bearer {_hs(_claims(iss='https://evil.example.com'))}", settings)


def test_audience_not_checked_when_not_configured():
    token = _hs(_claims(aud="some-other-app"))
    assert authenticate(f"Bearer {token}", HS).user_id == "user-1"


# --- JWKS (RS256 / EdDSA / ES256) -----------------------------------------------------


def test_rs256_token_verified_against_jwks(keys, jwks_url):
    token = _signed(keys["rsa"], "RS256", "rsa-1", _claims(sub="rsa-user"))
    settings = AuthSettings(jwt_secret=None, jwks_url=jwks_url)
    assert authenticate(f"Bearer {token}", settings) == Principal("rsa-user", "a@example.com")


def test_eddsa_token_verified_against_jwks(keys, jwks_url):
    token = _signed(keys["ed"], "EdDSA", "ed-1", _claims(sub="ed-user", email=None))
    settings = AuthSettings(jwt_secret=None, jwks_url=jwks_url)
    assert authenticate(f"Bearer {token}", settings) == Principal("ed-user", None)


def test_es256_token_verified_against_jwks(keys, jwks_url):
    token = _signed(keys["ec"], "ES256", "ec-1", _claims(sub="ec-user"))
    settings = AuthSettings(jwt_secret=None, jwks_url=jwks_url)
    assert authenticate(f"Bearer {token}", settings).user_id == "ec-user"


def test_rs256_signed_by_foreign_key_is_rejected(jwks_url):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = _signed(stranger, "RS256", "rsa-1")
    with pytest.raises(AuthError, match="invalid token"):
        authenticate(f"Bearer {token}", AuthSettings(jwt_secret=None, jwks_url=jwks_url))


def test_unknown_kid_is_auth_error(keys, jwks_url):
    token = _signed(keys["rsa"], "RS256", "no-such-kid")
    with pytest.raises(AuthError, match="unknown signing key"):
        authenticate(f"Bearer {token}", AuthSettings(jwt_secret=None, jwks_url=jwks_url))


def test_missing_kid_is_auth_error(keys, jwks_url):
    token = jwt.encode(_claims(), keys["rsa"], algorithm="RS256")
    with pytest.raises(AuthError, match="missing key id"):
        authenticate(f"Bearer {token}", AuthSettings(jwt_secret=None, jwks_url=jwks_url))


def test_asymmetric_token_rejected_without_jwks_url(keys):
    token = _signed(keys["rsa"], "RS256", "rsa-1")
    with pytest.raises(AuthError, match="asymmetric tokens not accepted"):
        authenticate(f"Bearer {token}", HS)


def test_hs256_signed_with_rsa_public_pem_is_rejected(keys, jwks_url):
    # Classic algorithm confusion: attacker uses the (public) RSA key as an HMAC secret.
    # PyJWT refuses to create such a token, so sign it by hand.
    pem = (
        keys["rsa"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    token = _hand_made(
        {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"},
        _claims(),
        lambda signing_input: hmac.new(pem, signing_input, hashlib.sha256).digest(),
    )
    only_jwks = AuthSettings(jwt_secret=None, jwks_url=jwks_url)
    with pytest.raises(AuthError, match="HS256 tokens not accepted"):
        authenticate(f"Bearer {token}", only_jwks)
    both = AuthSettings(jwt_secret=SECRET, jwks_url=jwks_url)
    with pytest.raises(AuthError, match="invalid token"):
        authenticate(f"Bearer {token}", both)


def test_header_alg_must_match_jwk_key_type(keys, jwks_url):
    # An EdDSA-labelled token pointing at the RSA key must not be verified with it.
    token = _signed(keys["ed"], "EdDSA", "rsa-1")
    with pytest.raises(AuthError, match="algorithm does not match signing key"):
        authenticate(f"Bearer {token}", AuthSettings(jwt_secret=None, jwks_url=jwks_url))


def test_audience_mismatch_is_rejected(keys, jwks_url):
    settings = AuthSettings(jwt_secret=None, jwks_url=jwks_url, audience="dueflow-api")
    ok = _signed(keys["rsa"], "RS256", "rsa-1", _claims(aud="dueflow-api"))
    assert authenticate(f"Bearer {ok}", settings).user_id == "user-1"
    bad = _signed(keys["rsa"], "RS256", "rsa-1", _claims(aud="someone-else"))
    with pytest.raises(AuthError, match="invalid token"):
        authenticate(f"Bearer {bad}", settings)
    missing = _signed(keys["rsa"], "RS256", "rsa-1", _claims())
    with pytest.raises(AuthError, match="invalid token"):
        authenticate(f"Bearer {missing}", settings)


def test_unreachable_jwks_is_auth_unavailable(keys):
    server, url = _serve(b'{"keys": []}')
    _stop(server)  # nothing listens on the port any more -> connection refused
    token = _signed(keys["rsa"], "RS256", "rsa-1")
    with pytest.raises(AuthUnavailable):
        authenticate(f"Bearer {token}", AuthSettings(jwt_secret=None, jwks_url=url))


def test_garbled_jwks_is_auth_unavailable(keys):
    server, url = _serve(b"<html>not json</html>")
    try:
        token = _signed(keys["rsa"], "RS256", "rsa-1")
        with pytest.raises(AuthUnavailable):
            authenticate(f"Bearer {token}", AuthSettings(jwt_secret=None, jwks_url=url))
    finally:
        _stop(server)


def test_a_token_no_key_could_make_valid_is_refused_without_the_jwks(keys):
    server, url = _serve(b'{"keys": []}')
    _stop(server)  # unreachable: still the token's fault, not an outage
    settings = AuthSettings(jwt_secret=None, jwks_url=url)
    expired = _signed(keys["rsa"], "RS256", "rsa-1", _claims(exp=int(time.time()) - 120))
    with pytest.raises(AuthError, match="token expired"):
        authenticate(f"Bearer {expired}", settings)
    no_subject = _signed(keys["rsa"], "RS256", "rsa-1", _claims(sub=None))
    with pytest.raises(AuthError, match="invalid token"):
        authenticate(f"Bearer {no_subject}", settings)
