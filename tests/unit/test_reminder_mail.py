"""parse_reminders_due: the data of a dev.dueflow.reminders.due batch, checked as a whole before
anything is sent. Pure: no database, no clock, no e-mail.

A batch is rejected whole when any part of it is bad (one 422 naming every bad item as
`data.reminders[i]...`), so a broker never half-delivers it; an instance listed twice is kept once.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from dueflow.domain.errors import ValidationFailed
from dueflow.domain.reminder_mail import MAX_BATCH, ReminderDue, compose, parse_reminders_due

TASK_ID = "3f1c2a9e-5b7d-4e8a-9c6f-1a2b3c4d5e6f"
REMINDER_IDS = [
    "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
    "0c1d2e3f-4a5b-4c6d-9e7f-8a9b0c1d2e3f",
    "6f5e4d3c-2b1a-4c9d-8e7f-6a5b4c3d2e1f",
]


def item(n: int = 0, **changes) -> dict:
    """The reminder.due data of reminder `n`, as the tick writes it."""
    data = {
        "user_id": "usr_7Hq2LmX9",
        "task_id": TASK_ID,
        "reminder_id": REMINDER_IDS[n],
        "remind_at": f"2026-12-01T07:0{n}:00Z",
        "title": f"Reminder {n}",
        "due_at": "2026-12-01T08:00:00Z",
        "timezone": "Europe/Berlin",
        "late": False,
    }
    data.update(changes)
    return data


def batch(*items: dict) -> dict:
    return {"reminders": list(items) if items else [item(0), item(1), item(2)]}


def fields_of(data: object) -> list[str]:
    with pytest.raises(ValidationFailed) as excinfo:
        parse_reminders_due(data)
    return [e.field for e in excinfo.value.errors]


def without(data: dict, name: str) -> dict:
    return {k: v for k, v in data.items() if k != name}


# -- valid batches ---------------------------------------------------------------------------------


def test_a_valid_batch_gives_each_reminder_in_order():
    dues = parse_reminders_due(batch())

    assert [d.reminder_id for d in dues] == REMINDER_IDS
    assert dues[0] == ReminderDue(
        user_id="usr_7Hq2LmX9",
        task_id=TASK_ID,
        reminder_id=REMINDER_IDS[0],
        remind_at=datetime(2026, 12, 1, 7, 0, tzinfo=UTC),
        title="Reminder 0",
        due_at=datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
        timezone="Europe/Berlin",
        late=False,
    )
    assert dues[2].key == f"r-{REMINDER_IDS[2]}-20261201T070200Z"
    assert dues[2].message_id == f"<r-{REMINDER_IDS[2]}-20261201T070200Z@dueflow>"


def test_the_batch_is_not_modified():
    data = batch(item(0), item(0), item(1, reminder_id=REMINDER_IDS[1].upper()))
    before = copy.deepcopy(data)
    parse_reminders_due(data)
    assert data == before


def test_an_item_without_a_due_date_and_a_late_item():
    [plain, late] = parse_reminders_due(batch(item(0, due_at=None), item(1, late=True)))
    assert plain.due_at is None and plain.late is False
    assert late.late is True
    subject, text = compose(plain, plain.late)
    assert subject == "Reminder: Reminder 0" and "This task has no due date." in text
    subject, text = compose(late, late.late)
    assert subject == "Reminder: Reminder 1 (late)"
    assert "it was meant for Tuesday, 1 December 2026 at 08:01 CET (Europe/Berlin)" in text


def test_times_are_normalised_to_utc_and_ids_to_lower_case():
    [due] = parse_reminders_due(
        batch(item(0, remind_at="2026-12-01T08:00:00+01:00", task_id=TASK_ID.upper()))
    )
    assert due.remind_at == datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    assert due.task_id == TASK_ID


@pytest.mark.parametrize(
    "again",
    [
        item(0),
        item(0, title="Renamed since", late=True),  # the same instance: the first one is kept
        item(0, reminder_id=REMINDER_IDS[0].upper()),
        item(0, remind_at="2026-12-01T08:00:00+01:00"),  # the same instant
    ],
    ids=["identical", "other title", "upper-case id", "same instant, other offset"],
)
def test_an_instance_listed_twice_is_kept_once(again):
    dues = parse_reminders_due(batch(item(0), item(1), again, item(2)))

    assert [d.reminder_id for d in dues] == REMINDER_IDS
    assert dues[0].title == "Reminder 0" and dues[0].late is False


def test_one_reminder_at_two_times_is_two_instances():
    """A snoozed reminder keeps its id: each remind_at is an instance of its own."""
    dues = parse_reminders_due(batch(item(0), item(0, remind_at="2026-12-01T07:10:00Z")))
    assert [d.key for d in dues] == [
        f"r-{REMINDER_IDS[0]}-20261201T070000Z",
        f"r-{REMINDER_IDS[0]}-20261201T071000Z",
    ]


def test_the_largest_batch_is_accepted():
    dues = parse_reminders_due({"reminders": [item(n % 3) for n in range(MAX_BATCH)]})
    assert MAX_BATCH == 1000 and len(dues) == 3


# -- the batch as a whole --------------------------------------------------------------------------


@pytest.mark.parametrize("data", [None, [], [item(0)], "reminders", 42, True])
def test_data_that_is_no_object(data):
    assert fields_of(data) == ["data"]


@pytest.mark.parametrize(
    "data",
    [{}, {"reminders": None}, {"reminders": []}, {"reminders": item(0)}, {"reminders": "r"}],
    ids=["missing", "null", "empty", "an object", "a string"],
)
def test_reminders_must_be_a_non_empty_array(data):
    with pytest.raises(ValidationFailed) as excinfo:
        parse_reminders_due(data)
    [error] = excinfo.value.errors
    assert (error.field, error.message) == ("data.reminders", "must be a non-empty array")


def test_more_than_1000_items_are_rejected_before_any_is_read():
    with pytest.raises(ValidationFailed) as excinfo:
        parse_reminders_due({"reminders": [item(0)] * 1000 + ["not even an object"]})
    [error] = excinfo.value.errors
    assert (error.field, error.message) == ("data.reminders", "must have at most 1000 items")


def test_unknown_top_level_keys_are_named():
    assert fields_of({**batch(), "zeta": 1, "batch_id": "b-1"}) == ["data.batch_id", "data.zeta"]


# -- bad items ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "field", "message"),
    [
        ("not an object", "data.reminders[1]", "must be an object"),
        (None, "data.reminders[1]", "must be an object"),
        (without(item(1), "user_id"), "data.reminders[1].user_id", "is required"),
        (without(item(1), "task_id"), "data.reminders[1].task_id", "is required"),
        (without(item(1), "reminder_id"), "data.reminders[1].reminder_id", "is required"),
        (without(item(1), "title"), "data.reminders[1].title", "is required"),
        (without(item(1), "remind_at"), "data.reminders[1].remind_at", "RFC 3339"),
        (without(item(1), "timezone"), "data.reminders[1].timezone", "IANA"),
        (item(1, user_id=42), "data.reminders[1].user_id", "non-empty string"),
        (item(1, title=""), "data.reminders[1].title", "non-empty string"),
        (item(1, task_id="task-1"), "data.reminders[1].task_id", "UUID"),
        (item(1, reminder_id="not-a-uuid"), "data.reminders[1].reminder_id", "UUID"),
        (item(1, reminder_id=""), "data.reminders[1].reminder_id", "non-empty string"),
        (item(1, remind_at="2026-12-01T07:00:00"), "data.reminders[1].remind_at", "offset"),
        (item(1, remind_at="soon"), "data.reminders[1].remind_at", "RFC 3339"),
        (item(1, remind_at="2026-02-30T07:00:00Z"), "data.reminders[1].remind_at", "calendar"),
        (item(1, due_at="tomorrow"), "data.reminders[1].due_at", "RFC 3339"),
        (item(1, timezone="Mars/Olympus"), "data.reminders[1].timezone", "unknown time zone"),
        (item(1, timezone="Europe"), "data.reminders[1].timezone", "unknown time zone"),
        (item(1, late="true"), "data.reminders[1].late", "true or false"),
        (item(1, late=0), "data.reminders[1].late", "true or false"),
    ],
)
def test_a_bad_item_rejects_the_batch_and_is_named(bad, field, message):
    with pytest.raises(ValidationFailed) as excinfo:
        parse_reminders_due(batch(item(0), bad, item(2)))
    [error] = excinfo.value.errors
    assert error.field == field
    assert message in error.message


def test_every_bad_item_is_named_in_order():
    data = {
        "reminders": [
            item(0, timezone="Europe/Atlantis"),
            item(1),
            "r",
            item(2, reminder_id="r2"),
            item(0),
            item(0, timezone="Europe/Atlantis"),  # a bad item listed again is named again
        ],
        "extra": True,
    }
    assert fields_of(data) == [
        "data.extra",
        "data.reminders[0].timezone",
        "data.reminders[2]",
        "data.reminders[3].reminder_id",
        "data.reminders[5].timezone",
    ]


def test_an_item_with_several_bad_fields_is_named_once():
    [field] = fields_of(batch(item(0), item(1, user_id="", late="no", timezone="Mars")))
    assert field in {f"data.reminders[1].{name}" for name in ("user_id", "late", "timezone")}
