"""The `live` function's ASGI app: each caller's task changes as Server-Sent Events.

`GET /live` streams (sse-starlette on Starlette, under uvicorn: thousands of long-lived streams
per process need an event loop, not a thread each; docs/architecture.md), `POST /live/tickets`
gives a browser's EventSource a short-lived ticket for `?ticket=`, `/healthz` and `/readyz` as in
every function; anything else is a problem+json 404 or 405. docs/feeds.md is the protocol."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable

import anyio
from sqlalchemy.exc import DBAPIError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dueflow.adapters.auth import AuthError, AuthSettings, AuthUnavailable, authenticate
from dueflow.adapters.http.problems import problem_document
from dueflow.adapters.live_tail import Hub, Subscriber, Tail
from dueflow.domain.errors import FieldError, ValidationFailed
from dueflow.service.live import LiveService, parse_position
from dueflow.service.ports import Change

log = logging.getLogger("dueflow.live")
RESET = "reset"
#: How long a request waits for the tail's first read of the log before answering 503.
READY_WAIT_S = 5.0


class Unavailable(Exception):
    """A request's database call failed for a reason a retry may fix (answered 503)."""


def problem(
    status: int,
    detail: str,
    *,
    request: Request | None = None,
    errors: list[FieldError] | None = None,
    headers: dict | None = None,
) -> Response:
    instance = request.url.path if request is not None else None
    body = problem_document(status, detail, instance=instance, errors=errors)
    return Response(
        json.dumps(body), status, headers=headers, media_type="application/problem+json"
    )


