"""All of dueflow's configuration: environment variables read when called, with documented defaults.

Every variable here is listed in the README. Nothing reads the environment at import time, so tests
and the local runner can change it between calls.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

#: Used only when DUEFLOW_ENV=local (what `make run` sets); any other environment refuses to start
#: without DUEFLOW_JWT_SECRET or DUEFLOW_JWKS_URL.
DEV_JWT_SECRET = "dueflow-local-development-secret-do-not-use"
DEFAULT_DATABASE_URL = "sqlite:///.dueflow/dueflow.db"


class ConfigError(RuntimeError):
    """The environment does not describe a runnable configuration."""


_deprecations_logged: set[str] = set()


def _deprecated(old: str, new: str) -> None:
    """Log once per process that the setting `old` still works but is now called `new`."""
    if old not in _deprecations_logged:
        _deprecations_logged.add(old)
        logging.getLogger(__name__).warning("%s is deprecated: use %s (same meaning)", old, new)


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


def _int(name: str, default: int, *, low: int | None = None, high: int | None = None) -> int:
    """A whole number: "2.5" or "ten" is an error naming the variable, not a silent 2."""
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        raise ConfigError(f"{name} must be {bounds}, got {value}")
    return value


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


def public_url() -> str | None:
    """DUEFLOW_PUBLIC_URL: the public origin of the API (`https://dueflow.example`, a path prefix
    allowed) that calendar feed URLs start with; unset, each request's own scheme and host."""
    raw = _env("DUEFLOW_PUBLIC_URL")
    if raw is None:
        return None
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(
            f"DUEFLOW_PUBLIC_URL must be an http(s) origin such as https://dueflow.example, "
            f"got {raw!r}"
        )
    return raw.strip().rstrip("/")


def sink_url() -> str | None:
    """K_SINK: where the outbox relay delivers events (injected by Knative's SinkBinding)."""
    return _env("K_SINK")


def outbox_batch_size() -> int:
    """DUEFLOW_OUTBOX_BATCH: rows the relay reads per pass (default 100)."""
    return _int("DUEFLOW_OUTBOX_BATCH", 100, low=1)


def outbox_max_backoff() -> float:
    """DUEFLOW_OUTBOX_MAX_BACKOFF: longest wait in seconds between delivery retries (default 30)."""
    return _float("DUEFLOW_OUTBOX_MAX_BACKOFF", 30.0)


def outbox_poll_interval() -> float:
    """DUEFLOW_OUTBOX_POLL: seconds between relay passes when nothing wakes it (default 0.1).

    Only the process holding the relay lease delivers. On PostgreSQL any process's commit wakes
    it at once (NOTIFY); on SQLite a commit wakes only its own process, so this bounds how long
    another process's event waits: short, since a pass is one read."""
    return _float("DUEFLOW_OUTBOX_POLL", 0.1)


def outbox_concurrency() -> int:
    """DUEFLOW_OUTBOX_CONCURRENCY: deliveries the relay makes at once, each for a different
    partition (task); events of one task always go out one after another (default 8)."""
    return _int("DUEFLOW_OUTBOX_CONCURRENCY", 8, low=1)


def sink_timeout() -> float:
    """DUEFLOW_SINK_TIMEOUT: seconds to wait for the sink to accept one event (default 5)."""
    return _float("DUEFLOW_SINK_TIMEOUT", 5.0)


def log_level() -> str:
    """DUEFLOW_LOG_LEVEL: Python logging level name (default INFO)."""
    return (_env("DUEFLOW_LOG_LEVEL", "INFO") or "INFO").upper()


def log_format() -> str:
    """DUEFLOW_LOG_FORMAT: `json` (default; one object a line, for a log collector) or `text`
    (one readable line a record, for people; `make run` sets it)."""
    value = (_env("DUEFLOW_LOG_FORMAT", "json") or "json").lower()
    if value not in ("json", "text"):
        raise ConfigError(f"DUEFLOW_LOG_FORMAT must be json or text, not {value!r}")
    return value


