"""The tasks function through functions-framework's test client, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import jwt
import pytest
import sqlalchemy as sa

from tests.conftest import SECRET, auth, token
from tests.support.tasks_api import assert_problem, create, outbox_types, task_count

NEW = {
    "title": "  Pay rent ",
    "description": "Transfer to landlord",
    "priority": "high",
    "tags": ["Home", "money", "home"],
    "due_at": "2026-12-01T09:00:00+01:00",
    "timezone": "Europe/Berlin",
    "recurrence": {"rrule": "FREQ=MONTHLY;BYMONTHDAY=1"},
    "reminders": [{"before": "P1D"}, {"at": "2026-11-30T12:00:00Z"}],
}


# -- creating and reading ---------------------------------------------------------------------


def test_create_returns_the_normalised_task(client, engine):
    response = client.post("/tasks", json=NEW, headers=auth())
    assert response.status_code == 201
    task = response.json
    assert response.headers["Location"] == f"/tasks/{task['id']}"
    assert task["title"] == "Pay rent"
    assert task["tags"] == ["home", "money"]
    assert task["due_at"] == "2026-12-01T08:00:00Z"
    assert task["status"] == "open" and task["completed_at"] is None
    assert task["recurrence"] == {
        "rrule": "FREQ=MONTHLY;BYMONTHDAY=1",
        "basis": "due",
        "exdates": [],
    }
    assert task["occurrence"] == 1 and task["series_id"]
    # P1D before 09:00 Berlin is 09:00 Berlin the day before
    assert [r["remind_at"] for r in task["reminders"]] == [
        "2026-11-30T08:00:00Z",
        "2026-11-30T12:00:00Z",
    ]
    assert {r["status"] for r in task["reminders"]} == {"scheduled"}
    assert client.get(f"/tasks/{task['id']}", headers=auth()).json == task
    assert outbox_types(engine) == ["dev.dueflow.task.created"]


def test_defaults(client):
    task = create(client, {"title": "Minimal"})
    assert task["priority"] == "none" and task["tags"] == [] and task["timezone"] == "UTC"
    assert task["due_at"] is None and task["recurrence"] is None and task["reminders"] == []
    assert task["series_id"] is None and task["occurrence"] is None and task["description"] is None


def test_the_user_profile_keeps_the_email_claim(client, engine):
    create(client)
    client.get("/tags", headers=auth("alice", email="new@example.com"))
    with engine.connect() as conn:
        email = conn.execute(sa.text("SELECT email FROM users WHERE id = 'alice'")).scalar_one()
    assert email == "new@example.com"


# -- updating ----------------------------------------------------------------------------------


def test_merge_patch_changes_only_what_it_names(client, engine):
    task = create(client, NEW)
    response = client.patch(
        f"/tasks/{task['id']}",
        data=json.dumps({"title": "Pay the rent", "tags": None, "priority": None}),
        content_type="application/merge-patch+json",
        headers=auth(),
    )
    assert response.status_code == 200
    patched = response.json
    assert patched["title"] == "Pay the rent" and patched["tags"] == []
    assert patched["priority"] == "none" and patched["description"] == NEW["description"]
    assert patched["updated_at"] >= task["updated_at"]
    assert outbox_types(engine)[-1] == "dev.dueflow.task.updated"


def test_moving_due_at_moves_relative_reminders(client):
    task = create(client, NEW)
    patched = client.patch(
        f"/tasks/{task['id']}", json={"due_at": "2026-12-02T09:00:00+01:00"}, headers=auth()
    ).json
    before, at = patched["reminders"]
    assert before["id"] == task["reminders"][0]["id"]
    assert before["remind_at"] == "2026-12-01T08:00:00Z"
    assert at["remind_at"] == "2026-11-30T12:00:00Z"


def test_patching_recurrence_merges_into_it(client):
    task = create(client, NEW)
    patched = client.patch(
        f"/tasks/{task['id']}", json={"recurrence": {"basis": "completion"}}, headers=auth()
    ).json
    assert patched["recurrence"]["rrule"] == "FREQ=MONTHLY;BYMONTHDAY=1"
    assert patched["recurrence"]["basis"] == "completion"


def test_a_patch_that_changes_nothing_emits_nothing(client, engine):
    task = create(client, {"title": "Same"})
    response = client.patch(f"/tasks/{task['id']}", json={"title": "Same"}, headers=auth())
    assert response.status_code == 200 and response.json == task
    assert outbox_types(engine) == ["dev.dueflow.task.created"]


# -- completing, reopening, deleting --------------------------------------------------------


def test_complete_is_idempotent_and_cancels_reminders(client, engine):
    task = create(client, NEW)
    first = client.post(f"/tasks/{task['id']}/complete", headers=auth())
    assert first.status_code == 200
    assert first.json["status"] == "done" and first.json["completed_at"]
    assert {r["status"] for r in first.json["reminders"]} == {"canceled"}
    second = client.post(f"/tasks/{task['id']}/complete", headers=auth())
    assert second.status_code == 200 and second.json == first.json
    assert outbox_types(engine).count("dev.dueflow.task.completed") == 1


def test_reopen_reschedules_future_reminders(client, engine):
    task = create(
        client,
        {
            **NEW,
            "due_at": "2099-01-02T09:00:00Z",
            "timezone": "UTC",
            "reminders": [{"before": "PT1H"}],
        },
    )
    client.post(f"/tasks/{task['id']}/complete", headers=auth())
    reopened = client.post(f"/tasks/{task['id']}/reopen", headers=auth())
    assert reopened.status_code == 200
    assert reopened.json["status"] == "open" and reopened.json["completed_at"] is None
    assert reopened.json["reminders"][0]["status"] == "scheduled"
    again = client.post(f"/tasks/{task['id']}/reopen", headers=auth())
    assert again.json == reopened.json
    assert outbox_types(engine).count("dev.dueflow.task.reopened") == 1


def test_delete(client, engine):
    task = create(client, NEW)
    response = client.delete(f"/tasks/{task['id']}", headers=auth())
    assert response.status_code == 204 and response.get_data() == b""
    assert_problem(client.get(f"/tasks/{task['id']}", headers=auth()), 404)
    assert_problem(client.delete(f"/tasks/{task['id']}", headers=auth()), 404)
    assert task_count(engine) == 0
    with engine.connect() as conn:
        for table in ("reminders", "task_tags"):
            assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one() == 0
    assert outbox_types(engine)[-1] == "dev.dueflow.task.deleted"


# -- isolation and auth -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, suffix",
    [("get", ""), ("patch", ""), ("delete", ""), ("post", "/complete"), ("post", "/reopen")],
)
def test_another_users_task_is_not_found(client, engine, method, suffix):
    task = create(client, {"title": "Alice's"}, user="alice")
    kwargs = {"json": {"title": "mine now"}} if method == "patch" else {}
    response = getattr(client, method)(
        f"/tasks/{task['id']}{suffix}", headers=auth("bob"), **kwargs
    )
    assert_problem(response, 404)
    assert client.get(f"/tasks/{task['id']}", headers=auth("alice")).json == task
    assert client.get("/tasks", headers=auth("bob")).json["items"] == []
    assert outbox_types(engine) == ["dev.dueflow.task.created"]


@pytest.mark.parametrize("task_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_unknown_ids_are_404(client, task_id):
    assert_problem(client.get(f"/tasks/{task_id}", headers=auth()), 404)


def _none_alg_token() -> str:
    import base64

    def b64(obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64({'sub': 'alice', 'exp': 4102444800})}."


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic YWxpY2U6cHc=",
        "Bearer not.a.jwt",
        f"Bearer {token(secret='another-secret-of-sufficient-length-xx')}",
        f"Bearer {token(ttl=-120)}",
        f"Bearer {_none_alg_token()}",
        "Bearer " + jwt.encode({"exp": 4102444800}, SECRET, algorithm="HS256"),
    ],
    ids=["missing", "basic", "garbage", "bad-signature", "expired", "alg-none", "no-sub"],
)
def test_bad_credentials_are_401_and_change_nothing(client, engine, header):
    headers = {"Authorization": header} if header else {}
    response = client.post("/tasks", json={"title": "x"}, headers=headers)
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert_problem(client.get("/tasks", headers=headers), 401)
    assert task_count(engine) == 0


def test_public_routes_need_no_token(client):
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").json == {"status": "ready"}
    spec = client.get("/openapi.json")
    assert spec.status_code == 200 and spec.json["openapi"].startswith("3.1")


def test_readyz_is_503_when_the_database_is_unreachable(function_env):
    from functions_framework import create_app

    from dueflow import bootstrap
    from tests.conftest import ROOT

    function_env["DATABASE_URL"] = "postgresql+psycopg2://nobody@127.0.0.1:1/none"
    bootstrap.reset()
    client = create_app("tasks", str(ROOT / "functions" / "tasks" / "main.py")).test_client()
    assert client.get("/healthz").status_code == 200
    assert_problem(client.get("/readyz"), 503)


def test_refuses_to_start_without_a_secret(function_env):
    from functions_framework import create_app

    from tests.conftest import ROOT

    del function_env["DUEFLOW_JWT_SECRET"]
    with pytest.raises(Exception, match="DUEFLOW_JWT_SECRET"):
        create_app("tasks", str(ROOT / "functions" / "tasks" / "main.py"))


# -- rejections: nothing is written -----------------------------------------------------------


@pytest.mark.parametrize(
    "body, fields",
    [
        ({}, ["title"]),
        ({"title": ""}, ["title"]),
        ({"title": "x" * 501}, ["title"]),
        ({"title": "x", "description": "d" * 10_001}, ["description"]),
        ({"title": "x", "priority": "urgent"}, ["priority"]),
        ({"title": "x", "tags": [f"t{i}" for i in range(21)]}, ["tags"]),
        ({"title": "x", "tags": ["ok", 3]}, ["tags.1"]),
        ({"title": "x", "due_at": "2026-12-01"}, ["due_at"]),
        ({"title": "x", "due_at": "2026-12-01T09:00:00"}, ["due_at"]),
        ({"title": "x", "timezone": "Mars/Olympus"}, ["timezone"]),
        ({"title": "x", "recurrence": {"rrule": "FREQ=DAILY"}}, ["due_at"]),
        (
            {
                "title": "x",
                "due_at": "2026-12-01T09:00:00Z",
                "recurrence": {"rrule": "FREQ=SECONDLY"},
            },
            ["recurrence.rrule"],
        ),
        (
            {"title": "x", "due_at": "2026-12-01T09:00:00Z", "recurrence": {"rrule": "nonsense"}},
            ["recurrence.rrule"],
        ),
        (
            {
                "title": "x",
                "due_at": "2026-12-01T09:00:00Z",
                "recurrence": {"rrule": "FREQ=DAILY", "basis": "whenever"},
            },
            ["recurrence.basis"],
        ),
        ({"title": "x", "reminders": [{"before": "PT5M"}]}, ["reminders.0.before"]),
        (
            {"title": "x", "due_at": "2026-12-01T09:00:00Z", "reminders": [{"before": "-PT5M"}]},
            ["reminders.0.before"],
        ),
        ({"title": "x", "reminders": [{"at": "2026-12-01T09:00:00Z"}] * 11}, ["reminders"]),
        ({"title": "x", "reminders": [{"soon": True}]}, ["reminders.0"]),
        ({"title": "x", "colour": "red"}, ["colour"]),
        (
            {"title": "x", "id": "00000000-0000-0000-0000-000000000000", "status": "done"},
            ["id", "status"],
        ),
        ([], [""]),
    ],
)
def test_invalid_fields_are_422_naming_each(client, engine, body, fields):
    body = assert_problem(client.post("/tasks", json=body, headers=auth()), 422, *fields)
    assert all(e["pointer"].startswith("/") or e["field"] == "" for e in body["errors"])
    assert task_count(engine) == 0 and outbox_types(engine) == []


def test_malformed_json_is_400(client, engine):
    for raw in (b"{", b"{'title': 1}", b"", b'{"title": NaN}'):
        response = client.post("/tasks", data=raw, content_type="application/json", headers=auth())
        assert_problem(response, 400)
    assert task_count(engine) == 0


def test_non_json_body_is_415(client, engine):
    response = client.post(
        "/tasks", data="title=x", headers=auth(), content_type="application/x-www-form-urlencoded"
    )
    assert_problem(response, 415)
    assert task_count(engine) == 0


def test_bodies_over_one_mebibyte_are_413(client, engine):
    body = json.dumps({"title": "x", "description": "d" * (1024 * 1024)})
    response = client.post("/tasks", data=body, content_type="application/json", headers=auth())
    assert_problem(response, 413)
    assert task_count(engine) == 0


def test_an_invalid_patch_changes_nothing(client, engine):
    task = create(client, NEW)
    response = client.patch(
        f"/tasks/{task['id']}", json={"title": "new", "due_at": None}, headers=auth()
    )
    assert_problem(response, 422, "due_at")
    assert client.get(f"/tasks/{task['id']}", headers=auth()).json == task
    bad_null = client.patch(f"/tasks/{task['id']}", json={"title": None}, headers=auth())
    assert_problem(bad_null, 422, "title")
    assert outbox_types(engine) == ["dev.dueflow.task.created"]


def test_unknown_routes_and_methods(client):
    assert_problem(client.get("/nope", headers=auth()), 404)
    response = client.put("/tasks", headers=auth())
    assert_problem(response, 405)
    assert "POST" in response.headers["Allow"]


# -- cross-cutting ----------------------------------------------------------------------------


def test_request_ids_are_echoed_or_generated(client):
    assert (
        client.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"]
        == "abc-123"
    )
    generated = client.get("/healthz").headers["X-Request-Id"]
    assert len(generated) == 32


def test_cors_for_configured_origins_only(client):
    preflight = client.options(
        "/tasks",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "PATCH" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    response = client.get("/tasks", headers={**auth(), "Origin": "https://app.example.com"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "X-Request-Id" in response.headers["Access-Control-Expose-Headers"]
    other = client.get("/tasks", headers={**auth(), "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
