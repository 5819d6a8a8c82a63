"""The calendar feed through the tasks function's test client, on SQLite and PostgreSQL: feed
tokens (create, replace, revoke), the unauthenticated `.ics` URL, conditional GETs, and the feed's
correctness: parsed back with icalendar, each series expanded with recurring-ical-events equals
the instances dueflow itself creates when each one is completed (the recurrence function), at the
same local times across daylight-saving changes."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events
import sqlalchemy as sa

from dueflow.domain.durations import parse_duration
from dueflow.domain.timefmt import parse_instant
from tests.conftest import auth
from tests.support.event_functions import completion, create
from tests.support.events import deliver, outcome
from tests.support.tasks_api import assert_problem

FEED_TYPE = "text/calendar; charset=utf-8"


def new_feed(client, user: str = "alice") -> str:
    """A fresh feed URL's path and query (`/calendar/<token>.ics`)."""
    response = client.post("/calendar/token", headers=auth(user))
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return urlsplit(response.json["url"]).path


def fetch(client, path: str, **headers) -> icalendar.Calendar:
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == FEED_TYPE
    return icalendar.Calendar.from_ical(response.get_data())


def by_summary(cal: icalendar.Calendar, name: str = "VTODO") -> dict[str, icalendar.Component]:
    return {str(c["SUMMARY"]): c for c in cal.walk(name) if "RECURRENCE-ID" not in c}


# -- tokens --------------------------------------------------------------------------------------


def test_a_token_gives_a_secret_feed_url_that_needs_no_auth(client, engine):
    response = client.post("/calendar/token", headers=auth())
    assert response.status_code == 201
    url = urlsplit(response.json["url"])
    # no DUEFLOW_PUBLIC_URL: the request's own scheme and host (the test client's)
    assert (url.scheme, url.netloc) == ("http", "localhost")
    token = url.path.removeprefix("/calendar/").removesuffix(".ics")
    assert len(token) == 43  # 256 random bits, URL-safe base64
    feed = client.get(url.path)  # no Authorization header, as calendar apps send none
    assert feed.status_code == 200 and feed.headers["Content-Type"] == FEED_TYPE
    assert feed.headers["Cache-Control"] == "private, max-age=300"
    cal = icalendar.Calendar.from_ical(feed.get_data())
    assert str(cal["VERSION"]) == "2.0" and str(cal["PRODID"])
    # only the token's SHA-256 is stored
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT user_id, token_hash FROM calendar_tokens")).all()
    assert [tuple(r) for r in rows] == [("alice", hashlib.sha256(token.encode()).hexdigest())]


def test_a_new_token_replaces_the_old_one_and_delete_revokes(client, engine):
    first = new_feed(client)
    second = new_feed(client)
    assert first != second
    gone = assert_problem(client.get(first), 404)
    assert client.get(second).status_code == 200

    assert client.delete("/calendar/token", headers=auth()).status_code == 204
    revoked = assert_problem(client.get(second), 404)
    assert client.delete("/calendar/token", headers=auth()).status_code == 204  # idempotent
    # unknown, revoked and malformed tokens are indistinguishable
    unknown = assert_problem(client.get("/calendar/" + "A" * 43 + ".ics"), 404)
    malformed = assert_problem(client.get("/calendar/not-a-token.ics"), 404)
    details = {p["detail"] for p in (gone, revoked, unknown, malformed)}
    assert details == {"no such calendar feed"}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM calendar_tokens")).scalar_one() == 0


def test_token_endpoints_need_a_bearer_token(client):
    assert_problem(client.post("/calendar/token"), 401)
    assert_problem(client.delete("/calendar/token"), 401)
    assert_problem(client.get("/calendar/token"), 405)


def test_the_public_url_setting_names_the_feeds_origin(client, function_env):
    from dueflow import bootstrap

    function_env["DUEFLOW_PUBLIC_URL"] = "https://dueflow.example/"
    bootstrap.reset()
    url = client.post("/calendar/token", headers=auth()).json["url"]
    assert url.startswith("https://dueflow.example/calendar/") and url.endswith(".ics")
    assert client.get(urlsplit(url).path).status_code == 200


def test_each_user_sees_only_their_own_open_tasks(client):
    create(client, {"title": "alice open", "due_at": "2027-01-05T10:00:00Z"})
    done = create(client, {"title": "alice done"})
    client.post(f"/tasks/{done['id']}/complete", headers=auth())
    create(client, {"title": "bob's"}, user="bob")
    alice, bob = new_feed(client), new_feed(client, "bob")
    assert set(by_summary(fetch(client, alice))) == {"alice open"}
    assert set(by_summary(fetch(client, bob))) == {"bob's"}


