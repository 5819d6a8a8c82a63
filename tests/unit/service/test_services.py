"""The use cases on in-memory fakes of their ports (conftest.py): what each writes, which events
it emits, and that a redelivery changes nothing. Milliseconds, no database; the same behaviour
through the real stores and functions-framework is in tests/functions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dueflow.domain import events
from dueflow.domain.delivery import InboundEvent
from dueflow.domain.errors import Conflict, ValidationFailed
from dueflow.service.commands import CommandService
from dueflow.service.dead_letters import DeadLetterService
from dueflow.service.notify import NotifyService
from dueflow.service.outcome import Kind
from dueflow.service.ports import TransientEmailError
from dueflow.service.recurrence import RecurrenceService
from dueflow.service.reminders import ReminderService
from dueflow.service.tasks import TaskService
from tests.support.clock import T0

SENDER = "dueflow <reminders@dueflow.test>"
RENT = {
    "title": "Pay rent",
    "due_at": (T0 + timedelta(hours=1)).isoformat(),
    "timezone": "Europe/Berlin",
    "reminders": [{"before": "PT1H"}, {"before": "PT30M"}],
}
DAILY = {
    "title": "Water the plants",
    "due_at": (T0 + timedelta(hours=1)).isoformat(),
    "timezone": "Europe/Berlin",
    "recurrence": {"rrule": "FREQ=DAILY"},
}


@pytest.fixture
def commits() -> list[int]:
    return []


@pytest.fixture
def tasks(uow, clock, commits) -> TaskService:
    return TaskService(uow, clock=clock, on_commit=lambda: commits.append(1))


# -- tasks ------------------------------------------------------------------------------------


def test_create_stores_the_task_and_its_event_together(tasks, uow, commits):
    task = tasks.create("alice", RENT)

    assert uow.db.tasks == {task.id: task}
    assert [e["type"] for e in uow.db.outbox] == [events.TASK_CREATED]
    assert uow.db.outbox[0]["data"]["task"]["id"] == task.id
    assert [r.remind_at for r in task.reminders] == [T0, T0 + timedelta(minutes=30)]
    assert commits == [1]


def test_invalid_create_writes_nothing(tasks, uow, commits):
    with pytest.raises(ValidationFailed):
        tasks.create("alice", {"title": ""})
    assert (uow.db.tasks, uow.db.outbox, uow.db.commits, commits) == ({}, [], 0, [])


def test_update_emits_the_changed_fields_and_nothing_for_no_change(tasks, uow, clock):
    task = tasks.create("alice", RENT)
    clock.advance(minutes=1)

    same = tasks.update("alice", task.id, {"title": "Pay rent"})
    updated = tasks.update("alice", task.id, {"title": "Pay the rent", "priority": "high"})

    assert same == task
    assert updated.updated_at == clock.now
    changes = [e for e in uow.db.outbox if e["type"] == events.TASK_UPDATED]
    assert len(changes) == 1
    assert sorted(changes[0]["data"]["changed"]) == ["priority", "title"]


def test_complete_is_idempotent_and_cancels_reminders(tasks, uow):
    task = tasks.create("alice", RENT)
    done = tasks.complete("alice", task.id)
    again = tasks.complete("alice", task.id)

    assert done == again and done.status == "done"
    assert {r.status for r in uow.db.tasks[task.id].reminders} == {"canceled"}
    assert len(uow.db.events(events.TASK_COMPLETED)) == 1


def test_completing_a_recurring_task_begets_the_next_instance_once(tasks, uow, clock):
    recurrence = RecurrenceService(uow, clock=clock)
    task = tasks.create("alice", DAILY)
    tasks.complete("alice", task.id)
    completed = uow.db.events(events.TASK_COMPLETED)[0]["data"]

    first = recurrence.on_task_completed(completed)
    again = recurrence.on_task_completed(completed)

    assert (first.kind, first.detail) == (Kind.DONE, "next instance created")
    assert (again.kind, again.detail) == (Kind.DUPLICATE, "next instance exists")
    (instance,) = [t for t in uow.db.tasks.values() if t.id != task.id]
    assert instance.due_at == task.due_at + timedelta(days=1)
    assert (instance.series_id, instance.occurrence) == (task.series_id, 2)


def test_skip_moves_a_recurring_task_to_its_next_occurrence(tasks, uow):
    task = tasks.create("alice", DAILY)
    moved = tasks.skip("alice", task.id)

    assert moved.due_at == task.due_at + timedelta(days=1)
    assert moved.status == "open"
    assert uow.db.events(events.TASK_UPDATED)[0]["data"]["changed"] == ["due_at"]
    with pytest.raises(ValidationFailed):
        tasks.skip("alice", tasks.create("alice", RENT).id)  # not recurring


def test_snooze_fires_a_reminder_again_later(tasks, uow, clock):
    task = tasks.create("alice", RENT)
    reminder = task.reminders[0]
    until = clock.now + timedelta(hours=2)

    snoozed = tasks.snooze("alice", task.id, reminder.id, {"until": until.isoformat()})

    assert snoozed.reminders[0].remind_at == until
    assert snoozed.reminders[0].status == "scheduled"
    tasks.complete("alice", task.id)
    with pytest.raises(Conflict):
        tasks.snooze("alice", task.id, reminder.id, {"until": until.isoformat()})


# -- reminders and notify ---------------------------------------------------------------------


def test_a_tick_emits_each_due_reminder_once(tasks, uow, clock):
    reminders = ReminderService(uow, clock=clock, event_batch=100)
    tasks.create("alice", RENT)  # its one-hour reminder is due at T0

    assert reminders.tick() == 1
    assert reminders.tick() == 0
    clock.advance(minutes=30)
    assert reminders.tick() == 1
    batches = uow.db.events(events.REMINDERS_DUE)
    assert [len(b["data"]["reminders"]) for b in batches] == [1, 1]


def _due_batch(tasks, uow, clock, users: dict[str, str | None]) -> dict:
    """One reminders.due batch with a due reminder of each user's task."""
    for user, address in users.items():
        tasks.remember_user(user, address)
        tasks.create(user, {**RENT, "reminders": [{"before": "PT1H"}]})
    ReminderService(uow, clock=clock, event_batch=100).tick()
    (batch,) = uow.db.events(events.REMINDERS_DUE)
    return batch["data"]


