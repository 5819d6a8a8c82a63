"""GET /tasks (search, filters, sorting, keyset paging, validation) and GET /tags, through HTTP.

Every test runs once on SQLite and once on PostgreSQL (see the `client` fixture). Tests that need
exact or repeated timestamps freeze the service clock (`clock` fixture); everything else goes
through the HTTP API only.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from dueflow import bootstrap
from tests.conftest import auth
from tests.support.clock import Clock

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RANK = {"high": 3, "medium": 2, "low": 1, "none": 0}
ALL_SORTS = ["due_at", "-due_at", "priority", "-priority", "title", "-title",
             "created_at", "-created_at", "updated_at", "-updated_at"]


# -- helpers ----------------------------------------------------------------------------------

def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def day(n: int, hour: int = 12) -> str:
    """A due date `n` days after T0 (at `hour` UTC)."""
    return iso(T0.replace(hour=hour) + timedelta(days=n))


def make(client, title: str, user: str = "alice", **fields) -> dict:
    response = client.post("/tasks", json={"title": title, **fields}, headers=auth(user))
    assert response.status_code == 201, response.json
    return response.json


def patch(client, task: dict, user: str = "alice", **fields) -> dict:
    response = client.patch(f"/tasks/{task['id']}", json=fields, headers=auth(user))
    assert response.status_code == 200, response.json
    return response.json


def complete(client, task: dict) -> dict:
    response = client.post(f"/tasks/{task['id']}/complete", headers=auth())
    assert response.status_code == 200, response.json
    return response.json


def delete(client, task: dict) -> None:
    assert client.delete(f"/tasks/{task['id']}", headers=auth()).status_code == 204


def page(client, user: str = "alice", **params) -> dict:
    """One page of GET /tasks; list values repeat the parameter."""
    response = client.get("/tasks", query_string=params, headers=auth(user))
    assert response.status_code == 200, response.json
    return response.json


def items(client, user: str = "alice", **params) -> list[dict]:
    return page(client, user, limit=200, **params)["items"]


def titles(client, user: str = "alice", **params) -> list[str]:
    return [t["title"] for t in items(client, user, **params)]


def found(client, q: str, user: str = "alice") -> set[str]:
    return set(titles(client, user, q=q))


def walk(client, **params) -> tuple[list[str], list[dict]]:
    """Follow next_cursor to the end; returns the ids in order and the raw pages."""
    ids, pages, cursor = [], [], None
    while True:
        body = page(client, **params, **({"cursor": cursor} if cursor else {}))
        pages.append(body)
        ids += [t["id"] for t in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, pages
        assert len(pages) < 50, "paging does not terminate"


def invalid(response, *fields: str) -> dict:
    """Assert a 422 validation problem that names exactly `fields`."""
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    body = response.json
    assert body["type"] == "urn:dueflow:problem:validation"
    assert body["status"] == 422
    assert body["instance"] == "/tasks"
    assert sorted({e["field"] for e in body["errors"]}) == sorted(fields), body["errors"]
    return body


def forge(obj) -> str:
    """A syntactically valid cursor with chosen contents (what a tampering client could send)."""
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


@pytest.fixture
def clock(client) -> Clock:
    """Freezes the service clock of the runtime the `client` serves (created_at, overdue...)."""
    frozen = Clock(T0)
    bootstrap.configure(clock=frozen)
    return frozen


# -- search: q --------------------------------------------------------------------------------

@pytest.fixture
def meetings(client):
    make(client, "Team meeting")
    make(client, "Team lunch")
    make(client, "Quarterly planning meeting", description="Bring the budget")
    make(client, "Äpfel kaufen")


def test_search_is_case_insensitive(client, meetings):
    assert found(client, "team") == {"Team meeting", "Team lunch"}
    assert found(client, "TEAM") == {"Team meeting", "Team lunch"}
    assert found(client, "tEaM MeEtInG") == {"Team meeting"}
    assert found(client, "ÄPFEL") == {"Äpfel kaufen"}


def test_every_search_word_must_match(client, meetings):
    assert found(client, "meeting") == {"Team meeting", "Quarterly planning meeting"}
    assert found(client, "team meeting") == {"Team meeting"}
    assert found(client, "meeting team") == {"Team meeting"}
    assert found(client, "meeting xyz") == set()
    assert found(client, "xyz meeting") == set()


def test_last_word_also_matches_as_prefix(client, meetings):
    for q in ("meet", "meeti", "MEETI", "meeting", "team meeti", "meeting tea"):
        assert "Team meeting" in found(client, q), q
    assert found(client, "meeting tea") == {"Team meeting"}
    assert found(client, "quart") == {"Quarterly planning meeting"}
    assert found(client, "lunc") == {"Team lunch"}
    # only the last word is a prefix: a partial earlier word must still match in full
    assert found(client, "tea meeting") == set()
    assert found(client, "meeting tea xyz") == set()


@pytest.mark.parametrize(("q", "title"), [
    ("tasks", "Review task list"),
    ("task", "Sort the tasks"),
    ("running", "Morning run"),
    ("runs", "Morning run"),
    ("tasks review", "Review task list"),  # stemming applies to earlier words too
    ("running morning", "Morning run"),
    ("water plan", "Watering the plants"),  # the contract's own example
])
def test_search_uses_english_stemming(client, q, title):
    make(client, title)
    make(client, "Something else entirely")
    assert found(client, q) == {title}


def test_search_covers_the_description(client, meetings):
    assert found(client, "budget") == {"Quarterly planning meeting"}
    assert found(client, "budg") == {"Quarterly planning meeting"}
    # words may be split between title and description
    assert found(client, "planning budget") == {"Quarterly planning meeting"}
    assert found(client, "budget lunch") == set()


def test_search_never_shows_other_users_tasks(client, meetings):
    make(client, "Secret team meeting", user="bob", description="budget")
    assert found(client, "meeting") == {"Team meeting", "Quarterly planning meeting"}
    assert found(client, "secret") == set()
    assert found(client, "budget") == {"Quarterly planning meeting"}
    assert found(client, "secret", user="bob") == {"Secret team meeting"}
    assert found(client, "lunch", user="bob") == set()


@pytest.mark.parametrize("q", ["", " ", "!!!", "-", "*", "()", "\"'", ":", "?!.,;", "-- * --"])
def test_query_of_only_punctuation_is_no_filter(client, meetings, q):
    assert len(titles(client, q=q)) == 4
    assert titles(client, q=q) == titles(client)


@pytest.mark.parametrize("q", ["_", "__", "-_-"])
def test_query_of_only_underscores_is_no_filter(client, meetings, q):
    assert titles(client, q=q) == titles(client)


@pytest.mark.parametrize("q", [
    '"', '""', '"team', 'team"', "*", "team*", "*team", "AND", "OR", "NOT", "NEAR",
    "team AND meeting", "team OR lunch", "NOT team", "NEAR(team meeting)", "NEAR/2",
    "-", "-team", "team -lunch", ":", "title:team", "team:*", "(", ")", "(team", "team)",
    "(team OR lunch)", "'", "team's", "o'clock", "^team", "team & meeting | !lunch", "<->",
    "\\", "%", "_%", "{team}", "[team]", "+team", "team~", "team^2", "a" * 64, "’", "“team”",
])
def test_special_characters_never_break_search(client, meetings, q):
    response = client.get("/tasks", query_string={"q": q}, headers=auth())
    assert response.status_code == 200, response.json
    assert {t["title"] for t in response.json["items"]} <= {
        "Team meeting", "Team lunch", "Quarterly planning meeting", "Äpfel kaufen"}


@pytest.mark.parametrize("q", [
    '"team meeting"', "team-meeting", "(team) meeting*", "team: meeting",
    "'team' \"meeting\"", "team + meeting", "team_meeting", "team* -meeting",
])
def test_search_syntax_characters_are_treated_as_separators(client, meetings, q):
    assert found(client, q) == {"Team meeting"}


def test_updated_title_and_description_are_searchable(client):
    task = make(client, "Buy milk", description="at the corner shop")
    make(client, "Unrelated")
    patch(client, task, title="Sell bread")
    assert found(client, "bread") == {"Sell bread"}
    assert found(client, "brea") == {"Sell bread"}
    assert found(client, "sell") == {"Sell bread"}
    assert found(client, "milk") == set()
    assert found(client, "mil") == set()
    assert found(client, "corner") == {"Sell bread"}
    patch(client, task, description="from the bakery")
    assert found(client, "bakery") == {"Sell bread"}
    assert found(client, "corner") == set()
    patch(client, task, description=None)
    assert found(client, "bakery") == set()
    assert found(client, "bread") == {"Sell bread"}


def test_deleted_tasks_disappear_from_search(client, meetings):
    doomed = make(client, "Team offsite", description="meeting venue")
    assert found(client, "meeting") == {"Team meeting", "Quarterly planning meeting",
                                        "Team offsite"}
    delete(client, doomed)
    assert found(client, "meeting") == {"Team meeting", "Quarterly planning meeting"}
    assert found(client, "offsite") == set()
    assert found(client, "offs") == set()


def test_search_finds_done_tasks_only_with_their_status(client, meetings):
    done = make(client, "Finished meeting notes")
    complete(client, done)
    assert "Finished meeting notes" not in found(client, "meeting")
    assert titles(client, q="meeting", status="done") == ["Finished meeting notes"]
    assert len(titles(client, q="meeting", status="all")) == 3


# -- filters ----------------------------------------------------------------------------------

def test_status_filter(client):
    make(client, "open one")
    make(client, "open two")
    complete(client, make(client, "done one"))
    assert sorted(titles(client)) == ["open one", "open two"]
    assert sorted(titles(client, status="open")) == ["open one", "open two"]
    assert titles(client, status="done") == ["done one"]
    assert sorted(titles(client, status="all")) == ["done one", "open one", "open two"]
    assert all(t["status"] == "done" for t in items(client, status="done"))


def test_priority_filter_is_repeatable_and_matches_any(client):
    for priority in ("none", "low", "medium", "high"):
        make(client, f"p-{priority}", priority=priority)
    make(client, "p-default")
    assert sorted(titles(client, priority="high")) == ["p-high"]
    assert sorted(titles(client, priority=["high", "medium"])) == ["p-high", "p-medium"]
    assert sorted(titles(client, priority=["none", "low"])) == ["p-default", "p-low", "p-none"]
    assert len(titles(client, priority=["none", "low", "medium", "high"])) == 5


def test_tag_filter_is_repeatable_and_needs_every_tag(client):
    make(client, "home+garden", tags=["home", "garden"])
    make(client, "home", tags=["Home"])
    make(client, "garden+work", tags=["garden", "work"])
    make(client, "untagged")
    assert sorted(titles(client, tag="home")) == ["home", "home+garden"]
    assert sorted(titles(client, tag="HOME")) == ["home", "home+garden"]
    assert titles(client, tag=["home", "garden"]) == ["home+garden"]
    assert titles(client, tag=["garden", "home"]) == ["home+garden"]
    assert titles(client, tag=["home", "work"]) == []
    assert titles(client, tag="nope") == []


def test_tag_filter_follows_tag_changes(client):
    task = make(client, "retagged", tags=["old"])
    patch(client, task, tags=["new", "other"])
    assert titles(client, tag="old") == []
    assert titles(client, tag=["new", "other"]) == ["retagged"]
    patch(client, task, tags=None)
    assert titles(client, tag="new") == []


def test_due_before_is_exclusive_and_due_after_inclusive(client):
    make(client, "d1", due_at=day(1))
    make(client, "d2", due_at=day(2))
    make(client, "d3", due_at=day(3))
    make(client, "undated")
    assert titles(client, due_before=day(2)) == ["d1"]
    assert titles(client, due_after=day(2)) == ["d2", "d3"]
    assert titles(client, due_after=day(2), due_before=day(3)) == ["d2"]
    assert titles(client, due_after=day(3), due_before=day(2)) == []
    # the same instant written with another offset (encoded `+`)
    berlin = (T0 + timedelta(days=2, hours=1)).strftime("%Y-%m-%dT%H:%M:%S+01:00")
    assert titles(client, due_before=berlin) == ["d1"]
    assert titles(client, due_after=berlin) == ["d2", "d3"]
    assert titles(client, due_after="2000-01-01T00:00:00Z") == ["d1", "d2", "d3"]
    assert titles(client, due_before="2999-01-01T00:00:00Z") == ["d1", "d2", "d3"]


def test_overdue_means_open_and_due_before_now(client, clock):
    make(client, "long overdue", due_at=iso(T0 - timedelta(days=3)))
    make(client, "just overdue", due_at=iso(T0 - timedelta(seconds=1)))
    make(client, "due right now", due_at=iso(T0))
    make(client, "due later", due_at=iso(T0 + timedelta(hours=1)))
    make(client, "no due date")
    complete(client, make(client, "done and past", due_at=iso(T0 - timedelta(days=1))))
    assert titles(client, overdue="true") == ["long overdue", "just overdue"]
    assert titles(client, overdue="true", status="all") == ["long overdue", "just overdue"]
    assert titles(client, overdue="true", status="done") == []
    assert len(titles(client, overdue="false")) == 5
    clock.advance(3600)  # now == "due later": not overdue yet (strictly before now)
    assert titles(client, overdue="true") == ["long overdue", "just overdue", "due right now"]
    clock.advance(1)
    assert titles(client, overdue="true") == [
        "long overdue", "just overdue", "due right now", "due later"]


def test_filters_combine_with_and(client):
    make(client, "Fix garden fence", priority="high", tags=["home", "garden"], due_at=day(1))
    make(client, "Fix garden gate", priority="low", tags=["home", "garden"], due_at=day(1))
    make(client, "Fix garden shed", priority="high", tags=["home"], due_at=day(1))
    make(client, "Fix garden bench", priority="high", tags=["home", "garden"], due_at=day(9))
    make(client, "Fix garden lamp", priority="high", tags=["home", "garden"])
    make(client, "Paint garden wall", priority="high", tags=["home", "garden"], due_at=day(1))
    complete(client, make(client, "Fix garden pond", priority="high", tags=["home", "garden"],
                          due_at=day(1)))
    query = {"q": "fix gard", "tag": ["garden", "home"], "priority": ["high", "medium"],
             "due_before": day(5)}
    assert titles(client, **query) == ["Fix garden fence"]
    assert sorted(titles(client, **query, status="all")) == ["Fix garden fence", "Fix garden pond"]
    assert titles(client, **query, status="done") == ["Fix garden pond"]
    assert titles(client, **query, due_after=day(2)) == []


# -- sorting ----------------------------------------------------------------------------------

@pytest.fixture
def dated(client):
    """Due dates with ties (broken by priority) and two tasks without a due date."""
    make(client, "undated high", priority="high")
    make(client, "day2 none", due_at=day(2))
    make(client, "day1 low", due_at=day(1), priority="low")
    make(client, "day3 medium", due_at=day(3), priority="medium")
    make(client, "day1 high", due_at=day(1), priority="high")
    make(client, "undated low", priority="low")
    make(client, "day1 medium", due_at=day(1), priority="medium")


def test_default_sort_is_due_at_ascending_with_undated_last(client, dated):
    expected = ["day1 high", "day1 medium", "day1 low", "day2 none", "day3 medium",
                "undated high", "undated low"]
    assert titles(client) == expected
    assert titles(client, sort="due_at") == expected


def test_descending_due_at_keeps_undated_last(client, dated):
    assert titles(client, sort="-due_at") == [
        "day3 medium", "day2 none", "day1 high", "day1 medium", "day1 low",
        "undated high", "undated low"]


def test_priority_sort_orders_by_importance_then_due_at(client, dated):
    """`-priority` is descending by value (none < low < medium < high): most important first;
    ties by due_at ascending (undated last) in both directions, then id."""
    assert titles(client, sort="-priority") == [
        "day1 high", "undated high", "day1 medium", "day3 medium", "day1 low", "undated low",
        "day2 none"]
    assert titles(client, sort="priority") == [
        "day2 none", "day1 low", "undated low", "day1 medium", "day3 medium", "day1 high",
        "undated high"]


def test_title_sort_is_case_insensitive(client):
    for title in ("cherry", "apple", "Banana", "banana split", "Apricot"):
        make(client, title)
    assert titles(client, sort="title") == ["apple", "Apricot", "Banana", "banana split", "cherry"]
    assert titles(client, sort="-title") == ["cherry", "banana split", "Banana", "Apricot", "apple"]


def test_created_and_updated_at_sorts(client, clock):
    first = make(client, "first")
    clock.advance(1)
    second = make(client, "second")
    clock.advance(1)
    make(client, "third")
    clock.advance(1)
    patch(client, first, priority="high")  # first is now the most recently updated
    clock.advance(1)
    patch(client, second, description="touched")
    assert titles(client, sort="created_at") == ["first", "second", "third"]
    assert titles(client, sort="-created_at") == ["third", "second", "first"]
    assert titles(client, sort="updated_at") == ["third", "first", "second"]
    assert titles(client, sort="-updated_at") == ["second", "first", "third"]


# -- paging -----------------------------------------------------------------------------------

@pytest.fixture
def many(client, clock) -> list[dict]:
    """23 tasks with repeated titles, priorities, due dates, created_at and updated_at values,
    seven without a due date and four done."""
    names = ["apple", "Banana", "cherry", "Apple", "banana"]
    priorities = ["none", "low", "medium", "high"]
    tasks = []
    for i in range(23):
        if i % 3 == 0:
            clock.advance(1)  # three tasks share each created_at
        due = None if i % 7 in (0, 3) else day(i % 3)
        tasks.append(make(client, names[i % 5], priority=priorities[i % 4], due_at=due))
    clock.advance(1)
    for task in tasks[::5]:
        patch(client, task, description="touched")  # five share a later updated_at
    for task in tasks[1::6]:
        complete(client, task)
    return [t for t in items(client, status="all", sort="created_at")]


def _contract_key(sort: str, task: dict):
    """The order the docs promise; ties not fixed by the contract are left to `id` here."""
    due = datetime.fromisoformat(task["due_at"]) if task["due_at"] else None
    rank = RANK[task["priority"]]
    descending = sort.startswith("-")
    sign = -1 if descending else 1
    if sort.lstrip("-") == "due_at":
        stamp = due.timestamp() * sign if due else 0
        return (due is None, stamp, -rank)
    if sort.lstrip("-") == "priority":
        return (rank * sign, due is None, due.timestamp() if due else 0)
    if sort.lstrip("-") == "title":
        return (task["title"].casefold(),)
    return (datetime.fromisoformat(task[sort.lstrip("-")]).timestamp(),)


def test_many_has_duplicates_and_undated_tasks(many):
    assert len(many) == 23
    assert sum(t["due_at"] is None for t in many) == 7
    assert sum(t["status"] == "done" for t in many) == 4
    assert len({t["created_at"] for t in many}) == 8
    assert len({t["updated_at"] for t in many}) < 23


@pytest.mark.parametrize("sort", ALL_SORTS)
def test_paging_visits_every_task_once_in_the_one_page_order(client, many, sort):
    whole = page(client, status="all", sort=sort, limit=200)
    assert whole["next_cursor"] is None
    expected = [t["id"] for t in whole["items"]]
    assert sorted(expected) == sorted(t["id"] for t in many)

    ids, pages = walk(client, status="all", sort=sort, limit=5)
    assert ids == expected
    assert [len(p["items"]) for p in pages] == [5, 5, 5, 5, 3]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", p["next_cursor"]) for p in pages[:-1])
    assert pages[-1]["next_cursor"] is None


@pytest.mark.parametrize("sort", ALL_SORTS)
def test_one_page_order_follows_the_contract(client, many, sort):
    listed = items(client, status="all", sort=sort)
    keys = [_contract_key(sort, t) for t in listed]
    if sort.lstrip("-") in ("title", "created_at", "updated_at") and sort.startswith("-"):
        assert keys == sorted(keys, reverse=True)
    else:
        assert keys == sorted(keys)
    if sort.lstrip("-") in ("due_at", "priority"):  # remaining ties are broken by id
        expected = sorted(listed, key=lambda t: (*_contract_key(sort, t), t["id"]))
        assert [t["id"] for t in listed] == [t["id"] for t in expected]


@pytest.mark.parametrize("sort", ["due_at", "-due_at", "priority", "title"])
def test_paging_with_filters(client, many, sort):
    query = {"sort": sort, "priority": ["high", "none"]}
    expected = [t["id"] for t in items(client, **query)]
    assert 3 < len(expected) < 23
    ids, _ = walk(client, **query, limit=2)
    assert ids == expected


def test_exact_last_page_has_no_cursor(client):
    for n in range(4):
        make(client, f"t{n}")
    first = page(client, limit=2)
    second = page(client, limit=2, cursor=first["next_cursor"])
    assert len(second["items"]) == 2
    assert second["next_cursor"] is None
    assert page(client, limit=4)["next_cursor"] is None
    assert page(client, limit=3)["next_cursor"] is not None


def test_pages_do_not_shift_when_tasks_are_added_or_deleted(client):
    tasks = [make(client, f"t{n}", due_at=day(n)) for n in range(1, 7)]
    first = page(client, limit=3)
    assert [t["title"] for t in first["items"]] == ["t1", "t2", "t3"]
    delete(client, tasks[0])
    make(client, "t0", due_at=day(0))
    second = page(client, limit=3, cursor=first["next_cursor"])
    assert [t["title"] for t in second["items"]] == ["t4", "t5", "t6"]


def test_default_limit_is_50(client):
    for n in range(51):
        make(client, f"t{n}")
    body = page(client)
    assert len(body["items"]) == 50
    assert body["next_cursor"] is not None


@pytest.mark.parametrize("limit", ["1", "200"])
def test_limit_bounds_are_accepted(client, limit):
    make(client, "a")
    make(client, "b")
    assert len(page(client, limit=limit)["items"]) == min(int(limit), 2)


@pytest.mark.parametrize("limit", ["0", "201", "-1", "abc", "", "1.5", " 5", "1e2"])
def test_limit_out_of_bounds_is_rejected(client, limit):
    invalid(client.get("/tasks", query_string={"limit": limit}, headers=auth()), "limit")


def test_cursor_from_another_sort_is_rejected(client):
    for n in range(3):
        make(client, f"t{n}", due_at=day(n))
    cursor = page(client, limit=1, sort="due_at")["next_cursor"]
    assert page(client, limit=1, sort="due_at", cursor=cursor)["items"]
    for other in ("-due_at", "priority", "title", "created_at"):
        response = client.get("/tasks", query_string={"sort": other, "cursor": cursor},
                              headers=auth())
        invalid(response, "cursor")


@pytest.mark.parametrize("cursor", [
    "garbage", "!!!", "", "null", "e30", forge(5), forge("ab"), forge({"a": 1, "b": 2}),
    forge(["due_at"]), forge(["due_at", []]), forge(["due_at", [None]]),
    forge(["due_at", ["not a date", 0, "00000000-0000-0000-0000-000000000000"]]),
    forge(["due_at", [None, "high", "00000000-0000-0000-0000-000000000000"]]),
    forge(["due_at", [None, 0, None]]), forge(["due_at", [None, 0, 7]]),
    forge(["title", [None, "00000000-0000-0000-0000-000000000000"]]),
])
def test_garbage_cursor_is_rejected(client, cursor):
    make(client, "t")
    invalid(client.get("/tasks", query_string={"cursor": cursor}, headers=auth()), "cursor")


@pytest.mark.parametrize(("sort", "values"), [
    ("title", ["a", "not-a-uuid"]),
    ("priority", [True, None, "00000000-0000-0000-0000-000000000000"]),
    ("priority", [10**30, None, "00000000-0000-0000-0000-000000000000"]),
    ("created_at", ["0001-01-01T00:00:00+01:00", "00000000-0000-0000-0000-000000000000"]),
])
def test_tampered_cursor_is_rejected_not_a_server_error(client, sort, values):
    make(client, "t")
    response = client.get("/tasks", query_string={"sort": sort, "cursor": forge([sort, values])},
                          headers=auth())
    invalid(response, "cursor")


# -- validation -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["page", "offset", "sort_by", "tags", "Q", "due"])
def test_unknown_parameter_is_rejected_by_name(client, name):
    invalid(client.get("/tasks", query_string={name: "x"}, headers=auth()), name)


@pytest.mark.parametrize(("name", "value"), [
    ("status", "closed"), ("status", "OPEN"), ("status", ""),
    ("priority", "urgent"), ("priority", "HIGH"),
    ("sort", "due"), ("sort", "-foo"), ("sort", "+due_at"), ("sort", "--due_at"),
    ("due_before", "2026-03-01"), ("due_before", "2026-03-01T12:00:00"),
    ("due_before", "2026-03-01T12:00:00 01:00"),  # an unencoded `+` arrives as a space
    ("due_before", "tomorrow"), ("due_after", "2026-02-30T00:00:00Z"),
    ("overdue", "yes"),
])
def test_bad_parameter_value_is_rejected_by_name(client, name, value):
    response = client.get("/tasks", query_string={name: value}, headers=auth())
    body = invalid(response, name)
    assert body["errors"][0]["pointer"] == f"/{name}"
    assert body["errors"][0]["message"]


def test_single_valued_parameter_given_twice_is_rejected(client):
    response = client.get("/tasks", query_string={"sort": ["title", "due_at"]}, headers=auth())
    invalid(response, "sort")


def test_every_bad_parameter_is_reported(client):
    response = client.get("/tasks", query_string={"status": "x", "sort": "y", "limit": "0",
                                                  "bogus": "1"}, headers=auth())
    invalid(response, "status", "sort", "limit", "bogus")


def test_listing_requires_a_token(client):
    assert client.get("/tasks").status_code == 401
    assert client.get("/tags").status_code == 401


# -- GET /tags --------------------------------------------------------------------------------

def tags(client, user: str = "alice") -> list[dict]:
    response = client.get("/tags", headers=auth(user))
    assert response.status_code == 200, response.json
    return response.json["items"]


def test_tags_count_open_tasks_ordered_by_count_then_name(client):
    make(client, "a", tags=["work", "urgent"])
    make(client, "b", tags=["work", "home"])
    make(client, "c", tags=["Work", "errands"])
    make(client, "d", tags=["home"])
    make(client, "e")
    assert tags(client) == [
        {"name": "work", "count": 3}, {"name": "home", "count": 2},
        {"name": "errands", "count": 1}, {"name": "urgent", "count": 1}]


def test_tags_ignore_done_and_deleted_tasks_and_other_users(client):
    keep = make(client, "keep", tags=["home", "garden"])
    done = make(client, "done", tags=["home", "work"])
    gone = make(client, "gone", tags=["home", "trash"])
    make(client, "bob's", user="bob", tags=["home", "garden", "bobtag"])
    complete(client, done)
    delete(client, gone)
    assert tags(client) == [{"name": "garden", "count": 1}, {"name": "home", "count": 1}]
    assert tags(client, "bob") == [
        {"name": "bobtag", "count": 1}, {"name": "garden", "count": 1},
        {"name": "home", "count": 1}]
    assert tags(client, "carol") == []
    assert client.post(f"/tasks/{done['id']}/reopen", headers=auth()).status_code == 200
    assert tags(client) == [{"name": "home", "count": 2}, {"name": "garden", "count": 1},
                            {"name": "work", "count": 1}]
    patch(client, keep, tags=["garden"])
    assert tags(client) == [{"name": "garden", "count": 1}, {"name": "home", "count": 1},
                            {"name": "work", "count": 1}]


@pytest.mark.parametrize(("q", "expected"), [
    ("the meeting", {"Team meeting", "Quarterly planning meeting"}),
    ("a team and meeting", {"Team meeting"}),
    # a stop word in last place still counts, as a prefix ("the" -> "theme"): only one has "the"
    ("meeting the", {"Quarterly planning meeting"}),
    ("bring the", {"Quarterly planning meeting"}),
])
def test_stop_words_are_ignored_alike_on_both_databases(client, meetings, q, expected):
    assert found(client, q) == expected
