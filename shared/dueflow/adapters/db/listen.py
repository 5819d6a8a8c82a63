"""PostgreSQL LISTEN on a connection of its own: what wakes the outbox relay and the live feed's
tails when another process commits (the NOTIFY triggers of migrations 0004 and 0006)."""

from __future__ import annotations

import select
from collections.abc import Callable

from sqlalchemy.engine import Engine


def listen(
    engine: Engine, channel: str, wake: Callable[[], None], listening: Callable[[], bool]
) -> None:
    """LISTEN on `channel`, calling `wake` once listening (for what came before) and on each
    notification, while `listening()` holds (checked every second). The connection is discarded
    afterwards: LISTEN must not follow it back to the pool. Errors propagate to the caller, who
    retries (and polls meanwhile)."""
    raw = engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        dbapi.autocommit = True
        with dbapi.cursor() as cursor:
            cursor.execute(f"LISTEN {channel}")
        wake()
        while listening():
            if select.select([dbapi], [], [], 1.0)[0]:
                dbapi.poll()
                if dbapi.notifies:
                    dbapi.notifies.clear()
                    wake()
    finally:
        raw.invalidate()