def service_name() -> str:
    """K_SERVICE: the function this process serves (Knative sets it; `make run` too), named on
    each text log line."""
    return _env("K_SERVICE", "dueflow") or "dueflow"


def otel_endpoint() -> str | None:
    """OTEL_EXPORTER_OTLP_ENDPOINT: when set, traces are exported over OTLP/HTTP."""
    return _env("OTEL_EXPORTER_OTLP_ENDPOINT")


def metrics_port() -> int:
    """DUEFLOW_METRICS_PORT: port of each function process's Prometheus endpoint, /metrics
    (default 9464, the usual OpenTelemetry Prometheus port; 0 turns it off). Not 9090 or 9091:
    Knative's queue-proxy holds those in the same pod network."""
    return _int("DUEFLOW_METRICS_PORT", 9464, low=0, high=65535)


def auto_migrate() -> bool:
    """DUEFLOW_AUTO_MIGRATE: apply migrations on start (default: on only when DUEFLOW_ENV=local)."""
    default = "1" if environment() == "local" else "0"
    return (_env("DUEFLOW_AUTO_MIGRATE", default) or default).lower() in ("1", "true", "yes")


# -- the live feed ----------------------------------------------------------------------------


def live_retention() -> float:
    """DUEFLOW_LIVE_RETENTION: seconds the live feed keeps each task change for resuming streams
    (default 86400, a day; at least 60): an older position gets one `event: reset`."""
    return max(60.0, _float("DUEFLOW_LIVE_RETENTION", 86400.0))


def live_heartbeat() -> float:
    """DUEFLOW_LIVE_HEARTBEAT: seconds between the heartbeat comments of a live stream (default
    15), so proxies and Knative's idle timeout keep a quiet stream open."""
    return max(1.0, _float("DUEFLOW_LIVE_HEARTBEAT", 15.0))


def live_max_stream() -> float:
    """DUEFLOW_LIVE_MAX_STREAM: seconds after which a live stream ends with a `retry:` hint and
    the client resumes (default 570: under knative/100-live.yaml's timeoutSeconds of 600)."""
    return max(1.0, _float("DUEFLOW_LIVE_MAX_STREAM", 570.0))


def live_poll() -> float:
    """DUEFLOW_LIVE_POLL: seconds between a live process's reads of the change log when nothing
    wakes it (default 1; on PostgreSQL a NOTIFY wakes it at once, on SQLite this is the
    latency)."""
    return max(0.05, _float("DUEFLOW_LIVE_POLL", 1.0))


# -- reminders and e-mail ---------------------------------------------------------------------


def reminder_tick() -> float:
    """DUEFLOW_REMINDER_TICK: seconds between reminder ticks under `make run` (default 1)."""
    return _float("DUEFLOW_REMINDER_TICK", 1.0)


def reminder_late_after() -> float:
    """DUEFLOW_REMINDER_LATE_AFTER: seconds after remind_at from which a reminder is sent as late
    and says so (default 120: a minute-granular PingSource is up to 60 s late by design)."""
    return _float("DUEFLOW_REMINDER_LATE_AFTER", 120.0)


def reminder_reemit_after() -> float:
    """DUEFLOW_REMINDER_REEMIT_AFTER: seconds after which the tick emits again a reminder that was
    emitted but is still not recorded as sent (default 300: five PingSource ticks, so a healthy
    system never re-emits, and far less than the Broker's half hour of retries for notify)."""
    return max(1.0, _float("DUEFLOW_REMINDER_REEMIT_AFTER", 300.0))


def reminder_batch_size() -> int:
    """DUEFLOW_REMINDER_BATCH: due reminders claimed per transaction (default 1000)."""
    return _int("DUEFLOW_REMINDER_BATCH", 1000, low=1)


def reminder_event_batch() -> int:
    """DUEFLOW_REMINDER_EVENT_BATCH: due reminders per dev.dueflow.reminders.due event (default
    100, at most 1000); 1 emits one dev.dueflow.reminder.due event per reminder instead."""
    return min(1000, _int("DUEFLOW_REMINDER_EVENT_BATCH", 100, low=1))


