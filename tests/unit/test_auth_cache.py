"""Verified tokens are remembered until they expire; failed verifications never are."""

from __future__ import annotations

import time
from collections import OrderedDict

import jwt
import pytest

from dueflow.adapters import auth
from dueflow.adapters.auth import AuthError, AuthSettings, Principal, authenticate

SECRET = "s3cret-for-tests-that-is-at-least-32-bytes-long"
HS = AuthSettings(jwt_secret=SECRET)


def _token(sub: str = "user-1", *, exp: int | None = None, secret: str = SECRET, **claims) -> str:
    payload = {"sub": sub, "exp": exp if exp is not None else int(time.time()) + 600, **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


@pytest.fixture(autouse=True)
def _empty_cache(monkeypatch):
    monkeypatch.setattr(auth, "_verified", OrderedDict())


@pytest.fixture
def verified(monkeypatch) -> list[str]:
    """The tokens fully verified (signature and claims), in order."""
    calls: list[str] = []
    real = auth._verify

    def counting(token: str, settings: AuthSettings):
        calls.append(token)
        return real(token, settings)

    monkeypatch.setattr(auth, "_verify", counting)
    return calls


def test_a_token_is_verified_once_then_remembered(verified):
    token = _token(email="a@example.com")
    for _ in range(3):
        assert authenticate(f"Bearer {token}", HS) == Principal("user-1", "a@example.com")
    assert verified == [token]


def test_a_remembered_token_is_rejected_once_it_expires(verified):
    time.sleep(1 - time.time() % 1)  # at the start of a second: the token has one left
    exp = int(time.time()) - 29  # expired, but within the 30 s leeway
    token = _token(exp=exp)
    assert authenticate(f"Bearer {token}", HS).user_id == "user-1"
    time.sleep(max(0.0, exp + 30 - time.time()) + 0.05)
    with pytest.raises(AuthError, match="token expired"):
        authenticate(f"Bearer {token}", HS)
    assert verified == [token, token]


def test_failed_verifications_are_not_remembered(verified):
    forged = _token(secret="another-secret-that-is-also-32-bytes-long!!")
    for _ in range(2):
        with pytest.raises(AuthError, match="invalid token"):
            authenticate(f"Bearer {forged}", HS)
    assert verified == [forged, forged]


def test_a_token_remembered_under_other_settings_is_checked_again():
    token = _token(aud="some-other-app")
    assert authenticate(f"Bearer {token}", HS).user_id == "user-1"  # aud not enforced here
    strict = AuthSettings(jwt_secret=SECRET, audience="dueflow-api")
    with pytest.raises(AuthError, match="invalid token"):
        authenticate(f"Bearer {token}", strict)
    with pytest.raises(AuthError, match="invalid token"):
        authenticate(f"Bearer {token}", AuthSettings(jwt_secret="x" * 40))


def test_the_least_recently_used_token_is_forgotten_first(monkeypatch, verified):
    monkeypatch.setattr(auth, "_VERIFIED_MAX", 2)
    a, b, c = (_token(sub) for sub in ("a", "b", "c"))
    for token in (a, b, a, c):  # a is used again before c arrives: b is the one to go
        authenticate(f"Bearer {token}", HS)
    assert len(auth._verified) == 2
    authenticate(f"Bearer {a}", HS)
    authenticate(f"Bearer {b}", HS)
    assert verified == [a, b, c, b]


def test_a_token_is_checked_again_when_the_key_set_would_be(monkeypatch, verified):
    monkeypatch.setattr(auth, "_JWKS_LIFESPAN_S", 0)
    token = _token()
    authenticate(f"Bearer {token}", HS)
    authenticate(f"Bearer {token}", HS)
    assert verified == [token, token]