@pytest.fixture
def notify(uow, clock, mailer, metrics) -> NotifyService:
    return NotifyService(uow, lambda: mailer, SENDER, clock=clock, metrics=metrics)


def test_notify_mails_a_batch_once_per_reminder(tasks, uow, clock, notify, mailer, metrics):
    data = _due_batch(tasks, uow, clock, {"alice": "alice@example.com", "bob": None})

    first = notify.on_reminders_due(data)
    again = notify.on_reminders_due(data)

    assert first.detail == "1 sent, 1 failed, 0 skipped"  # bob has no address
    assert again.detail == "0 sent, 0 failed, 2 skipped"
    assert [m.to for m in mailer.sent] == ["alice@example.com"]
    assert metrics.emails == {("fake", "sent"): 1, ("fake", "failed"): 1}
    assert {n["status"] for n in uow.db.notifications.values()} == {"sent", "failed"}
    (recorded,) = uow.db.events(events.NOTIFICATIONS_RECORDED)
    assert len(recorded["data"]["notifications"]) == 2


def test_a_transient_failure_keeps_what_went_out_and_retries_the_rest(
    tasks, uow, clock, notify, mailer, metrics
):
    data = _due_batch(tasks, uow, clock, {"alice": "alice@example.com", "bob": "bob@example.com"})
    mailer.fail["bob@example.com"] = TransientEmailError("421 try later")

    with pytest.raises(TransientEmailError):
        notify.on_reminders_due(data)
    del mailer.fail["bob@example.com"]
    retried = notify.on_reminders_due(data)

    assert sorted(m.to for m in mailer.sent) == ["alice@example.com", "bob@example.com"]
    assert retried.detail == "1 sent, 0 failed, 1 skipped"
    assert metrics.emails[("fake", "retry")] == 1


def test_one_reminder_due_is_mailed_once(tasks, uow, clock, notify, mailer):
    data = _due_batch(tasks, uow, clock, {"alice": "alice@example.com"})["reminders"][0]

    assert notify.on_reminder_due(data).detail == "sent"
    assert notify.on_reminder_due(data).kind is Kind.DUPLICATE
    assert len(mailer.sent) == 1


# -- commands and dead letters ----------------------------------------------------------------


def command(kind: str, data: dict, event_id: str = "c-1") -> InboundEvent:
    return InboundEvent(f"dev.dueflow.command.task.{kind}", "assistant", event_id, data)


def test_a_command_is_applied_once_per_source_and_id(tasks, uow):
    commands = CommandService(tasks)

    created = commands.handle(command("create", {"user_id": "alice", "title": "Call Bob"}))
    again = commands.handle(command("create", {"user_id": "alice", "title": "Call Bob"}))
    other = commands.handle(command("create", {"user_id": "alice", "title": "Bob"}, "c-2"))

    assert created.kind is Kind.DONE and created.detail.startswith("created ")
    assert (again.kind, again.detail) == (Kind.DUPLICATE, "duplicate: already applied")
    assert other.kind is Kind.DONE
    assert sorted(t.title for t in uow.db.tasks.values()) == ["Bob", "Call Bob"]
    assert uow.db.commands == {("assistant", "c-1"), ("assistant", "c-2")}


def test_an_invalid_command_changes_nothing(tasks, uow):
    with pytest.raises(ValidationFailed):
        CommandService(tasks).handle(command("create", {"user_id": "a b", "title": "x"}))
    assert (uow.db.tasks, uow.db.commands) == ({}, set())


def test_a_dead_letter_is_stored_once_and_counted(uow, clock, metrics):
    letters = DeadLetterService(uow, clock=clock, metrics=metrics)
    attributes = {
        "type": events.TASK_CREATED,
        "source": "tasks",
        "id": "e-1",
        "knativeerrordest": "http://recurrence",
    }
    delivery = InboundEvent(events.TASK_CREATED, "tasks", "e-1", {"x": 1}, attributes)

    assert letters.store(delivery).kind is Kind.DONE
    assert letters.store(delivery).kind is Kind.DUPLICATE
    assert metrics.dead_letters == 1
    assert [d["error_dest"] for d in letters.list()] == ["http://recurrence"]
