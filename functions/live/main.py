"""The `live` function: each caller's task changes pushed as Server-Sent Events (Knative Service
`live`, public): `GET /live`, `POST /live/tickets` (docs/feeds.md).

Thousands of long-lived streams need an event loop, so this is an ASGI app (Starlette with
sse-starlette) under uvicorn, like the assistant: `python main.py` serves it on $PORT, in the
container and under `make run` alike (docs/architecture.md says why not functions-framework).
"""

import os

from dueflow import asgi_server, bootstrap

# Runs at import: refuse to start on an unusable configuration (auth, the live settings).
bootstrap.check_config("live")
# THREADS, as functions-framework reads it in the other images: the worker threads of the
# blocking calls (token checks, tickets, replays from the change log), each at most one database
# connection; the streams themselves wait on the event loop, not on a thread.
app = bootstrap.live_app(threads=int(os.environ.get("THREADS") or 2))


def main() -> None:
    # SIGTERM (Knative scaling down): streams get 5 s to end; their clients resume elsewhere
    asgi_server.serve(app, __doc__.splitlines()[0], timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
