"""Unit tests for dueflow.domain.listing: list query parameters and keyset cursors."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dueflow.domain.errors import ValidationFailed
from dueflow.domain.listing import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    SORTS,
    ListQuery,
    decode_cursor,
    encode_cursor,
    parse_list_query,
)

ID = "0b6f7c4e-2f0e-4a53-9f54-0f8f6a1d2c3b"
WHEN = datetime(2026, 11, 23, 17, 0, 0, 123_456, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def error_fields(args) -> list[str]:
    with pytest.raises(ValidationFailed) as info:
        parse_list_query(args)
    return [e.field for e in info.value.errors]


def raw_cursor(payload) -> str:
    """A cursor built by hand around any JSON payload."""
    text = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(text).rstrip(b"=").decode()


# --- parse_list_query --------------------------------------------------------------------------


def test_defaults():
    query = parse_list_query({})
    assert query == ListQuery()
    assert query.statuses == ("open",)
    assert query.sort == "due_at"
    assert query.limit == DEFAULT_LIMIT == 50
    assert (query.words, query.priorities, query.tags) == ((), (), ())
    assert (query.due_before, query.due_after, query.overdue, query.after) == (
        None,
        None,
        False,
        None,
    )
    assert query.keys == SORTS["due_at"]


def test_all_parameters():
    query = parse_list_query(
        {
            "q": ["Pay  RENT, Landlord!"],
            "status": ["done"],
            "priority": ["high", "low"],
            "tag": [" Home ", "WORK", " "],
            "due_before": ["2026-12-01T10:00:00+01:00"],
            "due_after": ["2026-11-01T00:00:00Z"],
            "overdue": ["true"],
            "sort": ["-priority"],
            "limit": ["200"],
        }
    )
    assert query.words == ("pay", "rent", "landlord")
    assert query.statuses == ("done",)
    assert query.priorities == ("high", "low")
    assert query.tags == ("home", "work")
    assert query.due_before == utc(2026, 12, 1, 9)
    assert query.due_after == utc(2026, 11, 1)
    assert query.overdue is True
    assert query.sort == "-priority"
    assert query.limit == MAX_LIMIT == 200


@pytest.mark.parametrize(
    ("status", "statuses"), [("open", ("open",)), ("done", ("done",)), ("all", ("open", "done"))]
)
def test_status(status, statuses):
    assert parse_list_query({"status": [status]}).statuses == statuses


@pytest.mark.parametrize("limit", ["1", "50", "200", "007"])
def test_limit_in_range(limit):
    assert parse_list_query({"limit": [limit]}).limit == int(limit)


@pytest.mark.parametrize("sort", list(SORTS))
def test_every_sort_is_accepted(sort):
    query = parse_list_query({"sort": [sort]})
    assert query.sort == sort
    assert query.keys[-1].column == "id"  # every order ends on the unique id


def test_overdue_false():
    assert parse_list_query({"overdue": ["false"]}).overdue is False


def test_q_without_words_is_no_words():
    assert parse_list_query({"q": ["  ,;  "]}).words == ()


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"colour": ["red"]}, "colour"),
        ({"page": ["2"]}, "page"),
        ({"limit": ["0"]}, "limit"),
        ({"limit": ["201"]}, "limit"),
        ({"limit": ["x"]}, "limit"),
        ({"limit": ["-1"]}, "limit"),
        ({"limit": ["1.5"]}, "limit"),
        ({"limit": [""]}, "limit"),
        ({"status": ["closed"]}, "status"),
        ({"status": ["OPEN"]}, "status"),
        ({"priority": ["urgent"]}, "priority"),
        ({"priority": ["high", "critical"]}, "priority"),
        ({"sort": ["due"]}, "sort"),
        ({"sort": ["+due_at"]}, "sort"),
        ({"due_before": ["2026-12-01"]}, "due_before"),
        ({"due_before": ["tomorrow"]}, "due_before"),
        ({"due_after": ["2026-12-01T10:00:00"]}, "due_after"),
        ({"overdue": ["maybe"]}, "overdue"),
        ({"overdue": ["1"]}, "overdue"),
        ({"q": [" ".join(["word"] * 11)]}, "q"),
        ({"q": ["x" * 65]}, "q"),
        ({"cursor": ["garbage"]}, "cursor"),
    ],
)
def test_errors_name_the_parameter(args, field):
    assert error_fields(args) == [field]


@pytest.mark.parametrize(
    "name", ["limit", "status", "sort", "q", "cursor", "due_before", "overdue"]
)
def test_single_valued_parameters_cannot_repeat(name):
    values = {
        "limit": ["10", "20"],
        "status": ["open", "done"],
        "sort": ["title", "title"],
        "q": ["a", "b"],
        "cursor": [encode_cursor("due_at", [None, 0, ID])] * 2,
        "due_before": ["2026-12-01T00:00:00Z"] * 2,
        "overdue": ["true", "false"],
    }
    assert error_fields({name: values[name]}) == [name]


def test_priority_and_tag_may_repeat():
    query = parse_list_query({"priority": ["high", "medium"], "tag": ["a", "b"]})
    assert (query.priorities, query.tags) == (("high", "medium"), ("a", "b"))


def test_all_errors_are_reported_together():
    fields = error_fields(
        {"limit": ["0"], "status": ["x"], "sort": ["x"], "overdue": ["x"], "foo": ["1"]}
    )
    assert sorted(fields) == ["foo", "limit", "overdue", "sort", "status"]


def test_limit_with_a_non_ascii_digit_is_an_error_on_limit():
    assert error_fields({"limit": ["²"]}) == ["limit"]


# --- cursors -----------------------------------------------------------------------------------

# One row's sort values for each order (due_at may be None: tasks without a due date sort last).
CURSOR_VALUES = {
    "due_at": [WHEN, 3, ID],
    "-due_at": [None, 0, ID],
    "priority": [2, utc(2026, 1, 1), ID],
    "-priority": [0, None, ID],
    "title": ["pay rent", ID],
    "-title": ["", ID],
    "created_at": [WHEN, ID],
    "-created_at": [utc(2026, 1, 1), ID],
    "updated_at": [WHEN, ID],
    "-updated_at": [WHEN, ID],
}


def test_every_sort_has_a_cursor_case():
    assert set(CURSOR_VALUES) == set(SORTS)


@pytest.mark.parametrize(("sort", "values"), CURSOR_VALUES.items())
def test_cursor_round_trip(sort, values):
    cursor = encode_cursor(sort, values)
    assert decode_cursor(cursor, sort) == tuple(values)
    assert parse_list_query({"sort": [sort], "cursor": [cursor]}).after == tuple(values)


def test_cursor_round_trip_keeps_a_due_at_of_none():
    cursor = encode_cursor("due_at", [None, 3, ID])
    assert decode_cursor(cursor, "due_at") == (None, 3, ID)


def test_decoded_datetimes_are_aware_and_equal():
    (due, _, _) = decode_cursor(encode_cursor("due_at", [WHEN, 0, ID]), "due_at")
    assert due == WHEN
    assert due.utcoffset() is not None


@pytest.mark.parametrize(("sort", "values"), CURSOR_VALUES.items())
def test_cursor_for_another_sort_is_an_error_on_cursor(sort, values):
    other = "title" if sort != "title" else "-title"
    cursor = encode_cursor(sort, values)
    with pytest.raises(ValidationFailed) as info:
        decode_cursor(cursor, other)
    assert [e.field for e in info.value.errors] == ["cursor"]
    assert error_fields({"sort": [other], "cursor": [cursor]}) == ["cursor"]


def test_cursor_defaults_to_the_default_sort():
    cursor = encode_cursor("title", ["a", ID])
    assert error_fields({"cursor": [cursor]}) == ["cursor"]
    assert parse_list_query({"cursor": [encode_cursor("due_at", [None, 0, ID])]}).after == (
        None,
        0,
        ID,
    )


@pytest.mark.parametrize(
    ("sort", "cursor"),
    [
        ("due_at", ""),
        ("due_at", "garbage"),
        ("due_at", "!!!!"),
        ("due_at", "é"),
        ("due_at", "%%%"),
        ("due_at", base64.urlsafe_b64encode(b"\xff\xfe\x00").decode()),  # not UTF-8
        ("due_at", raw_cursor("due_at")),
        ("due_at", raw_cursor(["due_at"])),
        ("due_at", raw_cursor(["due_at", [None, 0, ID], "extra"])),
        ("due_at", raw_cursor({"sort": "due_at", "values": [None, 0, ID]})),
        ("due_at", raw_cursor(["due_at", "not a list"])),
        ("due_at", raw_cursor(["due_at", [None, 0]])),  # too few values
        ("due_at", raw_cursor(["due_at", [None, 0, ID, ID]])),  # too many values
        ("due_at", raw_cursor(["due_at", ["yesterday", 0, ID]])),  # not a date-time
        ("due_at", raw_cursor(["due_at", [5, 0, ID]])),
        ("due_at", raw_cursor(["due_at", [None, "high", ID]])),  # priority must be a number
        ("due_at", raw_cursor(["due_at", [None, 0, None]])),  # id is never null
        ("due_at", raw_cursor(["due_at", [None, 0, "not-a-uuid"]])),
        ("due_at", raw_cursor(["due_at", [None, 0, 42]])),
        ("due_at", raw_cursor(["due_at", [None, 7, ID]])),  # no such priority
        ("due_at", raw_cursor(["due_at", [None, True, ID]])),
        ("due_at", raw_cursor(["due_at", ["2026-11-23T17:00:00", 0, ID]])),  # naive
        ("title", raw_cursor(["title", [None, ID]])),  # title is never null
        ("title", raw_cursor(["title", [7, ID]])),
        ("created_at", raw_cursor(["created_at", [None, ID]])),  # only due_at may be null
        ("priority", raw_cursor(["priority", [None, None, ID]])),
    ],
)
def test_garbage_or_tampered_cursor_is_an_error_on_cursor(sort, cursor):
    with pytest.raises(ValidationFailed) as info:
        decode_cursor(cursor, sort)
    assert [e.field for e in info.value.errors] == ["cursor"]
    assert error_fields({"sort": [sort], "cursor": [cursor]}) == ["cursor"]


def test_flipped_character_in_a_cursor_is_an_error_on_cursor():
    cursor = encode_cursor("due_at", [WHEN, 3, ID])
    tampered = ("A" if cursor[0] != "A" else "B") + cursor[1:]
    assert error_fields({"cursor": [tampered]}) == ["cursor"]


def test_deeply_nested_cursor_is_an_error_on_cursor():
    crafted = base64.urlsafe_b64encode(b"[" * 2000).decode()  # 2668 characters
    assert error_fields({"cursor": [crafted]}) == ["cursor"]


SORT_VALUES = st.one_of(
    st.none(),
    st.integers(-(2**53), 2**53),
    st.text(max_size=30),
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
)


@given(sort=st.sampled_from(list(SORTS)), values=st.lists(SORT_VALUES, max_size=4))
def test_cursors_are_url_safe(sort, values):
    cursor = encode_cursor(sort, values)
    assert not set(cursor) & {"+", "/", "=", "%", "&", "?", "#"}
    assert cursor.isascii()


@given(
    due=st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
    priority=st.integers(0, 3),
    task_id=st.uuids().map(str),
)
def test_due_at_cursor_round_trips(due, priority, task_id):
    assert decode_cursor(encode_cursor("due_at", [due, priority, task_id]), "due_at") == (
        due,
        priority,
        task_id,
    )


@pytest.mark.parametrize("sort", ["priority", "-priority"])
def test_a_priority_cursor_from_before_the_order_was_reversed_is_refused(sort):
    """Issue 11 made `-priority` high-first: a cursor issued for the old order names the sort
    without a version and would resume at the wrong place, so it is refused."""
    old = raw_cursor([sort, [3, None, ID]])
    assert error_fields({"sort": [sort], "cursor": [old]}) == ["cursor"]
    assert decode_cursor(encode_cursor(sort, [3, None, ID]), sort) == (3, None, ID)


def test_priority_sorts_are_ascending_and_descending_by_value():
    assert [k.descending for k in SORTS["priority"]] == [False, False, False]
    assert [k.descending for k in SORTS["-priority"]] == [True, False, False]
