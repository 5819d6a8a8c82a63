"""The outbox relay's lease: one row in `leases` saying which process relays, until when. One
relay at a time, so replicas cannot reorder events between them; a killed holder's lease
expires after LEASE_TTL."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dueflow.adapters.db.schema import leases

LEASE_NAME, LEASE_TTL = "outbox-relay", timedelta(seconds=15)
#: the reminder job relay's (the reminders function with DUEFLOW_REMINDER_JOBS=dapr); task
#: writers schedule jobs while it is held (adapters/db/reminder_job_store.JobRelayWatch)
JOBS_LEASE = "reminder-jobs-relay"


class Lease:
    def __init__(self, engine: Engine, reader: Engine, holder: str, name: str = LEASE_NAME):
        self.engine = engine  # the writer (SQLite: BEGIN IMMEDIATE)
        self.reader = reader
        self.holder = holder
        self.name = name  # one lease per kind of relay (the outbox's, the reminder jobs')
        self._fresh_until: datetime | None = None  # until then, ours with 2/3 of the TTL left

    def take(self, now: datetime) -> bool:
        """Take or renew the lease unless another holder's is still valid."""
        if self._fresh_until is not None and now < self._fresh_until:
            # ours and fresh, as this process last wrote it: no other holder can take a lease
            # before it expires, so asking the database on every pass (one round trip per
            # pass, most of the passes' cost under a stream of creates) tells nothing new
            return True
        self._fresh_until = None
        # A read first: processes that do not hold the lease poll often and must not queue for
        # SQLite's write lock (or write a row on PostgreSQL) just to learn that another does.
        with self.reader.connect() as conn:
            current = conn.execute(
                sa.select(leases.c.holder, leases.c.expires_at).where(leases.c.name == self.name)
            ).first()
        if current is not None and current.holder != self.holder and current.expires_at >= now:
            return False
        if (
            current is not None
            and current.holder == self.holder
            and (current.expires_at - now > LEASE_TTL * 2 / 3)
        ):
            self._fresh_until = current.expires_at - LEASE_TTL * 2 / 3
            return True  # ours and fresh: renewing on every pass would write ten times a second
        values = {"holder": self.holder, "expires_at": now + LEASE_TTL}
        with self.engine.begin() as conn:
            taken = conn.execute(
                leases.update()
                .where(
                    leases.c.name == self.name,
                    sa.or_(leases.c.holder == self.holder, leases.c.expires_at < now),
                )
                .values(**values)
            ).rowcount
            if not taken:
                exists = conn.execute(
                    sa.select(leases.c.name).where(leases.c.name == self.name)
                ).first()
                if exists:
                    return False
                conn.execute(leases.insert().values(name=self.name, **values))
        self._fresh_until = now + LEASE_TTL / 3  # committed: ours
        return True

    def release(self, now: datetime) -> None:
        """On a clean stop, let another replica take over at once instead of after the TTL."""
        self._fresh_until = None
        with self.engine.begin() as conn:
            conn.execute(
                leases.update()
                .where(leases.c.name == self.name, leases.c.holder == self.holder)
                .values(expires_at=now - timedelta(seconds=1))
            )
