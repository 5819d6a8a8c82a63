"""The assistant's MCP server on the official SDK: Streamable HTTP at `/mcp`, stateless and with
JSON responses (any replica answers any call, nothing to lose when a pod scales to zero), bearer
JWTs checked by the API's own code, RFC 9728 protected-resource metadata naming the issuer, and
the Host/Origin allowlist against DNS rebinding. The SDK speaks the protocol; this module only
lists the tools and hands each call to tools.call on a worker thread (the use cases block on the
database).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server._otel import OpenTelemetryMiddleware
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings as McpAuthSettings
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.authentication import AuthenticationError
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dueflow.adapters.auth import (
    AuthError,
    AuthSettings,
    AuthUnavailable,
    authenticate,
    remembered,
)
from dueflow.adapters.http.problems import problem_document
from dueflow.adapters.mcp import tools
from dueflow.service.assistant import AssistantService

log = logging.getLogger("dueflow.assistant")
PATH = "/mcp"
INSTRUCTIONS = (
    "dueflow keeps the user's tasks: due dates in the user's time zone, recurring tasks, "
    "reminders by e-mail. Dates, rules and reminders may be given in English. Before adding a "
    "recurring task the user described in words, call preview_recurrence and confirm the next "
    "dates with the user. A failed call answers the API's problem details naming each bad field."
)


class KeysUnavailable(AuthenticationError):
    """The token could not be checked (the identity provider's JWKS is unreachable): not the
    caller's fault, so 503 with Retry-After, as the tasks API answers (not the SDK's 401)."""


def _auth_failed(conn: HTTPConnection, exc: AuthenticationError) -> JSONResponse:
    """The SDK's AuthenticationMiddleware's answer when the verifier raises (only for
    KeysUnavailable: a bad token is None, which the SDK answers 401)."""
    detail = f"cannot verify tokens now: {exc}"
    return JSONResponse(
        problem_document(503, detail, instance=conn.url.path),
        status_code=503,
        headers={"Retry-After": "1"},
        media_type="application/problem+json",
    )


class JwtVerifier:
    """The SDK's TokenVerifier on dueflow's bearer-JWT check (adapters.auth): the same secret or
    JWKS, audience and issuer as the tasks API. The token's subject is the user; keys that
    cannot be fetched raise KeysUnavailable (503)."""

    def __init__(self, settings: AuthSettings):
        self.settings = settings

    async def verify_token(self, token: str) -> AccessToken | None:
        header = f"Bearer {token}"
        # a token verified before is answered here; a full check (a JWKS fetch may block) runs
        # off the event loop: one thread hop less per call
        try:
            principal = remembered(header, self.settings) or await anyio.to_thread.run_sync(
                authenticate, header, self.settings
            )
        except AuthError as exc:
            log.info("token refused: %s", exc)
            return None
        except AuthUnavailable as exc:
            log.warning("token not checked: %s", exc)
            raise KeysUnavailable(str(exc)) from exc
        claims = {"email": principal.email}
        if self.settings.issuer is not None:
            claims["iss"] = self.settings.issuer
        return AccessToken(
            token=token,
            client_id=principal.user_id,
            scopes=[],
            subject=principal.user_id,
            claims=claims,
        )


def wire_result(outcome: tools.Outcome) -> dict:
    """A tool's outcome as the protocol's CallToolResult in its wire form. The SDK's runner
    takes it as well as a model (mcp.server.context.HandlerResult) and validates it against the
    CallToolResult of the call's revision all the same (serialize_server_result; an older
    revision drops `resultType`); a model would be built and dumped first, two more walks over
    every task of a page (about 0.1 ms for 20 tasks)."""
    return {
        "content": [{"type": "text", "text": outcome.text}],
        "structuredContent": outcome.structured,
        "isError": outcome.is_error,
        "resultType": "complete",
    }


def create_app(
    assistant: Callable[[], AssistantService],
    auth: AuthSettings,
    *,
    issuer_url: str,
    resource_url: str,
    allowed_hosts: list[str],
    allowed_origins: list[str],
    ready: Callable[[], None],
    threads: int = 5,
    tracing: bool = False,
) -> Starlette:
    """The ASGI app: `/mcp`, `/.well-known/oauth-protected-resource/mcp`, `/healthz`, `/readyz`.
    `assistant()` gives the use cases (built on first use, so starting costs no database); at
    most `threads` tool calls and probes use the database at once (each holds a connection);
    `tracing`: a span per MCP request (the SDK's OpenTelemetry middleware), when spans are
    exported."""
    limiters: list[anyio.CapacityLimiter] = []  # made in the event loop, on first use

    def limiter() -> anyio.CapacityLimiter:
        if not limiters:
            limiters.append(anyio.CapacityLimiter(threads))
        return limiters[0]

    listed = [
        types.Tool(
            name=tool.name,
            title=tool.title,
            description=tool.description,
            input_schema=tool.input_schema,
            output_schema=tool.output_schema,
            annotations=types.ToolAnnotations(
                title=tool.title,
                read_only_hint=tool.read_only,
                destructive_hint=tool.destructive,
                idempotent_hint=tool.idempotent,
                open_world_hint=False,
            ),
        )
        for tool in tools.TOOLS.values()
    ]

    async def list_tools(ctx: ServerRequestContext, params) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listed)

    async def call_tool(ctx: ServerRequestContext, params: types.CallToolRequestParams) -> dict:
        tool = tools.TOOLS.get(params.name)
        if tool is None:
            raise ValueError(f"no tool {params.name!r}")
        token = get_access_token()
        if token is None or token.subject is None:  # RequireAuthMiddleware lets none through
            raise PermissionError("not authenticated")
        email = (token.claims or {}).get("email")
        outcome = await anyio.to_thread.run_sync(
            _run, tool, token.subject, email, params.arguments, limiter=limiter()
        )
        return wire_result(outcome)

    def _run(tool: tools.Tool, user_id: str, email: str | None, arguments) -> tools.Outcome:
        service = assistant()
        service.tasks.remember_user(user_id, email)  # where reminders go, as the API does
        return tools.call(tool, tools.Caller(user_id, service), arguments)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        try:
            await anyio.to_thread.run_sync(ready, limiter=limiter())
        except Exception as exc:  # noqa: BLE001 - not ready, whatever the reason
            log.warning("not ready: %s", exc)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    server = Server(
        "dueflow",
        version="0.1.0",
        title="dueflow tasks",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        get_tool_input_schema=lambda name: (
            tools.TOOLS[name].input_schema if name in tools.TOOLS else None
        ),
    )
    if not tracing:
        # The SDK opens a span per request whether or not anything records it: a few percent
        # of a tool call's CPU for nothing when no tracer provider exports spans.
        server.middleware = [
            m for m in server.middleware if not isinstance(m, OpenTelemetryMiddleware)
        ]
    app = server.streamable_http_app(
        streamable_http_path=PATH,
        stateless_http=True,  # no session: any replica answers any call
        json_response=True,  # one JSON answer per POST, no SSE stream to keep open
        transport_security=TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=allowed_hosts,
            allowed_origins=allowed_origins,
        ),
        auth=McpAuthSettings(
            issuer_url=issuer_url,
            resource_server_url=resource_url,
            # JwtVerifier checks the audience itself (DUEFLOW_JWT_AUDIENCE), as the API does
            validate_token_resource=False,
        ),
        token_verifier=JwtVerifier(auth),
        custom_starlette_routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ],
    )
    # The SDK adds Starlette's AuthenticationMiddleware with its default on_error (400, text);
    # ours answers KeysUnavailable. The stack is built on the first request, from this list.
    for middleware in app.user_middleware:
        if middleware.cls is AuthenticationMiddleware:
            middleware.kwargs["on_error"] = _auth_failed
            break
    else:
        raise RuntimeError("the MCP SDK no longer adds AuthenticationMiddleware: check auth")
    return app
