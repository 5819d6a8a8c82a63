"""The OpenAPI document served at GET /openapi.json: valid OpenAPI 3.1 and complete."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource

from dueflow.domain.errors import ValidationFailed

DOCUMENT = (
    Path(__file__).resolve().parents[2] / "shared/dueflow/adapters/http/openapi.json"
)

EXPECTED = {
    "/tasks": {"get", "post"},
    "/tasks/{id}": {"get", "patch", "delete"},
    "/tasks/{id}/complete": {"post"},
    "/tasks/{id}/reopen": {"post"},
    "/tasks/{id}/skip": {"post"},
    "/tasks/{id}/reminders/{reminder_id}/snooze": {"post"},
    "/tags": {"get"},
    "/me": {"get", "patch"},
    "/tasks/quick": {"post"},
    "/recurrence/preview": {"post"},
    "/healthz": {"get"},
    "/readyz": {"get"},
    "/openapi.json": {"get"},
    "/calendar/token": {"post", "delete"},
    "/calendar/{token}.ics": {"get"},
}
# the calendar feed's secret URL is its credential: calendar apps send no Authorization header
PUBLIC = {"/healthz", "/readyz", "/openapi.json", "/calendar/{token}.ics"}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
SCHEMAS = {
    "Task", "TaskCreate", "TaskPatch", "Reminder", "ReminderInput", "Recurrence",
    "TaskList", "TagList", "Problem", "ValidationProblem", "Snooze",
    "Profile", "ProfilePatch", "QuickAdd", "RecurrencePreviewRequest", "RecurrencePreview",
    "CalendarFeed",
}


@pytest.fixture(scope="module")
def doc() -> dict:
    return json.loads(DOCUMENT.read_text(encoding="utf-8"))


def _operations(doc: dict):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                yield path, method, op


def _resolve(doc: dict, obj: dict) -> dict:
    while "$ref" in obj:
        node = doc
        for part in obj["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        obj = node
    return obj


def _validator(doc: dict, name: str) -> Draft202012Validator:
    """A JSON Schema validator for components.schemas[name], with the document's $refs."""
    registry = Registry().with_resource("urn:dueflow:openapi", Resource.from_contents(
        {**doc, "$schema": "https://json-schema.org/draft/2020-12/schema"}))
    return Draft202012Validator(
        {"$ref": f"urn:dueflow:openapi#/components/schemas/{name}"}, registry=registry
    )


def test_document_is_valid_openapi_3_1(doc):
    assert doc["openapi"] == "3.1.0"
    validate(doc)  # raises OpenAPIValidationError on any problem


def test_every_route_is_present_with_its_methods(doc):
    actual = {
        path: {m for m in item if m in HTTP_METHODS} for path, item in doc["paths"].items()
    }
    assert actual == EXPECTED


def test_named_schemas_exist(doc):
    assert SCHEMAS <= set(doc["components"]["schemas"])


def test_operation_ids_are_present_and_unique(doc):
    ids = [op.get("operationId") for _, _, op in _operations(doc)]
    assert all(ids)
    assert len(ids) == len(set(ids))


def test_bearer_auth_everywhere_except_public_routes(doc):
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    assert doc["security"] == [{"bearerAuth": []}]
    for path, method, op in _operations(doc):
        if path in PUBLIC:
            assert op.get("security") == [], f"{method} {path} must be public"
        else:
            assert "security" not in op, f"{method} {path} must use the global security"
            assert "401" in op["responses"], f"{method} {path} must document 401"