def email_backend() -> str:
    """DUEFLOW_EMAIL_BACKEND: eml | smtp | sendgrid | dapr (default eml). `outbox`, the eml
    backend's old name, is a deprecated alias (the outbox is the table of events to relay)."""
    name = (_env("DUEFLOW_EMAIL_BACKEND", "eml") or "eml").lower()
    if name == "outbox":
        _deprecated("DUEFLOW_EMAIL_BACKEND=outbox", "DUEFLOW_EMAIL_BACKEND=eml")
        return "eml"
    return name


def email_sender() -> str:
    """DUEFLOW_EMAIL_FROM: the From address of reminder e-mails."""
    return _env("DUEFLOW_EMAIL_FROM", "dueflow <reminders@dueflow.invalid>") or ""


def eml_dir() -> str:
    """DUEFLOW_EML_DIR: where the `eml` backend writes .eml files (.dueflow/eml).
    DUEFLOW_OUTBOX_DIR, its old name, is a deprecated alias (used only without DUEFLOW_EML_DIR)."""
    directory = _env("DUEFLOW_EML_DIR")
    if directory is None and (directory := _env("DUEFLOW_OUTBOX_DIR")) is not None:
        _deprecated("DUEFLOW_OUTBOX_DIR", "DUEFLOW_EML_DIR")
    return directory or ".dueflow/eml"


EMAIL_BACKENDS = ("eml", "smtp", "sendgrid", "dapr")


@dataclass(frozen=True)
class EmailSettings:
    """Everything the chosen e-mail backend needs, checked: a backend that cannot work refuses
    to start instead of failing at the first send."""

    backend: str
    timeout: float  # one network timeout for every remote backend (DUEFLOW_EMAIL_TIMEOUT)
    eml_dir: str
    smtp_url: str | None
    sendgrid_api_key: str | None
    sendgrid_host: str
    dapr_grpc_port: int
    dapr_binding: str


def email() -> EmailSettings:
    """The e-mail settings of DUEFLOW_EMAIL_BACKEND's backend; ConfigError when they cannot work."""
    name = email_backend()
    if name not in EMAIL_BACKENDS:
        raise ConfigError(
            f"DUEFLOW_EMAIL_BACKEND must be one of {', '.join(EMAIL_BACKENDS)}; got {name!r}"
        )
    settings = EmailSettings(
        backend=name,
        timeout=email_timeout(),
        eml_dir=eml_dir(),
        smtp_url=smtp_url(),
        sendgrid_api_key=sendgrid_api_key(),
        sendgrid_host=sendgrid_host(),
        dapr_grpc_port=dapr_grpc_port(),
        dapr_binding=dapr_email_binding(),
    )
    if name == "smtp" and not settings.smtp_url:
        raise ConfigError("DUEFLOW_EMAIL_BACKEND=smtp needs SMTP_URL (smtp://host:port, ...)")
    if name == "dapr":
        dapr_http_port()  # the SDK's client waits for the sidecar's health endpoint on it
    if name == "sendgrid" and not settings.sendgrid_api_key:
        raise ConfigError("DUEFLOW_EMAIL_BACKEND=sendgrid needs SENDGRID_API_KEY")
    return settings


def smtp_url() -> str | None:
    """SMTP_URL: smtp://[user:password@]host[:port][?starttls=true], or smtps://… (TLS)."""
    return _env("SMTP_URL")


def email_timeout() -> float:
    """DUEFLOW_EMAIL_TIMEOUT: seconds a mail server or API has to answer (default 10)."""
    return _float("DUEFLOW_EMAIL_TIMEOUT", 10.0)


def sendgrid_api_key() -> str | None:
    """SENDGRID_API_KEY: API key of the `sendgrid` backend."""
    return _env("SENDGRID_API_KEY")


def sendgrid_host() -> str:
    """DUEFLOW_SENDGRID_HOST: SendGrid API base URL (default https://api.sendgrid.com)."""
    return _env("DUEFLOW_SENDGRID_HOST", "https://api.sendgrid.com") or ""


