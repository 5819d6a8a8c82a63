"""The web function as functions-framework serves it: the pages and their Content-Security-Policy,
fingerprinted assets (names, cache headers, rewritten imports), the sign-in settings and the
development sign-in, which exists only under DUEFLOW_ENV=local."""

from __future__ import annotations

import gzip
import hashlib
import re

import jwt
import pytest
from functions_framework import create_app

from dueflow.config import DEV_JWT_SECRET
from tests.conftest import ROOT

SOURCE = ROOT / "functions" / "web" / "main.py"
ASSET = re.compile(r'/assets/([\w.-]+)\.([0-9a-f]{12})\.(js|css)"')


@pytest.fixture
def web(monkeypatch):
    def serve(**env: str):
        for name in (
            "DUEFLOW_ENV",
            "DUEFLOW_JWT_SECRET",
            "DUEFLOW_JWKS_URL",
            "DUEFLOW_OIDC_ISSUER",
        ):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return create_app("web", str(SOURCE)).test_client()

    return serve


def test_the_page_refers_to_fingerprinted_assets_cached_for_a_year(web):
    client = web(DUEFLOW_ENV="local")
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert page.headers["Cache-Control"] == "no-cache"
    names = ASSET.findall(page.text)
    assert {n[0] for n in names} == {"app", "oidc-client-ts", "main"}
    for stem, digest, ext in names:
        asset = client.get(f"/assets/{stem}.{digest}.{ext}")
        assert asset.status_code == 200
        assert asset.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert asset.headers["X-Content-Type-Options"] == "nosniff"
        assert asset.mimetype == {"js": "text/javascript", "css": "text/css"}[ext]
        assert hashlib.sha256(asset.data).hexdigest()[:12] == digest, "the name is the content"
        zipped = client.get(f"/assets/{stem}.{digest}.{ext}", headers={"Accept-Encoding": "gzip"})
        assert zipped.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(zipped.data) == asset.data
    assert client.get("/assets/main.js").status_code == 404, "only fingerprinted names"
    assert client.get("/nothing-here").status_code == 404


def test_module_imports_point_at_fingerprinted_modules(web):
    client = web(DUEFLOW_ENV="local")
    [main] = [n for n in ASSET.findall(client.get("/").text) if n[0] == "main"]
    source = client.get("/assets/{}.{}.{}".format(*main)).text
    imports = re.findall(r'from "\./([\w.-]+)"', source)
    assert imports and all(re.fullmatch(r"[\w-]+\.[0-9a-f]{12}\.js", i) for i in imports), imports
    for name in imports:
        assert client.get(f"/assets/{name}").status_code == 200


def test_pages_forbid_inline_script_and_framing(web):
    client = web(DUEFLOW_ENV="local")
    csp = client.get("/").headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "'unsafe-inline'" not in csp
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "connect-src 'self';" in csp
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui-bundle" in docs.text
    assert "script-src 'self';" in docs.headers["Content-Security-Policy"]
    assert "<script>" not in docs.text and "<script>" not in client.get("/").text


def test_the_oidc_settings_are_served_and_their_origin_may_be_fetched(web):
    client = web(
        DUEFLOW_OIDC_ISSUER="https://id.example.com/realms/dueflow/",
        DUEFLOW_OIDC_CLIENT_ID="dueflow-web",
        DUEFLOW_JWKS_URL="https://id.example.com/realms/dueflow/certs",
    )
    settings = client.get("/config.json")
    assert settings.headers["Cache-Control"] == "no-store"
    assert settings.json == {
        "dev_sign_in": False,
        "oidc": {
            "authority": "https://id.example.com/realms/dueflow",
            "client_id": "dueflow-web",
            "scope": "openid email",
        },
    }
    csp = client.get("/").headers["Content-Security-Policy"]
    assert "connect-src 'self' https://id.example.com;" in csp


def test_the_development_sign_in_mints_a_token_of_the_development_secret_locally(web):
    client = web(DUEFLOW_ENV="local")
    assert client.get("/config.json").json == {"dev_sign_in": True, "oidc": None}
    answer = client.post("/auth/dev-token", json={"user": "dev-1"})
    assert answer.status_code == 200
    claims = jwt.decode(answer.json["access_token"], DEV_JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "dev-1" and claims["email"] == "dev-1@example.com"
    bad = client.post("/auth/dev-token", json={"user": "no spaces"})
    assert bad.status_code == 422 and bad.json["field"] == "user"
    assert bad.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    "env",
    [{}, {"DUEFLOW_ENV": "local", "DUEFLOW_JWT_SECRET": "a-real-deployment-secret"}],
    ids=["production", "local-with-its-own-secret"],
)
def test_there_is_no_development_sign_in_elsewhere(web, env):
    client = web(**env)
    assert client.post("/auth/dev-token", json={"user": "mallory"}).status_code == 404
    assert client.get("/config.json").json["dev_sign_in"] is False


def test_an_oidc_issuer_without_a_client_id_refuses_to_start(web):
    with pytest.raises(Exception, match="DUEFLOW_OIDC_CLIENT_ID"):
        web(DUEFLOW_OIDC_ISSUER="https://id.example.com")
