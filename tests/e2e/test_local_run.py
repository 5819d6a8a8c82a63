"""The stack `make run` starts (python -m dueflow_local.run): a real server on a real port."""

from __future__ import annotations

import email
import email.policy
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests

from dueflow.config import DEV_JWT_SECRET
from tests.conftest import token
from tests.support.local_stack import poll, running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def local_stack(tmp_path):
    with running_stack(tmp_path, DUEFLOW_REMINDER_TICK="1") as (base, proc, _env):
        yield base, proc, tmp_path / "eml"


def _headers(user: str) -> dict:
    mail = f"{user}@example.com"
    return {"Authorization": f"Bearer {token(user, email=mail, secret=DEV_JWT_SECRET)}"}


def test_two_hundred_parallel_creates_from_sixteen_clients_all_succeed(local_stack):
    base, _, _ = local_stack

    def client(n: int) -> list[int]:
        with requests.Session() as session:
            return [
                session.post(
                    f"{base}/tasks",
                    json={"title": f"task {n}-{i}", "tags": ["load"]},
                    headers=_headers("loader"),
                    timeout=30,
                ).status_code
                for i in range(n, 200, 16)
            ]

    with ThreadPoolExecutor(16) as pool:
        statuses = [s for batch in pool.map(client, range(16)) for s in batch]
    assert len(statuses) == 200 and set(statuses) == {201}
    listed = requests.get(f"{base}/tasks?limit=200", headers=_headers("loader"), timeout=10).json()
    assert len(listed["items"]) == 200 and listed["next_cursor"] is None
    tags = requests.get(f"{base}/tags", headers=_headers("loader"), timeout=10).json()
    assert tags == {"items": [{"name": "load", "count": 200}]}


def test_sigterm_stops_everything(local_stack):
    base, proc, _ = local_stack
    created = requests.post(
        f"{base}/tasks", json={"title": "survives restarts"}, headers=_headers("alice"), timeout=10
    )
    assert created.status_code == 201
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) is not None
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/healthz", timeout=1)


def test_completing_a_recurring_task_creates_the_next_instance(local_stack):
    base, _, _ = local_stack
    headers = _headers("alice")
    body = {
        "title": "Water plants",
        "due_at": "2026-06-01T09:00:00+02:00",
        "timezone": "Europe/Berlin",
        "recurrence": {"rrule": "FREQ=WEEKLY;BYDAY=MO"},
    }
    first = requests.post(f"{base}/tasks", json=body, headers=headers, timeout=10).json()
    done = requests.post(f"{base}/tasks/{first['id']}/complete", headers=headers, timeout=10)
    assert done.status_code == 200

    def open_instances():
        items = requests.get(f"{base}/tasks", headers=headers, timeout=10).json()["items"]
        return [t for t in items if t["series_id"] == first["series_id"]]

    (second,) = poll(open_instances)
    assert second["occurrence"] == 2 and second["id"] != first["id"]
    # the first Monday after completion (now), 09:00 in Berlin
    assert second["due_at"].endswith(("T07:00:00Z", "T08:00:00Z"))
    assert second["recurrence"] == first["recurrence"]


def test_a_reminder_puts_exactly_one_email_in_the_eml_directory(local_stack):
    base, _, eml_dir = local_stack
    due = datetime.now(UTC) + timedelta(seconds=6)
    body = {
        "title": "Call the plumber",
        "due_at": due.isoformat(),
        "timezone": "Europe/Berlin",
        "reminders": [{"before": "PT3S"}],
    }
    task = requests.post(f"{base}/tasks", json=body, headers=_headers("bob"), timeout=10).json()
    remind_at = datetime.fromisoformat(task["reminders"][0]["remind_at"])
    mails = poll(lambda: sorted(eml_dir.glob("*.eml")) if eml_dir.exists() else [])
    assert len(mails) == 1
    sent_at = datetime.fromtimestamp(mails[0].stat().st_mtime, UTC)
    # about a second after remind_at with a one-second tick; the bound only catches a broken tick
    assert remind_at <= sent_at < remind_at + timedelta(seconds=5)
    message = email.message_from_bytes(mails[0].read_bytes(), policy=email.policy.default)
    assert message["To"] == "bob@example.com" and "Call the plumber" in message["Subject"]
    time.sleep(2.5)  # more ticks pass: still one e-mail
    assert len(list(eml_dir.glob("*.eml"))) == 1
    reminder = requests.get(
        f"{base}/tasks/{task['id']}", headers=_headers("bob"), timeout=10
    ).json()["reminders"][0]
    assert reminder["status"] == "sent"


def test_the_front_door_is_the_one_origin(local_stack):
    """PORT is the front door: the API and the MCP server by path, its own readiness, a 404
    problem for a path nothing serves; `make run` names the URLs once ready."""
    base, proc, _ = local_stack
    assert requests.get(f"{base}/openapi.json", timeout=10).json()["openapi"].startswith("3.")
    me = requests.get(f"{base}/me", headers=_headers("alice"), timeout=10)
    assert me.status_code == 200, me.text
    metadata = requests.get(f"{base}/.well-known/oauth-protected-resource/mcp", timeout=10)
    assert metadata.status_code == 200 and metadata.json()["resource"] == f"{base}/mcp"
    unrouted = requests.get(f"{base}/no/such/path", timeout=10)
    assert unrouted.status_code == 404
    assert unrouted.headers["Content-Type"] == "application/problem+json"
    assert unrouted.json()["instance"] == "/no/such/path"
    log = proc.log.read_text(errors="replace")
    assert f"ready: dueflow on {base}/" in log
    assert f"MCP server       {base}/mcp" in log and f"tasks API        {base}/tasks" in log
