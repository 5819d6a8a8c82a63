"""The `live` function: each caller's task changes pushed as Server-Sent Events (Knative Service
`live`, public): `GET /live`, `POST /live/tickets` (docs/feeds.md).

Thousands of long-lived streams need an event loop, so this is an ASGI app (Starlette with
sse-starlette) under uvicorn, like the assistant: `python main.py` serves it on $PORT, in the
container and under `make run` alike (docs/architecture.md says why not functions-framework).
"""

import argparse
import os

import uvicorn

from dueflow import bootstrap

# Runs at import: refuse to start on an unusable configuration (auth, the live settings).
bootstrap.check_config("live")
# THREADS, as functions-framework reads it in the other images: the worker threads of the
# blocking calls (token checks, tickets, replays from the change log), each at most one database
# connection; the streams themselves wait on the event loop, not on a thread.
app = bootstrap.live_app(threads=int(os.environ.get("THREADS") or 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    args = parser.parse_args()
    # One process, one event loop. No access log: a stream's line would come when it ends.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        timeout_keep_alive=75,
        # SIGTERM (Knative scaling down): streams get 5 s to end; their clients resume elsewhere
        timeout_graceful_shutdown=5,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
