"""The API contract (issue 11): what the fuzzer found, each reproduced through functions-framework's
test client, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from functions_framework import create_app

from tests.conftest import ROOT, auth, token
from tests.support.tasks_api import assert_problem, create, task_count

SURROGATE = "a\ud800"  # a lone surrogate: valid JSON (`"a\ud800"`), no valid UTF-8
DUE = "2026-12-01T09:00:00Z"


def raw(client, method: str, path: str, body: dict, **headers):
    """Send `body` as JSON the way any JSON encoder does: a lone surrogate as `\\ud800`."""
    return getattr(client, method)(
        path,
        data=json.dumps(body),  # ensure_ascii: the surrogate is escaped, the body is ASCII
        content_type="application/json",
        headers={**auth(), **headers},
    )


# -- 1. every string that reaches the database or a response is checked --------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": SURROGATE}, "title"),
        ({"title": "t", "description": SURROGATE}, "description"),
        ({"title": "t", "description": "a\x00b"}, "description"),
        ({"title": "t", "tags": [SURROGATE]}, "tags.0"),
        ({"title": "t", "timezone": SURROGATE}, "timezone"),
        ({"title": "t", "due_at": SURROGATE}, "due_at"),
        ({"title": "t", "due_at": DUE, "recurrence": {"rrule": SURROGATE}}, "recurrence.rrule"),
        (
            {"title": "t", "due_at": DUE,
             "recurrence": {"rrule": "FREQ=DAILY", "basis": SURROGATE}},
            "recurrence.basis",
        ),
        (
            {"title": "t", "due_at": DUE, "recurrence": {"rrule": "FREQ=DAILY",
                                                         "exdates": [SURROGATE]}},
            "recurrence.exdates.0",
        ),
        ({"title": "t", "due_at": DUE, "reminders": [{"before": SURROGATE}]}, "reminders.0.before"),
        ({"title": "t", "reminders": [{"at": SURROGATE}]}, "reminders.0.at"),
        ({"title": "t", "priority": SURROGATE}, "priority"),
        ({"title": "t", SURROGATE: 1}, "a\ufffd"),
    ],
)
def test_lone_surrogates_and_nul_in_bodies_are_422_naming_the_field(client, engine, body, field):
    problem = assert_problem(raw(client, "post", "/tasks", body), 422, field)
    json.dumps(problem, ensure_ascii=False).encode()  # the answer itself is valid UTF-8
    assert task_count(engine) == 0


@pytest.mark.parametrize("field", ["title", "description"])
def test_a_lone_surrogate_in_a_patch_is_422_and_changes_nothing(client, field):
    task = create(client, {"title": "keep", "description": "keep"})
    response = raw(client, "patch", f"/tasks/{task['id']}", {field: SURROGATE})
    assert_problem(response, 422, field)
    assert client.get(f"/tasks/{task['id']}", headers=auth()).json == task


def test_a_lone_surrogate_in_a_snooze_is_422(client):
    task = create(client, {"title": "t", "due_at": DUE, "reminders": [{"before": "PT1H"}]})
    path = f"/tasks/{task['id']}/reminders/{task['reminders'][0]['id']}/snooze"
    assert_problem(raw(client, "post", path, {"for": SURROGATE}), 422, "for")
    assert_problem(raw(client, "post", path, {"until": SURROGATE}), 422, "until")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("tag=%00", "tag"),
        ("tag=a%0Ab", "tag"),
        ("tag=%ED%A0%80", None),  # not UTF-8: werkzeug decodes it as U+FFFD
        ("q=%00", None),
        ("q=%ED%A0%80x", None),
        ("status=%00", "status"),
        ("priority=%00", "priority"),
        ("sort=%00", "sort"),
        ("cursor=%00", "cursor"),
        ("due_before=%00", "due_before"),
        ("%00=1", "\x00"),
    ],
)
def test_query_parameters_with_nul_or_bad_utf8_never_500(client, query, field):
    response = client.get(f"/tasks?{query}", headers=auth())
    if field is None:
        assert response.status_code == 200, response.get_data(as_text=True)
    else:
        assert_problem(response, 422, field)


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        ({"sub": "a\x00b"}, 401),
        ({"sub": SURROGATE}, 401),
        ({"sub": "alice", "email": "a\x00@example.com"}, 401),
        ({"sub": "alice", "email": f"{SURROGATE}@example.com"}, 401),
        ({"sub": "alice", "email": 42}, 200),  # not a string: no e-mail, as before
    ],
)
def test_token_claims_that_reach_the_database_are_checked(client, claims, status):
    claims = dict(claims)
    sub = claims.pop("sub")
    response = client.get("/tasks", headers={"Authorization": f"Bearer {token(sub, **claims)}"})
    assert response.status_code == status, response.get_data(as_text=True)
    if status == 401:
        assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"] == "Bearer"


# -- 2 and 3. every error is problem+json with X-Request-Id and an encoded instance ---------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("post", "/tasks/%0A/skip", 404),
        ("get", "/tasks/%0A", 404),
        ("get", "/nowhere/%0A", 404),
        ("put", "/tasks", 405),
        ("get", "/tasks/a%25b", 404),
    ],
)
def test_odd_paths_are_problem_json_with_a_request_id(client, method, path, status):
    response = getattr(client, method)(path, headers=auth())
    body = assert_problem(response, status)
    assert response.headers["X-Request-Id"]
    assert body["instance"] == path  # as requested: percent-encoded, a valid uri-reference


def test_instance_keeps_the_query_out_and_encodes_what_the_client_did_not(client):
    response = client.get("/tasks/a b?x=1", headers=auth())
    assert assert_problem(response, 404)["instance"] == "/tasks/a%20b"


@pytest.mark.parametrize("name", ["recurrence", "reminders", "notify", "commands", "deadletter"])
def test_event_functions_answer_routing_errors_as_problem_json(event_env, name):
    client = create_app(name, str(ROOT / "functions" / name / "main.py")).test_client()
    response = client.post("/anything/%0A")  # Flask's own router: no rule matches a line feed
    body = assert_problem(response, 404)
    assert response.headers["X-Request-Id"]
    assert body["instance"] == "/anything/%0A"
    response = client.get("/anything")
    assert_problem(response, 405)
    assert response.headers["X-Request-Id"]
    response = client.post("/", data=b"{", headers={"ce-specversion": "1.0"})
    assert_problem(response, 400)
    assert response.headers["X-Request-Id"]


def test_event_functions_echo_a_well_formed_request_id(event_env):
    client = create_app("commands", str(ROOT / "functions/commands/main.py")).test_client()
    response = client.get("/", headers={"X-Request-Id": "abc-123"})
    assert response.headers["X-Request-Id"] == "abc-123"
    response = client.get("/", headers={"X-Request-Id": "bad id\x01"})
    assert response.headers["X-Request-Id"] != "bad id\x01"


# -- 4. null members of a recurrence patch are removed (RFC 7396), with or without one -----------


@pytest.mark.parametrize("member", ["basis", "exdates"])
def test_null_recurrence_members_mean_the_default_on_any_task(client, member):
    patch = {"recurrence": {"rrule": "FREQ=DAILY", member: None}}
    plain = create(client, {"title": "plain", "due_at": DUE})
    recurring = create(
        client, {"title": "recurring", "due_at": DUE, "recurrence": {"rrule": "FREQ=WEEKLY"}}
    )
    for task in (plain, recurring):
        response = client.patch(f"/tasks/{task['id']}", json=patch, headers=auth())
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.json["recurrence"] == {"rrule": "FREQ=DAILY", "basis": "due",
                                               "exdates": []}


def test_null_recurrence_members_on_create_mean_the_default(client):
    task = create(client, {"title": "t", "due_at": DUE,
                           "recurrence": {"rrule": "FREQ=DAILY", "basis": None, "exdates": None}})
    assert task["recurrence"] == {"rrule": "FREQ=DAILY", "basis": "due", "exdates": []}


# -- 5. null on create means the field's default, as in a patch ------------------------------------


def test_null_on_create_means_the_default(client):
    task = create(client, {"title": "t", "description": None, "priority": None, "tags": None,
                           "due_at": None, "timezone": None, "recurrence": None,
                           "reminders": None})
    assert (task["priority"], task["tags"], task["timezone"], task["reminders"]) == (
        "none", [], "UTC", [])


# -- 8. a 204 has no body and no Content-Type --------------------------------------------------


def test_delete_answers_204_without_content_type(client):
    task = create(client)
    response = client.delete(f"/tasks/{task['id']}", headers=auth())
    assert response.status_code == 204
    assert "Content-Type" not in response.headers
    assert response.get_data() == b""
    assert response.headers["X-Request-Id"]


def test_request_id_is_echoed_only_when_it_matches_the_documented_pattern(client):
    ok = client.get("/healthz", headers={"X-Request-Id": "req-1.2:3_x"})
    assert ok.headers["X-Request-Id"] == "req-1.2:3_x"
    for bad in ("has space", "x" * 129, "ünïcode"):
        echoed = client.get("/healthz", headers={"X-Request-Id": bad}).headers["X-Request-Id"]
        assert echoed != bad and len(echoed) == 32
