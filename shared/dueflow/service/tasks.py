"""Task use cases: each runs in one transaction that writes the change and its event together."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from dueflow.domain import events, lifecycle
from dueflow.domain.errors import NotFound
from dueflow.domain.listing import parse_list_query
from dueflow.domain.profile import DEFAULT_TIMEZONE, parse_profile_patch
from dueflow.domain.task import Task
from dueflow.domain.validation import parse_create, parse_patch, parse_snooze
from dueflow.service.ports import UnitOfWorkFactory

Dedupe = tuple[str, str] | None  # a command CloudEvent's (source, id)


class AlreadyApplied(Exception):
    """The command event was applied before: nothing to do."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class TaskService:
    """Use cases for one caller. `uow_factory(write=...)` gives a UnitOfWork (see adapters.db)."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Callable[[], datetime] = utcnow,
        on_commit: Callable[[], None] = lambda: None,
    ):
        self.uow_factory = uow_factory
        self.clock = clock
        self.on_commit = on_commit  # e.g. wake the outbox relay
        self._known_users: dict[str, str | None] = {}  # users remembered by this process

    def create(self, user_id: str, body: Any, dedupe: Dedupe = None) -> Task:
        fields = parse_create(body)
        now = self.clock()
        task = lifecycle.new_task(user_id, fields, now)
        with self._unit(dedupe) as uow:
            uow.add_task(task, [events.task_event(events.TASK_CREATED, task, now)], now)
            uow.commit()
        self.on_commit()
        return task

    def get(self, user_id: str, task_id: str) -> Task:
        with self.uow_factory(write=False) as uow:
            return self._load(uow, user_id, task_id)

    def update(self, user_id: str, task_id: str, body: Any, dedupe: Dedupe = None) -> Task:
        with self._unit(dedupe) as uow:
            task = self._load(uow, user_id, task_id, for_update=True)
            patch = parse_patch(body, task.recurrence)
            now = self.clock()
            updated, changed = lifecycle.apply_patch(task, patch, now)
            if not changed:
                return task  # nothing changed: no write, no event
            uow.tasks.update(updated, task)
            uow.outbox.add(events.task_event(events.TASK_UPDATED, updated, now, changed), now)
            uow.commit()
        self.on_commit()
        return updated

    def complete(self, user_id: str, task_id: str, dedupe: Dedupe = None) -> Task:
        return self._transition(user_id, task_id, lifecycle.complete, events.TASK_COMPLETED, dedupe)

    def reopen(self, user_id: str, task_id: str) -> Task:
        return self._transition(user_id, task_id, lifecycle.reopen, events.TASK_REOPENED)

    def skip(self, user_id: str, task_id: str) -> Task:
        """Move a recurring task to its next occurrence without completing it."""
        with self.uow_factory() as uow:
            task = self._load(uow, user_id, task_id, for_update=True)
            now = self.clock()
            moved = lifecycle.skip(task, now)
            uow.tasks.update(moved, task)
            changed = [n for n in ("due_at", "reminders") if getattr(moved, n) != getattr(task, n)]
            uow.outbox.add(events.task_event(events.TASK_UPDATED, moved, now, changed), now)
            uow.commit()
        self.on_commit()
        return moved

    def snooze(self, user_id: str, task_id: str, reminder_id: str, body: Any) -> Task:
        with self.uow_factory() as uow:
            task = self._load(uow, user_id, task_id, for_update=True)
            now = self.clock()
            until = parse_snooze(body, now, task.timezone)
            snoozed = lifecycle.snooze(task, reminder_id, until, now)
            uow.tasks.update(snoozed, task)
            uow.outbox.add(events.task_event(events.TASK_UPDATED, snoozed, now, ["reminders"]), now)
            uow.commit()
        self.on_commit()
        return snoozed

    def delete(self, user_id: str, task_id: str, dedupe: Dedupe = None) -> None:
        with self._unit(dedupe) as uow:
            task = self._load(uow, user_id, task_id, for_update=True)
            now = self.clock()
            uow.tasks.delete(task)
            uow.outbox.add(events.task_event(events.TASK_DELETED, task, now), now)
            uow.commit()
        self.on_commit()

    def list(
        self, user_id: str, args: Mapping[str, Sequence[str]]
    ) -> tuple[list[Task], str | None]:
        query = parse_list_query(args)
        with self.uow_factory(write=False) as uow:
            return uow.tasks.list(user_id, query, self.clock())

    def tags(self, user_id: str) -> list[tuple[str, int]]:
        with self.uow_factory(write=False) as uow:
            return uow.tasks.tag_counts(user_id)

    def remember_user(self, user_id: str, email: str | None) -> None:
        """Record the caller (and their token's e-mail): one write per user and process, or
        when the e-mail changes, not one per request."""
        if self._known_users.get(user_id, ...) == email:
            return
        with self.uow_factory() as uow:
            uow.users.remember(user_id, email, self.clock())
            uow.commit()
        self._known_users[user_id] = email

    def profile(self, user_id: str) -> dict[str, Any]:
        """The caller's profile: `email` (where reminders go) and `timezone` (default UTC)."""
        with self.uow_factory(write=False) as uow:
            found = uow.users.profile(user_id)
        return found or {"email": None, "timezone": DEFAULT_TIMEZONE}

    def update_profile(self, user_id: str, body: Any) -> dict[str, Any]:
        """Merge-patch the profile (`timezone`, `email`); returns the whole profile."""
        changes = parse_profile_patch(body)
        with self.uow_factory() as uow:
            now = self.clock()
            if uow.users.profile(user_id, for_update=True) is None:
                uow.users.remember(user_id, None, now)
            if changes:
                uow.users.update_profile(user_id, changes, now)
            profile = uow.users.profile(user_id)
            uow.commit()
        return profile

    def reschedule(self, user_id: str, task_id: str, due_at: datetime) -> Task:
        """Move this instance to `due_at`; a recurring task's series keeps its rule and times."""
        with self.uow_factory() as uow:
            task = self._load(uow, user_id, task_id, for_update=True)
            now = self.clock()
            moved, changed = lifecycle.reschedule(task, due_at, now)
            if not changed:
                return task
            uow.tasks.update(moved, task)
            uow.outbox.add(events.task_event(events.TASK_UPDATED, moved, now, changed), now)
            uow.commit()
        self.on_commit()
        return moved

    def _transition(
        self, user_id: str, task_id: str, change: Callable, event_type: str, dedupe: Dedupe = None
    ) -> Task:
        with self._unit(dedupe) as uow:
            task = self._load(uow, user_id, task_id, for_update=True)
            now = self.clock()
            changed, did_change = change(task, now)
            if not did_change:
                return task  # idempotent: the same answer, no second event
            uow.tasks.update(changed, task)
            uow.outbox.add(events.task_event(event_type, changed, now), now)
            uow.commit()
        self.on_commit()
        return changed

    @contextmanager
    def _unit(self, dedupe: Dedupe):
        """A write unit of work that, for a command event, first records its (source, id): a
        redelivered command stops here; the record commits with the change or not at all."""
        with self.uow_factory() as uow:
            if dedupe is not None and not uow.commands.claim(*dedupe, self.clock()):
                raise AlreadyApplied(f"command {dedupe[1]} from {dedupe[0]} was applied")
            yield uow

    @staticmethod
    def _load(uow, user_id: str, task_id: str, *, for_update: bool = False) -> Task:
        try:
            canonical_id = str(uuid.UUID(task_id))
        except (ValueError, TypeError, AttributeError):
            raise NotFound(f"no task {task_id}") from None
        task = uow.tasks.get(user_id, canonical_id, for_update=for_update)
        if task is None:
            raise NotFound(f"no task {task_id}")
        return task
