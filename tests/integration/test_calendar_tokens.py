"""A user's feed token requests arriving together: every one succeeds, one token stays active (the
last one committed), and only it opens the feed."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from dueflow.adapters.db.unit_of_work import UnitOfWorkFactory
from dueflow.domain.errors import NotFound
from dueflow.service.calendar import CalendarService, token_hash
from dueflow.service.tasks import TaskService


def test_concurrent_token_requests_leave_one_working_token(engine):
    calendar = CalendarService(TaskService(UnitOfWorkFactory(engine)))
    with ThreadPoolExecutor(8) as pool:
        tokens = list(pool.map(lambda i: calendar.issue_token(f"user-{i % 2}"), range(40)))
    assert len(set(tokens)) == 40
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT user_id, token_hash FROM calendar_tokens")).all())
    assert set(rows) == {"user-0", "user-1"}
    working = [t for t in tokens if token_hash(t) in rows.values()]
    assert len(working) == 2
    assert all(calendar.feed_tasks(token) == [] for token in working)
    for token in set(tokens) - set(working):
        with pytest.raises(NotFound):
            calendar.feed_tasks(token)
