"""A tool's result as the assistant's server hands it to the SDK (a dict in the wire form, not a
CallToolResult model): the SDK accepts it for every protocol revision and sends exactly what the
model would have given."""

from __future__ import annotations

import mcp_types as types
import pytest
from mcp.server.runner import _dump_result
from mcp_types.methods import serialize_server_result

from dueflow.adapters.mcp import server, tools
from dueflow.adapters.mcp.text import summary
from dueflow.domain import lifecycle
from dueflow.domain.validation import parse_create
from tests.support.clock import T0

TASK = lifecycle.new_task(
    "u",
    parse_create({"title": "Water the plants", "tags": ["home"], "due_at": "2026-12-02T17:00:00Z"}),
    T0,
)
PAGE = {"items": [tools.compact(TASK)] * 2, "next_cursor": None, "filters": {"query": "plants"}}
PROBLEM = {
    "type": "urn:dueflow:problem:not-found",
    "title": "Not found",
    "status": 404,
    "detail": "no task x",
}


@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25", "2026-07-28"])
@pytest.mark.parametrize(("structured", "is_error"), [(PAGE, False), (PROBLEM, True)])
def test_the_wire_result_is_what_the_model_would_send(version, structured, is_error):
    outcome = tools.Outcome(structured, is_error, summary("find_tasks", structured, is_error))
    model = types.CallToolResult(
        content=[types.TextContent(text=outcome.text)],
        structured_content=structured,
        is_error=is_error,
    )
    sent = serialize_server_result("tools/call", version, _dump_result(server.wire_result(outcome)))
    assert sent == serialize_server_result("tools/call", version, _dump_result(model))
    assert sent["structuredContent"] == structured and sent["isError"] is is_error
