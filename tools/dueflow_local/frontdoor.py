"""The front door of `make run`: one origin on PORT, routed by path to each function's own port by
the table of gateway/ (the cluster's HTTPRoute), as the Gateway does in the cluster.

A streaming reverse proxy on aiohttp: the request's Host is kept (the functions see the public
host, as behind the Gateway they see the Host it sets), X-Forwarded-For and X-Forwarded-Proto are
added, and a response is passed on chunk by chunk as it arrives, so server-sent events from /live
flow event by event and a long-lived stream holds one task of the event loop, never a slot others
wait for. A function that does not answer (dead, restarting) is a 502 and a path no rule routes a
404, both problem+json. It answers /healthz and /readyz itself, as `make run`'s own readiness: no
route of the table has them.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading

import aiohttp
from aiohttp import web
from yarl import URL

from dueflow.adapters.http.problems import problem_document
from dueflow_local.manifests import Routes

# Per connection, never forwarded (RFC 9110 7.6.1), plus what the proxy sets itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Set by the proxy (X-Forwarded-*: appended to), or answered by it: aiohttp's server sends the
# client its 100 Continue itself, and the body then flows to the function as it arrives.
REPLACED = HOP_BY_HOP | {"x-forwarded-for", "x-forwarded-proto", "expect"}
OWN_PATHS = ("/healthz", "/readyz")
CLIENT = web.AppKey("client", aiohttp.ClientSession)
CONNECT_TIMEOUT = 5.0  # seconds; a function that does not accept by then is down: 502
SHUTDOWN_TIMEOUT = 2.0  # seconds


class FrontDoor:
    """The proxy on 127.0.0.1:`port`, served by its own event loop in a daemon thread."""

    def __init__(self, routes: Routes, upstreams: dict[str, str], port: int, host="127.0.0.1"):
        self.routes = routes.only(upstreams)
        self.upstreams = dict(upstreams)  # Service name -> base URL of its process
        self.host, self.port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FrontDoor:
        started = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = self._loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self._start())
            except BaseException as exc:  # the port taken: said by start()
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="front-door", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    async def _start(self) -> None:
        app = web.Application()
        app.cleanup_ctx.append(self._session)
        app.router.add_route("*", "/{path:.*}", self._handle)
        # handler_cancellation: a client that goes away cancels its handler, which closes the
        # upstream stream at once (an SSE reader leaving frees /live's connection); on stop, open
        # streams get SHUTDOWN_TIMEOUT seconds, not aiohttp's minute
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def _session(self, app: web.Application):
        # no pool limit (a stream holds its connection for as long as it lasts); raw bytes both
        # ways: the body is passed on as the function encoded it; no timeout but the connect one,
        # since a stream may be idle between events for as long as it likes
        app[CLIENT] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT, sock_read=None),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        yield
        await app[CLIENT].close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        service = self.routes.service_for(path)
        if service is None:
            if path in OWN_PATHS:
                return web.json_response({"status": "ok"})
            return _problem(404, f"no route for {path}: see gateway/ for the public paths", path)
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in REPLACED]
        forwarded_for = request.headers.get("X-Forwarded-For")
        peer = request.remote or ""
        headers.append(("X-Forwarded-For", f"{forwarded_for}, {peer}" if forwarded_for else peer))
        headers.append(("X-Forwarded-Proto", request.scheme))  # the edge: what the client used
        target = URL(self.upstreams[service] + request.raw_path, encoded=True)
        client: aiohttp.ClientSession = request.app[CLIENT]
        try:
            upstream = await client.request(
                request.method,
                target,
                headers=headers,  # Host among them, as the client sent it
                data=request.content if request.body_exists else None,
                allow_redirects=False,
            )
        except (TimeoutError, aiohttp.ClientConnectionError) as exc:
            return _problem(
                502, f"the {service} function is not answering ({type(exc).__name__}); "
                "`make run` restarts a function that died", path)  # fmt: skip
        async with upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in upstream.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    response.headers.add(name, value)
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():  # as it arrives, no buffering
                    await response.write(chunk)
            except aiohttp.ClientError as exc:
                # the function went away mid-body: end the connection so the client sees a cut
                # body, never a complete-looking short one
                _say(f"{service} broke off {request.method} {path} ({type(exc).__name__})")
                if request.transport is not None:
                    request.transport.close()
                return response
            await response.write_eof()
            return response


def _problem(status: int, detail: str, path: str) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(problem_document(status, detail, instance=path)).encode(),
        content_type="application/problem+json",
    )


def _say(message: str) -> None:
    print(f"dueflow: front door: {message}", file=sys.stderr, flush=True)
