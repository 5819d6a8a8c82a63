"""Each function loads only its own code: a cold start pays for every module imported before the
first answer (bench scenario 5), so notify must not load the tasks API and JWT, nor tasks the
e-mail code, nor any function the outbox relay's HTTP client before its first response.

Each function runs in a fresh interpreter, as functions-framework loads it: the entry point is
imported and its first request (`/healthz`) answered, which builds its service, on an SQLite
file that only the outbox relay opens (and finds empty).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, SECRET

SCRIPT = """
import json, sys, threading, time
from functions_framework import create_app
from dueflow import bootstrap

name, source = sys.argv[1:]
bootstrap.RELAY_START_DELAY = 60  # so the relay waits for the first response, however slow
client = create_app(name, source).test_client()
response = client.get("/healthz")  # builds the runtime and the function with its service
assert response.status_code == 200
first = sorted(sys.modules)
response.close()  # as the server does once the answer is sent: now the relay starts
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    if any(t.name == "outbox-relay" for t in threading.enumerate()):
        break
    time.sleep(0.01)
relay = any(t.name == "outbox-relay" for t in threading.enumerate())
bootstrap.reset()
print(json.dumps({"modules": first, "relay_started": relay}))
"""
RELAY = ["dueflow.adapters.outbox_relay", "requests"]  # started after the first response
API = ["dueflow.adapters.http.api", "dueflow.adapters.auth", "jwt", "cryptography"]
EMAIL = ["dueflow.adapters.email", "dueflow.service.notify", "dueflow.domain.reminder_mail"]
# the Dapr SDK and grpc: only with a Dapr setting on (DUEFLOW_REMINDER_JOBS, the dapr e-mail
# backend's first send, DUEFLOW_DAPR_SECRET_STORE); never on a default cold start
DAPR = ["dapr", "grpc", "google.protobuf", "dueflow.adapters.dapr_sidecar"]
OTHER_SERVICES = [
    "dueflow.service.recurrence",
    "dueflow.service.reminders",
    "dueflow.service.commands",
    "dueflow.service.dead_letters",
]
# function: (modules it loads, modules it must not load)
FUNCTIONS = {
    "tasks": (
        ["dueflow.service.tasks", "dueflow.adapters.http.api", "jwt"],
        [*RELAY, *EMAIL, *OTHER_SERVICES, *DAPR, "dueflow.adapters.http.event_function"],
    ),
    "notify": (
        ["dueflow.service.notify", "dueflow.adapters.email"],
        [*RELAY, *API, *OTHER_SERVICES, *DAPR],
    ),
    "recurrence": (
        ["dueflow.service.recurrence"],
        [*RELAY, *API, *EMAIL, *DAPR, "dueflow.service.reminders", "dueflow.service.commands"],
    ),
    "reminders": (
        ["dueflow.service.reminders"],
        [*RELAY, *API, *EMAIL, *DAPR, "dueflow.service.recurrence", "dueflow.service.commands"],
    ),
    "commands": (
        ["dueflow.service.commands"],
        [*RELAY, *API, *EMAIL, *DAPR, "dueflow.service.recurrence", "dueflow.service.reminders"],
    ),
    "deadletter": (
        ["dueflow.service.dead_letters"],
        [*RELAY, *API, *EMAIL, *DAPR, "dueflow.service.recurrence", "dueflow.service.reminders"],
    ),
}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_function_loads_its_own_code_only(name, tmp_path):
    loaded, not_loaded = FUNCTIONS[name]
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'dueflow.db'}",
        "DUEFLOW_ENV": "test",
        "DUEFLOW_JWT_SECRET": SECRET,
        "DUEFLOW_AUTO_MIGRATE": "0",
        "DUEFLOW_METRICS_PORT": "0",
        "K_SINK": "http://127.0.0.1:9",
    }
    source = str(ROOT / "functions" / name / "main.py")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, name, source],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    modules = set(result["modules"])
    assert set(loaded) <= modules, "the check would prove nothing: the function's own code"
    assert sorted(modules & set(not_loaded)) == []
    assert result["relay_started"], "the relay starts once the first response has been sent"
