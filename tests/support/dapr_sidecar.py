"""A fake Dapr sidecar at the protocol level, built from the Dapr SDK's own generated gRPC stubs
(as dapr/python-sdk's tests/clients/fake_dapr_server.py): a real gRPC server implementing
`DaprServicer` (the Jobs API, stable and Alpha1; InvokeBinding; GetSecret) that records every
request, with failure switches, plus the HTTP health endpoint the SDK's client waits for, and
the scheduler's side of the Jobs API: it fires due jobs at the app (`POST /job/<name>`, the
job's data as the body), as daprd does.

It is no mock of dueflow's code: dueflow talks to it through the real SDK over real gRPC."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest
import requests
from dapr.proto import api_service_v1, api_v1

from tests.support.served_function import free_port

Post = Callable[[str, bytes], int]  # POST a path with a JSON body to the app: its status


def over_http(base_url: str) -> Post:
    def post(path: str, body: bytes) -> int:
        headers = {"Content-Type": "application/json"}
        return requests.post(base_url + path, data=body, headers=headers, timeout=30).status_code

    return post


def client_post(client) -> Post:
    """POST through functions-framework's test client (Flask's)."""
    return lambda path, body: (
        client.post(path, data=body, content_type="application/json").status_code
    )


@pytest.fixture
def sidecar(monkeypatch):
    """A started FakeSidecar, named by DAPR_GRPC_PORT and DAPR_HTTP_PORT in the environment and
    in the SDK's settings (which it reads once, when imported)."""
    from dapr.conf import settings

    fake = FakeSidecar().start()
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(settings, "DAPR_HTTP_PORT", fake.http_port)
    yield fake
    fake.stop()


@dataclass
class JobRecord:
    name: str
    due_time: str
    data: dict
    overwrite: bool
    max_retries: int | None = None


@dataclass
class FiredJob:
    name: str
    at: datetime
    status: int


@dataclass
class FakeSidecar(api_service_v1.DaprServicer):
    """Start with `start()`; `grpc_port` and `http_port` are what DAPR_GRPC_PORT and
    DAPR_HTTP_PORT name. `jobs` holds the scheduled jobs by name; `calls` every request, in
    order, as (rpc, request). Failure switches: `fail_with` (a gRPC code every call answers
    until cleared), `stop()`/`start()` (no sidecar at all)."""

    grpc_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    jobs: dict[str, JobRecord] = field(default_factory=dict)
    calls: list[tuple[str, object]] = field(default_factory=list)
    fired: list[FiredJob] = field(default_factory=list)
    fail_with: grpc.StatusCode | None = None
    alpha_only: bool = False  # a pre-1.18 sidecar: the stable Jobs RPCs are UNIMPLEMENTED

    def __post_init__(self):
        self._lock = threading.Lock()
        self._grpc: grpc.Server | None = None
        self._http: ThreadingHTTPServer | None = None
        self._firing: threading.Thread | None = None
        self._stop_firing = threading.Event()

    # -- life ---------------------------------------------------------------------------------
    def start(self) -> FakeSidecar:
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        api_service_v1.add_DaprServicer_to_server(self, self._grpc)
        self._grpc.add_insecure_port(f"127.0.0.1:{self.grpc_port}")
        self._grpc.start()
        self._http = ThreadingHTTPServer(("127.0.0.1", self.http_port), _Health)
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.stop_firing()
        if self._grpc is not None:
            self._grpc.stop(None)
            self._grpc = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def env(self) -> dict[str, str]:
        return {"DAPR_GRPC_PORT": str(self.grpc_port), "DAPR_HTTP_PORT": str(self.http_port)}

    # -- the scheduler: fire due jobs at the app --------------------------------------------
    def fire(self, app: Post | str, name: str) -> int:
        """Deliver job `name` now, as daprd does when it is due: POST /job/<name> to the app
        (a base URL, or a callable posting a path and body: a test client) with the job's
        data; a delivered job is gone unless the app failed it. Returns the app's status."""
        with self._lock:
            job = self.jobs.get(name)
        body = json.dumps(job.data if job else {}).encode()
        status = (app if callable(app) else over_http(app))(f"/job/{name}", body)
        with self._lock:
            self.fired.append(FiredJob(name, datetime.now(UTC), status))
            if 200 <= status < 300 and self.jobs.get(name) is job:
                self.jobs.pop(name, None)
        return status

    def fire_on_time(self, app_url: Post | str, poll: float = 0.02) -> None:
        """Fire each job at its due time from now on (a thread), as the Dapr scheduler does."""
        self._stop_firing.clear()

        def loop() -> None:
            while not self._stop_firing.wait(poll):
                now = datetime.now(UTC)
                with self._lock:
                    due = [j.name for j in self.jobs.values() if _instant(j.due_time) <= now]
                for name in due:
                    try:
                        self.fire(app_url, name)
                    except requests.RequestException:
                        pass  # the app is not there: the next pass tries again

        self._firing = threading.Thread(target=loop, daemon=True)
        self._firing.start()

    def stop_firing(self) -> None:
        self._stop_firing.set()
        if self._firing is not None:
            self._firing.join(timeout=5)
            self._firing = None

    def wait_for(self, predicate, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate(self):
                    return True
            time.sleep(0.02)
        return False

    def rpcs(self, *names: str) -> list[object]:
        with self._lock:
            return [request for rpc, request in self.calls if rpc in names]

    # -- the gRPC API --------------------------------------------------------------------------
    def _record(self, rpc: str, request, context) -> None:
        with self._lock:
            self.calls.append((rpc, request))
        if self.fail_with is not None:
            context.abort(self.fail_with, f"fake sidecar fails {rpc}")

    def ScheduleJob(self, request, context):  # noqa: N802 - the gRPC method's name
        if self.alpha_only:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "a pre-1.18 sidecar")
        return self.ScheduleJobAlpha1(request, context)

    def ScheduleJobAlpha1(self, request, context):  # noqa: N802
        self._record("ScheduleJob", request, context)
        job = request.job
        with self._lock:
            if job.name in self.jobs and not request.overwrite:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, f"job {job.name} exists")
            policy = job.failure_policy
            retries = policy.constant.max_retries if policy.HasField("constant") else None
            self.jobs[job.name] = JobRecord(
                job.name, job.due_time, json.loads(job.data.value or b"{}"), request.overwrite,
                retries,
            )  # fmt: skip
        return api_v1.ScheduleJobResponse()

    def DeleteJob(self, request, context):  # noqa: N802
        if self.alpha_only:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "a pre-1.18 sidecar")
        return self.DeleteJobAlpha1(request, context)

    def DeleteJobAlpha1(self, request, context):  # noqa: N802
        self._record("DeleteJob", request, context)
        with self._lock:
            self.jobs.pop(request.name, None)  # daprd: deleting a missing job is no error
        return api_v1.DeleteJobResponse()

    def InvokeBinding(self, request, context):  # noqa: N802
        self._record("InvokeBinding", request, context)
        return api_v1.InvokeBindingResponse(data=b"", metadata={})

    def GetSecret(self, request, context):  # noqa: N802
        self._record("GetSecret", request, context)
        found = self.secrets.get(f"{request.store_name}/{request.key}")
        if found is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no secret {request.key}")
        return api_v1.GetSecretResponse(data=found)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class _Health(BaseHTTPRequestHandler):
    """GET /v1.0/healthz/outbound: what the SDK's client waits for before its first call."""

    def do_GET(self):  # noqa: N802
        self.send_response(204 if self.path.startswith("/v1.0/healthz") else 404)
        self.end_headers()

    def log_message(self, *args):
        pass
