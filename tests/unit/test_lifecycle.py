"""Unit tests for dueflow.domain.lifecycle: create, merge-patch, complete and reopen a task."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from dueflow.domain.errors import ValidationFailed
from dueflow.domain.lifecycle import apply_patch, complete, new_task, reopen
from dueflow.domain.task import Recurrence, Task
from dueflow.domain.validation import parse_create, parse_patch


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


NOW = utc(2026, 3, 1, 12)
LATER = utc(2026, 3, 2, 12)
# 09:00 EDT in New York on 2026-03-08, the day DST starts: one day before is 09:00 EST (14:00Z).
DUE = "2026-03-08T13:00:00Z"
ZONE = "America/New_York"


def make(now: datetime = NOW, **body) -> Task:
    return new_task("user-1", parse_create({"title": "Pay rent", **body}), now)


def patched(task: Task, body: dict, now: datetime = LATER) -> tuple[Task, list[str]]:
    return apply_patch(task, parse_patch(body, current=task.recurrence), now)


def error_fields(call, *args, **kwargs) -> list[str]:
    with pytest.raises(ValidationFailed) as info:
        call(*args, **kwargs)
    return [e.field for e in info.value.errors]


def with_reminders(**extra) -> Task:
    """A task due at DUE in New York with a P1D, a PT15M and an absolute reminder."""
    return make(
        due_at=DUE,
        timezone=ZONE,
        reminders=[{"before": "P1D"}, {"before": "PT15M"}, {"at": "2026-03-05T08:00:00Z"}],
        **extra,
    )


# --- new_task ----------------------------------------------------------------------------------


def test_new_task_copies_the_fields_and_stamps_times():
    task = make(description="by transfer", priority="high", tags=["Home"], timezone=ZONE)
    assert uuid.UUID(task.id)
    assert task.user_id == "user-1"
    assert (task.title, task.description, task.priority) == ("Pay rent", "by transfer", "high")
    assert task.tags == ("home",)
    assert task.timezone == ZONE
    assert task.status == "open"
    assert task.created_at == task.updated_at == NOW
    assert task.completed_at is None
    assert task.due_at is None
    assert task.reminders == ()


def test_new_task_gets_a_fresh_id_each_time():
    assert make().id != make().id


def test_non_recurring_task_has_no_series():
    task = make(due_at=DUE)
    assert task.recurrence is None
    assert (task.series_id, task.occurrence) == (None, None)


def test_recurring_task_starts_a_series_at_occurrence_one():
    task = make(due_at=DUE, recurrence={"rrule": "FREQ=WEEKLY"})
    assert task.recurrence.to_json() == Recurrence("FREQ=WEEKLY").to_json()
    assert uuid.UUID(task.series_id)
    assert task.series_id != task.id
    assert task.occurrence == 1


def test_reminders_before_are_relative_to_due_at_in_the_task_zone_and_at_is_absolute():
    task = with_reminders()
    p1d, pt15m, absolute = task.reminders
    assert p1d.remind_at == utc(2026, 3, 7, 14)  # 09:00 EST the day before, not 13:00Z
    assert (p1d.before, p1d.at) == ("P1D", None)
    assert pt15m.remind_at == utc(2026, 3, 8, 12, 45)
    assert pt15m.before == "PT15M"
    assert absolute.remind_at == absolute.at == utc(2026, 3, 5, 8)
    assert absolute.before is None
    assert {r.status for r in task.reminders} == {"scheduled"}
    assert len({r.id for r in task.reminders}) == 3


def test_same_relative_reminder_in_utc_is_24_hours_earlier():
    task = make(due_at=DUE, reminders=[{"before": "P1D"}])
    assert task.reminders[0].remind_at == utc(2026, 3, 7, 13)


def test_recurrence_without_due_at_is_an_error_on_due_at():
    assert error_fields(make, recurrence={"rrule": "FREQ=DAILY"}) == ["due_at"]


def test_relative_reminder_without_due_at_is_an_error_on_the_reminder():
    reminders = [{"at": "2026-03-05T08:00:00Z"}, {"before": "PT15M"}]
    assert error_fields(make, reminders=reminders) == ["reminders.1.before"]


def test_absolute_reminder_needs_no_due_at():
    task = make(reminders=[{"at": "2026-03-05T08:00:00Z"}])
    assert task.reminders[0].remind_at == utc(2026, 3, 5, 8)


def test_new_task_reports_both_consistency_errors():
    body = {"recurrence": {"rrule": "FREQ=DAILY"}, "reminders": [{"before": "P1D"}]}
    assert error_fields(make, **body) == ["due_at", "reminders.0.before"]


# --- apply_patch -------------------------------------------------------------------------------


def test_patch_changes_fields_and_lists_them_in_a_fixed_order():
    task = make(due_at=DUE)
    new, changed = patched(task, {"tags": ["x"], "title": "Pay the rent", "priority": "low"})
    assert changed == ["title", "priority", "tags"]
    assert (new.title, new.priority, new.tags) == ("Pay the rent", "low", ("x",))
    assert new.updated_at == LATER
    assert (new.id, new.created_at, new.due_at) == (task.id, task.created_at, task.due_at)


@pytest.mark.parametrize(
    "body",
    [{}, {"title": "Pay rent"}, {"title": " Pay rent "}, {"due_at": "2026-03-08T09:00:00-04:00"}],
)
def test_noop_patch_returns_the_same_task_and_no_changes(body):
    task = with_reminders()
    new, changed = patched(task, body)
    assert changed == []
    assert new is task


def test_moving_due_at_moves_relative_reminders_and_keeps_their_ids():
    task = with_reminders()
    new, changed = patched(task, {"due_at": "2026-03-10T13:00:00Z"})
    assert changed == ["due_at", "reminders"]
    assert [r.id for r in new.reminders] == [r.id for r in task.reminders]
    assert [r.remind_at for r in new.reminders] == [
        utc(2026, 3, 9, 13),
        utc(2026, 3, 10, 12, 45),
        utc(2026, 3, 5, 8),  # the absolute reminder does not move
    ]


def test_moving_due_at_re_arms_a_sent_relative_reminder():
    task = with_reminders()
    sent = task.with_changes(reminders=(replace(task.reminders[0], status="sent"),))
    new, _ = patched(sent, {"due_at": "2026-03-10T13:00:00Z"})
    assert new.reminders[0].id == task.reminders[0].id
    assert new.reminders[0].status == "scheduled"


def test_resending_identical_reminders_keeps_ids_and_status():
    task = with_reminders()
    task = task.with_changes(
        reminders=(replace(task.reminders[0], status="sent"), *task.reminders[1:])
    )
    body = {
        "reminders": [{"before": "P1D"}, {"before": "pt15m"}, {"at": "2026-03-05T03:00:00-05:00"}]
    }
    new, changed = patched(task, body)
    assert changed == []
    assert new is task
    assert [r.status for r in new.reminders] == ["sent", "scheduled", "scheduled"]


def test_replacing_reminders_keeps_matching_ones_and_creates_new_ones():
    task = with_reminders()
    new, changed = patched(task, {"reminders": [{"before": "PT15M"}, {"before": "PT1H"}]})
    assert changed == ["reminders"]
    assert new.reminders[0].id == task.reminders[1].id
    assert new.reminders[1].id not in {r.id for r in task.reminders}
    assert new.reminders[1].remind_at == utc(2026, 3, 8, 12)


def test_changing_the_timezone_moves_nominal_reminders_only():
    task = make(due_at=DUE, timezone=ZONE, reminders=[{"before": "P1D"}, {"before": "PT15M"}])
    new, changed = patched(task, {"timezone": "UTC"})
    assert changed == ["timezone", "reminders"]
    assert [r.remind_at for r in new.reminders] == [utc(2026, 3, 7, 13), utc(2026, 3, 8, 12, 45)]


def test_clearing_due_at_with_relative_reminders_is_an_error_on_due_at():
    task = with_reminders()
    assert error_fields(patched, task, {"due_at": None}) == ["due_at"]


def test_clearing_due_at_and_sending_relative_reminders_names_the_reminder():
    task = with_reminders()
    body = {"due_at": None, "reminders": [{"at": "2026-03-05T08:00:00Z"}, {"before": "PT5M"}]}
    assert error_fields(patched, task, body) == ["reminders.1.before"]


def test_clearing_due_at_together_with_relative_reminders_is_allowed():
    task = with_reminders()
    new, changed = patched(task, {"due_at": None, "reminders": [{"at": "2026-03-05T08:00:00Z"}]})
    assert changed == ["due_at", "reminders"]
    assert new.due_at is None
    assert [r.id for r in new.reminders] == [task.reminders[2].id]


def test_adding_a_recurrence_starts_a_series():
    task = make(due_at=DUE)
    new, changed = patched(task, {"recurrence": {"rrule": "FREQ=DAILY"}})
    assert changed == ["recurrence"]
    assert uuid.UUID(new.series_id)
    assert new.occurrence == 1


def test_changing_a_recurrence_keeps_the_series():
    task = make(due_at=DUE, recurrence={"rrule": "FREQ=DAILY"})
    new, changed = patched(task, {"recurrence": {"basis": "completion"}})
    assert changed == ["recurrence"]
    assert new.recurrence.to_json() == Recurrence("FREQ=DAILY", "completion").to_json()
    assert (new.series_id, new.occurrence) == (task.series_id, 1)


def test_adding_a_recurrence_without_due_at_is_an_error_on_due_at():
    assert error_fields(patched, make(), {"recurrence": {"rrule": "FREQ=DAILY"}}) == ["due_at"]


def test_clearing_due_at_of_a_recurring_task_is_an_error_on_due_at():
    task = make(due_at=DUE, recurrence={"rrule": "FREQ=DAILY"})
    assert error_fields(patched, task, {"due_at": None}) == ["due_at"]


def test_new_reminders_on_a_done_task_are_canceled():
    done, _ = complete(make(due_at=DUE), NOW)
    new, changed = patched(done, {"reminders": [{"before": "PT15M"}]})
    assert changed == ["reminders"]
    assert new.reminders[0].status == "canceled"


# --- complete and reopen -----------------------------------------------------------------------


def _with_statuses(*statuses: str) -> Task:
    task = with_reminders()
    return task.with_changes(
        reminders=tuple(replace(r, status=s) for r, s in zip(task.reminders, statuses, strict=True))
    )


def test_complete_marks_done_and_cancels_scheduled_reminders():
    task = _with_statuses("scheduled", "sent", "failed")
    done, did = complete(task, LATER)
    assert did is True
    assert done.status == "done"
    assert done.completed_at == done.updated_at == LATER
    assert [r.status for r in done.reminders] == ["canceled", "sent", "failed"]
    assert [r.id for r in done.reminders] == [r.id for r in task.reminders]


def test_complete_twice_is_idempotent():
    done, _ = complete(make(), NOW)
    again, did = complete(done, LATER)
    assert did is False
    assert again is done
    assert again.completed_at == NOW


def test_reopen_clears_completed_at_and_reschedules_future_canceled_reminders():
    done, _ = complete(with_reminders(), NOW)
    # now = 2026-03-06: the absolute reminder (03-05 08:00Z) has passed, the relative ones have not
    opened, did = reopen(done, utc(2026, 3, 6))
    assert did is True
    assert opened.status == "open"
    assert opened.completed_at is None
    assert opened.updated_at == utc(2026, 3, 6)
    assert [r.status for r in opened.reminders] == ["scheduled", "scheduled", "canceled"]


def test_reopen_leaves_sent_reminders_alone():
    task = _with_statuses("sent", "scheduled", "failed")
    done, _ = complete(task, NOW)
    opened, _ = reopen(done, NOW)
    assert [r.status for r in opened.reminders] == ["sent", "scheduled", "failed"]


def test_reopen_keeps_a_reminder_due_exactly_now_canceled():
    done, _ = complete(with_reminders(), NOW)
    opened, _ = reopen(done, utc(2026, 3, 8, 12, 45))  # the PT15M reminder's own time
    assert [r.status for r in opened.reminders] == ["canceled", "canceled", "canceled"]


def test_reopen_twice_is_idempotent():
    done, _ = complete(make(), NOW)
    opened, _ = reopen(done, LATER)
    again, did = reopen(opened, LATER + timedelta(hours=1))
    assert did is False
    assert again is opened


def test_reopen_an_open_task_does_nothing():
    task = make()
    assert reopen(task, LATER) == (task, False)
