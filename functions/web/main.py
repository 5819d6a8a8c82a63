"""The `web` function: dueflow's web app and API reference (Knative Service `web`).

It serves static files only; the app talks to the public API on the same origin (`/tasks…`,
`/live…`, …), which the front door (locally) or the HTTPRoute (in the cluster) routes by path.

- `/` the app (app/index.html), `/docs` the API reference (Swagger UI rendering /openapi.json);
  both `Cache-Control: no-cache` with a strict Content-Security-Policy.
- `/assets/<name>.<hash>.<ext>` the app's scripts and styles and the self-hosted browser
  libraries from npm (node_modules here: oidc-client-ts, swagger-ui-dist). Fingerprinted at
  start-up: each file's name gets its content hash, references to it in the HTML and in the
  ES modules' imports are rewritten, so the files are cached for a year (`immutable`).
- `/config.json` the sign-in settings (DUEFLOW_OIDC_*; whether the development sign-in is on).
- `POST /auth/dev-token` a development token, only with DUEFLOW_ENV=local and the development
  secret (404 otherwise): what `make run`'s sign-in form uses.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import flask
import functions_framework
import jwt

from dueflow import bootstrap, config

HERE = Path(__file__).resolve().parent
APP = HERE / "app"
NODE_MODULES = HERE / "node_modules"
#: the npm files the pages load, by the name they are served under
VENDOR = {
    "oidc-client-ts.js": "oidc-client-ts/dist/browser/oidc-client-ts.min.js",
    "swagger-ui-bundle.js": "swagger-ui-dist/swagger-ui-bundle.js",
    "swagger-ui.css": "swagger-ui-dist/swagger-ui.css",
}
PAGES = {"/": "index.html", "/index.html": "index.html", "/docs": "docs.html"}
TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
IMMUTABLE = "public, max-age=31536000, immutable"
DEV_TOKEN_LIFETIME = 8 * 3600  # seconds: a working day of `make run`

# Runs while functions-framework loads this file: refuse to start on an unusable configuration.
bootstrap.check_config("web")


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    content_type: str


def _fingerprinted(name: str, body: bytes) -> str:
    stem, dot, ext = name.rpartition(".")
    return f"{stem}.{hashlib.sha256(body).hexdigest()[:12]}{dot}{ext}"


_IMPORT = re.compile(r"""(\bfrom\s*|\bimport\s*\(?\s*)(["'])\./([\w.-]+)\2""")
_SOURCE_MAP = re.compile(rb"\n//# sourceMappingURL=\S+\s*$")


def build_assets() -> tuple[dict[str, Asset], dict[str, str]]:
    """Every asset under its fingerprinted name, and the map from plain to fingerprinted names.

    An ES module's name is hashed after its relative imports (`./x.js`, all in one flat
    directory) are rewritten to their fingerprinted names, so a change anywhere renames every
    module that imports it, directly or not."""
    sources = {p.name: p.read_bytes() for p in sorted((APP / "assets").iterdir()) if p.is_file()}
    for name, path in VENDOR.items():
        file = NODE_MODULES / path
        if not file.is_file():
            raise SystemExit(f"web: {file} is missing: run `npm ci --prefix functions/web`")
        sources[name] = _SOURCE_MAP.sub(b"\n", file.read_bytes())  # no .map is served
    names: dict[str, str] = {}
    assets: dict[str, Asset] = {}

    def resolve(name: str, seen: tuple[str, ...] = ()) -> str:
        if name in names:
            return names[name]
        if name not in sources or name in seen:
            raise SystemExit(f"web: {' -> '.join(seen)} imports {name}: missing or a cycle")
        body = sources[name]
        if name.endswith(".js") and name not in VENDOR:
            text = _IMPORT.sub(
                lambda m: f"{m[1]}{m[2]}./{resolve(m[3], (*seen, name))}{m[2]}", body.decode()
            )
            body = text.encode()
        final = _fingerprinted(name, body)
        names[name] = final
        content_type = TYPES.get(Path(name).suffix, "application/octet-stream")
        assets[final] = Asset(body, gzip.compress(body, 6, mtime=0), content_type)
        return final

    for name in sources:
        resolve(name)
    return assets, names


def build_pages(names: dict[str, str]) -> dict[str, bytes]:
    """The HTML pages with `/assets/<name>` references replaced by the fingerprinted names."""
    pages = {}
    for file in set(PAGES.values()):
        html = (APP / file).read_text()

        def rename(m: re.Match, file: str = file) -> str:
            if m[1] not in names:
                raise SystemExit(f"web: {file} refers to /assets/{m[1]}, which does not exist")
            return f"/assets/{names[m[1]]}"

        pages[file] = re.sub(r"/assets/([\w.-]+)", rename, html).encode()
    return pages


ASSETS, NAMES = build_assets()
HTML = build_pages(NAMES)


def _oidc_settings() -> dict | None:
    oidc = config.oidc()
    if oidc is None:
        return None
    return {"authority": oidc.issuer, "client_id": oidc.client_id, "scope": oidc.scope}


def _csp(page: str) -> str:
    """Scripts and styles from this origin only, no inline script anywhere. The app fetches the
    API here and the OIDC provider's metadata and token endpoints; Swagger UI (/docs) sets
    inline styles and shows data: images."""
    oidc = config.oidc()
    connect = "'self'" + (f" {oidc.origin}" if oidc else "")
    style = "'self' 'unsafe-inline'" if page == "docs.html" else "'self'"
    return (
        f"default-src 'none'; script-src 'self'; style-src {style}; img-src 'self' data:; "
        f"connect-src {connect}; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


def _secure(response: flask.Response) -> flask.Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _json(body: object, status: int = 200) -> flask.Response:
    response = flask.Response(json.dumps(body), status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return _secure(response)


def _not_found() -> flask.Response:
    return _json({"type": "about:blank", "title": "Not Found", "status": 404}, 404)


def _dev_token(request: flask.Request) -> flask.Response:
    """A token of the development secret for the user named in the body: `make run` only."""
    if not _dev_sign_in():
        return _not_found()
    body = request.get_json(silent=True)
    user = body.get("user") if isinstance(body, dict) else None
    if not isinstance(user, str) or not re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", user):
        problem = {
            "type": "urn:dueflow:problem:validation",
            "title": "user must be 1 to 64 letters, digits or _.@-",
            "status": 422,
            "field": "user",
        }
        response = _json(problem, 422)
        response.mimetype = "application/problem+json"
        return response
    email = user if "@" in user else f"{user}@example.com"
    claims = {"sub": user, "email": email, "exp": int(time.time()) + DEV_TOKEN_LIFETIME}
    token = jwt.encode(claims, config.DEV_JWT_SECRET, algorithm="HS256")
    return _json({"access_token": token, "token_type": "Bearer", "expires_in": DEV_TOKEN_LIFETIME})


@functions_framework.http
def web(request: flask.Request) -> flask.Response:
    path = request.path
    if request.method == "POST" and path == "/auth/dev-token":
        return _dev_token(request)
    if request.method not in ("GET", "HEAD"):
        response = _json({"type": "about:blank", "title": "Method Not Allowed", "status": 405}, 405)
        response.headers["Allow"] = "GET, HEAD"
        return response
    if path in ("/healthz", "/readyz"):
        return _json({"status": "ok" if path == "/healthz" else "ready"})
    if path == "/config.json":
        return _json({"dev_sign_in": _dev_sign_in(), "oidc": _oidc_settings()})
    if path in PAGES:
        page = PAGES[path]
        response = flask.Response(HTML[page], mimetype="text/html")
        response.headers["Cache-Control"] = "no-cache"
        response.headers["Content-Security-Policy"] = _csp(page)
        return _secure(response)
    if path.startswith("/assets/") and (asset := ASSETS.get(path.removeprefix("/assets/"))):
        zipped = "gzip" in request.headers.get("Accept-Encoding", "")
        response = flask.Response(asset.gzipped if zipped else asset.body)
        response.content_type = asset.content_type + (
            "; charset=utf-8" if asset.content_type.startswith("text/") else ""
        )
        if zipped:
            response.headers["Content-Encoding"] = "gzip"
        response.headers["Vary"] = "Accept-Encoding"
        response.headers["Cache-Control"] = IMMUTABLE
        return _secure(response)
    return _not_found()


def _dev_sign_in() -> bool:
    return config.environment() == "local" and config.auth().jwt_secret == config.DEV_JWT_SECRET
