"""The `assistant` function: dueflow's MCP server for AI assistants (Knative Service `assistant`).

Streamable HTTP at /mcp on the official MCP SDK, stateless with JSON responses. The SDK's app is
ASGI, so it runs under uvicorn, not functions-framework (whose Flask/gunicorn server speaks WSGI):
`python main.py` serves it on $PORT, in the container and under `make run` alike
(docs/architecture.md says why).
"""

import os

from dueflow import asgi_server, bootstrap

# Runs at import: refuse to start on an unusable configuration (auth, the MCP settings).
bootstrap.check_config("assistant")
# THREADS, as functions-framework reads it in the other images: the worker threads that run tool
# calls (the use cases block on the database), containerConcurrency + 2 for the probes.
app = bootstrap.assistant_app(threads=int(os.environ.get("THREADS") or 5))


def main() -> None:
    # Tool calls run on THREADS worker threads; the tools log their failures (no access log).
    asgi_server.serve(app, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
