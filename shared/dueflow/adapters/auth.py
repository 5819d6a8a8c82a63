"""Bearer-JWT authentication adapter (pure: no Flask, no env; config is passed in).

HS256 tokens are checked with a shared secret; RS256/ES256/EdDSA tokens with keys
from the frontend auth server's JWKS. PyJWT does all crypto and claim checks.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

_LEEWAY_S = 30  # tolerate clock skew between the auth server and us
_ASYMMETRIC = {"RS256", "ES256", "EdDSA"}
_JWKS_LIFESPAN_S = 300  # how long a fetched key set is trusted before it is fetched again

# One PyJWKClient per URL so its JWKS/key caches survive across requests.
_jwks_clients: dict[str, jwt.PyJWKClient] = {}
_jwks_lock = threading.Lock()


@dataclass(frozen=True)
class Principal:
    user_id: str
    email: str | None


class AuthError(Exception):
    """Caller is not authenticated (HTTP 401). str(e) is a short, token-free reason."""


class AuthUnavailable(Exception):
    """We could not check the token, e.g. JWKS fetch failed (HTTP 503)."""


@dataclass(frozen=True)
class AuthSettings:
    jwt_secret: str | None
    jwks_url: str | None = None
    audience: str | None = None
    issuer: str | None = None


# Verified tokens, so the next requests with the same token skip the signature check and claim
# parsing. Only successes are kept: until the moment the full check would reject the token as
# expired (exp + leeway), and for at most the key set's lifespan, so a token is checked in full
# again as often as the JWKS is read again. Keyed by token and settings; bounded, least recently
# used out first.
_VERIFIED_MAX = 4096
_verified: OrderedDict[tuple[str, AuthSettings], tuple[float, Principal]] = OrderedDict()
_verified_lock = threading.Lock()


def bearer_token(authorization_header: str | None) -> str:
    parts = (authorization_header or "").split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise AuthError("missing or malformed bearer token")
    return parts[1]


def _jwks_client(url: str) -> jwt.PyJWKClient:
    with _jwks_lock:
        if url not in _jwks_clients:
            # timeout: a slow auth server must not hang a serverless request for 30 s.
            _jwks_clients[url] = jwt.PyJWKClient(
                url, cache_keys=True, lifespan=_JWKS_LIFESPAN_S, timeout=5
            )
        return _jwks_clients[url]


def _alg_for_key(key: object) -> str | None:
    # The one algorithm a JWKS key may verify, derived from the loaded key object
    # (not from the token header) so a token can never pick how it is checked:
    # this is the algorithm-confusion guard. Private/symmetric JWKs map to None.
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "EdDSA"
    return None


def _asymmetric_key(header: dict, jwks_url: str) -> object:
    kid = header.get("kid")
    if not isinstance(kid, str):  # also keeps unhashable values out of PyJWT's lru_cache
        raise AuthError("missing key id")
    try:
        jwk = _jwks_client(jwks_url).get_signing_key(kid)
    except jwt.PyJWKClientConnectionError as e:
        raise AuthUnavailable("signing keys unavailable") from e
    except (jwt.PyJWKSetError, ValueError) as e:  # empty/garbled JWKS: server-side fault
        raise AuthUnavailable("signing keys unavailable") from e
    except jwt.PyJWKClientError as e:  # kid not in the (refreshed) key set
        raise AuthError("unknown signing key") from e
    if header.get("alg") != _alg_for_key(jwk.key):
        raise AuthError("algorithm does not match signing key")
    return jwk.key


def authenticate(authorization_header: str | None, settings: AuthSettings) -> Principal:
    """The caller of a request with this `Authorization` header: raises AuthError (401) or
    AuthUnavailable (503). A token verified before, and not yet expired, is not checked again."""
    token = bearer_token(authorization_header)
    key = (token, settings)
    principal = _remembered(key)
    if principal is not None:
        return principal
    now = time.time()
    principal, exp = _verify(token, settings)
    # PyJWT rejects a token once exp <= now - leeway, with exp read as int(claims["exp"])
    until = min(exp + _LEEWAY_S, now + _JWKS_LIFESPAN_S)
    with _verified_lock:
        _verified[key] = (until, principal)
        if len(_verified) > _VERIFIED_MAX:
            _verified.popitem(last=False)
    return principal


def _refuse_before_fetching_keys(token: str) -> None:
    """AuthError for a token that no key could make valid (expired, no exp or sub), checked
    before the key set is fetched: while the identity provider is unreachable such a token
    is still the caller's fault (401), not an outage (503). Refusing needs no signature."""
    try:
        jwt.decode(
            token,
            options={"verify_signature": False, "verify_exp": True, "require": ["exp", "sub"]},
            leeway=_LEEWAY_S,
        )
    except jwt.ExpiredSignatureError as e:
        raise AuthError("token expired") from e
    except jwt.PyJWTError as e:
        raise AuthError("invalid token") from e


def remembered(authorization_header: str | None, settings: AuthSettings) -> Principal | None:
    """The caller, when this header's token was verified before and is not yet expired; else
    None (nothing is verified or fetched here: never blocks, so an event loop may call it)."""
    try:
        return _remembered((bearer_token(authorization_header), settings))
    except AuthError:
        return None


def _remembered(key: tuple[str, AuthSettings]) -> Principal | None:
    with _verified_lock:
        cached = _verified.get(key)
        if cached is None:
            return None
        if time.time() < cached[0]:
            _verified.move_to_end(key)
            return cached[1]
        del _verified[key]  # expired (or kept long enough): check it in full again
        return None


def _verify(token: str, settings: AuthSettings) -> tuple[Principal, int]:
    """The token's principal and expiry, after every check; raises AuthError/AuthUnavailable."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as e:
        raise AuthError("malformed token") from e
    alg = header.get("alg")
    # Route on the header alg, then pin `algorithms` to exactly that one, so the
    # key type and algorithm always agree ("none" and anything unlisted fall out here).
    if alg == "HS256":
        if not settings.jwt_secret:
            raise AuthError("HS256 tokens not accepted")
        key: object = settings.jwt_secret
    elif alg in _ASYMMETRIC:
        if not settings.jwks_url:
            raise AuthError("asymmetric tokens not accepted")
        _refuse_before_fetching_keys(token)
        key = _asymmetric_key(header, settings.jwks_url)
    else:
        raise AuthError("unsupported token algorithm")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=settings.audience,
            issuer=settings.issuer,
            leeway=_LEEWAY_S,
            # Only enforce aud when configured; PyJWT would otherwise reject any token
            # that merely carries an aud claim.
            options={"require": ["exp", "sub"], "verify_aud": settings.audience is not None},
        )
    except jwt.ExpiredSignatureError as e:
        raise AuthError("token expired") from e
    except jwt.PyJWTError as e:  # bad signature, missing claim, aud/iss mismatch, ...
        raise AuthError("invalid token") from e
    sub = claims.get("sub")
    # sub and email reach the database: printable text only (no NUL, no lone surrogate)
    if not isinstance(sub, str) or not sub or len(sub) > 255 or not sub.isprintable():
        raise AuthError("invalid subject")
    if " " in sub:  # every other space character is not printable
        raise AuthError("invalid subject")
    email = claims.get("email")
    if isinstance(email, str) and (len(email) > 320 or not email.isprintable()):
        raise AuthError("invalid email claim")
    principal = Principal(user_id=sub, email=email if isinstance(email, str) else None)
    return principal, int(claims["exp"])
