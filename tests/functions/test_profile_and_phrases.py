"""GET/PATCH /me, POST /recurrence/preview and POST /tasks/quick through functions-framework's
test client, on SQLite and PostgreSQL, with a frozen clock."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.conftest import auth
from tests.support.clock import T0, Clock, install_clock  # T0: Dec 1, 08:00 in Berlin
from tests.support.tasks_api import assert_problem, outbox_types, task_count


@pytest.fixture
def frozen(client) -> Clock:
    clock = Clock(T0)
    install_clock(clock)
    return clock


def test_the_profile_defaults_to_utc_and_the_tokens_email(client):
    response = client.get("/me", headers=auth("alice"))
    assert response.status_code == 200
    assert response.json == {"user_id": "alice", "email": "alice@example.com", "timezone": "UTC"}


def test_patch_me_sets_the_zone_and_an_email_that_tokens_no_longer_replace(client, engine):
    response = client.patch(
        "/me",
        json={"timezone": "Europe/Berlin", "email": "rent@example.org"},
        headers=auth("alice"),
    )
    assert response.status_code == 200
    assert response.json == {
        "user_id": "alice",
        "email": "rent@example.org",
        "timezone": "Europe/Berlin",
    }
    # a token with another address: reminders still go where the user said
    client.get("/tasks", headers=auth("alice", email="other@example.com"))
    with engine.connect() as conn:
        email = conn.execute(sa.text("SELECT email FROM users WHERE id = 'alice'")).scalar_one()
    assert email == "rent@example.org"
    reset = client.patch("/me", json={"email": None, "timezone": None}, headers=auth("alice"))
    assert reset.json["timezone"] == "UTC" and reset.json["email"] is None


@pytest.mark.parametrize(
    "body, fields",
    [
        ({"timezone": "Mars/Olympus"}, ["timezone"]),
        ({"timezone": 5}, ["timezone"]),
        ({"email": "not an address"}, ["email"]),
        ({"name": "Alice"}, ["name"]),
        ({"timezone": "Nowhere", "email": "x"}, ["email", "timezone"]),
    ],
)
def test_patch_me_names_each_bad_field_and_changes_nothing(client, body, fields):
    assert_problem(client.patch("/me", json=body, headers=auth("alice")), 422, *fields)
    assert client.get("/me", headers=auth("alice")).json["timezone"] == "UTC"


def test_me_needs_a_token(client):
    response = client.get("/me")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"


def test_preview_gives_the_rule_and_next_dates_in_the_profile_zone(client, engine, frozen):
    client.patch("/me", json={"timezone": "Europe/Berlin"}, headers=auth("alice"))
    response = client.post(
        "/recurrence/preview",
        json={"recurrence": "every month on the 1st at 9", "count": 3},
        headers=auth("alice"),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json == {
        "rrule": "FREQ=MONTHLY;BYMONTHDAY=1",
        "basis": "due",
        "timezone": "Europe/Berlin",
        # 09:00 in Berlin: CET in winter, CEST (UTC+2) from the end of March
        "dates": ["2026-12-01T08:00:00Z", "2027-01-01T08:00:00Z", "2027-02-01T08:00:00Z"],
        "local_dates": [
            "2026-12-01T09:00:00+01:00",
            "2027-01-01T09:00:00+01:00",
            "2027-02-01T09:00:00+01:00",
        ],
    }
    assert task_count(engine) == 0 and outbox_types(engine) == []  # nothing created


def test_preview_of_an_rrule_from_a_start_across_dst(client, frozen):
    response = client.post(
        "/recurrence/preview",
        json={
            "recurrence": "RRULE:FREQ=WEEKLY;BYDAY=SU;COUNT=3",
            "start": "2027-03-21T09:00:00+01:00",
            "timezone": "Europe/Berlin",
            "count": 5,
        },
        headers=auth("alice"),
    )
    assert response.status_code == 200
    body = response.json
    assert body["rrule"] == "FREQ=WEEKLY;BYDAY=SU;COUNT=3"  # COUNT ends the series at three
    assert body["local_dates"] == [
        "2027-03-21T09:00:00+01:00",
        "2027-03-28T09:00:00+02:00",
        "2027-04-04T09:00:00+02:00",
    ]


@pytest.mark.parametrize(
    "body, fields",
    [
        ({"recurrence": "every blursday"}, ["recurrence"]),
        ({}, ["recurrence"]),
        ({"recurrence": "every day", "count": 51}, ["count"]),
        ({"recurrence": "every day", "count": True}, ["count"]),
        ({"recurrence": "every day", "timezone": "Nowhere/Land"}, ["timezone"]),
        ({"recurrence": "every day", "start": "whenever"}, ["start"]),
        ({"recurrence": "every day", "colour": "red"}, ["colour"]),
    ],
)
def test_preview_names_what_it_did_not_understand(client, frozen, body, fields):
    response = client.post("/recurrence/preview", json=body, headers=auth("alice"))
    problem = assert_problem(response, 422, *fields)
    if fields == ["recurrence"] and body:
        assert "every blursday" in problem["errors"][0]["message"]


def test_quick_add_creates_the_task_through_the_same_use_case(client, engine, frozen):
    client.patch("/me", json={"timezone": "Europe/Berlin"}, headers=auth("alice"))
    line = "Pay rent every month on the 1st at 9 #home !high remind 2 days before"
    response = client.post("/tasks/quick", json={"text": line}, headers=auth("alice"))
    assert response.status_code == 201, response.get_data(as_text=True)
    task = response.json
    assert response.headers["Location"] == f"/tasks/{task['id']}"
    assert (task["title"], task["priority"], task["tags"]) == ("Pay rent", "high", ["home"])
    assert task["due_at"] == "2026-12-01T08:00:00Z" and task["timezone"] == "Europe/Berlin"
    assert task["recurrence"] == {
        "rrule": "FREQ=MONTHLY;BYMONTHDAY=1",
        "basis": "due",
        "exdates": [],
    }
    assert [r["before"] for r in task["reminders"]] == ["P2D"]
    assert outbox_types(engine) == ["dev.dueflow.task.created"]
    assert client.get(f"/tasks/{task['id']}", headers=auth("alice")).json == task


def test_quick_add_reads_relative_dates_in_the_zone_the_call_gives(client, frozen):
    response = client.post(
        "/tasks/quick",
        json={"text": "Call mom tomorrow at 6pm", "timezone": "America/New_York"},
        headers=auth("alice"),
    )
    assert response.status_code == 201
    # T0 is 02:00 on Dec 1 in New York: tomorrow is Dec 2, 18:00 EST = 23:00 UTC
    assert response.json["due_at"] == "2026-12-02T23:00:00Z"
    assert response.json["timezone"] == "America/New_York"


@pytest.mark.parametrize(
    "body, fields",
    [
        ({"text": "Call mom tomorrow 25pm"}, ["text"]),
        ({"text": "buy milk every blursday"}, ["text"]),  # not kept in the title: never a guess
        ({"text": "   "}, ["text"]),
        ({}, ["text"]),
        ({"text": "x", "timezone": "Nowhere"}, ["timezone"]),
        ({"text": "Call mom\u0089 tomorrow"}, ["text"]),  # a C1 control: not a printable title
        ({"text": "Call mom\ud800"}, ["text"]),
    ],
)
def test_quick_add_is_422_naming_what_was_not_understood_and_creates_nothing(
    client, engine, frozen, body, fields
):
    problem = assert_problem(
        client.post("/tasks/quick", json=body, headers=auth("alice")), 422, *fields
    )
    if "25pm" in str(body):
        assert "tomorrow 25pm" in problem["errors"][0]["message"]
    if "blursday" in str(body):
        message = problem["errors"][0]["message"]
        assert '"every blursday"' in message and '"every thursday"' in message
    assert task_count(engine) == 0


def test_preview_takes_a_whole_number_written_as_5_0_and_null_as_the_defaults(client, frozen):
    body = {"recurrence": "every day at 9", "count": 3.0, "timezone": None, "start": None}
    response = client.post("/recurrence/preview", json=body, headers=auth("alice"))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert len(response.json["dates"]) == 3 and response.json["timezone"] == "UTC"
    body = {"recurrence": "every day at 9", "count": None}
    response = client.post("/recurrence/preview", json=body, headers=auth("alice"))
    assert len(response.json["dates"]) == 5
    assert_problem(
        client.post("/recurrence/preview", json={**body, "count": 2.5}, headers=auth("alice")),
        422,
        "count",
    )


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_tasks_quick_answers_other_methods_with_405_not_a_missing_task(client, method):
    response = client.open("/tasks/quick", method=method, headers=auth("alice"))
    assert_problem(response, 405)
    assert response.headers["Allow"].split(", ") == ["POST"]
