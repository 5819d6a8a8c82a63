"""Every call dueflow makes to its Dapr sidecar, through the Dapr Python SDK (`dapr`, gRPC): the
reminder jobs (Jobs API), the SendGrid output binding (adapters/email/dapr.py) and the secret
store read at start-up.

Only the functions that talk to a sidecar import this module (the SDK and grpc cost a cold start
about 0.2 s, measured by `make bench`'s cold-start scenario): notify with DUEFLOW_EMAIL_BACKEND=
dapr on its first send, reminders with DUEFLOW_REMINDER_JOBS=dapr, any function with
DUEFLOW_DAPR_SECRET_STORE at start.

The SDK's client waits for the sidecar's health endpoint when it is built (DAPR_HEALTH_TIMEOUT,
read by the SDK, default 60 s) and sets no deadline on calls unless DAPR_API_TIMEOUT_SECONDS is
set; each client here carries its own deadline (`timeout`), so a hung sidecar fails a call as
transient instead of holding a relay thread or a request for ever.
"""

from __future__ import annotations

import json
import logging
import threading

import grpc
from dapr.clients import ConstantFailurePolicy, DaprClient, Job
from google.protobuf.any_pb2 import Any as GrpcAny

from dueflow.adapters.http_sink import DeliveryError
from dueflow.domain.reminder_jobs import JOB_DELETE, JOB_PUT

log = logging.getLogger("dueflow.dapr")

#: gRPC codes that mean "the sidecar (or what is behind it) is not there now": retry later.
UNAVAILABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.CANCELLED,
    }
)


class _Deadline(grpc.UnaryUnaryClientInterceptor):
    """Every unary call gets `seconds` to answer unless it names its own deadline."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def intercept_unary_unary(self, continuation, details, request):
        if details.timeout is None:
            details = details._replace(timeout=self.seconds)
        return continuation(details, request)


def connect(grpc_port: int, timeout: float) -> DaprClient:
    """An SDK client for the sidecar's gRPC API on 127.0.0.1:`grpc_port` (DAPR_GRPC_PORT, which
    the Dapr injector sets), each call bounded by `timeout` seconds."""
    return DaprClient(f"127.0.0.1:{grpc_port}", interceptors=[_Deadline(timeout)])


def rpc_code(exc: Exception) -> grpc.StatusCode | None:
    code = getattr(exc, "code", None)
    return code() if callable(code) else None


class SidecarClient:
    """One SDK client per process, built on first use (the SDK's client is thread-safe: one
    gRPC channel); a failed build (the sidecar not up yet) is retried on the next call."""

    def __init__(self, grpc_port: int, timeout: float):
        self.grpc_port, self.timeout = grpc_port, timeout
        self._client: DaprClient | None = None
        self._lock = threading.Lock()

    def get(self) -> DaprClient:
        with self._lock:
            if self._client is None:
                self._client = connect(self.grpc_port, self.timeout)
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


class DaprJobs:
    """The reminder jobs' sink: the job relay hands it each outbox row of type reminder.job.put
    or reminder.job.delete, and it schedules (overwriting: re-scheduling replaces) or deletes
    the job through the sidecar's Jobs API. A failure raises DeliveryError, so the row stays in
    the outbox and the relay retries it: a sidecar down at commit time loses no job."""

    def __init__(self, sidecar: SidecarClient, *, retries: int = 3, retry_interval: int = 5):
        self.sidecar = sidecar
        # When the callback fails (the app answers non-2xx, or is not there), the scheduler
        # tries again `retries` times, `retry_interval` s apart; after that the tick catches it.
        self.failure_policy = ConstantFailurePolicy(
            max_retries=retries, interval_seconds=retry_interval
        )

    def __call__(self, row: dict) -> None:
        data = row.get("data") or {}
        try:
            client = self.sidecar.get()
        except Exception as exc:  # the SDK's health wait timed out: no sidecar yet
            raise DeliveryError(f"Dapr sidecar: {exc}", sink_down=True) from exc
        try:
            if row.get("type") == JOB_PUT:
                payload = {k: data[k] for k in ("reminder_id", "task_id", "due_time") if k in data}
                job = Job(
                    name=data["name"],
                    due_time=data["due_time"],  # RFC 3339, UTC: fires once, at that instant
                    data=GrpcAny(value=json.dumps(payload).encode()),
                    failure_policy=self.failure_policy,
                )
                client.schedule_job(job, overwrite=True)
            elif row.get("type") == JOB_DELETE:
                try:
                    client.delete_job(data["name"])
                except grpc.RpcError as exc:
                    if rpc_code(exc) != grpc.StatusCode.NOT_FOUND:
                        raise  # gone already (it fired, or a delete ran twice): done
            else:
                raise DeliveryError(f"not a reminder job command: {row.get('type')}")
        except grpc.RpcError as exc:
            code = rpc_code(exc)
            raise DeliveryError(
                f"Dapr jobs API: {code.name if code else 'error'}: {exc}",
                sink_down=code in UNAVAILABLE,
            ) from exc


def read_secrets(sidecar: SidecarClient, store: str, name: str) -> dict[str, str]:
    """The keys of secret `name` in the sidecar's secret store `store` (the Kubernetes store
    reads a Secret of the pod's namespace: every key of it)."""
    return dict(sidecar.get().get_secret(store, name).secret)
