"""Helpers of the tests that drive the tasks API through functions-framework's test client."""

from __future__ import annotations

import sqlalchemy as sa

from tests.conftest import auth


def create(client, body=None, user="alice"):
    response = client.post("/tasks", json=body or {"title": "t"}, headers=auth(user))
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.json


def outbox_types(engine) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT event_type FROM outbox ORDER BY seq")).scalars()
        return list(rows)


def task_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM tasks")).scalar_one()


def assert_problem(response, status: int, *fields: str):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.json
    assert body["status"] == status and body["type"].startswith("urn:dueflow:problem:")
    assert body["title"] and body["detail"]
    if fields:
        assert sorted({e["field"] for e in body["errors"]}) == sorted(fields)
    return body
