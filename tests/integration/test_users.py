"""A new user's first requests arrive together: their profile is created once, none fails."""

from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from dueflow.adapters.db.unit_of_work import UnitOfWorkFactory
from dueflow.service.tasks import TaskService


def test_concurrent_first_requests_of_new_users_all_succeed(engine):
    service = TaskService(UnitOfWorkFactory(engine))

    def first_request(i: int) -> str:
        service.remember_user(f"user-{i // 8}", f"user-{i // 8}@example.com")
        return "ok"

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(first_request, range(160)))
    assert outcomes == ["ok"] * 160
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, email FROM users ORDER BY id")).all()
    assert len(rows) == 20 and all(email == f"{uid}@example.com" for uid, email in rows)
