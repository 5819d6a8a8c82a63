"""The assistant function (MCP server at /mcp) in the stack `make run` starts, driven by the
official MCP SDK's Streamable HTTP client, and by the MCP Inspector's CLI as a second client."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx2
import pytest
import requests
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client

from dueflow.adapters.mcp.text import summary
from dueflow.config import DEV_JWT_SECRET
from tests.conftest import ROOT, token
from tests.support.local_stack import running_stack

pytestmark = pytest.mark.e2e
TOOLS = {
    "add_tasks",
    "find_tasks",
    "get_tasks",
    "update_tasks",
    "complete_tasks",
    "reopen_tasks",
    "delete_tasks",
    "reschedule_task",
    "skip_occurrence",
    "snooze_reminder",
    "list_tags",
    "get_profile",
    "update_profile",
    "preview_recurrence",
}
INSPECTOR = ROOT / "tests" / "e2e" / "inspector"
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The `make run` stack: (API base, MCP URL), both through the front door on PORT, the one
    origin MCP clients are pointed at."""
    tmp = tmp_path_factory.mktemp("assistant")
    env = {"DUEFLOW_REMINDER_TICK": "1", "DUEFLOW_METRICS_PORT": "0"}
    with running_stack(tmp, **env) as (base, _proc, _env):
        yield base, f"{base}/mcp"


def bearer(user: str) -> str:
    return token(user, email=f"{user}@example.com", secret=DEV_JWT_SECRET)


def session(url: str, user: str, work):
    """Run `await work(session)` in an initialized MCP client session of `user`."""

    async def run():
        headers = {"Authorization": f"Bearer {bearer(user)}"}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            async with streamable_http_client(url, http_client=http) as (read, write, *_):
                async with ClientSession(read, write) as client:
                    await client.initialize()
                    return await work(client)

    return asyncio.run(run())


def call(url: str, user: str, tool: str, arguments: dict):
    """One tool call of `user`: the CallToolResult (its structured content validated by the
    client against the tool's outputSchema, unless it is an error)."""
    return session(url, user, lambda client: client.call_tool(tool, arguments))


def ok(url: str, user: str, tool: str, arguments: dict) -> dict:
    result = call(url, user, tool, arguments)
    assert not result.is_error, result.structured_content
    _says_what_it_holds(tool, result)
    return result.structured_content


def _says_what_it_holds(tool: str, result) -> None:
    """The text content is the summary of the structured content (docs/assistant.md,
    "Results"): one line per task, with its title and the id to pass back."""
    (content,) = result.content
    assert content.type == "text"
    assert content.text == summary(tool, result.structured_content, result.is_error)
    body = result.structured_content
    tasks = [r["task"] for r in body.get("results", []) if r["ok"]] + body.get("items", [])
    if "task" in body:
        tasks.append(body["task"])
    problems = [body] + [r["error"] for r in body.get("results", []) if not r["ok"]]
    for error in (e for p in problems for e in p.get("errors", [])):
        assert f"{error['field'] or '(body)'}: {error['message']}" in content.text
    for task in tasks:
        if "title" in task:  # list_tags' items are tags
            assert f"{task['title']} • " in content.text and f"id={task['id']}" in content.text


def failed(url: str, user: str, tool: str, arguments: dict, status: int, *fields: str) -> dict:
    result = call(url, user, tool, arguments)
    assert result.is_error, result.structured_content
    _says_what_it_holds(tool, result)
    problem = result.structured_content
    assert problem["status"] == status and problem["type"].startswith("urn:dueflow:problem:")
    if fields:
        assert sorted(e["field"] for e in problem["errors"]) == sorted(fields)
        assert all(e["pointer"] == "/" + e["field"].replace(".", "/") for e in problem["errors"])
    return problem


def add(url: str, user: str, *items: dict) -> list[dict]:
    body = ok(url, user, "add_tasks", {"tasks": list(items)})
    assert body["failed"] == 0
    return [r["task"] for r in body["results"]]


# -- discovery and auth --------------------------------------------------------------------------


