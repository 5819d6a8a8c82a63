"""`python main.py` of the ASGI functions (assistant, live): their app under uvicorn on $PORT, in
the container and under `make run` alike. Imported only by those two, so the functions-framework
images never load uvicorn."""

from __future__ import annotations

import argparse
import os

import uvicorn


def serve(app, description: str, **options) -> None:
    """Parse `--host`/`--port` (default $PORT) and run `app`: one process, one event loop, no
    access log. Idle connections are kept 75 s (uvicorn's default is 5): clients and Knative's
    queue-proxy reuse them, and one closed under a reused connection fails that call. The loop
    is uvloop and the HTTP parser httptools (both C), named so that a missing one fails at start
    instead of silently falling back to the slower pure-Python pair."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    args = parser.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        **{
            "loop": "uvloop",
            "http": "httptools",
            "timeout_keep_alive": 75,
            "access_log": False,
            "log_level": "warning",
            **options,
        },
    )
