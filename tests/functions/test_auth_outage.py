"""An outage of the identity provider is not the caller's fault: when a token's signing keys
cannot be fetched (the JWKS server is down), the tasks API and the assistant answer 503 with
Retry-After, not 401; a bad token is still 401, and keys already fetched keep working.

A real JWKS server (tests/support/jwks.py) that goes down; the tasks function through
functions-framework's test client; the assistant's ASGI app served by uvicorn on a free port."""

from __future__ import annotations

import os
import threading
import time

import pytest
import requests
import uvicorn
from functions_framework import create_app

from dueflow import bootstrap
from dueflow.adapters import auth
from tests.conftest import ROOT, token
from tests.support.http import free_port
from tests.support.jwks import JwksServer

ISSUER = "https://id.example.com"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "outage-test", "version": "1"},
    },
}


# How long a fetched key set is trusted here (300 s in service): the keys' expiry, not the
# test's patience, is what makes the next request fetch them again.
LIFESPAN_S = 0.5


@pytest.fixture
def jwks(function_env, monkeypatch):
    """A JWKS server, and the functions' settings pointing at it (secret and JWKS both)."""
    monkeypatch.setattr(auth, "_JWKS_LIFESPAN_S", LIFESPAN_S)  # read when its client is made
    with JwksServer() as server:
        os.environ.update({"DUEFLOW_JWKS_URL": server.url, "DUEFLOW_JWT_ISSUER": ISSUER})
        bootstrap.reset()
        yield server


def outage(jwks: JwksServer) -> None:
    """The identity provider goes down, and the key set fetched before expires (the keys of it
    already used stay known: PyJWKClient keeps them)."""
    jwks.down()
    time.sleep(LIFESPAN_S + 0.1)


@pytest.fixture
def tasks(jwks):
    return create_app("tasks", str(ROOT / "functions" / "tasks" / "main.py")).test_client()


@pytest.fixture
def assistant(jwks):
    """The assistant app, as functions/assistant/main.py builds it, under uvicorn: its /mcp URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(bootstrap.assistant_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/mcp"
    server.should_exit = True
    thread.join(10)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def mcp_post(url: str, value: str) -> requests.Response:
    headers = {**bearer(value), "Accept": "application/json, text/event-stream"}
    return requests.post(url, json=INITIALIZE, headers=headers, timeout=30)


def assert_unavailable(status: int, headers, body: dict) -> None:
    assert status == 503, body
    assert headers["Retry-After"] == "1"
    assert headers["Content-Type"].startswith("application/problem+json")
    assert body["status"] == 503 and body["type"] == "urn:dueflow:problem:service-unavailable"
    assert "signing keys unavailable" in body["detail"]


def bad_tokens(jwks: JwksServer) -> list[str]:
    """Tokens no key makes valid: still 401 during the outage."""
    wrong_secret = token("dave", secret="wrong-" * 8, iss=ISSUER)
    return ["not-a-jwt", wrong_secret, jwks.token(ttl=-120, iss=ISSUER)]


def test_tasks_api_answers_503_while_the_keys_cannot_be_fetched(jwks, tasks):
    assert tasks.get("/tasks", headers=bearer(jwks.token(iss=ISSUER))).status_code == 200
    assert jwks.fetches() == 1
    # while up: a key the set does not hold is the token's fault
    unknown = tasks.get("/tasks", headers=bearer(jwks.token("key-2", iss=ISSUER)))
    assert unknown.status_code == 401 and unknown.headers["WWW-Authenticate"] == "Bearer"

    outage(jwks)
    # a key the provider rotated to cannot be checked now -> 503, retry later
    rotated = tasks.get("/tasks", headers=bearer(jwks.token("key-2", sub="bob", iss=ISSUER)))
    assert_unavailable(rotated.status_code, rotated.headers, rotated.get_json())
    # a key fetched before is kept: its new tokens are still served
    assert (
        tasks.get("/tasks", headers=bearer(jwks.token(sub="carol", iss=ISSUER))).status_code == 200
    )
    for bad in bad_tokens(jwks):
        refused = tasks.get("/tasks", headers=bearer(bad))
        assert refused.status_code == 401, refused.get_json()
        assert refused.headers["WWW-Authenticate"] == "Bearer"
    # tokens that need no key set (the shared secret) are still served
    assert tasks.get("/tasks", headers=bearer(token("erin", iss=ISSUER))).status_code == 200


def test_tasks_api_answers_503_when_the_keys_were_never_fetched(jwks, tasks):
    jwks.down()  # a replica started during the outage
    created = tasks.post(
        "/tasks", json={"title": "Pay rent"}, headers=bearer(jwks.token(iss=ISSUER))
    )
    assert_unavailable(created.status_code, created.headers, created.get_json())
    listed = tasks.get("/tasks", headers=bearer(token("alice", iss=ISSUER)))
    assert listed.get_json()["items"] == []  # nothing was written


def test_assistant_answers_503_while_the_keys_cannot_be_fetched(jwks, assistant):
    assert mcp_post(assistant, jwks.token(iss=ISSUER)).status_code == 200

    outage(jwks)
    rotated = mcp_post(assistant, jwks.token("key-2", sub="bob", iss=ISSUER))
    assert_unavailable(rotated.status_code, rotated.headers, rotated.json())
    assert mcp_post(assistant, jwks.token(sub="carol", iss=ISSUER)).status_code == 200
    for bad in bad_tokens(jwks):
        refused = mcp_post(assistant, bad)
        assert refused.status_code == 401, refused.text
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
