"""All of dueflow's configuration: environment variables read when called, with documented defaults.

Every variable here is listed in the README. Nothing reads the environment at import time, so tests
and the local runner can change it between calls.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

#: Used only when DUEFLOW_ENV=local (what `make run` sets); any other environment refuses to start
#: without DUEFLOW_JWT_SECRET or DUEFLOW_JWKS_URL.
DEV_JWT_SECRET = "dueflow-local-development-secret-do-not-use"
DEFAULT_DATABASE_URL = "sqlite:///.dueflow/dueflow.db"


class ConfigError(RuntimeError):
    """The environment does not describe a runnable configuration."""


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _float(name: str, default: float) -> float:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def environment() -> str:
    """DUEFLOW_ENV: `local` enables development defaults; anything else is treated as production."""
    return _env("DUEFLOW_ENV", "production") or "production"


def database_url() -> str:
    """DATABASE_URL: SQLAlchemy URL; default an embedded SQLite file under `.dueflow/`."""
    return _env("DATABASE_URL", DEFAULT_DATABASE_URL) or DEFAULT_DATABASE_URL


@dataclass(frozen=True)
class AuthConfig:
    jwt_secret: str | None
    jwks_url: str | None
    audience: str | None
    issuer: str | None


def auth() -> AuthConfig:
    """DUEFLOW_JWT_SECRET, DUEFLOW_JWKS_URL, DUEFLOW_JWT_AUDIENCE, DUEFLOW_JWT_ISSUER."""
    secret = _env("DUEFLOW_JWT_SECRET")
    jwks_url = _env("DUEFLOW_JWKS_URL")
    if secret is None and jwks_url is None:
        if environment() != "local":
            raise ConfigError(
                "set DUEFLOW_JWT_SECRET or DUEFLOW_JWKS_URL (the development secret is only "
                "allowed with DUEFLOW_ENV=local)"
            )
        secret = DEV_JWT_SECRET
    return AuthConfig(secret, jwks_url, _env("DUEFLOW_JWT_AUDIENCE"), _env("DUEFLOW_JWT_ISSUER"))


def cors_origins() -> tuple[str, ...]:
    """DUEFLOW_CORS_ORIGINS: comma-separated origins allowed to call the API (`*` for any)."""
    raw = _env("DUEFLOW_CORS_ORIGINS", "") or ""
    return tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())


def sink_url() -> str | None:
    """K_SINK: where the outbox relay delivers events (injected by Knative's SinkBinding)."""
    return _env("K_SINK")


def outbox_batch_size() -> int:
    """DUEFLOW_OUTBOX_BATCH: rows the relay reads per pass (default 100)."""
    return max(1, int(_float("DUEFLOW_OUTBOX_BATCH", 100)))


def outbox_max_backoff() -> float:
    """DUEFLOW_OUTBOX_MAX_BACKOFF: longest wait in seconds between delivery retries (default 30)."""
    return _float("DUEFLOW_OUTBOX_MAX_BACKOFF", 30.0)


def outbox_poll_interval() -> float:
    """DUEFLOW_OUTBOX_POLL: seconds between relay passes when nothing kicks it (default 1)."""
    return _float("DUEFLOW_OUTBOX_POLL", 1.0)


def sink_timeout() -> float:
    """DUEFLOW_SINK_TIMEOUT: seconds to wait for the sink to accept one event (default 5)."""
    return _float("DUEFLOW_SINK_TIMEOUT", 5.0)


def log_level() -> str:
    """DUEFLOW_LOG_LEVEL: Python logging level name (default INFO)."""
    return (_env("DUEFLOW_LOG_LEVEL", "INFO") or "INFO").upper()


def otel_endpoint() -> str | None:
    """OTEL_EXPORTER_OTLP_ENDPOINT: when set, traces are exported over OTLP/HTTP."""
    return _env("OTEL_EXPORTER_OTLP_ENDPOINT")


def auto_migrate() -> bool:
    """DUEFLOW_AUTO_MIGRATE: apply migrations on start (default: on only when DUEFLOW_ENV=local)."""
    default = "1" if environment() == "local" else "0"
    return (_env("DUEFLOW_AUTO_MIGRATE", default) or default).lower() in ("1", "true", "yes")