def test_the_tools_are_listed_with_schemas_and_annotations(stack):
    _, url = stack
    listed = session(url, "alice", lambda client: client.list_tools()).tools
    assert {t.name for t in listed} == TOOLS
    for tool in listed:
        assert tool.description and tool.input_schema["type"] == "object"
        assert tool.output_schema["type"] == "object" and tool.output_schema["properties"]
        hints = tool.annotations
        assert None not in (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint)
    by_name = {t.name: t for t in listed}
    for name in ("find_tasks", "get_tasks"):
        hints = by_name[name].annotations
        assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint) == (
            True,
            False,
            True,
        )
    brief = by_name["find_tasks"].output_schema["properties"]["items"]["items"]
    assert (
        brief["required"] == ["id", "title", "status"] and "created_at" not in brief["properties"]
    )
    whole = by_name["get_tasks"].output_schema["properties"]["results"]["items"]["oneOf"][0]
    assert "created_at" in whole["properties"]["task"]["required"]
    assert by_name["delete_tasks"].annotations.destructive_hint is True
    assert by_name["add_tasks"].annotations.idempotent_hint is False
    batch = by_name["add_tasks"].input_schema["properties"]["tasks"]
    assert (batch["minItems"], batch["maxItems"]) == (1, 50)


def test_the_sdks_default_client_speaks_the_sessionless_revision(stack):
    """`mcp.Client` as it comes discovers the server and speaks 2026-07-28 (one POST per
    exchange, no initialize): the tools, a call, per-user isolation and bad input work there
    too, behind the same bearer check."""
    _, url = stack

    async def run(user: str, work):
        headers = {"Authorization": f"Bearer {bearer(user)}"}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            async with Client(streamable_http_client(url, http_client=http)) as client:
                assert client.session.protocol_version == "2026-07-28"
                return await work(client)

    title = f"Modern {time.time_ns()}"

    async def add_and_find(client):
        assert {t.name for t in (await client.list_tools()).tools} == TOOLS
        added = await client.call_tool("add_tasks", {"tasks": [{"title": title}]})
        assert not added.is_error and added.structured_content["succeeded"] == 1
        return await client.call_tool("find_tasks", {"query": title})

    found = asyncio.run(run("modern-alice", add_and_find))
    assert [t["title"] for t in found.structured_content["items"]] == [title]
    other = asyncio.run(run("modern-bob", lambda c: c.call_tool("find_tasks", {"query": title})))
    assert other.structured_content["items"] == []
    bad = asyncio.run(run("modern-bob", lambda c: c.call_tool("find_tasks", {"limit": 0})))
    assert bad.is_error and [e["field"] for e in bad.structured_content["errors"]] == ["limit"]


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-jwt", "Basic YTpi"])
def test_a_call_without_a_valid_token_is_401_with_the_metadata_url(stack, authorization):
    _, url = stack
    headers = {"Accept": "application/json, text/event-stream"}
    if authorization:
        headers["Authorization"] = authorization
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    response = requests.post(url, json=body, headers=headers, timeout=10)
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    metadata_url = url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
    assert challenge.startswith("Bearer ") and f'resource_metadata="{metadata_url}"' in challenge
    metadata = requests.get(metadata_url, timeout=10).json()
    assert metadata["resource"] == url
    # no DUEFLOW_JWT_ISSUER under make run: the endpoint's own origin stands in for it
    assert metadata["authorization_servers"] == [url.removesuffix("/mcp")]


def test_an_expired_token_is_refused_by_the_official_client(stack):
    _, url = stack
    expired = token("alice", secret=DEV_JWT_SECRET, ttl=-120)
    seen: list[tuple[int, str | None]] = []

    async def record(response) -> None:
        seen.append((response.status_code, response.headers.get("www-authenticate")))

    async def run():
        headers = {"Authorization": f"Bearer {expired}"}
        hooks = {"response": [record]}
        async with httpx2.AsyncClient(headers=headers, timeout=30, event_hooks=hooks) as http:
            async with streamable_http_client(url, http_client=http) as (read, write, *_):
                async with ClientSession(read, write) as client:
                    await client.initialize()

    with pytest.raises(ExceptionGroup):  # the SDK raises the HTTP error in a group
        asyncio.run(run())
    status, challenge = seen[0]
    assert status == 401 and challenge.startswith("Bearer ")


