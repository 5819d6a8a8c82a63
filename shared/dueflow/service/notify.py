"""The notify function's use case: e-mail one reminder instance exactly once."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta

from dueflow import metrics
from dueflow.adapters.email import Email, EmailBackend, PermanentEmailError, TransientEmailError
from dueflow.domain import events
from dueflow.domain.reminder_mail import ReminderDue, compose, parse_reminder_due
from dueflow.service.tasks import utcnow

log = logging.getLogger("dueflow.notify")


class NotifyService:
    def __init__(
        self,
        uow_factory: Callable,
        backend: Callable[[], EmailBackend],
        sender: str,
        late_after: float = 120,
        clock: Callable[[], datetime] = utcnow,
        on_commit: Callable[[], None] = lambda: None,
    ):
        self.uow_factory = uow_factory
        self.backend = backend  # built on first use: most cold starts of notify need no SDK
        self.sender = sender
        self.late_after = timedelta(seconds=late_after)
        self.clock = clock
        self.on_commit = on_commit

    def on_reminder_due(self, data: object) -> str:
        """Send the e-mail for a `dev.dueflow.reminder.due` event; says what it did.

        The reminder row stays locked while sending and the outcome is recorded under a unique
        (reminder, remind_at), so a redelivered or concurrent event sends nothing twice. A
        transient failure raises (the caller answers 5xx and the broker retries); a permanent one
        is recorded as failed and emits dev.dueflow.notification.failed."""
        due = parse_reminder_due(data)
        with self.uow_factory() as uow:
            current = uow.reminders.lock(due.reminder_id)
            if current is None or current["task_status"] != "open":
                return "stale: task done or deleted"
            if current["remind_at"] != due.remind_at or current["status"] == "canceled":
                return "stale: reminder moved or canceled"
            if (outcome := uow.reminders.notified(due.reminder_id, due.remind_at)) is not None:
                return f"already {outcome}"
            now = self.clock()
            backend = self.backend()
            status, error = "sent", None
            try:
                address = uow.users.email(current["user_id"])  # the owner, not the event's word
                if not address:
                    raise PermanentEmailError("the user's profile has no e-mail address")
                backend.send(self._email(due, address, now))
            except PermanentEmailError as exc:
                status, error = "failed", _redact(str(exc))
                log.warning(
                    "reminder e-mail failed for good", extra={"key": due.key, "error": error}
                )
            except TransientEmailError:
                metrics.EMAILS.labels(backend.name, "retry").inc()
                raise
            # counted when sending, not at commit: a mail that went out went out
            metrics.EMAILS.labels(backend.name, status).inc()
            if status == "sent":
                # an early send (clock skew) counts as on time: a histogram's sum must not
                # shrink, or rate() takes it for a counter reset
                lateness = max(0.0, (now - due.remind_at).total_seconds())
                metrics.REMINDER_LATENESS.observe(lateness)
            uow.reminders.record_notification(due.as_dict(), status, backend.name, error, now)
            uow.reminders.set_status(due.reminder_id, status)
            kind = events.NOTIFICATION_SENT if status == "sent" else events.NOTIFICATION_FAILED
            uow.outbox.add(
                events.notification_event(kind, due.as_dict(), backend.name, now, error), now
            )
            uow.commit()
        self.on_commit()
        return status

    def _email(self, due: ReminderDue, address: str, now: datetime) -> Email:
        # late when the tick saw it late, or when retries delayed it since
        subject, text = compose(due, due.late or now - due.remind_at > self.late_after)
        return Email(
            to=address,
            sender=self.sender,
            subject=subject,
            text=text,
            message_id=due.message_id,
            key=due.key,
        )


_ADDRESS = re.compile(r"[^\s<>\"'(),;:]+@[^\s<>\"'(),;:]+")


def _redact(error: str) -> str:
    """Mail servers quote addresses in their errors: events and records carry no addresses."""
    return _ADDRESS.sub("<address>", error)
