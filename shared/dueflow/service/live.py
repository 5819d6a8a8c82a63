"""The live feed's use cases: tickets for browsers, where a stream resumes, what the tail reads,
and the change log's retention. The streaming itself (one tail per process fanning out to the
open streams) is the live adapter's (dueflow.adapters.live)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from dueflow.domain.errors import FieldError, ValidationFailed
from dueflow.service.ports import Change, UnitOfWorkFactory
from dueflow.service.tasks import utcnow

#: Seconds a ticket from POST /live/tickets can open a stream.
TICKET_TTL_S = 60
_MAX_POSITION = 2**63 - 1


class LiveService:
    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        retention: timedelta,
        clock: Callable[[], datetime] = utcnow,
        batch: int = 500,
    ):
        self.uow_factory = uow_factory
        self.retention = retention
        self.clock = clock
        self.batch = batch  # changes read per query

    # -- tickets: how a browser's EventSource (which cannot send headers) authenticates --------
    def issue_ticket(self, user_id: str) -> tuple[str, int]:
        """A new ticket bound to `user_id` and how many seconds it can open a stream. Kept as
        its hash only, so the table holds nothing that opens a stream; any replica checks it."""
        ticket = secrets.token_urlsafe(32)
        with self.uow_factory() as uow:
            expires = self.clock() + timedelta(seconds=TICKET_TTL_S)
            uow.changes.add_ticket(_hash(ticket), user_id, expires)
            uow.commit()
        return ticket, TICKET_TTL_S

    def ticket_user(self, ticket: str) -> str | None:
        """Whose ticket this is, or None when unknown or expired."""
        if not ticket or len(ticket) > 200:
            return None
        with self.uow_factory(write=False) as uow:
            return uow.changes.ticket_user(_hash(ticket), self.clock())

    # -- streams ----------------------------------------------------------------------------
    def head(self) -> int:
        """The newest position: where a tail, or a stream without a position, starts."""
        with self.uow_factory(write=False) as uow:
            return uow.changes.head()

    def can_resume(self, position: int) -> bool:
        """Whether every change after `position` is still kept (False: the stream sends a reset,
        as for a position this log never gave out)."""
        with self.uow_factory(write=False) as uow:
            return uow.changes.horizon() <= position <= uow.changes.head()

    def replay(self, user_id: str, position: int) -> list[Change]:
        """The next batch (up to `batch`) of the user's changes after `position`."""
        with self.uow_factory(write=False) as uow:
            return uow.changes.after(position, self.batch, user_id)

    def tail(self, position: int) -> list[Change]:
        """The next batch of everyone's changes after `position` (a process's one tail)."""
        with self.uow_factory(write=False) as uow:
            return uow.changes.after(position, self.batch)

    def prune(self) -> int:
        """Drop changes older than the retention, and expired tickets; how many changes went."""
        with self.uow_factory() as uow:
            now = self.clock()
            gone = uow.changes.prune(now - self.retention, now)
            uow.commit()
        return gone


def parse_position(raw: str | None, field: str = "last_event_id") -> int | None:
    """A stream's position (`Last-Event-ID`, or the `last_event_id` parameter): None when absent,
    else the decimal id of a change this feed sent."""
    if raw is None or raw.strip() == "":
        return None
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit() or int(raw) > _MAX_POSITION:
        raise ValidationFailed([FieldError(field, "must be an id this feed sent")])
    return int(raw)


def _hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()