def test_a_foreign_host_header_is_refused(stack):
    _, url = stack
    headers = {"Authorization": f"Bearer {bearer('alice')}", "Host": "evil.example:80"}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    response = requests.post(url, json=body, headers=headers, timeout=10)
    assert response.status_code == 421


# -- each tool: success and bad input -------------------------------------------------------------


def test_add_tasks_reads_english_in_the_profile_zone_and_items_fail_on_their_own(stack):
    base, url = stack
    ok(url, "carol", "update_profile", {"timezone": "Europe/Berlin"})
    result = call(
        url,
        "carol",
        "add_tasks",
        {
            "tasks": [
                {"title": "Call mom", "due": "tomorrow 6pm", "reminders": ["30 minutes before"]},
                {"title": ""},
                {"title": "Dentist", "due": "blursday at 25pm"},
                {"title": "Exact", "due": "2026-12-24T18:00:00+01:00", "priority": "urgent"},
                {"title": "Plain", "tags": ["Home"]},
            ]
        },
    )
    assert result.is_error  # some items failed: the assistant must notice
    body = result.structured_content
    assert [r["index"] for r in body["results"]] == [0, 1, 2, 3, 4]
    assert [r["ok"] for r in body["results"]] == [True, False, False, False, True]
    assert (body["succeeded"], body["failed"]) == (2, 3)
    call_mom = body["results"][0]["task"]
    due = datetime.fromisoformat(call_mom["due_at"]).astimezone(BERLIN)
    tomorrow = datetime.now(BERLIN).date() + timedelta(days=1)
    assert (due.date(), due.hour, due.minute) == (tomorrow, 18, 0)
    assert call_mom["timezone"] == "Europe/Berlin"
    assert call_mom["reminders"][0]["before"] == "PT30M"
    fields = [[e["field"] for e in r["error"]["errors"]] for r in body["results"] if not r["ok"]]
    assert fields == [["tasks.1.title"], ["tasks.2.due"], ["tasks.3.priority"]]
    assert "blursday" in body["results"][2]["error"]["errors"][0]["message"]
    # the same task through the REST API: one set of rules, one store
    api = requests.get(
        f"{base}/tasks/{call_mom['id']}", headers={"Authorization": f"Bearer {bearer('carol')}"}
    )
    assert api.status_code == 200 and api.json() == call_mom


def test_a_whole_call_with_a_bad_envelope_fails_naming_the_argument(stack):
    _, url = stack
    failed(url, "alice", "add_tasks", {"tasks": []}, 422, "tasks")
    failed(url, "alice", "add_tasks", {}, 422, "tasks")
    failed(url, "alice", "complete_tasks", {"ids": "abc"}, 422, "ids")


def test_find_tasks_filters_sorts_pages_and_echoes_the_filters(stack):
    _, url = stack
    add(
        url,
        "dave",
        {"title": "Buy oat milk", "tags": ["shop"], "priority": "high"},
        {"title": "Buy bread", "tags": ["shop"]},
        {"title": "File taxes", "due": "2020-01-01T09:00:00Z"},
    )
    page = ok(url, "dave", "find_tasks", {"tags": ["shop"], "sort": "title", "limit": 1})
    assert [t["title"] for t in page["items"]] == ["Buy bread"] and page["next_cursor"]
    assert page["filters"] == {"tags": ["shop"], "sort": "title", "limit": 1}
    rest = ok(
        url,
        "dave",
        "find_tasks",
        {"tags": ["shop"], "sort": "title", "cursor": page["next_cursor"]},
    )
    assert [t["title"] for t in rest["items"]] == ["Buy oat milk"]
    assert [t["title"] for t in ok(url, "dave", "find_tasks", {"query": "milk"})["items"]] == [
        "Buy oat milk"
    ]
    overdue = ok(url, "dave", "find_tasks", {"overdue": True})
    assert [t["title"] for t in overdue["items"]] == ["File taxes"]
    before = ok(url, "dave", "find_tasks", {"due_before": "tomorrow"})
    assert [t["title"] for t in before["items"]] == ["File taxes"]
    failed(url, "dave", "find_tasks", {"limit": 0}, 422, "limit")
    failed(url, "dave", "find_tasks", {"sort": "colour"}, 422, "sort")
    failed(url, "dave", "find_tasks", {"fields": "all"}, 422, "fields")
    failed(url, "dave", "find_tasks", {"due_before": "when pigs fly"}, 422, "due_before")


