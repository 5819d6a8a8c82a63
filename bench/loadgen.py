"""A small HTTP/1.1 load generator on asyncio: open loop at a fixed rate, or closed loop.

Open loop (`open_loop`): request i is *scheduled* at start + i / rate, whatever happened to the
requests before it, and its latency is measured from that scheduled time to the last byte of the
answer. A request that has to wait (no free connection, a slow server, or the generator itself
running late) carries that wait in its latency, so a stalled server cannot hide behind fewer
requests: no coordinated omission. Requests still unanswered at the end of the grace period are
counted as `unfinished` and enter the percentiles with their latency so far (a lower bound).

Closed loop (`closed_loop`): `concurrency` clients each send their next request as soon as the
previous one is answered; what they complete per second is the maximum throughput.

Only loopback targets are accepted. Requests are pre-encoded bytes; the client parses just the
status line, Content-Length and chunked bodies, so the generator costs tens of microseconds of
CPU per request (its CPU use is reported next to the results: it shares the machine).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.stats import summarize

IDLE_REUSE_S = 1.5  # gunicorn closes keep-alive connections idle for 2 s: do not reuse older ones
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Answer:
    status: int
    body: bytes


def request_bytes(
    method: str,
    path: str,
    *,
    host: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
    body: object = None,
) -> bytes:
    """One HTTP/1.1 keep-alive request; `body` (if not None) is sent as JSON."""
    payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.last_used = time.monotonic()
        self.reusable = True
        self.uses = 0

    async def exchange(self, data: bytes) -> Answer:
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, chunked = None, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and value.strip().lower() == "close":
                self.reusable = False
        if chunked:
            body = await self._chunked()
        elif length is not None:
            body = await self.reader.readexactly(length)
        else:
            body, self.reusable = await self.reader.read(), False
        self.last_used = time.monotonic()
        self.uses += 1
        return Answer(status, body)

    async def _chunked(self) -> bytes:
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Keep-alive connections to one loopback server, at most `size` open at once."""

    def __init__(self, host: str, port: int, size: int):
        if host not in LOOPBACK:
            raise ValueError(f"the load generator only targets loopback addresses, not {host}")
        self.host, self.port, self.size = host, port, size
        self.idle: list[Connection] = []
        self.open = 0
        self.waiters: list[asyncio.Future] = []

    async def acquire(self) -> Connection:
        while True:
            while self.idle:
                conn = self.idle.pop()
                if time.monotonic() - conn.last_used < IDLE_REUSE_S:
                    return conn
                self._discard(conn)
            if self.open < self.size:
                self.open += 1
                try:
                    reader, writer = await asyncio.open_connection(self.host, self.port)
                except BaseException:
                    self.open -= 1
                    raise
                return Connection(reader, writer)
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            await waiter

    def release(self, conn: Connection, ok: bool) -> None:
        if ok and conn.reusable:
            self.idle.append(conn)
        else:
            self._discard(conn)
        while self.waiters:
            waiter = self.waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                break

    def _discard(self, conn: Connection) -> None:
        conn.close()
        self.open -= 1

    async def send(self, data: bytes, timeout: float = 30.0) -> Answer:
        """One request; a connection the server closed while idle is replaced once."""
        for attempt in (0, 1):
            conn = await self.acquire()
            fresh = conn.uses == 0
            try:
                answer = await asyncio.wait_for(conn.exchange(data), timeout)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                self.release(conn, False)
                partial = isinstance(exc, asyncio.IncompleteReadError) and exc.partial
                if attempt or fresh or partial:
                    raise
                continue
            except BaseException:
                self.release(conn, False)
                raise
            self.release(conn, True)
            return answer
        raise AssertionError("unreachable")

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()


RequestFactory = Callable[[int], bytes]  # request number -> request bytes


@dataclass
class Run:
    """What one load run measured."""

    mode: str  # "open" | "closed"
    duration_s: float
    sent: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0  # connection failures, timeouts
    unfinished: int = 0
    cpu_s: float = 0.0  # CPU the generator's process used meanwhile
    first_error: str | None = None  # what the first failed call raised (open_loop_calls)

    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    def summary(self) -> dict:
        out = summarize(self.latencies_ms)
        out.update(
            sent=self.sent,
            ok=self.ok(),
            failed=self.sent - self.ok(),
            unfinished=self.unfinished,
            throughput_rps=round(self.ok() / self.duration_s, 1) if self.duration_s else 0.0,
            loadgen_cpu=round(self.cpu_s / self.duration_s, 2) if self.duration_s else 0.0,
        )
        if non_2xx := {s: n for s, n in self.statuses.items() if not 200 <= s < 300}:
            out["non_2xx"] = {str(k): v for k, v in sorted(non_2xx.items())}
        return out


