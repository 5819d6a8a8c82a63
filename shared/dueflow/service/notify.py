"""The notify function's use case: e-mail one reminder instance exactly once."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta

from dueflow import metrics
from dueflow.adapters.email import Email, EmailBackend, PermanentEmailError, TransientEmailError
from dueflow.domain import events
from dueflow.domain.reminder_mail import (
    ReminderDue,
    compose,
    parse_reminder_due,
    parse_reminders_due,
)
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
            current = uow.reminders.lock_many([due.reminder_id]).get(due.reminder_id)
            if current is None or current["task_status"] != "open":
                return "stale: task done or deleted"
            if current["remind_at"] != due.remind_at or current["status"] == "canceled":
                return "stale: reminder moved or canceled"
            instance = (due.reminder_id, due.remind_at)
            if (outcome := uow.reminders.notified_many([instance]).get(instance)) is not None:
                return f"already {outcome}"
            now = self.clock()
            backend = self.backend()
            status, error = "sent", None
            try:
                address = current["email"]  # the owner's, not the event's word
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
            outcome = {**due.as_dict(), "user_id": current["user_id"], "status": status}
            uow.reminders.record_notifications([{**outcome, "error": error}], backend.name, now)
            kind = events.NOTIFICATION_SENT if status == "sent" else events.NOTIFICATION_FAILED
            uow.outbox.add(
                events.notification_event(kind, due.as_dict(), backend.name, now, error), now
            )
            uow.commit()
        self.on_commit()
        return status

    def on_reminders_due(self, data: object) -> str:
        """Send the e-mails of a `dev.dueflow.reminders.due` batch; says what it did.

        The same guarantees as one reminder.due each, in one transaction of a few statements:
        the batch's tasks and reminders stay locked while sending, and each outcome is recorded
        under its unique (reminder, remind_at). A permanent failure fails that reminder only. A
        transient one leaves its reminder unrecorded (and, when the backend itself is in
        trouble, the rest of the batch unsent): what went out is committed, then the caller
        answers 5xx and the redelivered batch sends only what is left.

        That holds for a backend that cannot send twice (`idempotent`: the .eml outbox). A
        mail server or API can: a crash after it accepted e-mails and before the commit would
        send them all again, so for those each reminder is sent and recorded in a transaction
        of its own (see `_send_one_by_one`)."""
        dues = parse_reminders_due(data)
        if dues and not getattr(self.backend(), "idempotent", False):
            return self._send_one_by_one(dues, self.backend())
        transient: TransientEmailError | None = None
        with self.uow_factory() as uow:
            current = uow.reminders.lock_many([d.reminder_id for d in dues])
            done = uow.reminders.notified_many([(d.reminder_id, d.remind_at) for d in dues])
            todo, skipped = [], 0
            for due in dues:
                row = current.get(due.reminder_id)
                if _stale(due, row, done):
                    skipped += 1
                else:
                    todo.append((due, row))
            now = self.clock()
            backend = self.backend() if todo else None
            addressed = [(due, row) for due, row in todo if row["email"]]
            results = send_all(backend, [self._email(d, r["email"], now) for d, r in addressed])
            sent_or_failed = dict(zip([d.key for d, _ in addressed], results, strict=False))
            outcomes: list[dict] = []
            for due, row in todo:
                if not row["email"]:
                    error: Exception | None = PermanentEmailError(NO_ADDRESS)
                elif due.key not in sent_or_failed:
                    continue  # not tried: an earlier e-mail met a transient failure
                else:
                    error = sent_or_failed[due.key]
                if isinstance(error, TransientEmailError):
                    metrics.EMAILS.labels(backend.name, "retry").inc()
                    transient = error
                    continue
                outcomes.append(_settled(due, row, error, backend.name, now))
            if outcomes:
                uow.reminders.record_notifications(outcomes, backend.name, now)
                uow.outbox.add(
                    events.notifications_recorded_event(outcomes, backend.name, now), now
                )
                uow.commit()
        if outcomes:
            self.on_commit()
        if transient is not None:
            raise transient
        sent = sum(o["status"] == "sent" for o in outcomes)
        return f"{sent} sent, {len(outcomes) - sent} failed, {skipped} skipped"

    def _send_one_by_one(self, dues: list[ReminderDue], backend: EmailBackend) -> str:
        """A batch for a backend that may send twice: each reminder is locked, checked, sent
        and recorded in a transaction of its own, so an accepted e-mail is committed before
        the next one goes out and a crash re-sends at most the one in flight (with the same
        Message-ID, for the receiver to drop). One connection serves the whole batch
        (`session()`, SMTP); a transient failure stops the batch unless the connection still
        answers (then it was that recipient's 4xx), and is raised after what went out is
        recorded, so the redelivered batch sends only what is left."""
        sent = failed = skipped = 0
        transient: TransientEmailError | None = None
        session = backend.session() if hasattr(backend, "session") else _OneByOne(backend)
        try:
            for due in dues:
                with self.uow_factory() as uow:
                    row = uow.reminders.lock_many([due.reminder_id]).get(due.reminder_id)
                    instance = (due.reminder_id, due.remind_at)
                    if _stale(due, row, uow.reminders.notified_many([instance])):
                        skipped += 1
                        continue
                    now = self.clock()
                    error: Exception | None = None
                    try:
                        if not row["email"]:
                            raise PermanentEmailError(NO_ADDRESS)
                        session.send(self._email(due, row["email"], now))
                    except PermanentEmailError as exc:
                        error = exc
                    except TransientEmailError as exc:
                        metrics.EMAILS.labels(backend.name, "retry").inc()
                        transient = exc
                        if session.usable():
                            continue
                        break
                    outcome = _settled(due, row, error, backend.name, now)
                    uow.reminders.record_notifications([outcome], backend.name, now)
                    uow.outbox.add(
                        events.notifications_recorded_event([outcome], backend.name, now), now
                    )
                    uow.commit()
                self.on_commit()
                sent, failed = sent + (error is None), failed + (error is not None)
        finally:
            session.close()
        if transient is not None:
            raise transient
        return f"{sent} sent, {failed} failed, {skipped} skipped"

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


NO_ADDRESS = "the user's profile has no e-mail address"


def _stale(due: ReminderDue, row: dict | None, done: dict) -> bool:
    """Nothing to send: the reminder or its task is gone, done, moved or canceled, or this
    instance has an outcome already (`done`, from notified_many)."""
    return (
        row is None
        or row["task_status"] != "open"
        or row["remind_at"] != due.remind_at
        or row["status"] == "canceled"
        or (due.reminder_id, due.remind_at) in done
    )


def _settled(
    due: ReminderDue, row: dict, error: Exception | None, backend: str, now: datetime
) -> dict:
    """The outcome to record for a reminder sent (`error` None) or failed for good, counted."""
    outcome = {**due.as_dict(), "user_id": row["user_id"], "status": "sent"}
    if error is not None:
        outcome.update(status="failed", error=_redact(str(error)))
        log.warning(
            "reminder e-mail failed for good", extra={"key": due.key, "error": outcome["error"]}
        )
    else:
        # an early send (clock skew) counts as on time: a histogram's sum must not shrink
        metrics.REMINDER_LATENESS.observe(max(0.0, (now - due.remind_at).total_seconds()))
    metrics.EMAILS.labels(backend, outcome["status"]).inc()
    return outcome


class _OneByOne:
    """The session of a backend without one (SendGrid, Dapr): a request per e-mail; after a
    transient failure the rest waits for the retry (the service is likely in trouble)."""

    def __init__(self, backend: EmailBackend):
        self.send = backend.send

    def usable(self) -> bool:
        return False

    def close(self) -> None:
        pass


def send_all(backend: EmailBackend, emails: list[Email]) -> list[Exception | None]:
    """Each e-mail's outcome in order: None (sent) or the PermanentEmailError or
    TransientEmailError it met. The list may be shorter than `emails`: the e-mails after it
    were not tried. Sending one by one stops after the first transient failure (the server is
    likely in trouble: the rest waits for the retry); a backend with `send_many` sends the
    whole batch its own way (SMTP goes on past one recipient's 4xx on a live connection)."""
    if not emails:
        return []
    if hasattr(backend, "send_many"):
        return backend.send_many(emails)
    results: list[Exception | None] = []
    for email in emails:
        try:
            backend.send(email)
        except PermanentEmailError as exc:
            results.append(exc)
            continue
        except TransientEmailError as exc:
            results.append(exc)
            break
        results.append(None)
    return results


_ADDRESS = re.compile(r"(?:\"[^\"]*\"|[^\s<>\"'(),;:]+)@[^\s<>\"'(),;:]+")


def _redact(error: str) -> str:
    """Mail servers quote addresses in their errors: events and records carry no addresses.
    Whatever the pattern misses still loses its '@', so nothing reads as an address."""
    return _ADDRESS.sub("<address>", error).replace("@", " at ")