def dapr_http_port() -> int:
    """DAPR_HTTP_PORT: the Dapr sidecar's HTTP port (set by Dapr; default 3500): the SDK's
    client waits for the sidecar's health endpoint on it before its first call."""
    return _int("DAPR_HTTP_PORT", 3500, low=1, high=65535)


def dapr_grpc_port() -> int:
    """DAPR_GRPC_PORT: the Dapr sidecar's gRPC port, the SDK's (set by Dapr; default 50001)."""
    return _int("DAPR_GRPC_PORT", 50001, low=1, high=65535)


def dapr_timeout() -> float:
    """DUEFLOW_DAPR_TIMEOUT: seconds each call to the Dapr sidecar may take (default 5)."""
    return _float("DUEFLOW_DAPR_TIMEOUT", 5.0)


REMINDER_JOBS = ("off", "dapr")


def reminder_jobs() -> bool:
    """DUEFLOW_REMINDER_JOBS: off | dapr (default off), a setting of the reminders function.
    With dapr, it runs the job relay, which schedules each reminder as a Dapr job due at its
    remind_at through its sidecar, and takes the jobs' callbacks (POST /job/<name>); while
    that relay runs, every task write anywhere adds its reminders' job commands to the outbox.
    The tick stays as the safety net (docs/reminders.md)."""
    name = (_env("DUEFLOW_REMINDER_JOBS", "off") or "off").lower()
    if name not in REMINDER_JOBS:
        raise ConfigError(f"DUEFLOW_REMINDER_JOBS must be off or dapr; got {name!r}")
    return name == "dapr"


def dapr_secret_store() -> str | None:
    """DUEFLOW_DAPR_SECRET_STORE: the Dapr secret store to read secrets from at start (the
    components' `kubernetes`); unset (the default): none, the environment holds them."""
    return _env("DUEFLOW_DAPR_SECRET_STORE")


def dapr_secret_name() -> str:
    """DUEFLOW_DAPR_SECRET: the secret read from DUEFLOW_DAPR_SECRET_STORE at start (default
    dueflow-secrets); each key fills the setting of its name in capitals with `_` for `-`
    (database-url -> DATABASE_URL) unless the environment sets that already."""
    return _env("DUEFLOW_DAPR_SECRET", "dueflow-secrets") or "dueflow-secrets"


def dapr_email_binding() -> str:
    """DUEFLOW_DAPR_EMAIL_BINDING: name of the Dapr SendGrid output binding (default sendgrid)."""
    return _env("DUEFLOW_DAPR_EMAIL_BINDING", "sendgrid") or "sendgrid"


def kafka_bootstrap_servers() -> str | None:
    """KAFKA_BOOTSTRAP_SERVERS: with it, `make run` backs the Broker, KafkaSource (task-events)
    and KafkaSink (task-updates) with this Kafka; without it, events route in-process."""
    return _env("KAFKA_BOOTSTRAP_SERVERS")


def broker_url() -> str | None:
    """DUEFLOW_BROKER_URL: where `make dlq-replay` sends events (default K_SINK, then the local
    broker of a running `make run`)."""
    return _env("DUEFLOW_BROKER_URL") or sink_url()


def kafka_session_timeout_ms() -> int:
    """DUEFLOW_KAFKA_SESSION_TIMEOUT_MS: consumer group session timeout of `make run`'s Kafka
    consumers (default 6000, the smallest a stock Kafka broker accepts)."""
    return _int("DUEFLOW_KAFKA_SESSION_TIMEOUT_MS", 6000, low=1)


# -- the assistant (MCP server) ---------------------------------------------------------------

_LOCAL_HOSTS = "127.0.0.1:*,localhost:*,[::1]:*"
_LOCAL_ORIGINS = "http://127.0.0.1:*,http://localhost:*,http://[::1]:*"


def _split(raw: str | None) -> list[str]:
    return [item.strip() for item in (raw or "").split(",") if item.strip()]