def test_error_responses_are_problem_json_with_request_id(doc):
    for path, method, op in _operations(doc):
        for status, response in op["responses"].items():
            response = _resolve(doc, response)
            assert "X-Request-Id" in response.get("headers", {}), f"{method} {path} {status}"
            if int(status) >= 400:
                assert set(response["content"]) == {"application/problem+json"}, (
                    f"{method} {path} {status}"
                )


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/tasks", "post", {"201", "400", "401", "413", "415", "422"}),
        ("/tasks", "get", {"200", "401", "422"}),
        ("/tasks/{id}", "get", {"200", "401", "404"}),
        ("/tasks/{id}", "patch", {"200", "400", "401", "404", "413", "415", "422"}),
        ("/tasks/{id}", "delete", {"204", "401", "404"}),
        ("/tasks/{id}/complete", "post", {"200", "401", "404"}),
        ("/tasks/{id}/reopen", "post", {"200", "401", "404"}),
        ("/tasks/{id}/skip", "post", {"200", "401", "404", "409", "422"}),
        (
            "/tasks/{id}/reminders/{reminder_id}/snooze",
            "post",
            {"200", "400", "401", "404", "409", "413", "415", "422"},
        ),
        ("/tags", "get", {"200", "401"}),
        ("/me", "get", {"200", "401"}),
        ("/me", "patch", {"200", "400", "401", "413", "415", "422"}),
        ("/tasks/quick", "post", {"201", "400", "401", "413", "415", "422"}),
        ("/recurrence/preview", "post", {"200", "400", "401", "413", "415", "422"}),
        ("/healthz", "get", {"200"}),
        ("/readyz", "get", {"200", "503"}),
        ("/openapi.json", "get", {"200"}),
        ("/calendar/token", "post", {"201", "401"}),
        ("/calendar/token", "delete", {"204", "401"}),
        ("/calendar/{token}.ics", "get", {"200", "304", "404", "422"}),
    ],
)
def test_contract_responses_are_documented(doc, path, method, statuses):
    assert statuses <= set(doc["paths"][path][method]["responses"])


def test_create_returns_location_and_patch_accepts_merge_patch(doc):
    created = doc["paths"]["/tasks"]["post"]["responses"]["201"]
    assert "Location" in created["headers"]
    patch_body = doc["paths"]["/tasks/{id}"]["patch"]["requestBody"]["content"]
    assert set(patch_body) == {"application/merge-patch+json", "application/json"}


def test_request_bodies_reject_unknown_fields(doc):
    schemas = doc["components"]["schemas"]
    for name in ("TaskCreate", "TaskPatch", "Recurrence"):
        assert schemas[name]["additionalProperties"] is False, name
    for name in ("ReminderInput", "Snooze"):
        for branch in schemas[name]["oneOf"]:
            assert branch["additionalProperties"] is False, name


def test_task_example_matches_task_schema(doc):
    validator = _validator(doc, "Task")
    for example in doc["components"]["schemas"]["Task"]["examples"]:
        validator.validate(example)


def test_create_schema_rejects_server_managed_and_unknown_fields(doc):
    validator = _validator(doc, "TaskCreate")
    assert validator.is_valid({"title": "Buy milk"})
    assert not validator.is_valid({})
    for field in ("id", "status", "series_id", "occurrence", "completed_at", "created_at",
                  "updated_at", "colour"):
        assert not validator.is_valid({"title": "Buy milk", field: None}), field
    assert not validator.is_valid({"title": "x", "reminders": [{"before": "PT1M", "at": "x"}]})


def test_patch_schema_allows_resets_but_not_a_null_title(doc):
    validator = _validator(doc, "TaskPatch")
    resets = {f: None for f in ("description", "priority", "tags", "due_at", "timezone",
                                "recurrence", "reminders")}
    assert validator.is_valid(resets)
    assert not validator.is_valid({"title": None})


def test_validation_problem_example(doc):
    example = doc["components"]["responses"]["ValidationFailed"]["content"][
        "application/problem+json"]["example"]
    _validator(doc, "ValidationProblem").validate(example)
    assert example["errors"][0] == {
        "field": "recurrence.rrule", "pointer": "/recurrence/rrule",
        "message": example["errors"][0]["message"],
    }


def test_snooze_body_is_exactly_one_of_for_and_until(doc):
    validator = _validator(doc, "Snooze")
    for example in doc["components"]["schemas"]["Snooze"]["examples"]:
        validator.validate(example)
    assert validator.is_valid({"for": "PT10M"})
    assert validator.is_valid({"until": "2026-12-01T07:30:00+01:00"})
    for body in ({}, {"for": "PT10M", "until": "2026-12-01T07:30:00Z"}, {"minutes": 10},
                 {"for": 10}, [], "PT10M"):
        assert not validator.is_valid(body), body
    body = doc["paths"]["/tasks/{id}/reminders/{reminder_id}/snooze"]["post"]["requestBody"]
    assert body["required"] is True


