"""The tasks HTTP API: routing, auth, JSON in and out, and mapping errors to problem+json."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import BaseConverter, Map, MapAdapter, Rule
from werkzeug.wrappers import Request, Response

from dueflow import logs, metrics, observability
from dueflow.adapters.auth import AuthError, AuthSettings, AuthUnavailable, authenticate
from dueflow.adapters.http import cors
from dueflow.adapters.http.problems import instance_of, problem, request_id
from dueflow.domain.errors import Conflict, FieldError, NotFound, ValidationFailed
from dueflow.service.tasks import TaskService

if TYPE_CHECKING:
    from dueflow.service.assistant import AssistantService
    from dueflow.service.calendar import CalendarService

log = logging.getLogger("dueflow.http")
MAX_BODY = 1024 * 1024
_JSON_TYPES = {"application/json", "application/merge-patch+json"}


class TaskIdConverter(BaseConverter):
    """A task id: any path segment but `quick`, so `PATCH /tasks/quick` is a 405 (only POST is
    routed there), not a 404 for a task named "quick". Ids are UUIDs: none is ever `quick`."""

    regex = r"(?!quick(?![^/]))[^/]+"


ROUTES = Map(
    [
        Rule("/healthz", endpoint="healthz", methods=["GET"]),
        Rule("/readyz", endpoint="readyz", methods=["GET"]),
        Rule("/openapi.json", endpoint="openapi", methods=["GET"]),
        Rule("/tasks", endpoint="list_tasks", methods=["GET"]),
        Rule("/tasks", endpoint="create_task", methods=["POST"]),
        Rule("/tasks/<task:task_id>", endpoint="get_task", methods=["GET"]),
        Rule("/tasks/<task:task_id>", endpoint="update_task", methods=["PATCH"]),
        Rule("/tasks/<task:task_id>", endpoint="delete_task", methods=["DELETE"]),
        Rule("/tasks/<task:task_id>/complete", endpoint="complete_task", methods=["POST"]),
        Rule("/tasks/<task:task_id>/reopen", endpoint="reopen_task", methods=["POST"]),
        Rule("/tasks/<task:task_id>/skip", endpoint="skip_task", methods=["POST"]),
        Rule(
            "/tasks/<task_id>/reminders/<reminder_id>/snooze", endpoint="snooze", methods=["POST"]
        ),
        Rule("/tags", endpoint="list_tags", methods=["GET"]),
        Rule("/me", endpoint="get_profile", methods=["GET"]),
        Rule("/me", endpoint="update_profile", methods=["PATCH"]),
        Rule("/tasks/quick", endpoint="quick_add", methods=["POST"]),
        Rule("/recurrence/preview", endpoint="preview_recurrence", methods=["POST"]),
        Rule("/calendar/token", endpoint="create_calendar_token", methods=["POST"]),
        Rule("/calendar/token", endpoint="revoke_calendar_token", methods=["DELETE"]),
        Rule("/calendar/<token>.ics", endpoint="calendar_feed", methods=["GET"]),
    ],
    strict_slashes=False,
    converters={"task": TaskIdConverter},
)
#: bound once: the API's rules name no host, so a match needs only the path and the method
#: (`bind_to_environ` per request parsed the Host header for nothing, 13 µs of CPU)
_ROUTER = ROUTES.bind("localhost")
PUBLIC = {"healthz", "readyz", "openapi"}
#: authorized by a secret in the URL, not a bearer token: calendar apps send no headers
URL_TOKEN = {"calendar_feed"}
FEED_ROUTE = "/calendar/<token>.ics"
#: a feed changes when its tasks do; apps poll it (REFRESH-INTERVAL says 5 minutes), and a
#: repeat within that answers from their cache. `private`: the URL is a secret, so no shared
#: cache may keep it.
FEED_CACHE_CONTROL = "private, max-age=300"
_FEED_VIEWS = {"todos": False, "events": True}
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class BadBody(Exception):
    def __init__(self, status: int, detail: str):
        self.status, self.detail = status, detail


class TasksApi:
    def __init__(
        self,
        service: TaskService,
        auth: AuthSettings,
        cors_origins: tuple[str, ...],
        ready: Callable[[], None],
        assistant: AssistantService | None = None,
        public_url: str | None = None,
    ):
        self.service = service
        self._assistant = assistant
        self._calendar: CalendarService | None = None
        self.public_url = public_url  # the origin feed URLs name; None: the request's own
        self.auth = auth
        self.cors_origins = cors_origins
        self.ready = ready  # raises when the database cannot be reached

    def handle(self, request: Request) -> Response:
        rid = request_id(request)
        token = logs.request_id.set(rid)
        started = time.perf_counter()
        matched = match(request.path, request.method)  # once: names metrics, then dispatches
        route = matched.route
        observability.name_request_span(request.method, route)
        if route == FEED_ROUTE:  # its path holds the feed's secret token
            observability.redact_request_path(route)
        try:
            response = self._dispatch(request, matched)
        finally:
            logs.request_id.reset(token)
        response.headers["X-Request-Id"] = rid
        if response.status_code == 204:  # no content, so no Content-Type either
            del response.headers["Content-Type"]
        cors.decorate(request, response, self.cors_origins)
        elapsed = time.perf_counter() - started
        method = request.method if request.method in _METHODS else "other"
        metrics.HTTP_REQUESTS.labels(route, method, str(response.status_code)).inc()
        metrics.HTTP_DURATION.labels(route, method).observe(elapsed)
        log.info(
            "request",
            extra={
                "request_id": rid,
                "method": request.method,
                "path": FEED_ROUTE if route == FEED_ROUTE else request.path,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 2),
            },
        )
        return response

    def _dispatch(self, request: Request, matched: Match) -> Response:
        if cors.is_preflight(request):
            return cors.preflight(request, self.cors_origins)
        path = instance_of(request)
        if matched.endpoint is None and matched.allowed:
            return problem(
                405,
                f"{request.method} is not allowed here",
                instance=path,
                headers={"Allow": ", ".join(matched.allowed)},
            )
        if matched.endpoint is None:
            return problem(404, f"no route {path}", instance=path)
        endpoint, args = matched.endpoint, matched.args
        try:
            if endpoint in PUBLIC:
                return getattr(self, endpoint)()
            if endpoint in URL_TOKEN:
                return getattr(self, endpoint)(request, **args)
            principal = authenticate(request.headers.get("Authorization"), self.auth)
            self.service.remember_user(principal.user_id, principal.email)
            return getattr(self, endpoint)(request, principal.user_id, **args)
        except AuthError as exc:
            return problem(401, str(exc), instance=path, headers={"WWW-Authenticate": "Bearer"})
        except AuthUnavailable as exc:
            return problem(
                503,
                f"cannot verify tokens now: {exc}",
                instance=path,
                headers={"Retry-After": "1"},
            )
        except BadBody as exc:
            return problem(exc.status, exc.detail, instance=path)
        except ValidationFailed as exc:
            return problem(422, "the request has invalid fields", instance=path, errors=exc.errors)
        except NotFound as exc:
            return problem(404, str(exc), instance=path)
        except Conflict as exc:
            return problem(409, str(exc), instance=path)
        except OperationalError:
            log.exception("database unavailable")
            return problem(
                503,
                "the database is unavailable; retry later",
                instance=path,
                headers={"Retry-After": "1"},
            )
        except Exception:
            log.exception("unhandled error")
            return problem(500, "an unexpected error occurred", instance=path)

    # -- public -----------------------------------------------------------------------------
    def healthz(self) -> Response:
        return _json({"status": "ok"})

    def readyz(self) -> Response:
        self.ready()
        return _json({"status": "ready"})

    def openapi(self) -> Response:
        return Response(_openapi_document(), content_type="application/json")

    # -- tasks ------------------------------------------------------------------------------
    def create_task(self, request: Request, user_id: str) -> Response:
        task = self.service.create(user_id, _read_json(request))
        return _json(task.to_json(), 201, headers={"Location": f"/tasks/{task.id}"})

    def get_task(self, request: Request, user_id: str, task_id: str) -> Response:
        return _json(self.service.get(user_id, task_id).to_json())

    def update_task(self, request: Request, user_id: str, task_id: str) -> Response:
        return _json(self.service.update(user_id, task_id, _read_json(request)).to_json())

    def delete_task(self, request: Request, user_id: str, task_id: str) -> Response:
        self.service.delete(user_id, task_id)
        return Response(status=204)

    def complete_task(self, request: Request, user_id: str, task_id: str) -> Response:
        return _json(self.service.complete(user_id, task_id).to_json())

    def reopen_task(self, request: Request, user_id: str, task_id: str) -> Response:
        return _json(self.service.reopen(user_id, task_id).to_json())

    def skip_task(self, request: Request, user_id: str, task_id: str) -> Response:
        return _json(self.service.skip(user_id, task_id).to_json())

    def snooze(self, request: Request, user_id: str, task_id: str, reminder_id: str) -> Response:
        task = self.service.snooze(user_id, task_id, reminder_id, _read_json(request))
        return _json(task.to_json())

    def list_tasks(self, request: Request, user_id: str) -> Response:
        items, cursor = self.service.list(user_id, request.args.to_dict(flat=False))
        return _json({"items": [t.to_json() for t in items], "next_cursor": cursor})

    def list_tags(self, request: Request, user_id: str) -> Response:
        tags = self.service.tags(user_id)
        return _json({"items": [{"name": name, "count": count} for name, count in tags]})

    # -- profile and English ------------------------------------------------------------------
    @property
    def assistant(self) -> AssistantService:
        """English dates and quick add, loaded on first use (not on a cold start's path)."""
        if self._assistant is None:
            from dueflow.service.assistant import AssistantService

            self._assistant = AssistantService(self.service)
        return self._assistant

    def get_profile(self, request: Request, user_id: str) -> Response:
        return _json({"user_id": user_id, **self.service.profile(user_id)})

    def update_profile(self, request: Request, user_id: str) -> Response:
        profile = self.service.update_profile(user_id, _read_json(request))
        return _json({"user_id": user_id, **profile})

    def quick_add(self, request: Request, user_id: str) -> Response:
        task = self.assistant.quick_add(user_id, _read_json(request))
        return _json(task.to_json(), 201, headers={"Location": f"/tasks/{task.id}"})

    def preview_recurrence(self, request: Request, user_id: str) -> Response:
        return _json(self.assistant.preview_recurrence(user_id, _read_json(request)))

    # -- calendar feed ------------------------------------------------------------------------
    @property
    def calendar(self) -> CalendarService:
        """Feed tokens and feeds, loaded on first use (icalendar is not on a cold start's path)."""
        if self._calendar is None:
            from dueflow.service.calendar import CalendarService

            self._calendar = CalendarService(self.service)
        return self._calendar

    def create_calendar_token(self, request: Request, user_id: str) -> Response:
        token = self.calendar.issue_token(user_id)
        base = self.public_url or request.host_url.rstrip("/")
        return _json({"url": f"{base}/calendar/{token}.ics"}, 201)

    def revoke_calendar_token(self, request: Request, user_id: str) -> Response:
        self.calendar.revoke_token(user_id)
        return Response(status=204)

    def calendar_feed(self, request: Request, token: str) -> Response:
        from dueflow.adapters import ical

        view = request.args.get("as", "todos")
        if view not in _FEED_VIEWS or len(request.args.getlist("as")) > 1:
            raise ValidationFailed([FieldError("as", "must be todos (the default) or events")])
        body = ical.render(self.calendar.feed_tasks(token), as_events=_FEED_VIEWS[view])
        response = Response(body, content_type="text/calendar; charset=utf-8")
        response.headers["Cache-Control"] = FEED_CACHE_CONTROL
        response.headers["Content-Disposition"] = 'inline; filename="dueflow.ics"'
        response.set_etag(hashlib.sha256(body).hexdigest()[:32])
        return response.make_conditional(request)


class Match(NamedTuple):
    """A request's rule: `endpoint` and `args` (None when no rule has the path for this method;
    `allowed` then lists the methods that have one), and `route`, the rule as written
    (`/tasks/<task_id>`) for metric labels and span names, which must not be raw paths, one per
    task: the rule for another method when only those match, `unmatched` when none does."""

    endpoint: str | None
    args: dict
    route: str
    allowed: tuple[str, ...] = ()


#: The API's hottest rules, matched without werkzeug's walk of the rule table (about 20 µs of a
#: GET's CPU): `/tasks` and `/tasks/<task_id>` for the methods that have a rule there. Any other
#: request, or a task id the converter might treat differently, goes to werkzeug
#: (tests/unit/test_api_routing.py checks both agree).
_TASKS = {
    "GET": Match("list_tasks", {}, "/tasks"),
    "POST": Match("create_task", {}, "/tasks"),
}
_TASK_ENDPOINTS = {"GET": "get_task", "PATCH": "update_task", "DELETE": "delete_task"}
_TASK_ROUTE = "/tasks/<task_id>"
_TASK_PREFIX = "/tasks/"


def match(path: str, method: str, adapter: MapAdapter = _ROUTER) -> Match:
    """The rule of a request for `path`, matched once (a werkzeug match walks the rule table)."""
    if path == "/tasks":
        if (found := _TASKS.get(method)) is not None:
            return Match(found.endpoint, {}, found.route)
    elif path.startswith(_TASK_PREFIX) and (endpoint := _TASK_ENDPOINTS.get(method)) is not None:
        task_id = path[len(_TASK_PREFIX) :]
        if task_id and "/" not in task_id and task_id != "quick":
            return Match(endpoint, {"task_id": task_id}, _TASK_ROUTE)
    return _werkzeug_match(path, method, adapter)


def _werkzeug_match(path: str, method: str, adapter: MapAdapter) -> Match:
    try:
        rule, args = adapter.match(path, method=method, return_rule=True)
        return Match(rule.endpoint, args, _as_written(rule.rule))
    except MethodNotAllowed as exc:  # the path has a rule, for other methods: name that one
        allowed = tuple(sorted(exc.valid_methods or []))
    except HTTPException:
        return Match(None, {}, "unmatched")
    try:
        route = _as_written(adapter.match(path, method=allowed[0], return_rule=True)[0].rule)
    except (HTTPException, IndexError):
        route = "unmatched"
    return Match(None, {}, route, allowed)


@functools.cache
def _as_written(rule: str) -> str:
    """The rule without converter names (`/tasks/<task:task_id>` is `/tasks/<task_id>`): the
    labels stay those of the API's paths."""
    return _CONVERTER.sub(r"<\1>", rule)


_CONVERTER = re.compile(r"<[A-Za-z_]\w*:([A-Za-z_]\w*)>")


def _read_json(request: Request):
    length = request.content_length
    if length is not None and length > MAX_BODY:
        raise BadBody(413, f"the body is larger than {MAX_BODY} bytes")
    if request.mimetype not in _JSON_TYPES:
        raise BadBody(415, "send the body as application/json or application/merge-patch+json")
    data = request.stream.read(MAX_BODY + 1)
    if len(data) > MAX_BODY:
        raise BadBody(413, f"the body is larger than {MAX_BODY} bytes")
    try:
        return json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise BadBody(400, f"malformed JSON: {exc}") from None


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


#: one encoder for every answer (`json.dumps(separators=...)` builds a new one per call)
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _json(body, status: int = 200, headers: dict | None = None) -> Response:
    return Response(
        _ENCODER.encode(body),
        status=status,
        headers=headers,
        content_type="application/json",
    )


_OPENAPI: bytes | None = None


def _openapi_document() -> bytes:
    global _OPENAPI
    if _OPENAPI is None:
        _OPENAPI = resources.files("dueflow.adapters.http").joinpath("openapi.json").read_bytes()
    return _OPENAPI
