"""The tests' settable clock: what the services, the outbox relay and the functions' runtime read
as "now" (a `Clock` port), moved by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dueflow import bootstrap

#: The usual frozen "now": a winter morning (Berlin is on CET, UTC+1: 08:00 there).
T0 = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


class Clock:
    """Aware UTC datetimes, from `now` (default T0) until moved."""

    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 0, **delta: float) -> datetime:
        """Move forward by `seconds` and/or timedelta's keywords (`minutes=5`, `days=1`)."""
        self.now += timedelta(seconds=seconds, **delta)
        return self.now

    def set(self, now: datetime) -> datetime:
        self.now = now
        return now


def install_clock(clock: Clock) -> None:
    """Build the functions' runtime on `clock` from now on (the composition root's override)."""
    bootstrap.configure(clock=clock)