def test_path_parameters_are_declared(doc):
    for path, item in doc["paths"].items():
        declared = {_resolve(doc, p)["name"] for p in item.get("parameters", [])
                    if _resolve(doc, p)["in"] == "path"}
        assert declared == set(re.findall(r"{(\w+)}", path)), path


def test_conflict_problem(doc):
    conflict = doc["components"]["responses"]["Conflict"]
    examples = conflict["content"]["application/problem+json"]["examples"]
    validator = _validator(doc, "Problem")
    for example in examples.values():
        validator.validate(example["value"])
        assert example["value"]["type"] == "urn:dueflow:problem:conflict"
        assert example["value"]["status"] == 409
    for path in ("/tasks/{id}/skip", "/tasks/{id}/reminders/{reminder_id}/snooze"):
        assert doc["paths"][path]["post"]["responses"]["409"] == {
            "$ref": "#/components/responses/Conflict"
        }


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/tasks/{id}/skip", {"recurrence"}),
        ("/tasks/{id}/reminders/{reminder_id}/snooze", {"for", "until", ""}),
    ],
)
def test_422_examples_name_the_fields(doc, path, fields):
    content = doc["paths"][path]["post"]["responses"]["422"]["content"][
        "application/problem+json"]
    examples = [content["example"]] if "example" in content else [
        e["value"] for e in content["examples"].values()]
    validator = _validator(doc, "ValidationProblem")
    for example in examples:
        validator.validate(example)
    assert {e["field"] for example in examples for e in example["errors"]} == fields


# -- issue 11: the document states what the server does -----------------------------------------


def test_create_fields_are_nullable_meaning_the_default(doc):
    validator = _validator(doc, "TaskCreate")
    nulls = {f: None for f in ("description", "priority", "tags", "due_at", "timezone",
                               "recurrence", "reminders")}
    assert validator.is_valid({"title": "t", **nulls})
    assert validator.is_valid({"title": "t", "due_at": "2026-12-01T09:00:00Z",
                               "recurrence": {"rrule": "FREQ=DAILY", "basis": None,
                                              "exdates": None}})
    assert not validator.is_valid({"title": None})


def _pattern(doc, *path) -> re.Pattern:
    node = doc
    for part in path:
        node = _resolve(doc, node[part]) if isinstance(node[part], dict) else node[part]
    return re.compile(node["pattern"])


def test_text_patterns_agree_with_the_server(doc):
    from dueflow.domain.validation import parse_create

    def server_accepts(body) -> bool:
        try:
            parse_create({"title": "t", **body})
        except ValidationFailed:
            return False
        return True

    title = _pattern(doc, "components", "schemas", "TaskCreate", "properties", "title")
    tag = _pattern(doc, "components", "schemas", "TaskCreate", "properties", "tags", "items")
    description = _pattern(doc, "components", "schemas", "TaskCreate", "properties",
                           "description")
    for text in ("Buy milk", " padded ", "é ü 漢字 🎉", "a\tb", "a\nb", "a\x00b", "a\x7fb",
                 "a\x85b", "a\u2028b", "a\u2029b", "   ", "\u00a0x"):
        assert bool(title.search(text)) == server_accepts({"title": text}), repr(text)
        assert bool(tag.search(text)) == server_accepts({"tags": [text]}), repr(text)
    for text in ("free\ntext\twith tabs", "", "a\x00b"):
        assert bool(description.search(text)) == server_accepts({"description": text}), text


@pytest.mark.parametrize(
    "value",
    ["2026-12-01T09:00:00Z", "2026-12-01t09:00:00+01:00", "1900-01-01T00:00:00+01:00",
     "9000-12-31T23:59:59-05:00", "1899-12-31T23:59:59Z", "9001-01-01T00:00:00Z",
     "2026-12-01T09:00:00.123456789Z", "2026-12-01", "2026-12-01T09:00:00", "0001-01-01T00:00:00Z"],
)
def test_date_time_pattern_agrees_with_the_server(doc, value):
    from dueflow.domain.timefmt import parse_instant

    pattern = _pattern(doc, "components", "schemas", "TaskCreate", "properties", "due_at")
    try:
        parse_instant(value, "due_at")
        accepted = True
    except ValidationFailed:
        accepted = False
    assert bool(pattern.search(value)) == accepted


