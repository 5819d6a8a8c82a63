"""Unit tests for dueflow.domain.recurrence: checking RRULE values and their canonical form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dueflow.domain.errors import ValidationFailed
from dueflow.domain.recurrence import FIELD, canonical, parse_rule


def rejection(value: object) -> str:
    with pytest.raises(ValidationFailed) as info:
        parse_rule(value)
    assert [e.field for e in info.value.errors] == ["recurrence.rrule"]
    return info.value.errors[0].message


def test_errors_name_recurrence_rrule():
    assert FIELD == "recurrence.rrule"


# --- accepted rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "parts"),
    [
        ("FREQ=DAILY", {"FREQ": "DAILY"}),
        (  # every weekday
            "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
            {"FREQ": "WEEKLY", "BYDAY": "MO,TU,WE,TH,FR"},
        ),
        ("FREQ=WEEKLY;INTERVAL=2", {"FREQ": "WEEKLY", "INTERVAL": "2"}),  # every other week
        ("FREQ=MONTHLY;BYDAY=-1FR", {"FREQ": "MONTHLY", "BYDAY": "-1FR"}),  # last Friday
        ("FREQ=MONTHLY;BYDAY=+2MO", {"FREQ": "MONTHLY", "BYDAY": "+2MO"}),  # second Monday
        ("FREQ=MONTHLY;BYMONTHDAY=31", {"FREQ": "MONTHLY", "BYMONTHDAY": "31"}),
        ("FREQ=MONTHLY;BYMONTHDAY=-1", {"FREQ": "MONTHLY", "BYMONTHDAY": "-1"}),  # last day
        (  # last weekday of the month
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
            {"FREQ": "MONTHLY", "BYDAY": "MO,TU,WE,TH,FR", "BYSETPOS": "-1"},
        ),
        (
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
            {"FREQ": "YEARLY", "BYMONTH": "2", "BYMONTHDAY": "29"},
        ),
        ("FREQ=YEARLY;BYYEARDAY=-1", {"FREQ": "YEARLY", "BYYEARDAY": "-1"}),
        ("FREQ=YEARLY;BYWEEKNO=53", {"FREQ": "YEARLY", "BYWEEKNO": "53"}),
        (
            "FREQ=DAILY;BYHOUR=0,23;BYMINUTE=0,59",
            {"FREQ": "DAILY", "BYHOUR": "0,23", "BYMINUTE": "0,59"},
        ),
        ("FREQ=HOURLY;INTERVAL=8", {"FREQ": "HOURLY", "INTERVAL": "8"}),
        ("FREQ=MINUTELY;INTERVAL=30", {"FREQ": "MINUTELY", "INTERVAL": "30"}),
        ("FREQ=DAILY;COUNT=10", {"FREQ": "DAILY", "COUNT": "10"}),
        ("FREQ=DAILY;UNTIL=20261231", {"FREQ": "DAILY", "UNTIL": "20261231"}),
        ("FREQ=DAILY;UNTIL=20261231T235959Z", {"FREQ": "DAILY", "UNTIL": "20261231T235959Z"}),
        (
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,SU;WKST=SU",
            {"FREQ": "WEEKLY", "INTERVAL": "2", "BYDAY": "TU,SU", "WKST": "SU"},
        ),
    ],
)
def test_accepts_rfc_5545_rules(rule, parts):
    assert parse_rule(rule) == parts
    assert canonical(parse_rule(rule)) == rule


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("RRULE:FREQ=WEEKLY;BYDAY=MO", "FREQ=WEEKLY;BYDAY=MO"),
        ("rrule:freq=weekly;byday=mo", "FREQ=WEEKLY;BYDAY=MO"),
        ("freq=monthly;byday=-1fr", "FREQ=MONTHLY;BYDAY=-1FR"),
        ("Freq=Daily;Until=20261231t235959z", "FREQ=DAILY;UNTIL=20261231T235959Z"),
        ("  FREQ=DAILY;COUNT=3  ", "FREQ=DAILY;COUNT=3"),
        ("BYDAY=MO;FREQ=WEEKLY", "FREQ=WEEKLY;BYDAY=MO"),  # FREQ first, others in given order
        ("INTERVAL=2;BYDAY=FR;FREQ=WEEKLY", "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR"),
    ],
)
def test_canonical_form_strips_prefix_upper_cases_and_puts_freq_first(rule, expected):
    assert canonical(parse_rule(rule)) == expected


def test_parse_rule_returns_upper_cased_parts_in_given_order():
    parts = parse_rule("wkst=su;byday=mo;freq=weekly")
    assert list(parts.items()) == [("WKST", "SU"), ("BYDAY", "MO"), ("FREQ", "WEEKLY")]


# --- rejected rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "message_part"),
    [
        ("FREQ=SECONDLY", "SECONDLY"),
        ("FREQ=FORTNIGHTLY", "unknown FREQ"),
        ("FREQ=DAILY;COUNT=0", "COUNT"),
        ("FREQ=DAILY;COUNT=-1", "COUNT"),
        ("FREQ=DAILY;COUNT=x", "COUNT"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL"),
        ("FREQ=DAILY;INTERVAL=1.5", "INTERVAL"),
        ("FREQ=DAILY;COUNT=5;UNTIL=20261231", "COUNT and UNTIL"),
        ("FREQ=DAILY;BYEASTER=1", "unsupported rule part BYEASTER"),
        ("FREQ=DAILY;X-NAME=1", "unsupported"),
        ("FREQ=DAILY;BYSECOND=0", "unsupported"),
        ("FREQ=DAILY;FREQ=WEEKLY", "twice"),
        ("FREQ=WEEKLY;BYDAY=MO;BYDAY=TU", "twice"),
        ("BYDAY=MO", "FREQ is required"),
        ("INTERVAL=2;COUNT=3", "FREQ is required"),
        ("FREQ=YEARLY;BYMONTH=13", "BYMONTH"),
        ("FREQ=YEARLY;BYMONTH=0", "BYMONTH"),
        ("FREQ=YEARLY;BYMONTH=-1", "BYMONTH"),
        ("FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY"),
        ("FREQ=MONTHLY;BYMONTHDAY=32", "BYMONTHDAY"),
        ("FREQ=MONTHLY;BYMONTHDAY=-32", "BYMONTHDAY"),
        ("FREQ=MONTHLY;BYMONTHDAY=1,,2", "BYMONTHDAY"),
        ("FREQ=MONTHLY;BYSETPOS=0", "BYSETPOS"),
        ("FREQ=YEARLY;BYYEARDAY=367", "BYYEARDAY"),
        ("FREQ=YEARLY;BYWEEKNO=54", "BYWEEKNO"),
        ("FREQ=DAILY;BYHOUR=24", "BYHOUR"),
        ("FREQ=DAILY;BYHOUR=-1", "BYHOUR"),
        ("FREQ=DAILY;BYMINUTE=60", "BYMINUTE"),
        ("FREQ=WEEKLY;BYDAY=XX", "BYDAY"),
        ("FREQ=MONTHLY;BYDAY=0MO", "ordinal out of range"),
        ("FREQ=WEEKLY;WKST=XX", "WKST"),
    ],
)
def test_rejects_invalid_rules(rule, message_part):
    assert message_part in rejection(rule)


@pytest.mark.parametrize(
    "rule",
    [
        "not a rule",
        "FREQ",
        "FREQ=",
        "=DAILY",
        ";;",
        "FREQ=DAILY;",
        "FREQ=DAILY;;COUNT=2",
        "FREQ:DAILY",
    ],
)
def test_rejects_garbage(rule):
    rejection(rule)


@pytest.mark.parametrize("rule", ["", "   ", "RRULE:", "FREQ=DAILY;" + "BYHOUR=1," * 60])
def test_rejects_empty_and_overlong_values(rule):
    rejection(rule)


@pytest.mark.parametrize("value", [None, 1, True, b"FREQ=DAILY", ["FREQ=DAILY"], {"FREQ": "DAILY"}])
def test_rejects_non_strings(value):
    rejection(value)


@pytest.mark.parametrize(
    "until",
    ["2026-12-31", "2026123", "20261231T2359Z", "20261231T235959+0100", "20261231Z", "tomorrow"],
)
def test_rejects_malformed_until(until):
    assert "UNTIL" in rejection(f"FREQ=DAILY;UNTIL={until}")


@pytest.mark.parametrize("until", ["20261332", "20260230", "20261231T250000Z", "20261231T235960Z"])
def test_rejects_until_with_the_right_shape_but_an_impossible_value(until):
    assert "UNTIL must be a date" in rejection(f"FREQ=DAILY;UNTIL={until}")


def test_rejects_floating_until():
    rejection("FREQ=DAILY;UNTIL=20261231T235959")


@pytest.mark.parametrize("rule", ["FREQ=DAILY;COUNT=²", "FREQ=MONTHLY;BYMONTHDAY=²"])
def test_rejects_non_ascii_digits(rule):
    rejection(rule)


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=HOURLY;INTERVAL=2;BYHOUR=8,10,12,14,16,18",  # every two hours, 08:00 to 18:00
        "FREQ=MINUTELY;INTERVAL=2;BYMINUTE=15,45",
    ],
)
def test_accepts_rules_whose_by_values_depend_on_the_start_time(rule):
    assert canonical(parse_rule(rule)) == rule


# --- canonical form is a fixed point -----------------------------------------------------------

WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


def _numbers(low: int, high: int, signed: bool) -> st.SearchStrategy[str]:
    values = st.integers(low, high).map(str)
    if signed:
        values = st.one_of(values, st.integers(low, high).map(lambda n: f"-{n}"))
    return st.lists(values, min_size=1, max_size=4).map(",".join)


OPTIONAL_PARTS = {
    "INTERVAL": st.integers(1, 1000).map(str),
    "BYDAY": st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True).map(",".join),
    "BYMONTHDAY": _numbers(1, 31, True),
    "BYMONTH": _numbers(1, 12, False),
    "BYHOUR": _numbers(0, 23, False),
    "BYMINUTE": _numbers(0, 59, False),
    "WKST": st.sampled_from(WEEKDAYS),
    "COUNT": st.integers(1, 500).map(str),
    "UNTIL": st.sampled_from(["20261231", "20300101T000000Z"]),
}


@st.composite
def rule_texts(draw) -> str:
    names = draw(st.lists(st.sampled_from(sorted(OPTIONAL_PARTS)), unique=True, max_size=5))
    if "COUNT" in names and "UNTIL" in names:
        names.remove("UNTIL")
    items = [f"{n}={draw(OPTIONAL_PARTS[n])}" for n in names]
    freq = draw(st.sampled_from(["MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"]))
    # RFC 5545 §3.3.10 allows these parts only with some frequencies
    not_with = {
        "BYMONTHDAY=": ("WEEKLY",),
        "BYYEARDAY=": ("DAILY", "WEEKLY", "MONTHLY"),
        "BYWEEKNO=": ("MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY"),
    }
    items = [
        i for i in items if not any(i.startswith(p) and freq in f for p, f in not_with.items())
    ]
    if "BYSETPOS" in names and not any(i.startswith("BY") and "SETPOS" not in i for i in items):
        items = [i for i in items if not i.startswith("BYSETPOS=")]
    items.insert(draw(st.integers(0, len(items))), f"FREQ={freq}")
    text = ";".join(items)
    text = draw(st.sampled_from([text, text.lower(), "RRULE:" + text, "rrule:" + text.lower()]))
    return text


@given(rule_texts())
def test_canonical_is_stable(text):
    first = canonical(parse_rule(text))
    assert first.startswith("FREQ=")
    assert first == first.upper()
    assert not first.startswith("RRULE:")
    assert canonical(parse_rule(first)) == first
    assert parse_rule(first) == parse_rule(text)
