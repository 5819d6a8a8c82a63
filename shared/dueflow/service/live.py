"""The live feed's use cases: tickets for browsers, where a stream resumes, what the tail reads,
and the change log's retention. The streaming itself (one tail per process fanning out to the
open streams) is the live adapter's (dueflow.adapters.live)."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from dueflow.domain.errors import FieldError, ValidationFailed
from dueflow.service.ports import Change, ChangesRead, UnitOfWorkFactory
from dueflow.service.tasks import utcnow

#: Seconds a ticket from POST /live/tickets can open a stream.
TICKET_TTL_S = 60
_MAX_POSITION = 2**63 - 1
#: Seconds between looks at whether the writers in flight at a read have ended.
SETTLE_WAIT_S = 0.002


@dataclass(frozen=True)
class Settling:
    """Changes up to id `through` were read while writers were in flight, one of which may still
    commit a lower id: they are final once every transaction with an id below `xid` has ended."""

    through: int
    xid: int


def settle(read: ChangesRead, settling: Settling | None) -> tuple[list[Change], Settling | None]:
    """Which of the changes just read a tail can deliver without ever skipping one, and what it
    waits for next.

    A change id is drawn inside its transaction, after the transaction got its own id (the
    outbox row comes first), and commits later: a transaction still running when a higher id
    is already visible may hold a lower one. Every such transaction got its id before the
    read's snapshot, so below the read's fence: once every transaction below the fence has
    ended (the oldest running is above it), every id up to the highest read is final. Nothing
    in flight at the read (no transaction listed running, none started since the last that
    ended): all of them are final already."""
    if not read.changes:
        return [], None
    if read.xmin == read.xmax == read.fence:
        return read.changes, None
    if settling is None:
        return [], Settling(read.changes[-1].id, read.fence + 1)
    if read.xmin < settling.xid:
        return [], settling
    ready = [c for c in read.changes if c.id <= settling.through]
    rest = read.changes[len(ready) :]
    return ready, (Settling(rest[-1].id, read.fence + 1) if rest else None)


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
        """The newest position below which every change is final: where a tail starts. A
        writer still in flight may hold an id below the highest visible one (see `settle`), so
        this waits until the writers running when the head was read have ended (milliseconds:
        transactions here are short)."""
        with self.uow_factory(write=False) as uow:
            head = uow.changes.head()
            fence = uow.changes.fence()  # drawn after the head was read: above its writers
            while fence and uow.changes.oldest_writer() <= fence:  # 0: writes are serialized
                time.sleep(SETTLE_WAIT_S)
        return head

    def can_resume(self, position: int) -> bool:
        """Whether every change after `position` is still kept (False: the stream sends a reset,
        as for a position this log never gave out)."""
        with self.uow_factory(write=False) as uow:
            return uow.changes.horizon() <= position <= uow.changes.head()

    def replay(self, user_id: str, position: int, through: int | None = None) -> list[Change]:
        """The next batch (up to `batch`) of the user's changes after `position`; a stream
        passes `through`, its tail's position (beyond it a change may not be final yet)."""
        with self.uow_factory(write=False) as uow:
            return uow.changes.after(position, self.batch, user_id, through)

    def tail(
        self, position: int, settling: Settling | None = None, messages: bool = True
    ) -> tuple[list[Change], Settling | None]:
        """The next batch of everyone's final changes after `position` (a process's one tail),
        and what the tail waits for before the rest it read are final (see `settle`); without
        `messages`, positions and owners only (`ChangeLogStore.read`)."""
        with self.uow_factory(write=False) as uow:
            read = uow.changes.read(position, self.batch, messages)
        return settle(read, settling)

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
