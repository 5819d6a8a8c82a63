"""Loaded by every Python process started with bench/gcprobe on PYTHONPATH and BENCH_GC_LOG set
(`python -m bench.flame --gc`): times the cyclic garbage collector's pauses with `gc.callbacks`
and keeps, per process, `BENCH_GC_LOG/<pid>.json` up to date (at most once a second): collections
and pause time per generation, the longest pause, and pauses over 5 ms. Bench-only: nothing of
dueflow's reads or installs it."""

import atexit
import gc
import json
import os
import sys
import threading
import time

_DIR = os.environ.get("BENCH_GC_LOG")


def _install(directory: str) -> None:
    stats = {str(g): {"collections": 0, "pause_ms": 0.0, "max_ms": 0.0} for g in range(3)}
    slow: list[float] = []
    state = {"t0": 0.0, "written": 0.0}
    lock = threading.Lock()

    def write() -> None:
        record = {"pid": os.getpid(), "argv": " ".join(sys.argv)[:200], "generations": stats}
        record["pauses_over_5ms"] = sorted(slow, reverse=True)[:50]
        record["count_over_5ms"] = len(slow)
        path = os.path.join(directory, f"{os.getpid()}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.replace(path + ".tmp", path)

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            state["t0"] = time.perf_counter()
            return
        ms = (time.perf_counter() - state["t0"]) * 1000
        gen = stats[str(info["generation"])]
        gen["collections"] += 1
        gen["pause_ms"] += ms
        gen["max_ms"] = max(gen["max_ms"], ms)
        if ms > 5:
            slow.append(round(ms, 2))
        now = time.monotonic()
        if now - state["written"] >= 1.0 and lock.acquire(blocking=False):
            try:
                state["written"] = now
                write()
            finally:
                lock.release()

    gc.callbacks.append(callback)
    atexit.register(write)


if _DIR:
    _install(_DIR)