def test_every_duration_the_pattern_admits_is_accepted_by_the_server(doc):
    from dueflow.domain.durations import parse_duration

    before = re.compile(doc["components"]["schemas"]["ReminderInput"]["oneOf"][0]["properties"][
        "before"]["pattern"])
    snooze = re.compile(doc["components"]["schemas"]["Snooze"]["oneOf"][0]["properties"]["for"][
        "pattern"])
    assert before.pattern == snooze.pattern
    longest = ["P99W", "P8Y9M99DT999H9999M99999S", "P9M99DT999H", "P999DT999H9999M99999S",
               "PT999H9999M"]
    for value in ["PT15M", "P1D", "P1W", "P1M", "P1Y", "PT0S", "P1DT2H", *longest]:
        assert before.search(value), value
        parse_duration(value, "before")  # raises when the server refuses it
    for value in ["P", "PT", "P1DT", "15M", "P1.5D", "-P1D", "P10Y"]:
        assert not before.search(value), value


def test_exdates_are_bounded_like_the_server(doc):
    from dueflow.domain.validation import MAX_EXDATES

    schemas = doc["components"]["schemas"]
    assert schemas["RecurrenceInput"]["properties"]["exdates"]["maxItems"] == MAX_EXDATES
    assert schemas["TaskPatch"]["properties"]["recurrence"]["properties"]["exdates"][
        "maxItems"] == MAX_EXDATES


def test_request_examples_do_not_expire(doc):
    """An instant a request must give in the future is far in the future in every example."""
    snooze = doc["components"]["schemas"]["Snooze"]
    untils = [e["until"] for e in snooze["examples"] if "until" in e]
    untils += snooze["oneOf"][1]["properties"]["until"]["examples"]
    assert untils and all(u >= "2090" for u in untils)


def test_headers_are_declared(doc):
    from dueflow.adapters.http.problems import REQUEST_ID_PATTERN

    headers = doc["components"]["headers"]
    assert headers["X-Request-Id"]["schema"]["pattern"] == REQUEST_ID_PATTERN
    assert REQUEST_ID_PATTERN in doc["components"]["parameters"]["RequestId"]["description"]
    responses = doc["components"]["responses"]
    assert "WWW-Authenticate" in responses["Unauthorized"]["headers"]
    assert "Retry-After" in responses["ServiceUnavailable"]["headers"]
    for path, method, op in _operations(doc):
        for status, response in op["responses"].items():
            response = _resolve(doc, response)
            if status == "401":
                assert "WWW-Authenticate" in response["headers"], f"{method} {path}"
            if status == "503":
                assert "Retry-After" in response["headers"], f"{method} {path}"
            if status == "204":
                assert "content" not in response, f"{method} {path}"


def test_links_lead_from_a_created_task_to_every_operation_on_it(doc):
    links = doc["paths"]["/tasks"]["post"]["responses"]["201"]["links"]
    ids = {op["operationId"]: (path, op) for path, _, op in _operations(doc)}
    targets = {link["operationId"] for link in links.values()}
    by_id = {op_id for op_id, (path, _) in ids.items() if path.startswith("/tasks/{id}")}
    assert targets == by_id
    for link in links.values():
        path, _ = ids[link["operationId"]]
        assert set(link["parameters"]) == set(re.findall(r"{(\w+)}", path))
        assert link["parameters"]["id"] == "$response.body#/id"


def test_calendar_token_pattern_agrees_with_the_server(doc):
    from dueflow.service.calendar import TOKEN_BYTES

    pattern = _pattern(doc, "components", "parameters", "CalendarToken", "schema")
    assert all(pattern.search(secrets.token_urlsafe(TOKEN_BYTES)) for _ in range(50))
    assert not pattern.search("not-a-token")


def test_sort_documents_priority_by_value(doc):
    sort = next(p for p in doc["paths"]["/tasks"]["get"]["parameters"] if p.get("name") == "sort")
    assert "`-priority` is most important first" in sort["description"]
