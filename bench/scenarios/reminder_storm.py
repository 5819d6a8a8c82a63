"""Scenario 3: a reminder storm. N reminders due in the same second, e-mailed by the `eml`
backend (one .eml file each); then the same with the `reminders` process SIGKILLed halfway; then
the same over SMTP (an aiosmtpd server in the bench process), where notify records each accepted
e-mail before it sends the next.

The stack is the reminder path of `make run`, assembled by the bench so that one process can be
killed (the local runner stops everything when one of its functions dies): `reminders`, `notify`
and `deadletter`, each started with the runner's own command line and environment (PostgreSQL,
K_SINK to the runner's in-process broker, DUEFLOW_SINK_TIMEOUT=60), the broker routing by
eventing/, and the runner's ticker (every DUEFLOW_REMINDER_TICK s, default 1). `reminders` starts
first, so its outbox relay holds the relay lease: in a cluster the storm's pod is the one awake.

The reminders are seeded (with dueflow's domain code) for a far date, then moved with one UPDATE
to a whole second T0 just ahead. Measured from T0: the first and the last e-mail (inotify on the
directory), reminders/s = N / (last - T0), losses (expected keys never written) and duplicates
(a key written twice, or more "sent" outcomes in notify's log than e-mails). The killed run kills
`reminders` when half the e-mails are out and starts it again at once (as a pod restart would);
it also reports the longest pause between two e-mails.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from bench import stack
from bench.context import Context
from bench.cpu import CpuMeter
from bench.mailwatch import MailWatch, SmtpWatch
from bench.results import Target, fmt, table

KEY, NUMBER = "storm", "3"
TITLE = "Reminder storm: N reminders due in the same second"
RATE_TARGET = 2000.0
USERS = 100


def applies(profile) -> bool:
    return True


def run(ctx: Context) -> dict:
    n = ctx.profile.storm_reminders
    return {
        "config": {
            "reminders": n,
            "database": "postgresql",
            "email_backend": "eml (.eml files); smtp run: aiosmtpd on 127.0.0.1",
            "timeout_s": ctx.profile.storm_timeout_s,
            "reminder_batch": "DUEFLOW_REMINDER_BATCH default (1000)",
        },
        "runs": {
            "plain": _storm(ctx, n, kill=False),
            "killed": _storm(ctx, n, kill=True),
            "smtp": _storm(ctx, n, kill=False, smtp=True),
        },
    }


def _seed(ctx: Context, engine, n: int) -> list[str]:
    """N tasks of USERS users, each with one absolute reminder; returns the reminder ids."""
    far = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    users = [f"storm-user-{i}" for i in range(min(USERS, n))]
    stack.insert_users(engine, users)
    body = {"title": "Storm reminder", "due_at": (far + timedelta(hours=1)).isoformat()}
    body["reminders"] = [{"at": far.isoformat()}]
    ids: list[str] = []
    chunk = 5000
    for start in range(0, n, chunk):
        tasks = []
        for i in range(start, min(n, start + chunk)):
            tasks += stack.build_tasks(users[i % len(users)], [{**body, "title": f"Storm {i}"}])
        stack.insert_tasks(engine, tasks)
        ids += [t.reminders[0].id for t in tasks]
    return ids


def _storm(ctx: Context, n: int, kill: bool, smtp: bool = False) -> dict:
    mode = "smtp" if smtp else "killed" if kill else "plain"
    url = ctx.infra.database("postgresql", f"storm_{mode}")
    engine = stack.make_engine(url)
    ctx.log(f"3 storm/{mode}: seeding {n} reminders")
    reminder_ids = _seed(ctx, engine, n)
    stack.analyze(engine)
    mail_dir = ctx.infra.path(f"storm-{mode}-mail")
    watch = SmtpWatch().start() if smtp else MailWatch(mail_dir).start()
    ports, _, broker, env = stack.reminder_path(url, mail_dir, DUEFLOW_SINK_TIMEOUT="60")
    if smtp:
        env.update(DUEFLOW_EMAIL_BACKEND="smtp", SMTP_URL=f"smtp://127.0.0.1:{watch.port}")
    functions: dict[str, stack.Function] = {}
    ticker = None
    out: dict = {"reminders": n}
    try:
        functions["reminders"] = _function(ctx, "reminders", env, ports, mode).start()
        time.sleep(1.5)  # its relay's first pass takes the relay lease
        for name in ("notify", "deadletter"):
            functions[name] = _function(ctx, name, env, ports, mode).start()
        ticker = stack.Ticker(broker.ping_targets).start()
        t0 = math.ceil(time.time()) + 2
        due = datetime.fromtimestamp(t0, UTC)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE reminders SET remind_at = :t, at = :t"), {"t": due})
        ctx.log(f"3 storm/{mode}: {n} reminders due at {due:%H:%M:%S}")
        with CpuMeter() as meter:  # from 2 s before T0 to the end: where the storm's CPU went
            out.update(_watch(ctx, engine, watch, functions, env, ports, mode, n, t0, kill))
        out["cpu_s"] = {k: round(v * meter.elapsed, 2) for k, v in meter.shares().items()}
    finally:
        if ticker is not None:
            ticker.stop()
        for function in functions.values():
            function.stop()
        broker.stop()
        watch.stop()
    expected = {_key(rid, due) for rid in reminder_ids}
    seen = set(watch.first_seen)
    emailed = seen & expected
    times = sorted(watch.first_seen[k] for k in emailed)
    sent_logged = sum(
        1
        for line in stack.json_logs(functions["notify"].log_path)
        if line.get("function") == "notify" and line.get("outcome") == "sent"
    )
    double_writes = sum(c - 1 for c in watch.writes.values() if c > 1)
    queued, unclaimed = _still_waiting(engine, due)  # all processes are stopped by now
    engine.dispose()
    # a reminder is lost when it was neither e-mailed nor is still on its way
    lost = {rid for rid in reminder_ids if _key(rid, due) not in emailed}
    lost -= queued | unclaimed
    last = times[-1] - t0 if times else None
    complete = len(emailed) == n
    elapsed = last if complete else out.get("stopped_s")
    out.update(
        complete=complete,
        e_mails=len(emailed),
        queued_at_end=len({r for r in queued if _key(r, due) not in emailed}),
        unclaimed_at_end=len(unclaimed),
        lost=len(lost),
        unexpected=len(seen - expected),
        duplicate_writes=double_writes,
        duplicate_sends=max(0, sent_logged - len(seen)),
        duplicates=max(double_writes, max(0, sent_logged - len(seen))),
        duplicates_visible=watch.sees_duplicates and not watch.overflowed,
        notify_sent_outcomes=sent_logged,
        first_email_s=round(times[0] - t0, 2) if times else None,
        all_emailed_s=round(last, 2) if complete else None,
        reminders_per_s=round(len(times) / elapsed, 1) if elapsed else None,
        longest_pause_s=round(
            max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0), 2
        ),
    )
    if not complete and out["reminders_per_s"]:
        out["projected_all_emailed_s"] = round(n / out["reminders_per_s"], 1)
    ctx.log(f"3 storm/{mode}: {_progress(out)}; {out['lost']} lost, {out['duplicates']} duplicated")
    return out


def _key(reminder_id: str, due: datetime) -> str:
    return f"r-{reminder_id}-{due:%Y%m%dT%H%M%SZ}"


def _still_waiting(engine, due: datetime) -> tuple[set[str], set[str]]:
    """Reminder ids still in the outbox (in reminders.due batches, or single reminder.due
    events), and those not yet claimed."""
    with engine.connect() as conn:
        payloads = conn.execute(
            sa.text(
                "SELECT payload FROM outbox WHERE event_type IN "
                "('dev.dueflow.reminders.due', 'dev.dueflow.reminder.due')"
            )
        ).scalars()
        queued = set()
        for payload in payloads:
            data = json.loads(payload)["data"]
            queued |= {item["reminder_id"] for item in data.get("reminders", [data])}
        unclaimed = set(
            conn.execute(
                sa.text(
                    "SELECT id FROM reminders WHERE emitted_at IS NULL AND status = 'scheduled'"
                )
            ).scalars()
        )
    return queued, {str(u) for u in unclaimed}


def _function(ctx, name, env, ports, mode) -> stack.Function:
    return stack.Function(ctx.infra, name, env, port=ports[name], label=f"storm-{mode}-{name}")


def _watch(ctx, engine, watch, functions, env, ports, mode, n, t0, kill) -> dict:
    """Until every e-mail is out and the outbox is empty (redeliveries done), or the time cap.

    The killed run kills `reminders` when half the e-mails are out, or at half the time cap
    when the run will not get that far."""
    cap = ctx.profile.storm_timeout_s
    out: dict = {"timed_out": False}
    next_outbox_check = 0.0
    while True:
        time.sleep(0.05)
        now = time.time()
        sent = watch.distinct()
        if kill and "killed_at_s" not in out and (sent >= n / 2 or now - t0 >= cap / 2):
            emitted = stack.count(
                engine, "SELECT count(*) FROM reminders WHERE emitted_at IS NOT NULL"
            )
            functions["reminders"].kill()
            out.update(
                killed_at_s=round(now - t0, 2), e_mails_at_kill=sent, emitted_at_kill=emitted
            )
            ctx.log(f"3 storm/{mode}: SIGKILL reminders after {sent} e-mails; restarting it")
            functions["reminders"] = _function(ctx, "reminders", env, ports, mode)
            functions["reminders"].log_path = ctx.infra.dir / f"storm-{mode}-reminders-2.log"
            functions["reminders"].start()
            out["restarted_after_s"] = round(time.time() - now, 2)
        if sent >= n and now >= next_outbox_check:
            next_outbox_check = now + 0.5
            if stack.count(engine, "SELECT count(*) FROM outbox") == 0:
                out["settled_s"] = round(time.time() - t0, 2)
                time.sleep(1.0)  # a last redelivery in flight would show now
                return out
        if now - t0 > cap:
            out.update(timed_out=True, stopped_s=round(now - t0, 2))
            ctx.log(f"3 storm/{mode}: stopped at the {cap:g} s cap with {sent} of {n} e-mails")
            return out


def _progress(r: dict) -> str:
    if r["complete"]:
        return f"all {fmt(r['reminders'])} e-mailed after {fmt(r['all_emailed_s'])} s"
    return (
        f"stopped at the {fmt(r['stopped_s'])} s cap: {fmt(r['e_mails'])} e-mailed, "
        f"{fmt(r['queued_at_end'] + r['unclaimed_at_end'])} still queued; all would take "
        f"~{fmt(r.get('projected_all_emailed_s'))} s"
    )


def targets(result: dict) -> list[Target]:
    out = []
    for mode, r in result["runs"].items():
        label = _label(mode)
        n = fmt(r["reminders"])
        if mode == "plain":
            out.append(
                Target(
                    NUMBER,
                    f"reminders/s, {n} due at once",
                    ">=",
                    RATE_TARGET,
                    "/s",
                    r["reminders_per_s"],
                    note=_progress(r),
                )
            )
        note = None if r["complete"] else "counted at the cap: e-mailed or still queued"
        out.append(Target(NUMBER, f"lost e-mails, {label}", "==", 0, "", r["lost"], note=note))
        out.append(
            Target(NUMBER, f"duplicated e-mails, {label}", "==", 0, "", r["duplicates"], note=note)
        )
    return out


def _label(mode: str) -> str:
    return {"killed": "after SIGKILL of reminders", "smtp": "no failure, over SMTP"}.get(
        mode, "no failure"
    )


def markdown(result: dict) -> list[str]:
    rows = []
    for mode, r in result["runs"].items():
        rows.append(
            [
                _label(mode),
                r["reminders"],
                r["e_mails"],
                r["queued_at_end"] + r["unclaimed_at_end"],
                r["lost"],
                r["duplicates"],
                r["first_email_s"],
                r["all_emailed_s"] if r["complete"] else f"cap {fmt(r['stopped_s'])}",
                r["reminders_per_s"],
                r["longest_pause_s"],
            ]
        )
    lines = table(
        [
            "run",
            "reminders",
            "e-mailed",
            "still queued",
            "lost",
            "duplicated",
            "first e-mail s",
            "all e-mailed s",
            "reminders/s",
            "longest pause s",
        ],
        rows,
    )
    lines += [
        "",
        "Times are seconds after the due second (the ticker runs every second). Lost: neither "
        "e-mailed nor still queued (in the outbox, or not yet claimed by a tick) when the run "
        "ended. Duplicated: a key written twice (inotify; over SMTP a Message-ID received "
        "twice), or more `sent` outcomes in notify's log than e-mails. The SMTP run has no "
        "target of its own: its rate is the figure the `.eml` target is set against.",
    ]
    for r in result["runs"].values():
        if not r["complete"]:
            lines.append(f"- {_progress(r)}.")
    for mode, r in result["runs"].items():
        if r.get("cpu_s"):
            used = ", ".join(f"{k} {v:g}" for k, v in r["cpu_s"].items())
            lines.append(f"- CPU seconds, {_label(mode)} (from just before T0 to the end): {used}.")
    killed = result["runs"].get("killed", {})
    if "killed_at_s" in killed:
        lines.append(
            f"- Killed at {fmt(killed['killed_at_s'])} s, with {fmt(killed['e_mails_at_kill'])} "
            f"e-mails out and {fmt(killed['emitted_at_kill'])} reminders emitted; the new "
            f"`reminders` process answered after {fmt(killed['restarted_after_s'])} s."
        )
    return lines
