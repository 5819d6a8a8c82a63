"""CORS for the frontend's origins (DUEFLOW_CORS_ORIGINS)."""

from __future__ import annotations

from werkzeug.wrappers import Request, Response

ALLOW_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, X-Request-Id"
EXPOSE_HEADERS = "Location, X-Request-Id"


def allowed_origin(request: Request, origins: tuple[str, ...]) -> str | None:
    origin = request.headers.get("Origin")
    if not origin or not origins:
        return None
    if "*" in origins:
        return "*"
    return origin if origin.rstrip("/") in origins else None


def is_preflight(request: Request) -> bool:
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


def preflight(request: Request, origins: tuple[str, ...]) -> Response:
    response = Response(status=204)
    if (origin := allowed_origin(request, origins)) is not None:
        response.headers.update(
            {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": ALLOW_METHODS,
                "Access-Control-Allow-Headers": ALLOW_HEADERS,
                "Access-Control-Max-Age": "600",
            }
        )
        response.vary.add("Origin")
    return response


def decorate(request: Request, response: Response, origins: tuple[str, ...]) -> None:
    if (origin := allowed_origin(request, origins)) is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        response.vary.add("Origin")
