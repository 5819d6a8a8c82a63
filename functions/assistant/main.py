"""The `assistant` function: dueflow's MCP server for AI assistants (Knative Service `assistant`).

Streamable HTTP at /mcp on the official MCP SDK, stateless with JSON responses. The SDK's app is
ASGI, so it runs under uvicorn, not functions-framework (whose Flask/gunicorn server speaks WSGI):
`python main.py` serves it on $PORT, in the container and under `make run` alike
(docs/architecture.md says why).
"""

import argparse
import os

import uvicorn

from dueflow import bootstrap

# Runs at import: refuse to start on an unusable configuration (auth, the MCP settings).
bootstrap.check_config("assistant")
# THREADS, as functions-framework reads it in the other images: the worker threads that run tool
# calls (the use cases block on the database), containerConcurrency + 2 for the probes.
app = bootstrap.assistant_app(threads=int(os.environ.get("THREADS") or 5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    args = parser.parse_args()
    # One process, one event loop; tool calls run on THREADS worker threads. No access log: the
    # tools log their failures.
    # Keep idle connections 75 s (uvicorn's default is 5): clients and Knative's queue-proxy
    # reuse them, and one closed under a reused connection fails that call ("other side closed").
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        timeout_keep_alive=75,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
