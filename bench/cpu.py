"""Where the CPU went during a measurement, and a process tree's memory, from /proc (Linux;
elsewhere nothing is reported).

Only the bench's own processes are counted by name (its descendants: the local runner and its
functions, single functions, the Kafka broker; and the PostgreSQL server it started, registered
in ROOTS): a function started by anyone else on the machine is "other processes". That share is
what the run had to compete with, and is reported with the results as the machine's noise.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
ROOTS: set[int] = set()  # besides this process: roots of process trees the bench started
OTHER = "other processes"


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a process: its own and its reaped children's, so that the
    sum over a process tree keeps what its members used after they exited."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), sum(int(f) for f in fields[11:15]) / _TICKS


def _name(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    argv = [a.decode(errors="replace") for a in argv if a]
    joined = " ".join(argv)
    if "--target" in argv:
        return argv[argv.index("--target") + 1]
    if len(argv) > 1 and argv[1].endswith("/main.py"):  # an ASGI function: python <f>/main.py
        return os.path.basename(os.path.dirname(argv[1]))
    if "dueflow_local.run" in joined:
        return "localrun (broker, ticker)"
    if pid == os.getpid():
        return "bench (load generator)"
    if argv and (os.path.basename(argv[0]).startswith("postgres") or joined.startswith("postgres")):
        return "postgresql"
    if argv and os.path.basename(argv[0]) == "tansu":
        return "kafka (tansu)"
    return "bench helpers"


def snapshot() -> dict[int, tuple[str, float]]:
    """CPU seconds used so far by each of the bench's processes."""
    if not os.path.isdir("/proc"):
        return {}
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            stats[int(entry)] = stat
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _) in stats.items():
        children[ppid].append(pid)
    ours, todo = set(), [os.getpid(), *ROOTS]
    while todo:
        pid = todo.pop()
        if pid in stats and pid not in ours:
            ours.add(pid)
            todo += children.get(pid, [])
    return {pid: (_name(pid), stats[pid][1]) for pid in ours}


def tree(root: int) -> list[int]:
    """`root` and its descendants (a function's gunicorn master and worker), root first."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            children[stat[0]].append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        found.append(pid)
        todo += sorted(children.get(pid, []))
    return found


def tree_cpu(root: int) -> float | None:
    """CPU seconds the process tree under `root` has used so far (a function's master and
    worker): on a shared machine a steadier measure of a cold start than its wall time."""
    stats = [stat for pid in tree(root) if (stat := _stat(pid)) is not None]
    return round(sum(seconds for _, seconds in stats), 3) if stats else None


def memory(root: int) -> dict[str, float] | None:
    """Resident memory of the process tree under `root`, in MiB: `rss` per process (root first)
    and `pss`, their proportional set sizes summed (pages a forked worker still shares with its
    master counted once: about what the container's memory cgroup is charged)."""
    rss, pss = [], 0.0
    for pid in tree(root):
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        kib = {line.split(":")[0]: int(line.split()[1]) for line in rollup[1:] if ":" in line}
        rss.append(round(kib.get("Rss", 0) / 1024, 1))
        pss += kib.get("Pss", 0) / 1024
    return {"rss_mib": rss, "pss_mib": round(pss, 1)} if rss else None


def machine_busy() -> float:
    """CPU seconds all processes of the machine have used since boot (not idle, not iowait)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / _TICKS


def ours() -> float:
    """CPU seconds used so far by the bench and every process it started."""
    return sum(cpu for _, cpu in snapshot().values())


class CpuMeter:
    """`with CpuMeter() as m: ...`, then `m.shares()`: cores busy per kind of process."""

    def __enter__(self) -> CpuMeter:
        self.before, self.busy_before = snapshot(), machine_busy()
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        self.after, self.busy_after = snapshot(), machine_busy()
        self.elapsed = time.monotonic() - self.t0

    def shares(self) -> dict[str, float]:
        """Average cores busy per kind of process (1.0 = one core all the time), the machine's
        other processes included."""
        if self.elapsed <= 0:
            return {}
        used: dict[str, float] = defaultdict(float)
        for pid, (name, cpu) in self.after.items():
            start = self.before.get(pid, (name, 0.0))[1]  # a new process: all of its CPU
            used[name] += max(0.0, cpu - start)
        used[OTHER] = max(0.0, (self.busy_after - self.busy_before) - sum(used.values()))
        shares = {k: round(v / self.elapsed, 2) for k, v in used.items()}
        return dict(sorted(((k, v) for k, v in shares.items() if v >= 0.01), key=lambda kv: -kv[1]))
