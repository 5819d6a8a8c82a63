"""The tasks API's route matching (the fast path for `/tasks` and `/tasks/<task_id>` answers as
werkzeug's rule table does, for any path and method) and its new request ids."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from dueflow.adapters.http.api import _ROUTER, Match, _werkzeug_match, match

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
SEGMENT = st.one_of(
    st.sampled_from(["", "quick", "quickly", "quick/", "complete", ".", "..", "tasks", " "]),
    st.builds(lambda u: str(u), st.uuids()),
    st.text(min_size=0, max_size=12),
)


def agree(path: str, method: str) -> Match:
    expected = _werkzeug_match(path, method, _ROUTER)
    assert match(path, method) == expected, (path, method)
    return expected


@given(st.lists(SEGMENT, min_size=0, max_size=3), st.sampled_from(METHODS))
def test_the_fast_path_answers_as_werkzeug_for_any_tasks_path(segments, method):
    agree("/".join(["/tasks", *segments]), method)


@given(st.text(max_size=30), st.sampled_from(METHODS))
def test_the_fast_path_answers_as_werkzeug_for_any_path(path, method):
    agree(path, method)
    agree("/" + path, method)


def test_the_hot_routes():
    task_id = str(uuid.uuid4())
    assert agree(f"/tasks/{task_id}", "GET") == Match(
        "get_task", {"task_id": task_id}, "/tasks/<task_id>"
    )
    assert agree("/tasks", "GET").endpoint == "list_tasks"
    assert agree("/tasks", "POST").endpoint == "create_task"
    assert agree(f"/tasks/{task_id}", "PATCH").endpoint == "update_task"
    assert agree(f"/tasks/{task_id}", "DELETE").endpoint == "delete_task"
    assert agree("/tasks/quick", "POST").endpoint == "quick_add"
    not_allowed = agree("/tasks/quick", "PATCH")
    assert not_allowed.endpoint is None and not_allowed.allowed == ("POST",)
    assert agree(f"/tasks/{task_id}/complete", "POST").endpoint == "complete_task"


def test_a_new_request_id_is_a_random_uuid4_in_hex():
    from dueflow.adapters.http.problems import new_request_id

    ids = {new_request_id() for _ in range(2000)}
    assert len(ids) == 2000
    for rid in ids:
        parsed = uuid.UUID(hex=rid)
        assert parsed.hex == rid and parsed.version == 4 and parsed.variant == uuid.RFC_4122
