"""The tasks API answered straight from WSGI, inside the Flask app functions-framework builds.

functions-framework routes every request through Flask (a request context, URL matching against
its catch-all rule, the execution-id wrappers, `after_request` hooks, `make_response`) before the
function sees it, and the tasks API then matches the path again, answers errors itself and builds
its own werkzeug `Response`. That Flask round costs about 125 µs of CPU per request (measured
in-process: a bare functions-framework function 250 µs, the same answer from a plain WSGI callable
under the same test client 129 µs), a fifth of a GET. `ApiWsgi` replaces the app's `wsgi_app`
(Flask's documented place for WSGI middleware), so gunicorn, the function's folder and its
command line stay functions-framework's; only the Flask dispatch is left out.

What Flask's path did for these requests is done here: the body is read to its end before the
answer (functions-framework's `read_request` hook), and an exception that escapes the API answers
500 problem+json with the request id (Flask's error handler, `problems.http_error`), logged.
Where Flask does more (OpenTelemetry's Flask instrumentation, functions-framework's execution-id
logging), the function keeps Flask's path: see `serves_directly`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable

from werkzeug.wrappers import Request, Response

from dueflow.adapters.http.problems import instance_of, problem, request_id

log = logging.getLogger("dueflow.http")
#: functions-framework's switch for its execution-id logging (stdout/stderr wrapped per request,
#: around the function's view): only its Flask path does that
EXECUTION_ID_LOGGING = "LOG_EXECUTION_ID"
_TRUTHY = ("y", "yes", "t", "true", "on", "1")  # as functions-framework reads it


def serves_directly(traced: bool) -> bool:
    """Whether the API may skip Flask's dispatch: not when requests are traced through Flask's
    instrumentation (`traced`) or functions-framework logs execution ids."""
    return not traced and os.environ.get(EXECUTION_ID_LOGGING) not in _TRUTHY


class ApiWsgi:
    """A WSGI app answering every request with `handle` (the tasks API: routing, auth, errors)."""

    def __init__(self, handle: Callable[[Request], Response]):
        self._handle = handle

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self._handle(request)
        except Exception:
            log.exception("unhandled error")
            response = problem(
                500,
                "an unexpected error occurred",
                instance=instance_of(request),
                headers={"X-Request-Id": request_id(request)},
            )
        # the whole request read before answering, as on Flask's path (a request with neither a
        # length nor chunks has no body to read: most GETs, 5 µs saved)
        if not response.is_streamed and (
            environ.get("CONTENT_LENGTH") or environ.get("HTTP_TRANSFER_ENCODING")
        ):
            request.get_data()
        return response(environ, start_response)
