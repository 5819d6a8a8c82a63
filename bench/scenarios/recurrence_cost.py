"""Scenario 4: recurrence cost. Computing the next instance of a series at its 1st and at its
10,000th instance, for a daily, a weekly-BYDAY and a monthly-BYSETPOS rule.

In-process, with the domain function the `recurrence` function calls (lifecycle.next_instance:
the next occurrence, and the instance with its reminders). The task at the 10,000th instance is the
one dueflow itself would hold there: its recurrence anchored at that occurrence (wall-clock time
and index 10,000, as each completion leaves it). Timed in batches, the two instances alternating
batch by batch; the figure is the median time per call, and the ratio 10,000th / 1st.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import islice

from bench.context import Context
from bench.results import Target, fmt, table
from bench.stats import median, ratio

KEY, NUMBER = "recurrence", "4"
TITLE = "Recurrence cost: next occurrence at the 1st vs the 10,000th instance"
RULES = {
    "daily": "FREQ=DAILY",
    "weekly BYDAY": "FREQ=WEEKLY;BYDAY=MO,WE,FR",
    "monthly BYSETPOS": "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
}
INSTANCE = 10_000
CALLS_PER_BATCH = 20
RATIO_LIMIT = 1.5
TZ = "Europe/Berlin"


def applies(profile) -> bool:
    return True


def run(ctx: Context) -> dict:
    rules = {}
    for name, rule in RULES.items():
        first, later = _instances(rule)
        times = {"1st": [], f"{INSTANCE:,}th": []}
        for batch in range(ctx.profile.recurrence_batches):
            order = [("1st", first), (f"{INSTANCE:,}th", later)]
            for label, task in order if batch % 2 == 0 else reversed(order):
                times[label].append(_time(task))
        a, b = median(times["1st"]), median(times[f"{INSTANCE:,}th"])
        rules[name] = {
            "rule": rule,
            "first_us": round(a, 1),
            "later_us": round(b, 1),
            "ratio": ratio(b, a),
            "later_due_at": later.due_at.isoformat(),
        }
        ctx.log(f"4 recurrence/{name}: {a:.0f} µs vs {b:.0f} µs")
    return {
        "config": {
            "function": "dueflow.domain.lifecycle.next_instance",
            "time_zone": TZ,
            "batches": ctx.profile.recurrence_batches,
            "calls_per_batch": CALLS_PER_BATCH,
            "instance": INSTANCE,
        },
        "rules": rules,
    }


def _instances(rule: str):
    """The series' first instance, and the same series at its 10,000th instance."""
    from dueflow.domain import lifecycle, recurrence
    from dueflow.domain.validation import parse_create

    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # a Monday, 09:00 in Berlin
    body = {
        "title": "Recurring",
        "due_at": start.isoformat(),
        "timezone": TZ,
        "recurrence": {"rrule": rule},
        "reminders": [{"before": "PT30M"}],
    }
    first = lifecycle.new_task("bench", parse_create(body), start - timedelta(days=1))
    expansion = recurrence.build(recurrence.parse_rule(rule), first.recurrence.anchor)
    wall = next(islice(expansion, INSTANCE - 1, None))  # the rule's 10,000th occurrence
    due = recurrence.to_utc(wall, TZ)
    later = replace(
        first,
        due_at=due,
        occurrence=INSTANCE,
        recurrence=replace(first.recurrence, anchor=wall, index=INSTANCE),
    )
    return first, later


def _time(task) -> float:
    """Microseconds per call, over one batch."""
    from dueflow.domain import lifecycle

    completed, now = task.due_at, task.due_at
    t0 = time.perf_counter()
    for _ in range(CALLS_PER_BATCH):
        lifecycle.next_instance(task, completed, now)
    return (time.perf_counter() - t0) / CALLS_PER_BATCH * 1e6


def targets(result: dict) -> list[Target]:
    return [
        Target(
            NUMBER,
            f"{INSTANCE:,}th / 1st instance, {name}",
            "<=",
            RATIO_LIMIT,
            "×",
            r["ratio"],
            note=f"{fmt(r['later_us'])} µs vs {fmt(r['first_us'])} µs",
        )
        for name, r in result["rules"].items()
    ]


def markdown(result: dict) -> list[str]:
    cfg = result["config"]
    rows = [
        [name, f"`{r['rule']}`", r["first_us"], r["later_us"], r["ratio"]]
        for name, r in result["rules"].items()
    ]
    return [
        f"`{cfg['function']}` in {cfg['time_zone']}, median of {cfg['batches']} alternating "
        f"batches of {cfg['calls_per_batch']} calls.",
        "",
        *table(["series", "rule", "1st µs", f"{INSTANCE:,}th µs", "ratio"], rows),
    ]
