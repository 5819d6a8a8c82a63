"""Calendar feed tokens: the hash of each user's one active token."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dueflow.adapters.db.schema import calendar_tokens


class CalendarTokens:
    def __init__(self, conn: Connection):
        self.conn = conn

    def replace(self, user_id: str, token_hash: str, now: datetime) -> None:
        """Make `token_hash` the user's one token; the previous one stops working at commit."""
        mine = calendar_tokens.c.user_id == user_id
        self.conn.execute(calendar_tokens.delete().where(mine))
        try:  # a racing request of the same user inserted first: the later one wins
            with self.conn.begin_nested():
                self.conn.execute(
                    calendar_tokens.insert(),
                    {"user_id": user_id, "token_hash": token_hash, "created_at": now},
                )
        except sa.exc.IntegrityError:
            self.conn.execute(
                calendar_tokens.update().where(mine).values(token_hash=token_hash, created_at=now)
            )

    def revoke(self, user_id: str) -> None:
        self.conn.execute(calendar_tokens.delete().where(calendar_tokens.c.user_id == user_id))

    def owner(self, token_hash: str) -> str | None:
        """The user whose active token has this hash, or None."""
        query = sa.select(calendar_tokens.c.user_id).where(
            calendar_tokens.c.token_hash == token_hash
        )
        return self.conn.execute(query).scalar()