# -- caching -------------------------------------------------------------------------------------


def test_an_unchanged_feed_answers_304(client):
    path = new_feed(client)
    create(client, {"title": "one"})
    first = client.get(path)
    etag = first.headers["ETag"]
    assert etag and first.status_code == 200
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    assert again.headers["ETag"] == etag
    assert client.get(path).get_data() == first.get_data()  # the same bytes each time

    create(client, {"title": "two"})
    changed = client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    # the events view is another document with another tag
    assert client.get(path + "?as=events").headers["ETag"] != changed.headers["ETag"]


def test_an_unknown_view_is_a_field_error(client):
    path = new_feed(client)
    assert_problem(client.get(path + "?as=journal"), 422, "as")


# -- content -------------------------------------------------------------------------------------


def test_task_fields_map_to_vtodo_properties(client):
    path = new_feed(client)
    rent = create(
        client,
        {
            "title": "Pay rent",
            "description": "Transfer to landlord",
            "priority": "high",
            "tags": ["home", "money"],
            "due_at": "2027-01-04T09:00:00+01:00",
            "timezone": "Europe/Berlin",
            "reminders": [{"before": "P1D"}, {"before": "PT30M"}, {"at": "2027-01-02T12:00:00Z"}],
        },
    )
    create(client, {"title": "Someday", "priority": "low", "tags": ["ideas"]})
    create(client, {"title": "Soon", "priority": "medium", "due_at": "2027-01-05T10:00:00Z"})
    cal = fetch(client, path)
    todos = by_summary(cal)
    todo = todos["Pay rent"]
    assert str(todo["UID"]) == rent["id"]
    assert str(todo["DESCRIPTION"]) == "Transfer to landlord"
    assert str(todo["STATUS"]) == "NEEDS-ACTION"
    assert [todos[t].get("PRIORITY") for t in ("Pay rent", "Soon", "Someday")] == [1, 5, 9]
    assert list(todo.categories) == ["home", "money"]
    modified = parse_instant(rent["updated_at"], "").replace(microsecond=0)  # iCalendar: seconds
    assert todo["DTSTAMP"].dt == todo["LAST-MODIFIED"].dt == modified
    due = todo["DUE"]
    assert due.params["TZID"] == "Europe/Berlin"
    assert due.dt == datetime(2027, 1, 4, 9, tzinfo=ZoneInfo("Europe/Berlin"))
    assert [tz.tz_name for tz in cal.timezones] == ["Europe/Berlin"]  # the matching VTIMEZONE
    assert alarm_instants(todo, due.dt) == [
        parse_instant(r["remind_at"], "") for r in rent["reminders"]
    ]
    # a task without a due date: a VTODO without DUE
    assert "DUE" not in todos["Someday"] and "DTSTART" not in todos["Someday"]
    assert list(todos["Someday"].categories) == ["ideas"]


def test_the_events_view_has_a_vevent_per_task_with_a_due_date(client):
    path = new_feed(client)
    create(
        client,
        {"title": "dated", "due_at": "2027-01-04T09:00:00Z", "reminders": [{"before": "PT1H"}]},
    )
    create(client, {"title": "undated"})
    cal = fetch(client, path + "?as=events")
    assert not list(cal.walk("VTODO"))
    [event] = cal.walk("VEVENT")
    assert str(event["SUMMARY"]) == "dated" and event["DTSTART"].dt == datetime(
        2027, 1, 4, 9, tzinfo=UTC
    )
    assert "DTEND" not in event  # ends when it starts (RFC 5545 §3.6.1)
    assert alarm_instants(event, event["DTSTART"].dt) == [datetime(2027, 1, 4, 8, tzinfo=UTC)]


# -- correctness: the feed's series expansion == dueflow's own instances --------------------------

SERIES = [
    # (zone, first due date (local), rule, exdates (local)) - each crosses a DST change
    ("Europe/Berlin", datetime(2027, 3, 25, 9, 0), "FREQ=DAILY", []),
    ("America/New_York", datetime(2027, 3, 8, 8, 30), "FREQ=WEEKLY;BYDAY=MO,TH", []),
    ("Europe/Berlin", datetime(2027, 10, 20, 7, 15), "FREQ=WEEKLY;INTERVAL=2;BYDAY=WE", []),
    ("America/New_York", datetime(2027, 1, 31, 18, 0), "FREQ=MONTHLY;BYMONTHDAY=-1,15", []),
    (
        "Europe/Berlin",
        datetime(2027, 1, 29, 17, 0),
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
        [],
    ),
    ("America/New_York", datetime(2027, 3, 12, 20, 0), "FREQ=DAILY;COUNT=4", []),
    (
        "Europe/Berlin",
        datetime(2027, 3, 17, 12, 0),
        "FREQ=WEEKLY;BYDAY=WE;UNTIL=20270421",
        [datetime(2027, 3, 31, 12, 0)],
    ),
]
INSTANCES = 6