def create_app(
    service: Callable[[], LiveService],
    make_tail: Callable[[LiveService, Hub, asyncio.AbstractEventLoop], Tail],
    auth: AuthSettings,
    *,
    ready: Callable[[], None],
    heartbeat: float = 15.0,
    max_stream: float = 570.0,
    retry_ms: int = 1000,
    threads: int = 8,
    max_pending: int = 1000,
) -> Starlette:
    """`service` builds the use cases (on start), `make_tail` this process's tail of the log;
    streams send a heartbeat comment every `heartbeat` seconds and end after `max_stream`
    seconds with a `retry:` hint; `threads` database calls (and token checks) at once."""
    hub = Hub(max_pending)
    state: dict = {}

    def limiter() -> anyio.CapacityLimiter:
        if "limiter" not in state:  # made on the event loop
            state["limiter"] = anyio.CapacityLimiter(threads)
        return state["limiter"]

    async def blocking(fn, *args):
        try:
            return await anyio.to_thread.run_sync(fn, *args, limiter=limiter())
        except DBAPIError as exc:  # the database is down or restarting: worth a retry
            raise Unavailable(type(exc.orig).__name__) from exc

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        live = await anyio.to_thread.run_sync(service)
        state["service"] = live
        tail = make_tail(live, hub, asyncio.get_running_loop())
        tail.start()
        state["tail"] = tail
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(tail.stop)

    async def caller(request: Request) -> str | Response:
        """The user id, or the 401/503 problem to answer."""
        header = request.headers.get("authorization")
        if header is not None:
            try:
                principal = await blocking(authenticate, header, auth)
            except AuthError as exc:
                return problem(401, str(exc), request=request, headers=_CHALLENGE)
            except AuthUnavailable as exc:
                return problem(503, str(exc), request=request, headers={"Retry-After": "5"})
            return principal.user_id
        ticket = request.query_params.get("ticket")
        if ticket is None:
            detail = "a bearer token (Authorization) or a ticket (?ticket=) is required"
            return problem(401, detail, request=request, headers=_CHALLENGE)
        user_id = await blocking(state["service"].ticket_user, ticket)
        if user_id is None:
            return problem(401, "the ticket is unknown or expired", request=request)
        return user_id

    async def tickets(request: Request) -> Response:
        header = request.headers.get("authorization")
        if header is None:
            return problem(401, "a bearer token is required", request=request, headers=_CHALLENGE)
        user = await caller(request)
        if isinstance(user, Response):
            return user
        ticket, expires_in = await blocking(state["service"].issue_ticket, user)
        return JSONResponse(
            {"ticket": ticket, "expires_in": expires_in}, headers={"Cache-Control": "no-store"}
        )

    async def live(request: Request) -> Response:
        user = await caller(request)
        if isinstance(user, Response):
            return user
        try:  # the header wins: an EventSource reconnects with its URL's first position in it
            header = request.headers.get("last-event-id")
            position = (
                parse_position(header, "Last-Event-ID")
                if header is not None
                else parse_position(request.query_params.get("last_event_id"))
            )
        except ValidationFailed as exc:
            return problem(400, str(exc), request=request, errors=exc.errors)
        if not hub.ready.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hub.ready.wait(), READY_WAIT_S)
            if not hub.ready.is_set():
                detail = "the change log cannot be read yet"
                return problem(503, detail, request=request, headers={"Retry-After": "1"})
        # ping=0: the stream sends its own heartbeat, only after `heartbeat` quiet seconds (no
        # second task per stream, and no burst of every stream's ping at the same instant)
        return EventSourceResponse(
            stream(user, position), ping=0, headers={"Cache-Control": "no-store"}
        )

    async def stream(user_id: str, position: int | None) -> AsyncIterator[ServerSentEvent]:
        live_service: LiveService = state["service"]
        sub = hub.subscribe(user_id)  # first: every change after hub.position reaches `sub`
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + max_stream
            start = hub.position
            if position is None:
                # an id alone moves the client's position: a reconnect resumes from here
                last = start
                yield ServerSentEvent(id=str(start), retry=retry_ms)
            elif not await blocking(live_service.can_resume, position):
                last = start
                yield ServerSentEvent(
                    json.dumps({"type": RESET, "reason": "position no longer kept: refetch"}),
                    event=RESET,
                    id=str(start),
                    retry=retry_ms,
                )
            else:
                last = position
                async for change in replay(live_service, sub, last):
                    last = change.id
                    yield message(change)
            beat = loop.time() + heartbeat
            while True:
                if sub.lagging:  # fell behind: what was dropped is read from the log again
                    sub.lagging = False
                    sub.pending.clear()
                    async for change in replay(live_service, sub, last):
                        last = change.id
                        yield message(change)
                while sub.pending and not sub.lagging:
                    change = sub.pending.popleft()
                    if change.id > last:  # what a replay sent already is not repeated
                        last = change.id
                        beat = loop.time() + heartbeat
                        yield message(change)
                now = loop.time()
                if now >= deadline:
                    break
                if now >= beat:  # quiet for `heartbeat` seconds: a comment keeps proxies calm
                    beat = now + heartbeat
                    yield ServerSentEvent(comment="ping")
                    continue
                if not sub.pending and not sub.lagging:
                    sub.wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(sub.wake.wait(), min(deadline, beat) - now)
            # end before the revision's timeoutSeconds cuts the stream: the client reconnects
            # after `retry` ms with Last-Event-ID and misses nothing
            yield ServerSentEvent(
                comment="stream ends: reconnect with Last-Event-ID", retry=retry_ms
            )
        finally:
            hub.unsubscribe(sub)

    async def replay(live_service: LiveService, sub: Subscriber, after: int):
        while True:
            # up to the tail's position: every change up to it is final, the rest reach `sub`
            batch = await blocking(live_service.replay, sub.user_id, after, hub.position)
            for change in batch:
                yield change
            if len(batch) < live_service.batch:
                return
            after = batch[-1].id

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        try:
            await blocking(ready)
        except Exception as exc:  # noqa: BLE001 - not ready, whatever the reason
            log.warning("not ready: %s", exc)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ready", "streams": hub.open_streams()})

    async def unavailable(request: Request, exc: Unavailable) -> Response:
        log.warning("database unavailable: %s", exc)
        detail = "the database cannot be reached; retry"
        return problem(503, detail, request=request, headers={"Retry-After": "1"})

    async def http_error(request: Request, exc: HTTPException) -> Response:
        headers = dict(exc.headers or {})
        return problem(exc.status_code, str(exc.detail), request=request, headers=headers)

    app = Starlette(
        routes=[
            Route("/live", live, methods=["GET"]),
            Route("/live/tickets", tickets, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error, Unavailable: unavailable},
        lifespan=lifespan,
    )
    app.state.hub = hub
    return app


def message(change: Change) -> ServerSentEvent:
    return ServerSentEvent(change.message, event=change.event_type, id=str(change.id))


_CHALLENGE = {"WWW-Authenticate": "Bearer"}
