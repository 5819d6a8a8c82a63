"""Unit tests for dueflow.domain.validation: create bodies and JSON merge patches."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import pytest

from dueflow.domain.errors import ValidationFailed
from dueflow.domain.task import Recurrence
from dueflow.domain.validation import (
    DEFAULTS,
    MAX_DESCRIPTION,
    MAX_TITLE,
    UNSET,
    ReminderInput,
    TaskFields,
    TaskPatch,
    parse_create,
    parse_patch,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def error_fields(parse, body, **kwargs) -> list[str]:
    with pytest.raises(ValidationFailed) as info:
        parse(body, **kwargs)
    return [e.field for e in info.value.errors]


def create(**fields):
    return parse_create({"title": "Pay rent", **fields})


# --- parse_create: defaults, required title, all errors at once --------------------------------


def test_create_fills_every_default():
    fields = parse_create({"title": "Pay rent"})
    assert fields == TaskFields(title="Pay rent")
    assert asdict(fields) == {
        "title": "Pay rent",
        "description": None,
        "priority": "none",
        "tags": (),
        "due_at": None,
        "timezone": "UTC",
        "recurrence": None,
        "reminders": (),
    }


def test_create_returns_parsed_values():
    fields = parse_create(
        {
            "title": "Pay rent",
            "description": "by transfer",
            "priority": "high",
            "tags": ["Home"],
            "due_at": "2026-12-01T10:00:00+01:00",
            "timezone": "Europe/Berlin",
            "recurrence": {"rrule": "freq=monthly"},
            "reminders": [{"before": "P1D"}],
        }
    )
    assert fields.description == "by transfer"
    assert fields.priority == "high"
    assert fields.tags == ("home",)
    assert fields.due_at == utc(2026, 12, 1, 9)
    assert fields.timezone == "Europe/Berlin"
    assert fields.recurrence == Recurrence("FREQ=MONTHLY", "due", ())
    assert [r.before.text for r in fields.reminders] == ["P1D"]


@pytest.mark.parametrize("body", [{}, {"priority": "high"}])
def test_create_requires_a_title(body):
    assert error_fields(parse_create, body) == ["title"]


@pytest.mark.parametrize("title", [None, "", "   ", 42, ["x"]])
def test_create_rejects_an_empty_or_non_string_title(title):
    assert error_fields(parse_create, {"title": title}) == ["title"]


def test_create_collects_all_errors_at_once():
    fields = error_fields(
        parse_create,
        {
            "colour": "red",
            "owner": "mallory",
            "description": 5,
            "priority": "urgent",
            "tags": ["ok", 7, ""],
            "due_at": "tomorrow",
            "timezone": "Mars/Olympus",
            "recurrence": {"rrule": "FREQ=SECONDLY", "basis": "whenever"},
            "reminders": [{"before": "-P1D"}, {"at": "soon"}],
        },
    )
    assert sorted(fields) == sorted(
        [
            "colour",
            "owner",
            "title",
            "description",
            "priority",
            "tags.1",
            "tags.2",
            "due_at",
            "timezone",
            "recurrence.rrule",
            "recurrence.basis",
            "reminders.0.before",
            "reminders.1.at",
        ]
    )


@pytest.mark.parametrize("body", [None, [], "title", 3, ["title"]])
def test_body_that_is_not_an_object_names_the_empty_field(body):
    assert error_fields(parse_create, body) == [""]
    assert error_fields(parse_patch, body) == [""]


def test_error_pointer_is_a_json_pointer():
    with pytest.raises(ValidationFailed) as info:
        create(tags=["ok", 7])
    assert info.value.errors[0].pointer == "/tags/1"


# --- title and description ---------------------------------------------------------------------


def test_title_is_trimmed():
    assert create(title="  Pay rent \n").title == "Pay rent"


def test_title_length_limit_applies_after_trimming():
    assert create(title=" " + "x" * MAX_TITLE + " ").title == "x" * MAX_TITLE
    assert error_fields(parse_create, {"title": "x" * (MAX_TITLE + 1)}) == ["title"]


def test_description_up_to_the_limit():
    assert create(description="d" * MAX_DESCRIPTION).description == "d" * MAX_DESCRIPTION
    assert create(description="").description == ""
    assert error_fields(parse_create, {"title": "t", "description": "d" * 10_001}) == [
        "description"
    ]


@pytest.mark.parametrize("description", [5, ["x"], {"text": "x"}, True])
def test_description_must_be_a_string(description):
    assert error_fields(parse_create, {"title": "t", "description": description}) == ["description"]


# --- priority ----------------------------------------------------------------------------------


@pytest.mark.parametrize("priority", ["none", "low", "medium", "high"])
def test_priority_values(priority):
    assert create(priority=priority).priority == priority


@pytest.mark.parametrize("priority", ["urgent", "HIGH", "", 3, True, ["high"]])
def test_priority_rejects_other_values(priority):
    assert error_fields(parse_create, {"title": "t", "priority": priority}) == ["priority"]


# --- tags --------------------------------------------------------------------------------------


def test_tags_are_trimmed_lowercased_and_deduplicated_in_order():
    assert create(tags=[" Work ", "home", "WORK", "Home", "errands"]).tags == (
        "work",
        "home",
        "errands",
    )


def test_tags_limit_counts_distinct_tags():
    twenty = [f"t{i}" for i in range(20)]
    assert len(create(tags=twenty + [t.upper() for t in twenty]).tags) == 20
    assert error_fields(parse_create, {"title": "t", "tags": twenty + ["t20"]}) == ["tags"]


def test_tags_errors_name_each_bad_index():
    body = {"title": "t", "tags": ["ok", 7, None, "   ", "x" * 51, "fine", ["nested"]]}
    assert error_fields(parse_create, body) == ["tags.1", "tags.2", "tags.3", "tags.4", "tags.6"]


def test_tag_of_fifty_characters_is_accepted():
    assert create(tags=["x" * 50]).tags == ("x" * 50,)


@pytest.mark.parametrize("tags", ["work", {"work": True}, 3])
def test_tags_must_be_a_list(tags):
    assert error_fields(parse_create, {"title": "t", "tags": tags}) == ["tags"]


# --- reminders ---------------------------------------------------------------------------------


def test_reminder_shapes():
    reminders = create(
        reminders=[{"before": "PT15M"}, {"at": "2026-12-01T08:00:00+01:00"}, {"before": "p1d"}]
    ).reminders
    assert [type(r) for r in reminders] == [ReminderInput] * 3
    assert reminders[0].before.exact == timedelta(minutes=15)
    assert reminders[0].at is None
    assert reminders[1] == ReminderInput(at=utc(2026, 12, 1, 7))
    assert reminders[2].before.text == "P1D"


def test_at_most_ten_reminders():
    ten = [{"before": f"PT{i + 1}M"} for i in range(10)]
    assert len(create(reminders=ten).reminders) == 10
    assert error_fields(parse_create, {"title": "t", "reminders": ten + [{"before": "PT1H"}]}) == [
        "reminders"
    ]


@pytest.mark.parametrize(
    "reminder",
    [
        {"before": "PT15M", "at": "2026-12-01T08:00:00Z"},  # both
        {},  # none
        {"after": "PT15M"},
        {"before": "PT15M", "note": "x"},
        "PT15M",
        None,
        ["before", "PT15M"],
    ],
)
def test_reminder_must_have_exactly_one_of_before_or_at(reminder):
    body = {"title": "t", "reminders": [{"before": "PT5M"}, reminder]}
    assert error_fields(parse_create, body) == ["reminders.1"]


def test_reminder_value_errors_name_the_member():
    body = {"title": "t", "reminders": [{"before": "P"}, {"at": "2026-12-01"}, {"before": 15}]}
    assert error_fields(parse_create, body) == [
        "reminders.0.before",
        "reminders.1.at",
        "reminders.2.before",
    ]


@pytest.mark.parametrize("reminders", [{"before": "PT15M"}, "PT15M", 1])
def test_reminders_must_be_a_list(reminders):
    assert error_fields(parse_create, {"title": "t", "reminders": reminders}) == ["reminders"]


# --- recurrence --------------------------------------------------------------------------------


def test_recurrence_defaults_and_canonical_rule():
    recurrence = create(recurrence={"rrule": "RRULE:freq=weekly;byday=mo"}).recurrence
    assert recurrence == Recurrence(rrule="FREQ=WEEKLY;BYDAY=MO", basis="due", exdates=())


def test_recurrence_exdates_are_parsed_sorted_and_deduplicated():
    recurrence = create(
        recurrence={
            "rrule": "FREQ=DAILY",
            "basis": "completion",
            "exdates": [
                "2026-12-03T09:00:00Z",
                "2026-12-02T10:00:00+01:00",
                "2026-12-03T10:00:00+01:00",
            ],
        }
    ).recurrence
    assert recurrence.basis == "completion"
    assert recurrence.exdates == (utc(2026, 12, 2, 9), utc(2026, 12, 3, 9))


def test_recurrence_errors_name_each_member():
    body = {
        "title": "t",
        "recurrence": {
            "rrule": "FREQ=DAILY",
            "foo": 1,
            "basis": "sometimes",
            "exdates": ["2026-12-02T09:00:00Z", "2026-12-03"],
        },
    }
    assert sorted(error_fields(parse_create, body)) == [
        "recurrence.basis",
        "recurrence.exdates.1",
        "recurrence.foo",
    ]


def test_recurrence_requires_a_rule():
    assert error_fields(parse_create, {"title": "t", "recurrence": {"basis": "due"}}) == [
        "recurrence.rrule"
    ]


@pytest.mark.parametrize("exdates", ["2026-12-02T09:00:00Z", {"a": 1}, ["x"] * 101])
def test_recurrence_exdates_must_be_a_short_list(exdates):
    body = {"title": "t", "recurrence": {"rrule": "FREQ=DAILY", "exdates": exdates}}
    assert error_fields(parse_create, body) == ["recurrence.exdates"]


@pytest.mark.parametrize("recurrence", ["FREQ=DAILY", ["FREQ=DAILY"], 1])
def test_recurrence_must_be_an_object(recurrence):
    assert error_fields(parse_create, {"title": "t", "recurrence": recurrence}) == ["recurrence"]


# --- parse_patch -------------------------------------------------------------------------------


def test_patch_returns_only_the_fields_it_sets():
    assert parse_patch({"priority": "low"}) == TaskPatch(priority="low")
    assert parse_patch({"priority": "low"}).changes() == {"priority": "low"}
    assert parse_patch({}) == TaskPatch()
    assert parse_patch({}).changes() == {}


def test_patch_null_resets_fields_to_their_defaults():
    patch = parse_patch(
        {
            "description": None,
            "tags": None,
            "priority": None,
            "timezone": None,
            "due_at": None,
            "recurrence": None,
            "reminders": None,
        }
    )
    assert patch.changes() == {
        "description": None,
        "tags": (),
        "priority": "none",
        "timezone": "UTC",
        "due_at": None,
        "recurrence": None,
        "reminders": (),
    }
    assert patch.changes() == DEFAULTS
    assert patch.title is UNSET


def test_patch_cannot_null_the_title():
    assert error_fields(parse_patch, {"title": None}) == ["title"]


def test_patch_collects_all_errors():
    assert sorted(error_fields(parse_patch, {"id": "x", "title": "", "priority": "p"})) == [
        "id",
        "priority",
        "title",
    ]


CURRENT = Recurrence("FREQ=WEEKLY;BYDAY=MO", "due", (utc(2026, 12, 7, 9),))


def test_patch_merges_a_recurrence_object_into_the_current_one():
    patch = parse_patch({"recurrence": {"basis": "completion"}}, current=CURRENT)
    assert patch == TaskPatch(
        recurrence=Recurrence("FREQ=WEEKLY;BYDAY=MO", "completion", (utc(2026, 12, 7, 9),))
    )


def test_patch_replaces_only_the_members_it_names():
    patch = parse_patch({"recurrence": {"rrule": "FREQ=DAILY"}}, current=CURRENT)
    assert patch.recurrence == Recurrence("FREQ=DAILY", "due", (utc(2026, 12, 7, 9),))


def test_patch_member_null_returns_it_to_its_default():
    patch = parse_patch({"recurrence": {"exdates": None, "basis": None}}, current=CURRENT)
    assert patch.recurrence == Recurrence("FREQ=WEEKLY;BYDAY=MO", "due", ())


def test_patch_removing_the_rule_is_an_error_on_the_rule():
    assert error_fields(parse_patch, {"recurrence": {"rrule": None}}, current=CURRENT) == [
        "recurrence.rrule"
    ]


def test_patch_recurrence_without_current_needs_a_rule():
    assert error_fields(parse_patch, {"recurrence": {"basis": "completion"}}) == [
        "recurrence.rrule"
    ]


def test_patch_recurrence_null_removes_it_even_with_a_current_one():
    assert parse_patch({"recurrence": None}, current=CURRENT).changes() == {"recurrence": None}


def test_patch_merge_still_reports_unknown_recurrence_members():
    assert error_fields(parse_patch, {"recurrence": {"foo": 1}}, current=CURRENT) == [
        "recurrence.foo"
    ]
