"""The notify function's use case: e-mail each reminder instance of a batch (or of a single
reminder.due event) exactly once."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from dueflow.domain import events
from dueflow.domain.reminder_mail import (
    ReminderDue,
    compose,
    parse_reminder_due,
    parse_reminders_due,
)
from dueflow.service.outcome import Kind, Outcome
from dueflow.service.ports import (
    Email,
    EmailBackend,
    NoMetrics,
    PermanentEmailError,
    ServiceMetrics,
    TransientEmailError,
    UnitOfWorkFactory,
)
from dueflow.service.tasks import utcnow

log = logging.getLogger("dueflow.notify")


class NotifyService:
    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        backend: Callable[[], EmailBackend],
        sender: str,
        late_after: float = 120,
        clock: Callable[[], datetime] = utcnow,
        on_commit: Callable[[], None] = lambda: None,
        metrics: ServiceMetrics | None = None,
    ):
        self.uow_factory = uow_factory
        self.backend = backend  # built on first use: most cold starts of notify need no SDK
        self.sender = sender
        self.late_after = timedelta(seconds=late_after)
        self.clock = clock
        self.on_commit = on_commit
        self.metrics = metrics or NoMetrics()

    def on_reminder_due(self, data: object) -> Outcome:
        """Send the e-mail for a `dev.dueflow.reminder.due` event; says what it did.

        The reminder row stays locked while sending and the outcome is recorded under a unique
        (reminder, remind_at), so a redelivered or concurrent event sends nothing twice. A
        transient failure raises (the caller answers 5xx and the broker retries); a permanent one
        is recorded as failed and emits dev.dueflow.notification.failed."""
        return self._notify([parse_reminder_due(data)], single=True)

    def on_reminders_due(self, data: object) -> Outcome:
        """Send the e-mails of a `dev.dueflow.reminders.due` batch; says what it did.

        The same guarantees as one reminder.due each, in one transaction of a few statements:
        the batch's tasks and reminders stay locked while sending, and each outcome is recorded
        under its unique (reminder, remind_at). A permanent failure fails that reminder only. A
        transient one leaves its reminder unrecorded (and, when the backend itself is in
        trouble, the rest of the batch unsent): what went out is committed, then the caller
        answers 5xx and the redelivered batch sends only what is left.

        A mail server can send twice, so with SMTP, SendGrid or Dapr each accepted e-mail is
        recorded at once, before the next goes out, on a connection of its own (committed while
        this transaction keeps the locks; PostgreSQL only, SQLite has one writer): a crash then
        re-sends at most the one e-mail in flight, and the redelivery finishes what the crashed
        delivery recorded (the reminder's status, the event). The eml backend cannot send twice
        and needs none of this."""
        return self._notify(parse_reminders_due(data), single=False)

    def _notify(self, dues: list[ReminderDue], single: bool) -> Outcome:
        """The one path of both: a `single` reminder.due is a batch of one that says why it
        sent nothing, sends with `backend.send`, and emits notification.sent/failed; a batch
        finishes what a crashed delivery recorded and emits notifications.recorded."""
        transient: TransientEmailError | None = None
        with self.uow_factory() as uow:
            current = uow.reminders.lock_many([d.reminder_id for d in dues])
            done = uow.reminders.notified_many([(d.reminder_id, d.remind_at) for d in dues])
            todo, skipped = [], 0
            outcomes: list[dict] = []
            for due in dues:
                row = current.get(due.reminder_id)
                stale = _stale(due, row)
                notified = done.get((due.reminder_id, due.remind_at))
                if stale is None and notified is None:
                    todo.append((due, row))
                elif single:  # says why
                    if stale is not None:
                        return Outcome(stale)
                    return Outcome(f"already {notified}", Kind.DUPLICATE)
                elif stale is None and row["status"] == "scheduled":
                    # recorded by a delivery that crashed before its commit: finish it
                    outcomes.append(_recorded(due, row, notified))
                else:
                    skipped += 1
            now = self.clock()
            backend = self.backend() if todo or outcomes else None
            addressed = [(due, row) for due, row in todo if row["email"]]
            emails = [self._email(d, r["email"], now) for d, r in addressed]
            if single:
                on_accepted = None
                results = [_send_one(backend, email) for email in emails]
            else:
                on_accepted = self._recorder(addressed, backend, now, uow)
                results = send_all(backend, emails, on_accepted)
            sent_or_failed = dict(zip([d.key for d, _ in addressed], results, strict=False))
            for due, row in todo:
                outcome = {**due.as_dict(), "user_id": row["user_id"], "status": "sent"}
                if not row["email"]:
                    error: Exception | None = PermanentEmailError(
                        "the user's profile has no e-mail address"
                    )
                elif due.key not in sent_or_failed:
                    continue  # not tried: an earlier e-mail met a transient failure
                else:
                    error = sent_or_failed[due.key]
                if isinstance(error, TransientEmailError):
                    self.metrics.email(backend.name, "retry")
                    transient = error
                    continue
                if error is not None:
                    outcome.update(status="failed", error=_redact(str(error)))
                    log.warning(
                        "reminder e-mail failed for good",
                        extra={"key": due.key, "error": outcome["error"]},
                    )
                else:
                    # an early send (clock skew) counts as on time: a histogram's sum must not
                    # shrink, or rate() takes it for a counter reset
                    lateness = max(0.0, (now - due.remind_at).total_seconds())
                    self.metrics.reminder_lateness(lateness)
                # counted when sending, not at commit: a mail that went out went out
                self.metrics.email(backend.name, outcome["status"])
                if on_accepted is not None and due.key in on_accepted.recorded:
                    outcome["recorded"] = True
                outcomes.append(outcome)
            if outcomes:
                uow.reminders.record_notifications(outcomes, backend.name, now)
                for event in _events(dues, outcomes, backend.name, now, single):
                    uow.outbox.add(event, now)
                uow.commit()
        if outcomes:
            self.on_commit()
        if transient is not None:
            raise transient
        if single:
            return Outcome(outcomes[0]["status"])
        sent = sum(o["status"] == "sent" for o in outcomes)
        return Outcome(f"{sent} sent, {len(outcomes) - sent} failed, {skipped} skipped")

    def _recorder(self, addressed: list, backend, now: datetime, uow) -> _Recorder | None:
        """What records each accepted e-mail at once (see on_reminders_due), or None when
        nothing needs it: a backend that cannot send twice, or a database with one writer."""
        if not addressed or getattr(backend, "idempotent", False):
            return None
        if not uow.reminders.concurrent_writers():
            return None
        return _Recorder(self.uow_factory, {d.key: (d, r) for d, r in addressed}, backend, now)

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


class _Recorder:
    """`on_accepted` for send_all: writes the `sent` outcome of each accepted e-mail in a
    transaction of its own, committed before the next e-mail goes out. Only the notification
    row: the batch's transaction holds the reminders' locks and sets their status with the
    rest (the notifications table has no foreign key, so this insert waits for no lock)."""

    def __init__(self, uow_factory: Callable, addressed: dict, backend: EmailBackend, now):
        self.uow_factory = uow_factory
        self.addressed = addressed  # e-mail key -> (due, locked reminder row)
        self.backend = backend
        self.now = now
        self.recorded: set[str] = set()  # keys of the e-mails recorded so far

    def __call__(self, email: Email) -> None:
        due, row = self.addressed[email.key]
        outcome = {**due.as_dict(), "user_id": row["user_id"], "status": "sent"}
        # one such write at a time in the process: a pod needs one connection more, not one
        # more per batch in flight (docs/architecture.md, the connection budget)
        with _ONE_ASIDE, self.uow_factory() as aside:
            aside.reminders.insert_notifications([outcome], self.backend.name, self.now)
            aside.commit()
        self.recorded.add(email.key)


_ONE_ASIDE = threading.Lock()


def _stale(due: ReminderDue, row: dict | None) -> str | None:
    """Why `due` is no longer to be sent, given its locked reminder row (None: it is)."""
    if row is None or row["task_status"] != "open":
        return "stale: task done or deleted"
    if row["remind_at"] != due.remind_at or row["status"] == "canceled":
        return "stale: reminder moved or canceled"
    return None


def _events(dues: list[ReminderDue], outcomes: list[dict], backend: str, now, single: bool):
    """A reminder.due's notification.sent or .failed; a batch's one notifications.recorded."""
    if not single:
        return [events.notifications_recorded_event(outcomes, backend, now)]
    [due], [outcome] = dues, outcomes
    kind = events.NOTIFICATION_SENT if outcome["status"] == "sent" else events.NOTIFICATION_FAILED
    return [events.notification_event(kind, due.as_dict(), backend, now, outcome.get("error"))]


def _recorded(due: ReminderDue, row: dict, status: str) -> dict:
    """The outcome a crashed delivery recorded for `due` (its notification row exists)."""
    return {**due.as_dict(), "user_id": row["user_id"], "status": status, "recorded": True}


def send_all(
    backend: EmailBackend,
    emails: list[Email],
    on_accepted: Callable[[Email], None] | None = None,
) -> list[Exception | None]:
    """Each e-mail's outcome in order: None (sent) or the PermanentEmailError or
    TransientEmailError it met. The list may be shorter than `emails`: the e-mails after it
    were not tried. Sending one by one stops after the first transient failure (the server is
    likely in trouble: the rest waits for the retry); a backend with `send_many` sends the
    whole batch its own way (SMTP goes on past one recipient's 4xx on a live connection).
    `on_accepted(email)` runs for each accepted e-mail before the next is sent."""
    if not emails:
        return []
    if hasattr(backend, "send_many"):
        if on_accepted is None:
            return backend.send_many(emails)
        return backend.send_many(emails, on_accepted)
    results: list[Exception | None] = []
    for email in emails:
        results.append(error := _send_one(backend, email))
        if isinstance(error, TransientEmailError):
            break
        if error is None and on_accepted is not None:
            on_accepted(email)
    return results


def _send_one(backend: EmailBackend, email: Email) -> Exception | None:
    """None (sent), or the PermanentEmailError or TransientEmailError `backend.send` met."""
    try:
        backend.send(email)
    except (PermanentEmailError, TransientEmailError) as exc:
        return exc
    return None


_ADDRESS = re.compile(r"(?:\"[^\"]*\"|[^\s<>\"'(),;:]+)@[^\s<>\"'(),;:]+")


def _redact(error: str) -> str:
    """Mail servers quote addresses in their errors: events and records carry no addresses.
    Whatever the pattern misses still loses its '@', so nothing reads as an address."""
    return _ADDRESS.sub("<address>", error).replace("@", " at ")
