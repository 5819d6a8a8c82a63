"""Scenario 7: the assistant's MCP tool calls, against the same operations through the REST API.

One stack as `make run` starts it, on PostgreSQL seeded with tasks. Clients as an assistant's
host has them: the official MCP SDK's Streamable HTTP client (one initialized session per user,
on the SDK's HTTP client httpx2), and for the REST API the same HTTP client library with the same
connection reuse, so the difference measured is the protocol and the server behind it, not the
client's HTTP stack. Two operations, each both ways:

* find: `find_tasks {query, limit: 20}` and `GET /tasks?q=...&limit=20`;
* add: `add_tasks` of one task and `POST /tasks` of the same body.

The targets are for that session, which opens with the `initialize` handshake (protocol
2025-11-25: the server's stateless mode builds a transport per request). For information, the
same calls also go through the SDK's high-level `mcp.Client` as it comes (`mode="auto"`: it
discovers and speaks the sessionless 2026-07-28 revision, one request per exchange).

Each segment offers `assistant_rate` calls/s in open loop (bench.loadgen.open_loop_calls: latency
from the scheduled time, so a stall is not hidden). Rounds of [find REST, find MCP, find MCP
2026, add REST, ...], interleaved so all see the same machine; after each segment the outbox
relay delivers the creates' events before the next segment starts. The client runs in the
bench's process: its CPU per segment is reported (the MCP client validates every result against
the tool's outputSchema).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import UTC, datetime

import httpx2
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client

from bench import data, loadgen, stack
from bench.context import Context
from bench.results import Target, fmt, table
from bench.stats import ratio

KEY, NUMBER = "assistant", "8"
TITLE = "Assistant: MCP tool calls vs the same operations through the REST API"
OPS = ("find", "add")
TRANSPORTS = ("rest", "mcp", "mcp_2026")  # mcp: the handshake session the targets are for
RATIO_LIMIT = 1.5
WARM_CALLS = 10  # per user, operation and transport, before anything is measured


def applies(profile) -> bool:
    return True


def run(ctx: Context) -> dict:
    p = ctx.profile
    users = [f"assistant-user-{i}" for i in range(p.assistant_users)]
    ctx.log(f"7 assistant: seeding {p.assistant_seed_tasks} tasks for {len(users)} users")
    url = ctx.infra.database("postgresql", "assistant")
    engine = stack.make_engine(url)
    stack.seed(engine, users, p.assistant_seed_tasks, random_seed=11)
    ctx.log("7 assistant: starting the stack")
    local = stack.LocalRun(ctx.infra, "assistant", url).start()
    try:
        stack.wait_http(local.assistant_port, "/readyz", local, timeout=60)
        segments = asyncio.run(_measure(ctx, local, users, engine))
    finally:
        local.stop()
        engine.dispose()
    latency = {op: {t: loadgen.pooled(segments[op][t]) for t in TRANSPORTS} for op in OPS}
    errors = {
        f"{op} {t}": run.first_error
        for op in OPS
        for t in TRANSPORTS
        for run in segments[op][t]
        if run.first_error
    }
    return {
        "config": {
            "offered_rate": p.assistant_rate,
            "segment_s": p.assistant_segment_s,
            "rounds": p.assistant_rounds,
            "users": len(users),
            "seed_tasks": p.assistant_seed_tasks,
            "server": "python -m dueflow_local.run (tasks: gunicorn; assistant: uvicorn)",
            "client": "mcp ClientSession (initialize) and mcp.Client (auto: 2026-07-28) over"
            " streamable_http_client; REST over httpx2",
        },
        "latency": latency,
        "ratios": {op: _ratios(latency[op], "mcp") for op in OPS},
        "ratios_2026": {op: _ratios(latency[op], "mcp_2026") for op in OPS},
        "first_errors": errors,
    }


def _ratios(latency: dict, transport: str) -> dict:
    return {
        pct: ratio(latency[transport][f"{pct}_ms"], latency["rest"][f"{pct}_ms"])
        for pct in ("p50", "p99")
    }


class _Clients:
    """Per user: an initialized MCP session, an `mcp.Client` and a REST client, all on httpx2
    clients of their own with the same limits."""

    def __init__(self, local: stack.LocalRun, users: list[str]):
        self.base = f"http://127.0.0.1:{local.port}"
        self.mcp_url = f"http://127.0.0.1:{local.assistant_port}/mcp"
        self.users = users
        self.rest: list[httpx2.AsyncClient] = []
        self.mcp: list[ClientSession] = []
        self.mcp_2026: list[Client] = []
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> _Clients:
        enter = self._stack.enter_async_context
        for user in self.users:
            headers = stack.auth(user)
            limits = httpx2.Limits(max_keepalive_connections=64)
            self.rest.append(
                await enter(
                    httpx2.AsyncClient(
                        base_url=self.base, headers=headers, timeout=30, limits=limits
                    )
                )
            )
            http = await enter(httpx2.AsyncClient(headers=headers, timeout=30, limits=limits))
            read, write, *_ = await enter(streamable_http_client(self.mcp_url, http_client=http))
            session = await enter(ClientSession(read, write))
            await session.initialize()
            self.mcp.append(session)
            http = await enter(httpx2.AsyncClient(headers=headers, timeout=30, limits=limits))
            client = await enter(Client(streamable_http_client(self.mcp_url, http_client=http)))
            self.mcp_2026.append(client)
        return self

    async def __aexit__(self, *exc) -> None:
        await self._stack.aclose()


def _calls(clients: _Clients) -> dict[str, dict]:
    """op -> transport -> `async call(i) -> status`: the same operation, the same inputs."""
    rng = random.Random(5)
    now = datetime.now(UTC)
    n = len(clients.users)
    words = [rng.choice(data.QUERIES) for _ in range(500)]
    bodies = [data.task_body(rng, now) for _ in range(2000)]

    async def find_rest(i: int) -> int:
        client = clients.rest[i % n]
        answer = await client.get("/tasks", params={"q": words[i % 500], "limit": 20})
        return answer.status_code

    def find_mcp(sessions: list[ClientSession] | list[Client]):
        async def call(i: int) -> int:
            arguments = {"query": words[i % 500], "limit": 20}
            return _status(await sessions[i % n].call_tool("find_tasks", arguments))

        return call

    async def add_rest(i: int) -> int:
        answer = await clients.rest[i % n].post("/tasks", json=bodies[i % 2000])
        return answer.status_code

    def add_mcp(sessions: list[ClientSession] | list[Client]):
        async def call(i: int) -> int:
            item = _tool_item(bodies[i % 2000])
            return _status(await sessions[i % n].call_tool("add_tasks", {"tasks": [item]}))

        return call

    return {
        "find": {
            "rest": find_rest,
            "mcp": find_mcp(clients.mcp),
            "mcp_2026": find_mcp(clients.mcp_2026),
        },
        "add": {
            "rest": add_rest,
            "mcp": add_mcp(clients.mcp),
            "mcp_2026": add_mcp(clients.mcp_2026),
        },
    }


def _tool_item(body: dict) -> dict:
    """A `POST /tasks` body as an add_tasks item (the tools call `due_at` `due`)."""
    item = dict(body)
    if "due_at" in item:
        item["due"] = item.pop("due_at")
    return item


def _status(result) -> int:
    """An HTTP-like status of a tool call: the problem's status when the call or (add_tasks) its
    one item failed, else 200."""
    body = result.structured_content or {}
    if result.is_error:
        return int(body.get("status") or 500)
    if body.get("failed"):
        return int(body["results"][0]["error"].get("status") or 500)
    return 200


async def _measure(ctx: Context, local: stack.LocalRun, users: list[str], engine) -> dict:
    p = ctx.profile
    segments: dict[str, dict[str, list[loadgen.Run]]] = {
        op: {t: [] for t in TRANSPORTS} for op in OPS
    }
    async with _Clients(local, users) as clients:
        calls = _calls(clients)
        for op in OPS:  # connections, caches, the users remembered: not in the figures
            for transport in TRANSPORTS:
                for i in range(WARM_CALLS * len(users)):
                    await calls[op][transport](i)
        await asyncio.to_thread(stack.drain_outbox, engine)
        for r in range(p.assistant_rounds):
            ctx.log(f"7 assistant: round {r + 1} of {p.assistant_rounds}")
            for op in OPS:
                for transport in TRANSPORTS:
                    segments[op][transport].append(
                        await loadgen.open_loop_calls(
                            calls[op][transport],
                            rate=p.assistant_rate,
                            duration=p.assistant_segment_s,
                            grace=10,
                        )
                    )
                    # every segment starts with an empty outbox: the events of one segment's
                    # creates are not relayed during the next one (add MCP came right after
                    # add REST and paid for REST's 200 events)
                    await asyncio.to_thread(stack.drain_outbox, engine)
    return segments


def targets(result: dict) -> list[Target]:
    out = []
    rate = fmt(result["config"]["offered_rate"])
    for op in OPS:
        lat = result["latency"][op]
        for pct in ("p50", "p99"):
            out.append(
                Target(
                    NUMBER,
                    f"{op} tool call {pct} / REST {pct} at {rate} calls/s",
                    "<=",
                    RATIO_LIMIT,
                    "×",
                    result["ratios"][op][pct],
                    note=f"{fmt(lat['mcp'][f'{pct}_ms'])} ms vs {fmt(lat['rest'][f'{pct}_ms'])} ms",
                )
            )
    return out


_VIA = {"rest": "REST", "mcp": "MCP tool", "mcp_2026": "MCP tool, 2026-07-28"}


def markdown(result: dict) -> list[str]:
    cfg = result["config"]
    rows = []
    for op in OPS:
        for transport in TRANSPORTS:
            lat = result["latency"][op].get(transport)
            if lat is None:  # a result from before the 2026-07-28 client was measured
                continue
            ratios = {"mcp": result["ratios"], "mcp_2026": result.get("ratios_2026")}
            mine = ratios.get(transport)
            rows.append(
                [
                    op,
                    _VIA[transport],
                    lat["p50_ms"],
                    lat["p90_ms"],
                    lat["p99_ms"],
                    mine[op]["p50"] if mine else "—",
                    mine[op]["p99"] if mine else "—",
                    lat["loadgen_cpu"],
                    lat["failed"],
                ]
            )
    lines = [
        f"Offered {fmt(cfg['offered_rate'])} calls/s (open loop) per segment of "
        f"{fmt(cfg['segment_s'])} s; {cfg['rounds']} interleaved rounds of [find REST, find MCP, "
        f"find MCP 2026, add REST, …]; {cfg['users']} users, {fmt(cfg['seed_tasks'])} seeded "
        "tasks, PostgreSQL. find: `find_tasks {query, limit: 20}` vs `GET /tasks?q=…&limit=20`; "
        "add: `add_tasks` of one task vs `POST /tasks`. *MCP tool*: a `ClientSession` after the "
        "`initialize` handshake (2025-11-25), which the targets are for; *MCP tool, 2026-07-28*: "
        "the SDK's `mcp.Client` as it comes (it discovers the sessionless revision), for "
        "information.",
        "",
        *table(
            [
                "operation",
                "via",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "p50 × REST",
                "p99 × REST",
                "client cores",
                "errors",
            ],
            rows,
        ),
    ]
    for what, error in result.get("first_errors", {}).items():
        lines += ["", f"- first failure of {what}: `{error}`"]
    return lines
