"""Unit tests for dueflow.domain.timefmt: RFC 3339 instants and IANA time zone names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import available_timezones

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dueflow.domain.errors import ValidationFailed
from dueflow.domain.timefmt import format_instant, parse_instant, parse_timezone

FIELD = "due_at"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def rejection(parse, value: object, field: str) -> str:
    with pytest.raises(ValidationFailed) as info:
        parse(value, field)
    assert [e.field for e in info.value.errors] == [field]
    return info.value.errors[0].message


# --- parse_instant -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T17:00:00Z", utc(2026, 11, 23, 17)),
        ("2026-11-23T17:00:00z", utc(2026, 11, 23, 17)),
        ("2026-11-23t17:00:00z", utc(2026, 11, 23, 17)),
        ("2026-11-23 17:00:00Z", utc(2026, 11, 23, 17)),
        ("2026-11-23T17:00:00+00:00", utc(2026, 11, 23, 17)),
        ("2026-11-23T17:00:00-00:00", utc(2026, 11, 23, 17)),
        ("2026-11-23T18:00:00+01:00", utc(2026, 11, 23, 17)),
        ("2026-11-23T12:00:00-05:00", utc(2026, 11, 23, 17)),
        ("2026-11-23T22:30:00+05:30", utc(2026, 11, 23, 17)),
        ("2026-01-01T00:30:00+01:00", utc(2025, 12, 31, 23, 30)),  # previous day and year in UTC
        ("2028-02-29T23:59:59Z", utc(2028, 2, 29, 23, 59, 59)),
        ("2026-11-23T17:00:00.5Z", utc(2026, 11, 23, 17, 0, 0, 500_000)),
        ("2026-11-23T17:00:00.123Z", utc(2026, 11, 23, 17, 0, 0, 123_000)),
        ("2026-11-23T17:00:00.123456Z", utc(2026, 11, 23, 17, 0, 0, 123_456)),
        ("2026-11-23T17:00:00.1234567Z", utc(2026, 11, 23, 17, 0, 0, 123_456)),
        ("2026-11-23T17:00:00.123456789Z", utc(2026, 11, 23, 17, 0, 0, 123_456)),
        ("2026-11-23T18:00:00.999999999+01:00", utc(2026, 11, 23, 17, 0, 0, 999_999)),
    ],
)
def test_parse_instant_accepts_rfc_3339(text, expected):
    parsed = parse_instant(text, FIELD)
    assert parsed == expected
    assert parsed.tzinfo == UTC
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-23",  # a date without a time
        "2026-11-23T17:00:00",  # naive: no offset
        "2026-11-23 17:00:00",
        "2026-11-23T17:00Z",  # no seconds
        "2026-11-23T17:00:00+0100",  # offset without colon
        "2026-11-23T17:00:00+01",
        "2026-11-23T17:00:00.Z",
        "2026-11-23T17:00:00.1234567890Z",  # ten fraction digits
        "2026-11-23T17:00:00,5Z",
        "17:00:00Z",
        " 2026-11-23T17:00:00Z",
        "2026-11-23T17:00:00Z ",
        "2026-11-23_17:00:00Z",
        "20261123T170000Z",
        "",
        "tomorrow",
    ],
)
def test_parse_instant_rejects_other_shapes(value):
    assert "RFC 3339" in rejection(parse_instant, value, FIELD)


@pytest.mark.parametrize(
    "value",
    [
        "2026-02-30T00:00:00Z",
        "2026-02-29T00:00:00Z",  # 2026 is not a leap year
        "2026-13-01T00:00:00Z",
        "2026-00-10T00:00:00Z",
        "2026-11-23T24:00:00Z",
        "2026-11-23T17:60:00Z",
        "2026-12-31T23:59:60Z",  # leap seconds cannot be represented
        "2026-11-23T17:00:00+24:00",
    ],
)
def test_parse_instant_rejects_impossible_calendar_values(value):
    assert "calendar" in rejection(parse_instant, value, FIELD)


@pytest.mark.parametrize(
    "value", [None, 1_700_000_000, 1.5, True, b"2026-11-23T17:00:00Z", utc(2026, 11, 23), ["x"]]
)
def test_parse_instant_rejects_non_strings(value):
    rejection(parse_instant, value, FIELD)


def test_parse_instant_names_the_given_field():
    rejection(parse_instant, "2026-11-23", "recurrence.exdates.3")
    rejection(parse_instant, "2026-02-30T00:00:00Z", "due_before")


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_parse_instant_rejects_instants_outside_the_representable_range(value):
    rejection(parse_instant, value, FIELD)


# --- format_instant ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (utc(2026, 11, 23, 17), "2026-11-23T17:00:00Z"),
        (utc(2026, 11, 23, 17, 0, 0, 500_000), "2026-11-23T17:00:00.500000Z"),
        (utc(2026, 11, 23, 17, 0, 0, 1), "2026-11-23T17:00:00.000001Z"),
        (datetime(2026, 11, 23, 18, tzinfo=timezone(timedelta(hours=1))), "2026-11-23T17:00:00Z"),
        (datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))), "2025-12-31T23:30:00Z"),
    ],
)
def test_format_instant_is_utc_with_z(value, expected):
    assert format_instant(value) == expected


@given(
    st.datetimes(
        min_value=datetime(1900, 1, 2),
        max_value=datetime(8999, 12, 30),  # parse_instant accepts the years 1900 to 9000
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone.min]),
    )
)
def test_format_instant_reads_back_as_the_same_instant_in_any_offset(value):
    text = format_instant(value)
    assert text.endswith("Z") and "+" not in text
    assert parse_instant(text, FIELD) == value


def test_format_instant_of_none_is_none():
    assert format_instant(None) is None


def test_format_instant_drops_zero_microseconds():
    text = format_instant(utc(2026, 11, 23, 17, 5, 9))
    assert text == "2026-11-23T17:05:09Z"
    assert "." not in text


OFFSETS = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
AWARE = st.datetimes(  # parse_instant accepts the years 1900..9000
    min_value=datetime(1900, 1, 2), max_value=datetime(8999, 12, 31), timezones=OFFSETS
)


@given(AWARE)
def test_format_then_parse_round_trips(value):
    text = format_instant(value)
    assert text.endswith("Z")
    assert "+" not in text
    parsed = parse_instant(text, FIELD)
    assert parsed == value
    assert parsed.tzinfo == UTC
    assert format_instant(parsed) == text


@given(AWARE)
def test_parse_accepts_any_offset_and_returns_the_same_instant(value):
    parsed = parse_instant(value.isoformat(), FIELD)  # e.g. 2026-11-23T18:00:00+01:00
    assert parsed == value
    assert parsed.tzinfo == UTC


# --- parse_timezone ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Europe/Berlin",
        "UTC",
        "America/Argentina/Buenos_Aires",
        "America/New_York",
        "Australia/Sydney",
        "Asia/Kolkata",
        "Etc/GMT+5",
    ],
)
def test_parse_timezone_accepts_iana_names(name):
    assert parse_timezone(name) == name


@pytest.mark.parametrize(
    "value",
    [
        "Mars/Olympus",
        "",
        "../etc/passwd",
        "../../../../etc/passwd",
        "/etc/localtime",
        "/usr/share/zoneinfo/UTC",
        "posixrules",
        "zone.tab",
        "zone1970.tab",
        "tzdata.zi",
        "leapseconds",
        "iso3166.tab",
        "__init__.py",
        "posix/Europe/Berlin",
        "right/UTC",
        "Europe/",
        "Europe/Berlin/",
        "Europe//Berlin",
        "europe/berlin",
        "Europe/Berlin ",
        "Europe/Berlin\x00",
        "A" * 65,
    ],
)
def test_parse_timezone_rejects_unknown_and_non_zone_names(value):
    rejection(parse_timezone, value, "timezone")


@pytest.mark.parametrize("value", [None, 0, 1.0, True, b"UTC", ["UTC"], {"name": "UTC"}])
def test_parse_timezone_rejects_non_strings(value):
    rejection(parse_timezone, value, "timezone")


def test_parse_timezone_field_defaults_to_timezone_and_can_be_named():
    with pytest.raises(ValidationFailed) as info:
        parse_timezone("Mars/Olympus")
    assert info.value.errors[0].field == "timezone"
    rejection(parse_timezone, "Mars/Olympus", "settings.tz")


@pytest.mark.parametrize("value", ["Europe", "America", "America/Argentina"])
def test_parse_timezone_rejects_zone_directories(value):
    rejection(parse_timezone, value, "timezone")


@pytest.mark.skipif(
    "localtime" not in available_timezones(),
    reason="only where the system zoneinfo directory has a 'localtime' link (e.g. Debian)",
)
def test_parse_timezone_rejects_localtime():
    rejection(parse_timezone, "localtime", "timezone")