def tasks_port() -> int:
    """DUEFLOW_TASKS_PORT: `make run` only, the tasks API's own port behind the front door on PORT
    (default 0: a free port; the bench sets one to measure the API without the proxy)."""
    return _int("DUEFLOW_TASKS_PORT", 0, low=0, high=65535)


def assistant_port() -> int:
    """DUEFLOW_ASSISTANT_PORT: `make run` only, the assistant's (MCP server's) port (default
    PORT + 1, 8081)."""
    return _int("DUEFLOW_ASSISTANT_PORT", _int("PORT", 8080, low=1) + 1, low=1)


def live_port() -> int:
    """DUEFLOW_LIVE_PORT: `make run` only, the live function's port (default PORT + 2, 8082)."""
    return _int("DUEFLOW_LIVE_PORT", _int("PORT", 8080, low=1) + 2, low=1)


def mcp_allowed_hosts() -> list[str]:
    """DUEFLOW_MCP_ALLOWED_HOSTS: comma-separated Host header values the MCP endpoint answers
    (`host:*` for any port), against DNS rebinding; default the loopback names only. In a
    cluster: the Service's public host name(s)."""
    return _split(_env("DUEFLOW_MCP_ALLOWED_HOSTS", _LOCAL_HOSTS))


def mcp_allowed_origins() -> list[str]:
    """DUEFLOW_MCP_ALLOWED_ORIGINS: comma-separated browser origins allowed to call the MCP
    endpoint (requests without Origin, as desktop and server clients send, are always allowed);
    default the loopback origins."""
    return _split(_env("DUEFLOW_MCP_ALLOWED_ORIGINS", _LOCAL_ORIGINS))


def mcp_resource_url() -> str:
    """DUEFLOW_MCP_RESOURCE_URL: the public URL of the MCP endpoint, named in its OAuth
    protected-resource metadata (RFC 9728); default http://127.0.0.1:$PORT/mcp."""
    default = f"http://127.0.0.1:{_int('PORT', 8080, low=1)}/mcp"
    return _env("DUEFLOW_MCP_RESOURCE_URL", default) or default


def mcp_issuer_url() -> str:
    """The authorization server the MCP metadata names: DUEFLOW_JWT_ISSUER. Required outside
    DUEFLOW_ENV=local; locally (development secret, no identity provider) the endpoint's origin."""
    issuer = auth().issuer
    if issuer is not None:
        return issuer
    if environment() != "local":
        raise ConfigError(
            "set DUEFLOW_JWT_ISSUER: the assistant names it as its authorization server"
        )
    resource = mcp_resource_url()
    return resource[: resource.index("/", resource.index("//") + 2)]


# -- the web app's sign-in (OpenID Connect) ----------------------------------------------------


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    client_id: str
    scope: str

    @property
    def origin(self) -> str:
        """scheme://host[:port] of the issuer: where the browser fetches metadata and tokens."""
        return self.issuer[: (self.issuer + "/").index("/", self.issuer.index("//") + 2)]


def oidc() -> OidcSettings | None:
    """DUEFLOW_OIDC_ISSUER, DUEFLOW_OIDC_CLIENT_ID, DUEFLOW_OIDC_SCOPE: the OpenID provider the
    web app signs people in with (authorization code + PKCE, a public client); None (no OIDC
    sign-in) without an issuer. The provider's access tokens must pass the API's checks
    (DUEFLOW_JWKS_URL, DUEFLOW_JWT_ISSUER, DUEFLOW_JWT_AUDIENCE)."""
    issuer = _env("DUEFLOW_OIDC_ISSUER")
    if issuer is None:
        return None
    if not issuer.startswith(("https://", "http://")):
        raise ConfigError(f"DUEFLOW_OIDC_ISSUER must be an http(s) URL, got {issuer!r}")
    client_id = _env("DUEFLOW_OIDC_CLIENT_ID")
    if client_id is None:
        raise ConfigError("DUEFLOW_OIDC_ISSUER is set: set DUEFLOW_OIDC_CLIENT_ID too")
    scope = _env("DUEFLOW_OIDC_SCOPE", "openid email") or "openid email"
    return OidcSettings(issuer.rstrip("/"), client_id, scope)
