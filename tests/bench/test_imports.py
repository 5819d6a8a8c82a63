"""`python -m bench.imports` replays scenario 5's first request through Flask's test client and
reads `-X importtime`'s lines back."""

from __future__ import annotations

import json

from bench.imports import _imports, _request
from bench.scenarios.cold_start import first_request


def test_the_first_request_is_replayed_as_sent():
    tasks = _request(first_request("tasks"))
    assert (tasks["method"], tasks["path"], tasks["body"]) == ("GET", "/tasks", "")
    assert tasks["headers"]["Authorization"].startswith("Bearer ")
    notify = _request(first_request("notify"))
    assert notify["headers"]["ce-type"] == "dev.dueflow.reminder.due"
    assert json.loads(notify["body"])["title"] == "Cold start"
    assert "Host" not in notify["headers"] and "Content-Length" not in notify["headers"]


def test_importtime_lines_are_read_with_their_nesting():
    text = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       120 |        120 |     sqlalchemy.util",
            "import time:      3000 |       3120 |   sqlalchemy",
            "some other line on stderr",
        ]
    )
    assert _imports(text) == [(120, "    sqlalchemy.util"), (3120, "  sqlalchemy")]