def pooled(runs: list[Run]) -> dict:
    """One summary over several runs of the same kind (interleaved segments)."""
    merged = Run(runs[0].mode, sum(r.duration_s for r in runs))
    for r in runs:
        merged.sent += r.sent
        merged.latencies_ms += r.latencies_ms
        merged.errors += r.errors
        merged.unfinished += r.unfinished
        merged.cpu_s += r.cpu_s
        for status, n in r.statuses.items():
            merged.statuses[status] = merged.statuses.get(status, 0) + n
    return merged.summary()


def _record(run: Run, status: int | None) -> None:
    if status is None:
        run.errors += 1
        status = 0
    run.statuses[status] = run.statuses.get(status, 0) + 1


async def _open_loop(
    port: int, make: RequestFactory, rate: float, duration: float, grace: float, conns: int
) -> Run:
    pool = Pool("127.0.0.1", port, conns)

    async def send(i: int) -> int:
        return (await pool.send(make(i), timeout=duration + grace)).status

    try:
        return await open_loop_calls(send, rate=rate, duration=duration, grace=grace)
    finally:
        pool.close()


CallFactory = Callable[[int], Awaitable[int]]  # call number -> the call's status (HTTP-like)


async def open_loop_calls(
    call: CallFactory, *, rate: float, duration: float, grace: float = 5.0
) -> Run:
    """Open loop over any client (the MCP SDK's, say): call i is scheduled at start + i / rate
    and `await call(i)` gives its status; latency, `unfinished` and CPU as in `open_loop`.
    A call that raises is counted as an error (status 0); its first exception is kept."""
    loop = asyncio.get_running_loop()
    count = max(1, int(rate * duration))
    run = Run("open", count / rate)
    cpu0 = time.process_time()
    start = loop.time() + 0.02
    pending: dict[int, float] = {}

    async def one(i: int, scheduled: float) -> None:
        pending[i] = scheduled
        status = None
        try:
            status = await asyncio.wait_for(call(i), duration + grace)
        except Exception as exc:  # noqa: BLE001 - a failed call is a result, counted below
            run.first_error = run.first_error or f"{type(exc).__name__}: {exc}"
        del pending[i]
        run.latencies_ms.append((loop.time() - scheduled) * 1000)
        _record(run, status)

    tasks = []
    for i in range(count):
        scheduled = start + i / rate
        if (delay := scheduled - loop.time()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
        run.sent += 1
    end = start + count / rate + grace
    await asyncio.wait(tasks, timeout=max(0.0, end - loop.time()))
    now = loop.time()
    for scheduled in pending.values():
        run.latencies_ms.append((now - scheduled) * 1000)
    run.unfinished = len(pending)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    run.cpu_s = time.process_time() - cpu0
    return run


async def _closed_loop(port: int, make: RequestFactory, concurrency: int, duration: float) -> Run:
    pool = Pool("127.0.0.1", port, concurrency)
    loop = asyncio.get_running_loop()
    run = Run("closed", duration)
    counter = iter(range(10**9))
    cpu0 = time.process_time()
    deadline = loop.time() + duration

    async def client() -> None:
        while loop.time() < deadline:
            sent = loop.time()
            run.sent += 1
            answer = None
            try:
                answer = await pool.send(make(next(counter)), timeout=30)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                await asyncio.sleep(0.01)
            if loop.time() <= deadline:  # count what completed inside the window
                run.latencies_ms.append((loop.time() - sent) * 1000)
                _record(run, None if answer is None else answer.status)
            else:
                run.sent -= 1

    started = loop.time()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    run.duration_s = min(loop.time(), deadline) - started
    run.cpu_s = time.process_time() - cpu0
    pool.close()
    return run


def open_loop(
    port: int,
    make: RequestFactory,
    *,
    rate: float,
    duration: float,
    grace: float = 5.0,
    conns: int = 64,
) -> Run:
    """Offer `rate` requests/s for `duration` s to 127.0.0.1:`port` (see the module doc)."""
    return asyncio.run(_open_loop(port, make, rate, duration, grace, conns))


def closed_loop(port: int, make: RequestFactory, *, concurrency: int, duration: float) -> Run:
    """`concurrency` back-to-back clients for `duration` s: the most the server completes."""
    return asyncio.run(_closed_loop(port, make, concurrency, duration))


def call(port: int, data: bytes, timeout: float = 30.0) -> Answer:
    """One request (setup and checks, not measurements)."""

    async def go() -> Answer:
        pool = Pool("127.0.0.1", port, 1)
        try:
            return await pool.send(data, timeout)
        finally:
            pool.close()

    return asyncio.run(go())
