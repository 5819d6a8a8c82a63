"""Which Dapr jobs a task change puts and deletes (dueflow.domain.reminder_jobs): pure, so the
rules are checked here on plain tasks, and as a property: applying the changes to the jobs of
`previous` always gives exactly the jobs `current` wants."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from dueflow.domain.reminder_jobs import (
    JOB_DELETE,
    JOB_PUT,
    job_changes,
    job_command,
    job_name,
    reminder_of,
)
from dueflow.domain.task import Reminder, Task

T0 = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
R1, R2 = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))


def task(*reminders: Reminder, status: str = "open") -> Task:
    return Task("t-1", "alice", "Pay rent", T0, T0, status=status, reminders=reminders)


def reminder(rid: str, minutes: int = 0, status: str = "scheduled") -> Reminder:
    return Reminder(rid, T0 + timedelta(minutes=minutes), at=T0, status=status)


def puts(changes) -> dict[str, datetime]:
    return {c.name: c.due_at for c in changes if c.is_put}


def deletes(changes) -> list[str]:
    return [c.name for c in changes if not c.is_put]


def test_a_new_task_puts_a_job_per_scheduled_reminder():
    changes = job_changes(None, task(reminder(R1), reminder(R2, 30, status="sent")))
    assert puts(changes) == {job_name(R1): T0}
    assert deletes(changes) == []


def test_moving_a_reminder_puts_its_job_again_under_the_same_name():
    changes = job_changes(task(reminder(R1)), task(reminder(R1, 15)))
    assert puts(changes) == {f"reminder-{R1}": T0 + timedelta(minutes=15)}


def test_an_unchanged_reminder_costs_no_call():
    assert job_changes(task(reminder(R1)), task(reminder(R1))) == []


def test_completion_deletion_and_removal_delete_jobs():
    open_ = task(reminder(R1), reminder(R2, 30))
    assert deletes(job_changes(open_, open_.with_changes(status="completed"))) == [
        job_name(R1),
        job_name(R2),
    ]
    assert deletes(job_changes(open_, None)) == [job_name(R1), job_name(R2)]
    assert deletes(job_changes(open_, task(reminder(R2, 30)))) == [job_name(R1)]


def test_reopening_puts_the_jobs_again():
    done = task(reminder(R1), status="completed")
    assert puts(job_changes(done, done.with_changes(status="open"))) == {job_name(R1): T0}


def test_a_job_command_is_partitioned_by_the_job():
    [put] = job_changes(None, task(reminder(R1)))
    command = job_command(put, T0)
    assert command["type"] == JOB_PUT and command["partitionkey"] == job_name(R1)
    assert command["data"] == {
        "name": job_name(R1),
        "reminder_id": R1,
        "task_id": "t-1",
        "due_time": "2026-12-01T07:00:00Z",
    }
    [delete] = job_changes(task(reminder(R1)), None)
    assert job_command(delete, T0)["type"] == JOB_DELETE
    assert "due_time" not in job_command(delete, T0)["data"]


def test_job_names_round_trip_and_strangers_are_refused():
    assert reminder_of(job_name(R1)) == R1
    assert reminder_of("reminder-not-a-uuid") is None
    assert reminder_of("backup-db") is None


REMINDERS = st.lists(
    st.tuples(
        st.sampled_from([R1, R2, str(uuid.UUID(int=3))]),
        st.integers(0, 3),
        st.sampled_from(["scheduled", "sent", "failed"]),
    ),
    unique_by=lambda r: r[0],
)
TASKS = st.one_of(
    st.none(),
    st.builds(
        lambda rs, status: task(*(reminder(r, m, s) for r, m, s in rs), status=status),
        REMINDERS,
        st.sampled_from(["open", "completed"]),
    ),
)


def wanted(t: Task | None) -> dict[str, datetime]:
    if t is None or t.status != "open":
        return {}
    return {job_name(r.id): r.remind_at for r in t.reminders if r.status == "scheduled"}


@given(TASKS, TASKS)
def test_applying_the_changes_gives_exactly_the_jobs_wanted(previous, current):
    jobs = wanted(previous)
    for change in job_changes(previous, current):
        if change.is_put:
            jobs[change.name] = change.due_at
        else:
            assert change.name in jobs  # only jobs that exist are deleted
            del jobs[change.name]
    assert jobs == wanted(current)