def test_find_tasks_lists_each_task_in_brief_and_get_tasks_gives_the_whole(stack):
    """find_tasks' items carry what it takes to choose a task and act on it, each field only
    when set; get_tasks answers the whole tasks, exactly as the API's GET /tasks/{id}."""
    base, url = stack
    ok(url, "olga", "update_profile", {"timezone": "Europe/Berlin"})
    rent, plain = add(
        url,
        "olga",
        {
            "title": "Pay rent",
            "description": "From the joint account, reference 'flat 4'. " * 5,
            "priority": "high",
            "tags": ["home"],
            "recurrence": "every! month on the 1st at 9",
            "reminders": ["2 days before"],
        },
        {"title": "Call the plumber"},
    )
    page = ok(url, "olga", "find_tasks", {"sort": "title"})
    assert page["items"] == [
        # the profile's zone, which add_tasks gave it (left out only when UTC)
        {
            "id": plain["id"],
            "title": "Call the plumber",
            "status": "open",
            "timezone": "Europe/Berlin",
        },
        {
            "id": rent["id"],
            "title": "Pay rent",
            "description": rent["description"][:119] + "…",
            "status": "open",
            "priority": "high",
            "tags": ["home"],
            "due_at": rent["due_at"],
            "timezone": "Europe/Berlin",
            "rrule": "FREQ=MONTHLY;BYMONTHDAY=1",
            "basis": "completion",
            "reminder_count": 1,
        },
    ]
    missing = "00000000-0000-4000-8000-000000000000"
    result = call(url, "olga", "get_tasks", {"ids": [rent["id"], missing, plain["id"]]})
    _says_what_it_holds("get_tasks", result)
    assert result.is_error  # one id named no task
    body = result.structured_content
    assert [r["ok"] for r in body["results"]] == [True, False, True]
    headers = {"Authorization": f"Bearer {bearer('olga')}"}
    for index, task in ((0, rent), (2, plain)):
        api = requests.get(f"{base}/tasks/{task['id']}", headers=headers, timeout=10)
        assert api.status_code == 200 and body["results"][index]["task"] == api.json()
    assert body["results"][1]["error"]["status"] == 404
    assert [e["field"] for e in body["results"][1]["error"]["errors"]] == ["ids.1"]
    # a client that reads only the text finds the reminder's id for snooze_reminder there
    assert f"id={rent['reminders'][0]['id']}" in result.content[0].text
    failed(url, "olga", "get_tasks", {"ids": []}, 422, "ids")
    failed(url, "olga", "get_tasks", {}, 422, "ids")


def test_update_complete_reopen_and_delete_in_batches(stack):
    _, url = stack
    one, two = add(url, "erin", {"title": "one"}, {"title": "two"})
    missing = "00000000-0000-4000-8000-000000000000"
    body = call(
        url,
        "erin",
        "update_tasks",
        {
            "updates": [
                {"id": one["id"], "title": "one!", "priority": "high", "tags": ["x"]},
                {"id": two["id"], "priority": "urgent"},
                {"id": missing, "title": "nobody"},
            ]
        },
    ).structured_content
    assert [r["ok"] for r in body["results"]] == [True, False, False]
    assert body["results"][0]["task"]["title"] == "one!"
    assert body["results"][1]["error"]["errors"][0]["field"] == "updates.1.priority"
    assert body["results"][2]["error"]["status"] == 404
    assert body["results"][2]["error"]["errors"][0]["field"] == "updates.2.id"
    done = ok(url, "erin", "complete_tasks", {"ids": [one["id"], two["id"]]})
    assert [r["task"]["status"] for r in done["results"]] == ["done", "done"]
    again = ok(url, "erin", "complete_tasks", {"ids": [one["id"]]})  # idempotent
    assert again["results"][0]["task"]["completed_at"] == done["results"][0]["task"]["completed_at"]
    reopened = ok(url, "erin", "reopen_tasks", {"ids": [one["id"]]})
    assert reopened["results"][0]["task"]["status"] == "open"
    result = call(url, "erin", "delete_tasks", {"ids": [two["id"], missing]})
    assert result.is_error  # one of the two failed
    outcome = result.structured_content["results"]
    assert outcome[0]["ok"] and outcome[0]["task"]["id"] == two["id"]
    assert outcome[1]["error"]["status"] == 404
    assert ok(url, "erin", "find_tasks", {"status": "all"})["items"][0]["id"] == one["id"]


