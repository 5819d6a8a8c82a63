"""Users: the e-mail address from each user's token (where reminders are mailed) and their
profile (time zone, an e-mail address they chose)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dueflow.adapters.db.direct import DirectSelect
from dueflow.adapters.db.schema import users

_INSERT_USER = users.insert()
_PROFILE = sa.select(users.c.email, users.c.timezone).where(users.c.id == sa.bindparam("id"))
# The plain read on the DB-API cursor: every add_tasks and every English phrase reads the
# user's zone, and SQLAlchemy's execution machinery was two thirds of that read's CPU
# (300-450 µs -> 120-170 µs per read, PostgreSQL, measured in-process).
_PROFILE_DIRECT = DirectSelect(_PROFILE)


class Users:
    def __init__(self, conn: Connection):
        self.conn = conn

    def remember(self, user_id: str, email: str | None, now: datetime) -> None:
        """Store the e-mail address from the user's token (reminders are mailed there), unless
        the user chose one in their profile."""
        current = self.conn.execute(
            sa.select(users.c.email, users.c.email_from_profile).where(users.c.id == user_id)
        ).first()
        if current is None:
            try:  # a user's first requests can race: the primary key settles it, not the read
                with self.conn.begin_nested():
                    self.conn.execute(
                        _INSERT_USER, {"id": user_id, "email": email, "updated_at": now}
                    )
                return
            except sa.exc.IntegrityError:
                current = self.conn.execute(
                    sa.select(users.c.email, users.c.email_from_profile).where(
                        users.c.id == user_id
                    )
                ).first()
        if email is not None and current.email != email and not current.email_from_profile:
            self.conn.execute(
                users.update().where(users.c.id == user_id).values(email=email, updated_at=now)
            )

    def email(self, user_id: str) -> str | None:
        return self.conn.execute(sa.select(users.c.email).where(users.c.id == user_id)).scalar()

    def profile(self, user_id: str, *, for_update: bool = False) -> dict | None:
        """The user's profile (`email`, `timezone`), or None for a user never seen."""
        if not for_update:
            rows = _PROFILE_DIRECT.rows(self.conn, {"id": user_id})
            return rows[0] if rows else None
        row = self.conn.execute(_PROFILE.with_for_update(), {"id": user_id}).first()
        return None if row is None else {"email": row.email, "timezone": row.timezone}

    def update_profile(self, user_id: str, changes: dict, now: datetime) -> None:
        """Set profile fields; an `email` set here wins over later tokens' claims (None: the
        next token's claim sets it again)."""
        values = dict(changes, updated_at=now)
        if "email" in changes:
            values["email_from_profile"] = changes["email"] is not None
        self.conn.execute(users.update().where(users.c.id == user_id).values(**values))
