"""The reminders function's use case: each tick turns due reminders into events, batched
(dev.dueflow.reminders.due) or one each (dev.dueflow.reminder.due)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from dueflow.domain import events
from dueflow.service.ports import NoMetrics, ServiceMetrics, UnitOfWorkFactory
from dueflow.service.tasks import utcnow


class ReminderService:
    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        *,
        batch_size: int = 1000,
        event_batch: int = 100,
        late_after: float = 120,
        reemit_after: float = 300,
        clock: Callable[[], datetime] = utcnow,
        on_commit: Callable[[], None] = lambda: None,
        metrics: ServiceMetrics | None = None,
    ):
        self.uow_factory = uow_factory
        self.batch_size = batch_size
        self.event_batch = event_batch
        self.late_after = timedelta(seconds=late_after)
        self.reemit_after = timedelta(seconds=reemit_after)
        self.clock = clock
        self.on_commit = on_commit
        self.metrics = metrics or NoMetrics()

    def tick(self) -> int:
        """Emit every due reminder once (through the outbox); returns how many were emitted.

        Each batch is one transaction of three statements (claim, insert events, mark), so 10,000
        due reminders cost ten round trips of each, not ten thousand. A crash before commit
        leaves the batch unclaimed for the next tick; after commit the outbox delivers it.

        Reminders go out `event_batch` to a dev.dueflow.reminders.due event (one delivery, one
        notify transaction for up to that many e-mails); with event_batch 1, one
        dev.dueflow.reminder.due event each.

        A reminder emitted more than `reemit_after` ago and still not sent is emitted again:
        its event may have ended in the dead-letter store (notify's retries ran out while the
        mail server was down) or be lost with a broker, and a reminder must not wait for
        someone to replay it. notify sends each reminder instance once however often it comes.
        """
        total = 0
        while True:
            now = self.clock()
            with self.uow_factory() as uow:
                due = uow.reminders.claim_due(now, self.batch_size, now - self.reemit_after)
                if not due:
                    break
                uow.outbox.add_many(self._events(due, now), now)
                uow.reminders.mark_emitted([d["reminder_id"] for d in due], now)
                uow.commit()
            total += len(due)
            self.metrics.reminders_reemitted(sum(bool(d["reemitted"]) for d in due))
            self.on_commit()
            if len(due) < self.batch_size:
                break
        return total

    def fire(self, reminder_id: str) -> int:
        """A Dapr job's callback: emit reminder `reminder_id` if it is due and not emitted yet,
        claimed exactly as the tick claims it (so the tick, a second delivery of the job or a
        late one find it claimed: one event, one e-mail); returns 1 or 0."""
        now = self.clock()
        with self.uow_factory() as uow:
            due = uow.reminders.claim_due(now, 1, reminder_id=reminder_id)
            if not due:
                return 0
            uow.outbox.add_many(self._events(due, now), now)
            uow.reminders.mark_emitted([reminder_id], now)
            uow.commit()
        self.on_commit()
        return 1

    def _events(self, due: list[dict], now: datetime) -> list[dict]:
        flagged = [(d, now - d["remind_at"] > self.late_after) for d in due]
        if self.event_batch <= 1:
            return [events.reminder_due_event(d, now, late) for d, late in flagged]
        size = self.event_batch
        return [
            events.reminders_due_event(flagged[i : i + size], now)
            for i in range(0, len(flagged), size)
        ]