@pytest.mark.parametrize(("zone", "start", "rule", "exdates"), SERIES, ids=[s[2] for s in SERIES])
def test_series_expand_to_the_instances_dueflow_creates(
    client, engine, clock, event_client, zone, start, rule, exdates
):
    tz = ZoneInfo(zone)
    path = new_feed(client)
    task = create(
        client,
        {
            "title": "series",
            "due_at": start.replace(tzinfo=tz).isoformat(),
            "timezone": zone,
            "recurrence": {
                "rrule": rule,
                "exdates": [d.replace(tzinfo=tz).isoformat() for d in exdates],
            },
            "reminders": [{"before": "P1D"}, {"before": "PT45M"}],
        },
    )
    expected = expand(fetch(client, path), INSTANCES)
    assert expected[0] == start.replace(tzinfo=tz)

    made = []  # dueflow's own instances: complete each, the recurrence function makes the next
    for _ in range(INSTANCES):
        made.append(task)
        # the feed of the current instance: the rest of the same series, alarms at its reminders
        cal = fetch(client, path)
        [todo] = cal.walk("VTODO")
        assert todo["DUE"].params["TZID"] == zone and zone in {t.tz_name for t in cal.timezones}
        assert expand(cal, INSTANCES)[: len(expected) - len(made) + 1] == expected[len(made) - 1 :]
        assert alarm_instants(todo, todo["DUE"].dt) == [
            parse_instant(r["remind_at"], "") for r in task["reminders"]
        ]
        completed = completion(client, engine, task["id"])
        said = outcome(deliver(event_client("recurrence"), completed, "structured"))
        if said == "series ended":
            break
        assert said == "next instance created"
        [task] = open_tasks(client)
    assert [parse_instant(t["due_at"], "").astimezone(tz) for t in made] == expected
    # the same wall-clock time of day on both sides of the DST change
    assert {d.time() for d in expected} == {start.time()}
    assert len({d.utcoffset() for d in expected}) == 2


def expand(cal: icalendar.Calendar, limit: int) -> list[datetime]:
    """The due times of the feed's one series, first `limit`, as recurring-ical-events reads it."""
    query = recurring_ical_events.of(cal, components=["VTODO"])
    found = itertools.islice(query.after(datetime(2000, 1, 1, tzinfo=UTC)), limit)
    return [todo["DUE"].dt for todo in found]


def open_tasks(client) -> list[dict]:
    response = client.get("/tasks", headers=auth())
    assert response.status_code == 200
    return response.json["items"]


def alarm_instants(component: icalendar.Component, due: datetime) -> list[datetime]:
    """When each VALARM fires for a component due at `due`: a relative TRIGGER moves the local
    wall clock by its days and the clock by its time (RFC 5545 §3.3.6), an absolute one is its
    instant."""
    found = []
    for alarm in component.walk("VALARM"):
        trigger = alarm["TRIGGER"]
        if isinstance(trigger.dt, datetime):
            assert trigger.params.get("VALUE", "DATE-TIME") == "DATE-TIME"
            found.append(trigger.dt.astimezone(UTC))
            continue
        if component.name == "VTODO":
            assert trigger.params["RELATED"] == "END"  # relative to DUE
        offset = -trigger.dt
        before = parse_duration(f"P{offset.days}DT{offset.seconds}S", "trigger")
        found.append(before.subtract_from(due, getattr(due.tzinfo, "key", "UTC")))
    return found


def test_completed_tasks_leave_the_feed(client, engine):
    path = new_feed(client)
    task = create(client, {"title": "x", "due_at": "2027-01-04T09:00:00Z"})
    client.post(f"/tasks/{task['id']}/complete", headers=auth())
    assert not list(fetch(client, path).walk("VTODO"))
    assert not list(fetch(client, path + "?as=events").walk("VEVENT"))


def test_feed_path_with_the_token_is_not_logged(client, caplog):
    path = new_feed(client)
    with caplog.at_level("INFO", logger="dueflow.http"):
        client.get(path)
    logged = [getattr(r, "path", None) for r in caplog.records if r.name == "dueflow.http"]
    assert "/calendar/<token>.ics" in logged and path not in logged
