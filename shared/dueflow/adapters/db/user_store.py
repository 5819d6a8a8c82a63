"""Users: the e-mail address from each user's token, where reminders are mailed."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dueflow.adapters.db.schema import users

_INSERT_USER = users.insert()


class Users:
    def __init__(self, conn: Connection):
        self.conn = conn

    def remember(self, user_id: str, email: str | None, now: datetime) -> None:
        """Store the e-mail address from the user's token (reminders are mailed there)."""
        current = self.conn.execute(sa.select(users.c.email).where(users.c.id == user_id)).first()
        if current is None:
            try:  # a user's first requests can race: the primary key settles it, not the read
                with self.conn.begin_nested():
                    self.conn.execute(
                        _INSERT_USER, {"id": user_id, "email": email, "updated_at": now}
                    )
                return
            except sa.exc.IntegrityError:
                current = self.conn.execute(
                    sa.select(users.c.email).where(users.c.id == user_id)
                ).first()
        if email is not None and current.email != email:
            self.conn.execute(
                users.update().where(users.c.id == user_id).values(email=email, updated_at=now)
            )

    def email(self, user_id: str) -> str | None:
        return self.conn.execute(sa.select(users.c.email).where(users.c.id == user_id)).scalar()
