"""Calendar feed use cases: a user's secret feed token (issue, replace, revoke) and the open
tasks a feed request shows."""

from __future__ import annotations

import hashlib
import re
import secrets

from dueflow.domain.errors import NotFound
from dueflow.domain.task import Task
from dueflow.service.tasks import TaskService

#: A feed token: 32 random bytes, URL-safe base64 without padding (43 characters).
TOKEN_BYTES = 32
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")


def token_hash(token: str) -> str:
    """What is stored of a token: its SHA-256 (the token has 256 random bits, so a fast hash
    cannot be brute-forced, and a lookup by it can use an index)."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


class CalendarService:
    """Runs on the tasks service's unit of work and clock."""

    def __init__(self, tasks: TaskService):
        self._uow_factory = tasks.uow_factory
        self._clock = tasks.clock

    def issue_token(self, user_id: str) -> str:
        """A new feed token for the user; the previous one stops working."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        with self._uow_factory() as uow:
            uow.calendar_tokens.replace(user_id, token_hash(token), self._clock())
            uow.commit()
        return token

    def revoke_token(self, user_id: str) -> None:
        """The user's feed stops working; nothing to do if they had none (idempotent)."""
        with self._uow_factory() as uow:
            uow.calendar_tokens.revoke(user_id)
            uow.commit()

    def feed_tasks(self, token: str) -> list[Task]:
        """The open tasks of the token's owner. An unknown, revoked or malformed token is one
        and the same NotFound, saying nothing about which."""
        if not _TOKEN.match(token):
            raise NotFound("no such calendar feed")
        with self._uow_factory(write=False) as uow:
            user_id = uow.calendar_tokens.owner(token_hash(token))
            if user_id is None:
                raise NotFound("no such calendar feed")
            return uow.tasks.open_tasks(user_id)