def test_reschedule_moves_one_instance_and_the_series_keeps_its_rule(stack):
    _, url = stack
    (task,) = add(
        url,
        "frank",
        {"title": "Standup", "due": "2030-03-04T09:00:00Z", "recurrence": "FREQ=WEEKLY;BYDAY=MO"},
    )
    moved = ok(url, "frank", "reschedule_task", {"id": task["id"], "due": "2030-03-05T15:00:00Z"})
    assert moved["task"]["due_at"] == "2030-03-05T15:00:00Z"
    assert moved["task"]["recurrence"]["rrule"] == "FREQ=WEEKLY;BYDAY=MO"
    skipped = ok(url, "frank", "skip_occurrence", {"id": task["id"]})
    assert skipped["task"]["due_at"] == "2030-03-11T09:00:00Z"  # the series' Monday, 09:00
    failed(url, "frank", "reschedule_task", {"id": task["id"], "due": "someday maybe"}, 422, "due")
    failed(url, "frank", "reschedule_task", {"id": task["id"]}, 422, "due")
    (plain,) = add(url, "frank", {"title": "once"})
    failed(url, "frank", "skip_occurrence", {"id": plain["id"]}, 422, "recurrence")


def test_snooze_a_reminder(stack):
    _, url = stack
    (task,) = add(
        url, "gina", {"title": "Pills", "due": "in 2 hours", "reminders": ["10 minutes before"]}
    )
    reminder = task["reminders"][0]["id"]
    args = {"task_id": task["id"], "reminder_id": reminder}
    snoozed = ok(url, "gina", "snooze_reminder", {**args, "for": "PT3H"})
    remind_at = datetime.fromisoformat(snoozed["task"]["reminders"][0]["remind_at"])
    assert abs(remind_at - (datetime.now(UTC) + timedelta(hours=3))) < timedelta(minutes=2)
    until = ok(url, "gina", "snooze_reminder", {**args, "until": "tomorrow 8am"})
    assert until["task"]["reminders"][0]["remind_at"].endswith("08:00:00Z")  # gina is on UTC
    failed(url, "gina", "snooze_reminder", {**args, "for": "soon"}, 422, "for")


def test_tags_profile_and_preview(stack):
    _, url = stack
    add(url, "hank", {"title": "a", "tags": ["home"]}, {"title": "b", "tags": ["home", "Work"]})
    assert ok(url, "hank", "list_tags", {}) == {
        "items": [{"name": "home", "count": 2}, {"name": "work", "count": 1}]
    }
    assert ok(url, "hank", "get_profile", {}) == {
        "user_id": "hank",
        "email": "hank@example.com",
        "timezone": "UTC",
    }
    profile = ok(
        url, "hank", "update_profile", {"timezone": "America/New_York", "email": "h@example.org"}
    )
    assert profile["timezone"] == "America/New_York" and profile["email"] == "h@example.org"
    failed(url, "hank", "update_profile", {"timezone": "Mars/Olympus"}, 422, "timezone")
    failed(url, "hank", "update_profile", {"email": "not mail"}, 422, "email")
    preview = ok(
        url, "hank", "preview_recurrence", {"recurrence": "every month on the 1st at 9", "count": 3}
    )
    assert preview["rrule"] == "FREQ=MONTHLY;BYMONTHDAY=1" and preview["basis"] == "due"
    assert preview["timezone"] == "America/New_York"  # the profile's
    assert len(preview["dates"]) == 3
    for local in preview["local_dates"]:
        moment = datetime.fromisoformat(local)
        assert (moment.day, moment.hour, moment.minute) == (1, 9, 0)
    failed(url, "hank", "preview_recurrence", {"recurrence": "every blursday"}, 422, "recurrence")
    failed(
        url, "hank", "preview_recurrence", {"recurrence": "every day", "count": 51}, 422, "count"
    )
    assert ok(url, "hank", "find_tasks", {"query": "every"})["items"] == []  # nothing created


def test_users_never_see_or_change_each_others_tasks(stack):
    _, url = stack
    (secret,) = add(url, "ivan", {"title": "Ivan's secret plan"})
    assert ok(url, "judy", "find_tasks", {"query": "secret", "status": "all"})["items"] == []
    for tool in ("get_tasks", "complete_tasks", "delete_tasks", "reopen_tasks"):
        result = call(url, "judy", tool, {"ids": [secret["id"]]})
        assert result.is_error and result.structured_content["results"][0]["error"]["status"] == 404
        assert "secret" not in result.content[0].text
    failed(url, "judy", "reschedule_task", {"id": secret["id"], "due": "tomorrow"}, 404)
    updated = call(url, "judy", "update_tasks", {"updates": [{"id": secret["id"], "title": "x"}]})
    assert updated.structured_content["results"][0]["error"]["status"] == 404
    mine = ok(url, "ivan", "find_tasks", {"query": "secret"})["items"]
    assert [(t["title"], t["status"]) for t in mine] == [("Ivan's secret plan", "open")]


# -- the whole story -------------------------------------------------------------------------------


def test_english_recurrence_through_to_the_next_instance_after_completion(stack):
    """ "Remind me to pay rent every month on the 1st at 9, two days before": previewed, added,
    completed; the recurrence function creates the next month's instance."""
    _, url = stack
    ok(url, "kim", "update_profile", {"timezone": "Europe/Berlin"})
    preview = ok(url, "kim", "preview_recurrence", {"recurrence": "every month on the 1st at 9"})
    (task,) = add(
        url,
        "kim",
        {
            "title": "Pay rent",
            "recurrence": "every month on the 1st at 9",
            "reminders": ["2 days before"],
        },
    )
    assert task["due_at"] == preview["dates"][0]
    assert task["recurrence"] == {
        "rrule": "FREQ=MONTHLY;BYMONTHDAY=1",
        "basis": "due",
        "exdates": [],
    }
    assert task["timezone"] == "Europe/Berlin" and task["reminders"][0]["before"] == "P2D"
    ok(url, "kim", "complete_tasks", {"ids": [task["id"]]})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        items = ok(url, "kim", "find_tasks", {"query": "rent"})["items"]
        if items:
            break
        time.sleep(0.3)
    assert len(items) == 1, "the recurrence function did not create the next instance"
    (found,) = ok(url, "kim", "get_tasks", {"ids": [items[0]["id"]]})["results"]
    following = found["task"]
    assert following["series_id"] == task["series_id"] and following["occurrence"] == 2
    assert following["due_at"] == preview["dates"][1]
    local = datetime.fromisoformat(following["due_at"]).astimezone(BERLIN)
    assert (local.day, local.hour, local.minute) == (1, 9, 0)
    assert following["reminders"][0]["before"] == "P2D"


# -- a second, independent client ------------------------------------------------------------------


def _inspector(url: str, user: str, *args: str) -> dict:
    binary = INSPECTOR / "node_modules" / ".bin" / "mcp-inspector"
    if shutil.which("node") is None or not binary.exists():
        pytest.fail("the MCP Inspector is not installed: run `make inspector` (make test does)")
    command = [
        str(binary),
        "--cli",
        url,
        "--transport",
        "http",
        "--header",
        f"Authorization: Bearer {bearer(user)}",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout)


def test_the_mcp_inspector_cli_lists_the_tools_and_calls_one(stack):
    _, url = stack
    listed = _inspector(url, "lena", "--method", "tools/list")
    assert {t["name"] for t in listed["tools"]} == TOOLS
    result = _inspector(
        url,
        "lena",
        "--method",
        "tools/call",
        "--tool-name",
        "add_tasks",
        "--tool-arg",
        'tasks=[{"title": "From the inspector", "due": "tomorrow"}]',
    )
    assert not result.get("isError")
    created = result["structuredContent"]["results"][0]["task"]
    assert created["title"] == "From the inspector" and created["due_at"]
    found = ok(url, "lena", "find_tasks", {"query": "inspector"})["items"]
    assert created["id"] in [t["id"] for t in found]
