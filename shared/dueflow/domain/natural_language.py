"""English dates, recurrence and reminder phrases, and quick-add lines -> the API's own fields.

A small hand-written grammar over a token list (no lenient parser guesses): a phrase is either
understood in full or rejected with `PhraseNotUnderstood`, quoting it and suggesting the nearest
supported forms. Pure: `now` is passed in, time zones are `ZoneInfo`s, wall-clock times become
instants the RFC 5545 way (`durations.to_utc`), and every rule is checked by `recurrence`'s own
parser. The forms, defaults and rejections are documented in docs/natural-language.md.
"""

from __future__ import annotations

import calendar
import difflib
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dueflow.domain.durations import parse_duration, to_utc
from dueflow.domain.errors import FieldError, ValidationFailed
from dueflow.domain.recurrence import build, can_occur, canonical, parse_rule, until_instant
from dueflow.domain.timefmt import MAX_YEAR, MIN_YEAR, parse_instant

#: The time a date without a time of day gets (local time in the user's zone).
DEFAULT_TIME = time(9, 0)
#: Times named by a word (Todoist's values); "tonight" alone is today at TONIGHT.
TONIGHT = time(20, 0)
DAY_PARTS = {
    "morning": time(9, 0),
    "afternoon": time(12, 0),
    "evening": time(19, 0),
    "night": time(22, 0),
    "noon": time(12, 0),
    "midday": time(12, 0),
    "midnight": time(0, 0),
}
MAX_INTERVAL = 999  # "every 1000 days" is a typo, not a plan
MAX_COUNT = 1000

_WEEKDAYS = {
    "monday": 0, "mon": 0,
    "tuesday": 1, "tue": 1, "tues": 1,
    "wednesday": 2, "wed": 2,
    "thursday": 3, "thu": 3, "thur": 3, "thurs": 3,
    "friday": 4, "fri": 4,
    "saturday": 5, "sat": 5,
    "sunday": 6, "sun": 6,
}  # fmt: skip
_FULL_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_RRULE_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12,
}  # fmt: skip
_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "thirty": 30, "forty": 40, "fortyfive": 45, "sixty": 60, "ninety": 90,
}  # fmt: skip
_ORDINAL_WORDS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "fifteenth": 15,
    "twentieth": 20,
}  # fmt: skip
# unit word -> (RRULE FREQ, ISO 8601 designator)
_UNITS = {
    "minute": ("MINUTELY", "M"), "minutes": ("MINUTELY", "M"), "min": ("MINUTELY", "M"),
    "mins": ("MINUTELY", "M"), "m": ("MINUTELY", "M"),
    "hour": ("HOURLY", "H"), "hours": ("HOURLY", "H"), "hr": ("HOURLY", "H"),
    "hrs": ("HOURLY", "H"), "h": ("HOURLY", "H"),
    "day": ("DAILY", "D"), "days": ("DAILY", "D"), "d": ("DAILY", "D"),
    "week": ("WEEKLY", "W"), "weeks": ("WEEKLY", "W"), "w": ("WEEKLY", "W"),
    "month": ("MONTHLY", "M"), "months": ("MONTHLY", "M"),
    "year": ("YEARLY", "Y"), "years": ("YEARLY", "Y"),
}  # fmt: skip
_ADVERBS = {"hourly": "HOURLY", "daily": "DAILY", "weekly": "WEEKLY", "monthly": "MONTHLY",
            "yearly": "YEARLY", "annually": "YEARLY"}  # fmt: skip
_WORKDAY_WORDS = ("workday", "workdays", "weekday", "weekdays")

# Tokens: an ISO date, a clock time, a number glued to letters (9am, 2nd, 30min), words, and the
# marks the grammar reads; anything else (other punctuation) is its own token and never parses.
_TOKEN = re.compile(
    r"""(?P<iso>\d{4}-\d{2}-\d{2})(?:t(?=\d))?
      | (?P<clock>\d{1,2}:\d{2})
      | (?P<ampm>[ap]\.m\.?)
      | (?P<num>\d+)(?P<suffix>[a-z]+)?
      | (?P<word>[a-z]+(?:'[a-z]+)?)
      | (?P<bang>!+[a-z0-9]*)
      | (?P<tag>\#(?=[^\W\d_])[^\s#!"]+)
      | (?P<quote>"[^"]*")
      | (?P<mark>\S)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class RecurrencePhrase:
    rrule: str  # canonical per domain/recurrence.py, no DTSTART
    basis: str  # "due" or "completion"
    first_due: datetime | None  # aware in tz; None without a time and without a day anchor


class PhraseNotUnderstood(ValidationFailed):
    """A phrase that is not fully understood: never guessed, always named with suggestions."""

    def __init__(self, field_name: str, phrase: str, suggestions: list[str], detail: str = ""):
        self.phrase = phrase
        self.suggestions = suggestions
        reason = f" ({detail})" if detail else ""
        tries = ", ".join(f'"{s}"' for s in suggestions)
        message = f'could not understand "{phrase}"{reason}; try for example {tries}'
        super().__init__([FieldError(field_name, message)])


# --- public functions ------------------------------------------------------------------------


def parse_due(text: str, *, now: datetime, tz: ZoneInfo, field: str = "due") -> datetime:
    """RFC 3339 or an English date/time ("tomorrow 9am", "in 2 hours") -> aware datetime in tz."""
    phrase = _phrase(text, field, DUE_EXAMPLES)
    if _looks_rfc3339(phrase):
        return _instant_with_offset(phrase, field).astimezone(tz)
    parser = _Parser(phrase, now, tz)
    return _whole(parser, parser.due, field, DUE_EXAMPLES)


def parse_recurrence(
    text: str, *, now: datetime, tz: ZoneInfo, field: str = "recurrence"
) -> RecurrencePhrase:
    """An RRULE ("FREQ=..." or "RRULE:FREQ=...") or an English recurrence ("every monday at 9")."""
    phrase = _phrase(text, field, RECURRENCE_EXAMPLES)
    if re.match(r"^(rrule:)?freq=", phrase, re.IGNORECASE):
        try:
            parts = parse_rule(phrase)
        except ValidationFailed as exc:
            raise ValidationFailed([FieldError(field, e.message) for e in exc.errors]) from None
        spec = _RuleSpec(parts=parts, anchored=_names_a_day_or_time(parts))
        return spec.resolve(now, tz, field, phrase)
    parser = _Parser(phrase, now, tz)
    spec = _whole(parser, parser.recurrence, field, RECURRENCE_EXAMPLES)
    return spec.resolve(now, tz, field, phrase)


def parse_reminder(
    text: str, *, now: datetime, tz: ZoneInfo, field: str = "reminders.0"
) -> dict[str, str]:
    """ "30 minutes before", "PT30M" -> {"before": ISO 8601}; "at 8am", RFC 3339 -> {"at": ...}."""
    phrase = _phrase(text, field, REMINDER_EXAMPLES)
    if re.match(r"^p(?=.*\d)[0-9ywmdt.,hs]*$", phrase, re.IGNORECASE):
        parse_duration(phrase, field)  # raises the domain's own error when malformed
        return {"before": phrase.upper()}
    if _looks_rfc3339(phrase):
        return {"at": _rfc3339(_instant_with_offset(phrase, field).astimezone(tz))}
    parser = _Parser(phrase, now, tz)
    return _whole(parser, parser.reminder, field, REMINDER_EXAMPLES)


def parse_quick_add(line: str, *, now: datetime, tz: ZoneInfo, field: str = "text") -> dict:
    """One line -> a `POST /tasks` body holding only the keys the line sets (see the docs)."""
    phrase = _phrase(line, field, QUICK_ADD_EXAMPLES)
    return _QuickAdd(phrase, now, tz, field).body()


def first_occurrence(rrule: str, *, after: datetime, tz: ZoneInfo, at: time = DEFAULT_TIME):
    """The first occurrence of `rrule` at or after `after`, expanded from that local day at `at`
    (the rule's BYHOUR/BYMINUTE win); None if the rule never occurs again. For a task that has a
    recurrence but no due date yet (quick add of "every day")."""
    parts = parse_rule(rrule)
    spec = _RuleSpec(parts=parts, anchored=_names_a_day_or_time(parts), clock=at)
    try:
        return spec.first(after, tz)
    except _Reject as exc:
        raise ValidationFailed([FieldError("recurrence.rrule", str(exc))]) from None


# --- examples (suggestions come from these, and the docs and tests use them) ----------------

DUE_EXAMPLES = [
    "today", "tomorrow", "tonight", "tomorrow 9am", "tomorrow at 17:30", "next week",
    "next monday", "next friday at noon", "friday", "monday at 17:30", "in 2 hours",
    "in 30 minutes", "in 3 days", "in 2 weeks", "dec 24", "dec 24 18:00", "24 december 2027",
    "2026-12-24", "2026-12-24 18:00", "end of month", "at 5pm", "9:30am", "the 15th",
]  # fmt: skip
RECURRENCE_EXAMPLES = [
    "every day", "daily", "every weekday", "every workday", "every weekend", "every week",
    "every other week", "every 2 weeks", "every 3 days", "every month", "every year",
    "every hour", "every 12 hours", "every monday", "every monday, wednesday",
    "every mon and fri at 9", "every other monday", "every 1st", "every 15th", "every last day",
    "every month on the 1st", "every last friday", "every 3rd tuesday",
    "every 2nd-to-last weekday", "every 15th workday", "every last workday", "every jan 1",
    "every 4th thursday of november", "every day at 9", "every monday at 9:30am",
    "every day at 18:00", "every morning", "every evening", "every day starting dec 1",
    "every week until 2027-06-30", "every day for 10 times", "every! 3 days",
    "every 3 days after completion", "FREQ=WEEKLY;BYDAY=MO",
]  # fmt: skip
REMINDER_EXAMPLES = [
    "30 minutes before", "1 hour before", "1 day before", "2 days before", "1 week before",
    "at due time", "PT30M", "at 8am", "tomorrow at 8am", "dec 24 at 8am",
    "2026-12-24T08:00:00+01:00",
]  # fmt: skip
QUICK_ADD_EXAMPLES = [
    "Pay rent every month on the 1st at 9 #home !high remind 2 days before",
    "Call mom tomorrow at 6pm #family",
    "Water plants every 3 days p2",
    'Read "next week" magazine today',
]


# --- helpers -----------------------------------------------------------------------------------


class _Reject(Exception):
    """Raised inside the grammar for a phrase that is clearly meant but wrong (Feb 30, 25:00)."""


def _phrase(text: object, field_name: str, examples: list[str]) -> str:
    if not isinstance(text, str) or not text.strip():
        raise PhraseNotUnderstood(field_name, "" if not isinstance(text, str) else text,
                                  examples[:3], "it is empty")  # fmt: skip
    if len(text) > 500:
        raise PhraseNotUnderstood(field_name, text[:40] + "…", examples[:3], "it is too long")
    return " ".join(text.split())


def _suggest(phrase: str, examples: list[str]) -> list[str]:
    near = difflib.get_close_matches(phrase.lower(), [e.lower() for e in examples], n=3, cutoff=0.4)
    by_lower = {e.lower(): e for e in examples}
    return [by_lower[n] for n in near] or examples[:3]


def _whole(parser: _Parser, rule, field_name: str, examples: list[str]):
    """Run one grammar rule over the whole phrase: all tokens consumed, or an error."""
    try:
        result = rule()
        if result is not None and parser.done():
            return result
        detail = ""
        if result is not None:
            detail = f'"{parser.rest()}" was not understood'
    except _Reject as exc:
        detail = str(exc)
    raise PhraseNotUnderstood(field_name, parser.text, _suggest(parser.text, examples), detail)


def _byday(days: list[int]) -> str:
    return ",".join(_RRULE_DAYS[d] for d in days)


def _names_a_day_or_time(parts: dict[str, str]) -> bool:
    """Whether a rule fixes its own dates (BYDAY=MO) rather than taking them from its start."""
    return any(k.startswith("BY") for k in parts)


_WITH_OFFSET = re.compile(
    r"^(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2})(:\d{2}(?:\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})$"
)


def _looks_rfc3339(phrase: str) -> bool:
    return bool(_WITH_OFFSET.match(phrase))


def _instant_with_offset(phrase: str, field_name: str) -> datetime:
    """RFC 3339; seconds may be left out ("2026-12-24T18:00Z"), the offset may not."""
    m = _WITH_OFFSET.match(phrase)
    return parse_instant(m.group(1) + (m.group(2) or ":00") + m.group(3), field_name)


def _rfc3339(instant: datetime) -> str:
    """RFC 3339 with the zone's offset, as the API accepts and a person reads."""
    return instant.isoformat(timespec="seconds")


def _wall(day: date, clock: time) -> datetime:
    return datetime.combine(day, clock.replace(tzinfo=None))


def _instant(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """A local date and time as an aware datetime in tz (a gap time moves forward, RFC 5545)."""
    return to_utc(_wall(day, clock), tz.key).astimezone(tz)


def _shift(day: date, freq: str, n: int) -> date:
    """Move a calendar date by n days, weeks, months or years (a month step clamps the day)."""
    if freq == "DAILY":
        day = day + timedelta(days=n)
    elif freq == "WEEKLY":
        day = day + timedelta(weeks=n)
    else:
        months = day.month - 1 + n * (12 if freq == "YEARLY" else 1)
        year, month = day.year + months // 12, months % 12 + 1
        _check_year(year)
        day = date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
    _check_year(day.year)
    return day


def _check_year(year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise _Reject(f"the year must be between {MIN_YEAR} and {MAX_YEAR}")


def _make_date(year: int, month: int, day: int) -> date:
    _check_year(year)
    try:
        return date(year, month, day)
    except ValueError:
        raise _Reject(f"{calendar.month_name[month]} {day}, {year} is not a date") from None


def _check_month_day(month: int, day: int) -> None:
    if not 1 <= day <= (29 if month == 2 else calendar.monthrange(2001, month)[1]):
        raise _Reject(f"{calendar.month_name[month]} has no day {day}")


@dataclass(frozen=True)
class _Tok:
    kind: str  # iso, clock, ampm, num, word, bang, tag, quote, mark
    text: str  # lower-cased
    start: int  # span in the original text
    end: int
    value: int | None = None  # numbers and ordinals
    ordinal: bool = False


def _tokenize(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    lower = text.lower()
    for m in _TOKEN.finditer(lower):
        kind = m.lastgroup if m.lastgroup != "suffix" else "num"
        if m.group("iso"):
            out.append(_Tok("iso", m.group("iso"), m.start(), m.start() + 10))
        elif m.group("num"):
            digits, suffix = m.group("num"), m.group("suffix")
            cut = m.start() + len(digits)
            if suffix in ("st", "nd", "rd", "th"):
                out.append(_Tok("num", m.group(0), m.start(), m.end(), int(digits), True))
            else:
                out.append(_Tok("num", digits, m.start(), cut, int(digits[:9])))
                if suffix:  # 9am, 30min, 2h: a number glued to its unit
                    out.append(_Tok("word", suffix, cut, m.end()))
        elif kind == "ampm":
            out.append(_Tok("word", m.group(0)[0] + "m", m.start(), m.end()))
        else:
            word = m.group(0)
            value = _ORDINAL_WORDS.get(word)
            out.append(_Tok(kind, word, m.start(), m.end(), value, value is not None))
    return out


# --- the grammar ---------------------------------------------------------------------------


@dataclass
class _When:
    """A parsed date phrase: a local day and/or time of day, or an exact instant."""

    day: date | None = None
    clock: time | None = None
    exact: datetime | None = None
    default: time = DEFAULT_TIME  # the time of day when none is named


@dataclass
class _RuleSpec:
    parts: dict[str, str] = field(default_factory=dict)
    basis: str = "due"
    clock: time | None = None  # the phrase's time of day
    start: _When | None = None
    anchored: bool = False  # the phrase names days (BYDAY, BYMONTHDAY...): it fixes a first date
    first_wall: datetime | None = None  # the wall-clock time of the last `first` found
    lasting: tuple[str, int] | None = None  # "for 3 weeks": UNTIL from the first date

    def check_no_end(self) -> None:
        if "COUNT" in self.parts or "UNTIL" in self.parts or self.lasting:
            raise _Reject("give an end date or a number of times, once")

    def resolve(self, now: datetime, tz: ZoneInfo, field_name: str, phrase: str):
        if self.lasting is not None:
            try:
                start = self.first(now, tz)
            except _Reject as exc:
                raise PhraseNotUnderstood(
                    field_name, phrase, _suggest(phrase, RECURRENCE_EXAMPLES), str(exc)
                ) from None
            if start is not None:
                last = _shift(start.date(), *self.lasting) - timedelta(days=1)
                self.parts["UNTIL"] = last.strftime("%Y%m%d")
        try:
            parts = parse_rule(canonical(self.parts))
            rrule = canonical(parts)
        except ValidationFailed as exc:
            raise PhraseNotUnderstood(
                field_name, phrase, _suggest(phrase, RECURRENCE_EXAMPLES), exc.errors[0].message
            ) from None
        self.parts = parts
        first = None
        if self.clock is not None or self.anchored or self.start is not None or "UNTIL" in parts:
            try:
                first = self.first(now, tz)
            except _Reject as exc:
                detail = str(exc)
            else:
                detail = "it has no occurrence from now on"
            if first is None:
                suggestions = _suggest(phrase, RECURRENCE_EXAMPLES)
                raise PhraseNotUnderstood(field_name, phrase, suggestions, detail)
            if self.clock is None and not self.anchored and self.start is None:
                first = None  # only checked that the series has a date before UNTIL
            else:
                rrule = self._keep_wall_time(first, tz) or rrule
        return RecurrencePhrase(rrule, self.basis, first)

    def _keep_wall_time(self, first: datetime, tz: ZoneInfo) -> str | None:
        """A first occurrence inside a spring-forward gap (02:30 on the day clocks skip to 03:00)
        is due at 03:30, and a task anchors its series on its due date's wall-clock time: the
        phrase's time of day then goes into the rule (BYHOUR/BYMINUTE) so the later occurrences
        keep 02:30. Otherwise the time of day lives in the due date, as RFC 5545 takes it from
        DTSTART."""
        wall = self.first_wall
        if wall is None or first.replace(tzinfo=None) == wall:
            return None
        if self.parts["FREQ"] in ("HOURLY", "MINUTELY") or "BYHOUR" in self.parts:
            return None
        self.parts = {**self.parts, "BYHOUR": str(wall.hour), "BYMINUTE": str(wall.minute)}
        return canonical(parse_rule(canonical(self.parts)))

    def first(self, after: datetime, tz: ZoneInfo) -> datetime | None:
        """The first occurrence at or after `after` (or the start date), expanded by dateutil
        over wall-clock times as the domain's recurrence module does."""
        local_now = after.astimezone(tz)
        clock = self.clock or DEFAULT_TIME
        from_day = local_now.date()
        lower_bound = after
        if self.start is not None:
            if self.start.clock is not None and self.clock is None:
                clock = self.start.clock
            if self.start.day is not None:
                from_day = self.start.day
                lower_bound = max(after, _instant(from_day, time(0, 0), tz))
        if self.parts.get("FREQ") in ("HOURLY", "MINUTELY"):
            if self.clock is None and (self.start is None or self.start.clock is None):
                clock = local_now.time().replace(second=0, microsecond=0)
        elif not self.anchored and (self.start is None or self.start.day is None):
            # "every 3 days at 9" said at 10:00 starts tomorrow, not in three days
            if _instant(from_day, clock, tz) < after:
                from_day += timedelta(days=1)
        if not can_occur(self.parts):
            return None
        start = _wall(from_day, clock)
        search = dict(self.parts)
        if search["FREQ"] not in ("HOURLY", "MINUTELY"):
            # The first matching day starts the series, so "every other monday" said on a
            # Wednesday is due next Monday, not in twelve days (the RRULE's period 0 holds it).
            search.pop("INTERVAL", None)
        try:
            rule = build(search, start, bounds=False)
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            raise _Reject(f"cannot expand the rule: {exc}") from None
        until = until_instant(self.parts, tz.key)
        for position, wall in enumerate(rule, start=1):
            if position > 100_000:
                return None
            instant = to_utc(wall, tz.key)
            if until is not None and instant > until:
                return None
            if instant >= lower_bound:
                self.first_wall = wall
                return instant.astimezone(tz)
        return None


class _Parser:
    """Recursive descent over the tokens; each rule returns a value and advances, or returns
    None and leaves the position where it was."""

    def __init__(self, text: str, now: datetime, tz: ZoneInfo, tokens: list[_Tok] | None = None):
        self.text = text
        self.toks = tokens if tokens is not None else _tokenize(text)
        self.pos = 0
        self.now = now.astimezone(tz)
        self.tz = tz
        self.today = self.now.date()
        self.meridiem = False  # whether the last time read had am/pm

    # -- token helpers
    def done(self) -> bool:
        return self.pos >= len(self.toks)

    def rest(self) -> str:
        return self.text[self.toks[self.pos].start :] if not self.done() else ""

    def peek(self, ahead: int = 0) -> _Tok | None:
        i = self.pos + ahead
        return self.toks[i] if i < len(self.toks) else None

    def word(self, *words: str) -> str | None:
        tok = self.peek()
        if tok is not None and tok.text in words and tok.kind in ("word", "mark", "bang"):
            self.pos += 1
            return tok.text
        return None

    def words(self, *sequence: str) -> bool:
        """Accept an exact sequence of words ("end of month"), or nothing."""
        saved = self.pos
        for w in sequence:
            if self.word(*w.split("|")) is None:
                self.pos = saved
                return False
        return True

    def attempt(self, rule, *args):
        saved = self.pos
        result = rule(*args)
        if result is None:
            self.pos = saved
        return result

    def number(self, *, words: bool = True) -> int | None:
        tok = self.peek()
        if tok is None:
            return None
        if tok.kind == "num" and not tok.ordinal:
            self.pos += 1
            return tok.value
        if words and tok.kind == "word" and tok.text in _NUMBER_WORDS:
            self.pos += 1
            return _NUMBER_WORDS[tok.text]
        return None

    def ordinal(self) -> int | None:
        """1st, 2nd, first, ..., last (-1), 2nd to last (-2), penultimate (-2)."""
        saved = self.pos
        tok = self.peek()
        if tok is None:
            return None
        if tok.text == "last":
            self.pos += 1
            return -1
        if tok.text == "penultimate":
            self.pos += 1
            return -2
        if not tok.ordinal:
            return None
        self.pos += 1
        if self.words("to", "last") or self.words("-", "to", "-", "last"):
            return -tok.value  # "2nd to last", "2nd-to-last"
        if self.peek() is not None and self.peek().text == "last" and tok.value >= 2:
            # "2nd last" is British for second to last
            self.pos += 1
            return -tok.value
        self.pos = saved + 1
        return tok.value

    def weekday(self, *, abbreviations: bool = True) -> int | None:
        tok = self.peek()
        if tok is None or tok.kind != "word":
            return None
        name = tok.text.rstrip("s") if tok.text.endswith("days") else tok.text
        if name in _WEEKDAYS and (abbreviations or name in _FULL_WEEKDAYS):
            self.pos += 1
            return _WEEKDAYS[name]
        return None

    def weekday_list(self) -> list[int] | None:
        """mon, wed and fri | mon-fri | monday to friday (a range, wrapping past Sunday)."""
        first = self.weekday()
        if first is None:
            return None
        days = [first]
        while True:
            saved = self.pos
            if self.word("-", "to", "through", "thru"):
                last = self.weekday()
                if last is None:
                    self.pos = saved
                    return days
                span = range(days[-1] + 1, days[-1] + 1 + (last - days[-1]) % 7)
                days += [d % 7 for d in span if d % 7 not in days]
                continue
            self.word(",")
            self.word("and", "&")
            nxt = self.weekday()
            if nxt is None:
                self.pos = saved
                return days
            if nxt not in days:
                days.append(nxt)

    def month(self) -> int | None:
        tok = self.peek()
        if tok is not None and tok.kind == "word" and tok.text in _MONTHS:
            self.pos += 1
            return _MONTHS[tok.text]
        return None

    def day_of_month(self) -> int | None:
        tok = self.peek()
        if tok is not None and tok.kind == "num" and 1 <= (tok.value or 0) <= 31:
            self.pos += 1
            return tok.value
        if tok is not None and tok.kind == "word" and tok.ordinal and tok.value <= 31:
            self.pos += 1
            return tok.value
        return None

    def year(self) -> int | None:
        tok = self.peek()
        if tok is not None and tok.kind == "num" and not tok.ordinal and len(tok.text) == 4:
            self.pos += 1
            _check_year(tok.value)
            return tok.value
        return None

    # -- times
    def clock(self) -> time | None:
        """at 9, 9am, 9:30 pm, 18:00, noon, @ 7 (a bare number only after at/@)."""
        return self.attempt(self._clock)

    def _clock(self) -> time | None:
        marked = self.word("at", "@") is not None
        tok = self.peek()
        if tok is None:
            return None
        if tok.kind == "word" and tok.text in ("noon", "midday", "midnight"):
            self.pos += 1
            return DAY_PARTS[tok.text]
        if tok.kind == "clock":
            hour, minute = (int(x) for x in tok.text.split(":"))
            self.pos += 1
        elif tok.kind == "num" and not tok.ordinal and len(tok.text) <= 2:
            hour, minute = tok.value, 0
            self.pos += 1
            nxt = self.peek()
            if not marked and not (nxt is not None and nxt.text in ("am", "pm", "o'clock")):
                return None
        else:
            return None
        suffix = self.word("am", "pm", "o'clock")
        self.meridiem = suffix in ("am", "pm")
        if suffix in ("am", "pm"):
            if not 1 <= hour <= 12:
                raise _Reject(f"{hour} {suffix} is not a time")
            hour = hour % 12 + (12 if suffix == "pm" else 0)
        if hour > 23 or minute > 59:
            raise _Reject(f"{tok.text} is not a time of day")
        return time(hour, minute)

    def day_part(self) -> time | None:
        tok = self.peek()
        if tok is not None and tok.text in ("morning", "afternoon", "evening", "night"):
            self.pos += 1
            return DAY_PARTS[tok.text]
        return None

    # -- dates
    def due(self) -> datetime | None:
        when = self.when()
        return None if when is None else self.resolve(when)

    def resolve(self, when: _When) -> datetime:
        """A parsed date phrase as an instant: a date alone gets DEFAULT_TIME (today's end if that
        has passed); a time alone is its next occurrence from now."""
        if when.exact is not None:
            return when.exact.astimezone(self.tz)
        if when.day is None:
            today = _instant(self.today, when.clock, self.tz)
            if today > self.now:
                return today
            return _instant(self.today + timedelta(days=1), when.clock, self.tz)
        if when.clock is not None:
            return _instant(when.day, when.clock, self.tz)
        result = _instant(when.day, when.default, self.tz)
        if result <= self.now and when.day == self.today:
            return _instant(when.day, time(23, 59), self.tz)
        return result

    def when(self) -> _When | None:
        """[on|by|due] date [time] | time [date] | in N units | N units from now."""
        saved = self.pos
        self.word("on", "by", "due")
        exact = self.attempt(self.relative)
        if exact is not None:
            return _When(exact=exact)
        clock = self.clock() or self.day_part()
        day = self.attempt(self.date)
        if day is None:
            if clock is None:
                self.pos = saved
                return None
            return _When(clock=clock)
        if clock is None:
            clock = self.clock()
            part = self.day_part() if clock is None else None
            if part is not None:
                clock = self.clock()
                if clock is None:
                    return _When(day=day.day, clock=part)
                day.default = part
        if clock and 1 <= clock.hour < 12 and day.default >= time(12) and not self.meridiem:
            clock = clock.replace(hour=clock.hour + 12)  # "tonight at 9", "evening at 8": p.m.
        return _When(day=day.day, clock=clock, default=day.default)

    def relative(self) -> datetime | None:
        """in 2 hours, in 30 minutes, in 3 days, 2 weeks from now, in an hour."""
        leading = self.word("in") is not None
        n = self.number()
        if n is None:
            return None
        tok = self.peek()
        if tok is None or tok.text not in _UNITS:
            return None
        self.pos += 1
        if not leading and not self.words("from", "now"):
            return None
        if n > 36600:
            raise _Reject("it is too far ahead")
        freq = _UNITS[tok.text][0]
        if freq in ("MINUTELY", "HOURLY"):
            step = timedelta(minutes=n) if freq == "MINUTELY" else timedelta(hours=n)
            if step > timedelta(days=3660):
                raise _Reject("it is too far ahead")
            # exact time: add in UTC (adding to a zoned datetime would move its wall clock)
            later = (self.now.astimezone(UTC) + step).replace(second=0, microsecond=0)
            return later.astimezone(self.tz)
        day = _shift(self.today, freq, n)
        clock = self.clock() or self.day_part()
        if clock is not None:
            return _instant(day, clock, self.tz)
        return _instant(day, DEFAULT_TIME, self.tz)

    def date(self) -> _When | None:
        tok = self.peek()
        if tok is None:
            return None
        today = self.today
        if tok.kind == "iso":
            self.pos += 1
            y, m, d = (int(x) for x in tok.text.split("-"))
            if not 1 <= m <= 12:
                raise _Reject(f"{tok.text} is not a date")
            return _When(day=_make_date(y, m, d))
        simple = {"today": 0, "tod": 0, "tomorrow": 1, "tmr": 1, "tmrw": 1}
        if tok.text in simple:
            self.pos += 1
            return _When(day=today + timedelta(days=simple[tok.text]))
        if tok.text == "tonight":
            self.pos += 1
            return _When(day=today, default=TONIGHT)
        if tok.text == "this":
            self.pos += 1
            part = self.day_part()
            if part is not None:  # "this evening": a default that an explicit time overrides
                return _When(day=today, default=part)
            wd = self.weekday()
            if wd is None:
                return None
            return _When(day=today + timedelta(days=(wd - today.weekday()) % 7))
        if tok.text == "next":
            self.pos += 1
            if self.word("week"):
                return _When(day=today + timedelta(days=7 - today.weekday()))
            if self.word("month"):
                return _When(day=_shift(today.replace(day=1), "MONTHLY", 1))
            if self.word("year"):
                return _When(day=_make_date(today.year + 1, 1, 1))
            wd = self.weekday()
            if wd is None:
                return None
            return _When(day=today + timedelta(days=(wd - today.weekday() - 1) % 7 + 1))
        if self.words("end", "of", "the|month"):
            self.word("month")
            last = calendar.monthrange(today.year, today.month)[1]
            return _When(day=today.replace(day=last))
        wd = self.weekday()
        if wd is not None:
            return _When(day=today + timedelta(days=(wd - today.weekday() - 1) % 7 + 1))
        return self.attempt(self.calendar_date)

    def calendar_date(self) -> _When | None:
        """dec 24 [2027] | 24 dec [2027] | 24th of december | the 15th."""
        month_day = self.attempt(self.month_and_day)
        if month_day is None:
            self.word("the")
            tok = self.peek()
            day = self.day_of_month()
            if day is None or not tok.ordinal:
                return None  # "15" alone is a number, "the 15th" is a day
            return _When(day=self._next_month_day(day))
        month, day = month_day
        year = self.attempt(self._year_after_comma)
        if year is not None:
            return _When(day=_make_date(year, month, day))
        _check_month_day(month, day)
        for y in range(self.today.year, self.today.year + 9):
            if calendar.isleap(y) or (month, day) != (2, 29):
                candidate = date(y, month, day)
                if candidate >= self.today:
                    return _When(day=candidate)
        return None

    def _year_after_comma(self) -> int | None:
        self.word(",")
        return self.year()

    def _next_month_day(self, day: int) -> date:
        y, m = self.today.year, self.today.month
        for _ in range(13):
            if day <= calendar.monthrange(y, m)[1] and date(y, m, day) >= self.today:
                return date(y, m, day)
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        raise _Reject(f"no month has a day {day}")

    # -- recurrence
    def recurrence(self) -> _RuleSpec | None:
        spec = _RuleSpec()
        lead = self.word("every", "ev", "each", "after")
        if lead is not None:
            if lead == "after" or self.word("!") is not None:
                spec.basis = "completion"
            if not self.attempt(self.rule_body, spec):
                return None
        else:
            tok = self.peek()
            if tok is None or tok.text not in _ADVERBS:
                return None
            self.pos += 1
            spec.parts["FREQ"] = _ADVERBS[tok.text]
        while self.modifier(spec):
            pass
        return spec

    def rule_body(self, spec: _RuleSpec) -> bool | None:
        p = spec.parts
        tok = self.peek()
        if tok is None:
            return None
        if self.word("other"):
            interval = 2
        else:
            interval = self.attempt(self._interval)
        if interval is None and tok.text in ("minute", "hour", "day", "week", "month", "year"):
            interval = 1
        if interval is not None:
            if not 1 <= interval <= MAX_INTERVAL:
                raise _Reject(f"the interval must be 1 to {MAX_INTERVAL}")
            unit = self.peek()
            if unit is not None and unit.text in _UNITS and unit.text not in ("m", "d", "w"):
                self.pos += 1
                p["FREQ"] = _UNITS[unit.text][0]
            elif unit is not None and unit.text in ("quarter", "quarters"):
                self.pos += 1
                p["FREQ"], interval = "MONTHLY", interval * 3
            else:
                days = self.weekday_list()
                if days is None:
                    return None
                p["FREQ"] = "WEEKLY"
                if interval != 1:
                    p["INTERVAL"] = str(interval)
                p["BYDAY"] = _byday(days)
                spec.anchored = True
                return True
            if interval != 1:
                p["INTERVAL"] = str(interval)
            self.on_clause(spec)
            return True
        if self.word("quarter"):
            p["FREQ"], p["INTERVAL"] = "MONTHLY", "3"
            self.on_clause(spec)
            return True
        if self.word("weekday", "workday", "weekdays", "workdays") or self.words(
            "working|business", "day"
        ):
            p["FREQ"], p["BYDAY"] = "WEEKLY", "MO,TU,WE,TH,FR"
            spec.anchored = True
            return True
        if self.word("weekend", "weekends"):
            if self.word("day", "days"):
                p["FREQ"], p["BYDAY"] = "WEEKLY", "SA,SU"
            else:
                p["FREQ"], p["BYDAY"] = "WEEKLY", "SA"
            spec.anchored = True
            return True
        part = self.day_part()
        if part is not None:
            p["FREQ"], spec.clock = "DAILY", part
            return True
        days = self.weekday_list()
        if days is not None:
            p["FREQ"], p["BYDAY"] = "WEEKLY", _byday(days)
            spec.anchored = True
            return True
        if self.attempt(self.yearly_date, spec):
            return True
        return self.attempt(self.monthly_days, spec)

    def _interval(self) -> int | None:
        n = self.number()
        if n is None:
            return None
        nxt = self.peek()
        if nxt is None:
            return None
        plural_ok = nxt.text in _UNITS or nxt.text in ("quarter", "quarters")
        if plural_ok or (nxt.kind == "word" and nxt.text.rstrip("s") in _WEEKDAYS):
            return n
        return None

    def on_clause(self, spec: _RuleSpec) -> None:
        """every month on the 1st / every week on monday / every year on dec 24."""
        saved = self.pos
        self.word("on")
        freq = spec.parts["FREQ"]
        if freq == "WEEKLY":
            days = self.weekday_list()
            if days is not None:
                spec.parts["BYDAY"] = _byday(days)
                spec.anchored = True
                return
        elif freq in ("MONTHLY", "YEARLY"):
            probe = _RuleSpec(parts={})
            if self.attempt(self.monthly_days if freq == "MONTHLY" else self.yearly_date, probe):
                spec.parts.update({k: v for k, v in probe.parts.items() if k != "FREQ"})
                spec.anchored = True
                return
        self.pos = saved

    def month_and_day(self) -> tuple[int, int] | None:
        """dec 24 | december 24th | 24 dec | the 24th of december."""
        month = self.month()
        if month is not None:
            day = self.day_of_month()
            return None if day is None else (month, day)
        self.word("the")
        day = self.day_of_month()
        if day is None:
            return None
        self.word("of")
        month = self.month()
        return None if month is None else (month, day)

    def yearly_date(self, spec: _RuleSpec) -> bool | None:
        """jan 1, january 1st, 1 jan, 1st of january, 4th thursday of november."""
        saved = self.pos
        self.word("the")
        n = self.ordinal()
        wd = self.weekday() if n is not None else None
        if wd is not None:
            self.word("of", "in")
            month = self.month()
            if month is not None:
                if not 1 <= abs(n) <= 5:
                    raise _Reject("a month has at most five of each weekday")
                spec.parts.update(FREQ="YEARLY", BYMONTH=str(month), BYDAY=f"{n}{_RRULE_DAYS[wd]}")
                spec.anchored = True
                return True
        self.pos = saved
        month_day = self.attempt(self.month_and_day)
        if month_day is None:
            return None
        month, day = month_day
        _check_month_day(month, day)
        spec.parts.update(FREQ="YEARLY", BYMONTH=str(month), BYMONTHDAY=str(day))
        spec.anchored = True
        return True

    def monthly_days(self, spec: _RuleSpec) -> bool | None:
        """1st[, 15th and last day] | 27 | last friday | 3rd tuesday | 15th workday | ... of the
        month."""
        items: list = []
        saved = self.pos
        while True:
            item = self.attempt(self._monthly_item)
            if item is None:
                if items:
                    self.pos = saved
                break
            items.append(item)
            saved = self.pos
            self.word(",")
            self.word("and", "&")
            if self.pos == saved or self.peek() is None:
                self.pos = saved
                break
            if self.peek().text in ("at", "@", "starting", "until", "for", "from", "after"):
                self.pos = saved
                break
        items = self._distribute(items)
        if not items:
            return None
        kinds = {k for k, _ in items}
        if len(kinds) != 1:
            raise _Reject("mix of month days, weekdays and workdays in one rule")
        self.words("of", "the|each|every", "month") or self.words("of", "month") or self.words(
            "a", "month"
        )
        kind = kinds.pop()
        values = [v for _, v in items]
        spec.parts["FREQ"] = spec.parts.get("FREQ", "MONTHLY")
        if kind == "monthday":
            spec.parts["BYMONTHDAY"] = ",".join(str(v) for v in values)
        elif kind == "weekday":
            spec.parts["BYDAY"] = ",".join(values)
        else:
            spec.parts["BYDAY"] = "MO,TU,WE,TH,FR"
            spec.parts["BYSETPOS"] = ",".join(str(v) for v in values)
        spec.anchored = True
        return True

    @staticmethod
    def _distribute(items: list) -> list | None:
        """Bare ordinals take the kind of the item after them ("2nd and 4th thursday"); at the
        end of the list they are month days, if written as numbers ("1st and 15th")."""
        out: list = []
        pending: list = []
        for kind, value in [*items, ("end", None)]:
            if kind == "bare":
                pending.append(value)
                continue
            for n, numeric in pending:
                if kind == "weekday":
                    out.append(("weekday", f"{n}{value.lstrip('+-0123456789')}"))
                elif kind in ("setpos", "monthday") or numeric:
                    out.append((kind if kind != "end" else "monthday", n))
                else:
                    return None  # "every last", "every first": no day named
            pending = []
            if kind != "end":
                out.append((kind, value))
        for kind, value in out:
            limit = {"monthday": 31, "setpos": 23, "weekday": 5}[kind]
            n = abs(int(value[:-2])) if kind == "weekday" else abs(value)
            if not 1 <= n <= limit:
                raise _Reject(f"{n} is out of range: a month has at most {limit} of those")
        return out

    def _monthly_item(self):
        self.word("the")
        tok = self.peek()
        n = self.ordinal()
        if n is None:
            # "every 27": a bare day number (Todoist); never a bare number elsewhere
            if tok is not None and tok.kind == "num" and not tok.ordinal:
                n = self.day_of_month()
                if n is None:
                    raise _Reject(f"{tok.text} is not a day of the month")
                nxt = self.peek()
                if nxt is not None and (nxt.text in _WEEKDAYS or nxt.text in _WORKDAY_WORDS):
                    return None
                return ("monthday", n)
            return None
        if self.word(*_WORKDAY_WORDS) or self.words("working|business", "day"):
            return ("setpos", n)
        wd = self.weekday()
        if wd is not None:
            return ("weekday", f"{n}{_RRULE_DAYS[wd]}")
        if self.word("day") is None:  # "2nd" in "2nd and 4th thursday": the list decides
            return ("bare", (n, tok.kind == "num" and tok.ordinal and n > 0))
        return ("monthday", n)

    def modifier(self, spec: _RuleSpec) -> bool:
        """at <time> | starting <date> | until <date> | for N times | after completion."""
        if self.peek() is None:
            return False
        saved = self.pos
        self.word(",")
        clock = self.clock() or self.day_part()
        if clock is not None:
            if spec.clock is not None:
                raise _Reject("it has two times of day")
            spec.clock = clock
            return True
        if self.words("after|from", "completion") or self.words("after", "done"):
            spec.basis = "completion"
            return True
        if self.word("starting", "from", "beginning", "start", "starts"):
            self.word("on", "from")
            when = self.attempt(self.when)
            if when is None or when.exact is not None:
                self.pos = saved
                return False
            if spec.start is not None:
                raise _Reject("it has two start dates")
            spec.start = when
            return True
        if self.word("until", "till", "til", "ending", "through", "thru", "ends"):
            self.word("on")
            when = self.attempt(self.when)
            if when is None or when.day is None:
                self.pos = saved
                return False
            spec.check_no_end()
            spec.parts["UNTIL"] = when.day.strftime("%Y%m%d")
            return True
        lead = self.word("for")
        n = self.number()
        if n is not None and self.word("times", "time", "occurrences", "occurrence"):
            if not 1 <= n <= MAX_COUNT:
                raise _Reject(f"the count must be 1 to {MAX_COUNT}")
            spec.check_no_end()
            spec.parts["COUNT"] = str(n)
            return True
        unit = self.peek()
        freq = _UNITS[unit.text][0] if unit is not None and unit.text in _UNITS else None
        # "for 3 weeks": until the day before 3 weeks are up; "for 30 minutes" is no end (in a
        # quick-add line it says how long the task takes, and stays in the title)
        if lead and n is not None and freq not in (None, "MINUTELY", "HOURLY"):
            if not 1 <= n <= MAX_INTERVAL:
                raise _Reject(f"the span must be 1 to {MAX_INTERVAL}")
            spec.check_no_end()
            self.pos += 1
            spec.lasting = (freq, n)
            return True
        self.pos = saved
        return False

    # -- reminders
    def reminder(self) -> dict[str, str] | None:
        before = self.attempt(self.before)
        if before is not None:
            return {"before": before}
        when = self.attempt(self.when)
        if when is not None:
            return {"at": _rfc3339(self.resolve(when))}
        return None

    def before(self) -> str | None:
        """N unit [and M unit] before | at due time | on time | when due."""
        if (
            self.words("at", "due", "time")
            or self.words("at", "due")
            or self.words("when", "due")
            or self.words("on", "time")
        ):
            return "PT0M"
        amounts: dict[str, int] = {}
        while True:
            n = self.number()
            if n is None:
                if self.words("half", "an", "hour"):
                    amounts["MIN"] = amounts.get("MIN", 0) + 30
                    break
                return None
            tok = self.peek()
            if tok is None or tok.text not in _UNITS:
                return None
            self.pos += 1
            freq = _UNITS[tok.text][0]
            key = {"MINUTELY": "MIN", "HOURLY": "H", "DAILY": "D", "WEEKLY": "W",
                   "MONTHLY": "MON", "YEARLY": "Y"}[freq]  # fmt: skip
            if key in amounts:
                raise _Reject(f"{tok.text} is given twice")
            amounts[key] = n
            if not self.word("and", ","):
                nxt = self.peek()
                if nxt is None or nxt.kind != "num":
                    break
        if not self.word("before", "early", "earlier", "ahead", "prior"):
            return None
        return _iso_duration(amounts)


def _iso_duration(amounts: dict[str, int]) -> str:
    if set(amounts) == {"W"}:
        text = f"P{amounts['W']}W"
    else:
        days = amounts.get("D", 0) + 7 * amounts.get("W", 0)
        date_part = "".join(
            f"{v}{d}" for v, d in ((amounts.get("Y", 0), "Y"), (amounts.get("MON", 0), "M"),
                                   (days, "D")) if v
        )  # fmt: skip
        time_part = "".join(
            f"{v}{d}" for v, d in ((amounts.get("H", 0), "H"), (amounts.get("MIN", 0), "M")) if v
        )
        text = "P" + date_part + ("T" + time_part if time_part else "")
        if text == "P":
            text = "PT0M"
    try:
        parse_duration(text, "before")
    except ValidationFailed as exc:
        raise _Reject(exc.errors[0].message.replace("must", "the reminder must")) from None
    return text


# --- quick add -------------------------------------------------------------------------------

_PRIORITY_WORDS = {
    "!high": "high", "!medium": "medium", "!med": "medium", "!low": "low", "!none": "none",
    "!!!": "high", "!!": "medium", "!1": "high", "!2": "medium", "!3": "low", "!4": "none",
    "p1": "high", "p2": "medium", "p3": "low", "p4": "none",
}  # fmt: skip
_PRIORITY_EXAMPLES = ["!high", "!medium", "!low", "!!!", "!!", "p1", "p2", "p3", "p4"]
_TIMEISH = re.compile(r"^(\d{1,2}:\d{2}|\d{1,2}\s?(am|pm))$")


class _QuickAdd:
    """Scan a line left to right: each position is a quoted literal, a #tag, a priority, a
    `remind ...` phrase, a recurrence, a due phrase, or a title word."""

    def __init__(self, line: str, now: datetime, tz: ZoneInfo, field_name: str):
        self.line = line  # whitespace already collapsed: spans index this text
        self.now, self.tz, self.field = now, tz, field_name
        self.toks = _tokenize(line)
        self.parser = _Parser(line, now, tz, self.toks)

    def fail(self, text: str, detail: str = "", suggestions=None) -> PhraseNotUnderstood:
        if suggestions is not None:
            return PhraseNotUnderstood(self.field, text, suggestions, detail)
        examples = DUE_EXAMPLES + RECURRENCE_EXAMPLES + [f"remind {r}" for r in REMINDER_EXAMPLES]
        suggestions = _suggest(text, examples) if text != self.line else QUICK_ADD_EXAMPLES[:2]
        return PhraseNotUnderstood(self.field, text, suggestions, detail)

    def span(self, start: int, end: int) -> str:
        return self.line[self.toks[start].start : self.toks[end - 1].end]

    def body(self) -> dict:
        p = self.parser
        cut: list[tuple[int, int]] = []  # character spans that are not title
        out: dict = {"reminders": [], "tags": []}
        due: datetime | None = None
        recurrence: tuple[_RuleSpec, str] | None = None
        if p.words("remind", "me", "to"):  # "remind me to pay rent ...": the task is what follows
            cut.append((0, self.toks[p.pos - 1].end))
        while not p.done():
            tok, start = p.peek(), p.pos
            if tok.kind == "quote":  # literal title words: only the quotes go
                cut += [(tok.start, tok.start + 1), (tok.end - 1, tok.end)]
                p.pos += 1
                continue
            if self.marker(tok, out):
                cut.append((tok.start, self.toks[p.pos - 1].end))
                continue
            try:
                if tok.text == "remind":
                    p.pos += 1
                    p.word("me")
                    reminder = p.attempt(p.reminder)
                    if reminder is None:
                        p.pos = len(self.toks)  # quote all that follows "remind"
                        raise _Reject("the reminder was not understood")
                    out["reminders"].append(reminder)
                elif tok.text == "," and (before := p.attempt(self.before_after_comma)):
                    cut.append((tok.start, tok.end))  # ", two days before": a reminder
                    out["reminders"].append({"before": before})
                elif (spec := self.recurrence(start)) is not None:
                    if recurrence is not None:
                        raise _Reject("it has two recurrences")
                    recurrence = (spec, self.span(start, p.pos))
                elif self.may_start_date(start) and (when := p.attempt(p.when)) is not None:
                    if due is not None:
                        raise _Reject("it has two due dates")
                    due = p.resolve(when)
                elif _TIMEISH.match(tok.text) or tok.kind == "iso":
                    raise _Reject("a date or time here was not understood")
                else:
                    p.pos += 1
                    continue
            except _Reject as exc:
                raise self.fail(self.span(start, max(p.pos, start + 1)), str(exc)) from None
            cut.append((tok.start, self.toks[p.pos - 1].end))
        title = "".join(c for i, c in enumerate(self.line) if not any(a <= i < b for a, b in cut))
        return self.assemble(" ".join(title.split()), out, due, recurrence)

    def before_after_comma(self) -> str | None:
        """ ", 2 days before" (the issue's own phrasing): a relative reminder after a comma."""
        p = self.parser
        p.pos += 1
        nxt = p.peek()
        if nxt is None or not (
            nxt.kind == "num" or nxt.text in _NUMBER_WORDS or nxt.text == "half"
        ):
            return None
        return p.before()

    def marker(self, tok: _Tok, out: dict) -> bool:
        """A #tag or a priority (!high, !!, p1), standing alone after a space: consumed."""
        p = self.parser
        if tok.start > 0 and not self.line[tok.start - 1].isspace():
            return False  # "C#", "wow!!", "issue#12" are title text
        if tok.kind == "tag":
            out["tags"].append(tok.text[1:])
            p.pos += 1
            return True
        priority = None
        if tok.kind == "bang" and tok.text != "!":
            priority = _PRIORITY_WORDS.get(tok.text)
            if priority is None:
                raise self.fail(tok.text, "unknown priority", _PRIORITY_EXAMPLES)
            width = 1
        nxt = p.peek(1)
        if tok.text == "p" and nxt is not None and nxt.start == tok.end:
            if nxt.text in ("1", "2", "3", "4") and self._ends_word(nxt):
                priority, width = _PRIORITY_WORDS["p" + nxt.text], 2
        if priority is None:
            return False
        if "priority" in out:
            text = self.line[tok.start : p.peek(width - 1).end]
            raise self.fail(text, "it has two priorities", _PRIORITY_EXAMPLES)
        out["priority"] = priority
        p.pos += width
        return True

    def _ends_word(self, tok: _Tok) -> bool:
        return tok.end == len(self.line) or self.line[tok.end].isspace()

    def recurrence(self, start: int) -> _RuleSpec | None:
        p = self.parser
        if self.toks[start].text not in _RECURRENCE_STARTS:
            return None
        spec = p.attempt(p.recurrence)
        if spec is None:
            self.check_prose(start, start + 1)
            return None
        nxt, last = p.peek(), self.toks[p.pos - 1]
        between = self.toks[start + 1 : p.pos - 1]
        # "every 3" itself, read as the 3rd of the month: a word right after it is suspect
        bare_number = (
            last.kind == "num" and not last.ordinal and all(t.kind == "bang" for t in between)
        )
        if nxt is not None and nxt.kind == "word" and self.toks[start].text in _RULE_OPENERS:
            # "every 3 blursdays" is not "every 3" (the 3rd) + "blursdays" in the title, nor
            # "every monday wensday" "every monday" + "wensday"
            if _near_rule_word(nxt) or (bare_number and nxt.text not in _RULE_GLUE):
                self.unknown_rule(start, p.pos + 1, nxt.text)
        if self.toks[start].text in _ADVERBS and p.pos == start + 1 and nxt is not None:
            # "weekly report": an adverb counts only at the end or before a marker or a time
            if nxt.kind in ("word", "num") and nxt.text != "remind":
                p.pos = start
                return None
        return spec

    def check_prose(self, start: int, i: int) -> None:
        """`every …` that is not a recurrence the grammar knows stays title text only when it
        reads as prose ("read every chapter", "every time I call"); one that reads as a rule
        ("every blursday", "every 3 blursdays", "every other wensday", "every!", a line ending
        in "every") is a 422 quoting it, never a title that silently lost its recurrence. An
        `each`, `ev` or `every` whose next word is a number, a word of the grammar or one
        close to it (or ends in "day") reads as a rule; "one", "other", "last" and ordinal
        words look one word further ("every other person" is prose)."""
        if self.toks[start].text not in _RULE_OPENERS:
            return
        end = i
        while end < len(self.toks):
            tok = self.toks[end]
            if tok.kind == "bang" and tok.start == self.toks[end - 1].end:
                end += 1  # "every!": from completion
                continue
            if tok.kind == "word" and tok.text in _RULE_MODIFIERS:
                end += 1
                continue
            break
        nxt = self.toks[end] if end < len(self.toks) else None
        modified = end > i
        if nxt is None:
            meant = True  # "buy milk every", "every other": a rule cut short
        elif nxt.kind == "num":
            meant = True
        elif nxt.kind == "word":
            meant = nxt.text in _RULE_WORDS or _near_rule_word(nxt)
        else:
            meant = modified and self.toks[i].kind == "bang"
        if not meant:
            return
        last = end + 1 if nxt is not None and nxt.kind in ("word", "num") else end
        if nxt is not None and nxt.kind == "num" and last < len(self.toks):
            if self.toks[last].kind == "word" and self.toks[last].text not in _RULE_GLUE:
                last += 1  # "every 3 blursdays": the unit goes with the number
        self.unknown_rule(start, last, nxt.text if nxt is not None else None)

    def unknown_rule(self, start: int, end: int, word: str | None) -> None:
        """422 for the rule-like phrase toks[start:end]: with its unknown `word` replaced by the
        grammar's nearest words ("every thursday" for "every blursday"), else the examples
        nearest to the whole phrase."""
        phrase = self.span(start, max(end, start + 1))
        near = difflib.get_close_matches(word, _RULE_WORD_LIST, n=3, cutoff=0.6) if word else []
        head = phrase[: phrase.lower().rindex(word)].rstrip() if near else ""
        suggestions = [f"{head} {w}" for w in near if self.parses(f"{head} {w}")]
        suggestions = suggestions or _suggest(phrase, RECURRENCE_EXAMPLES)
        detail = "not a recurrence this parser knows; quote it to keep it in the title"
        raise self.fail(phrase, detail, suggestions)

    def parses(self, rule: str) -> bool:
        try:
            parse_recurrence(rule, now=self.now, tz=self.tz)
        except ValidationFailed:
            return False
        return True

    def may_start_date(self, i: int) -> bool:
        """A due phrase never starts at a word that is mostly title text: an abbreviated
        weekday ("sun hat"), a day part ("morning run"), an ordinal ("3rd floor") or "the";
        those need "on", "next", "this" or "tomorrow" before them."""
        tok = self.toks[i]
        if tok.text in _WEEKDAYS and tok.text not in _FULL_WEEKDAYS:
            return False
        if tok.text in ("noon", "midday", "midnight"):
            return True
        return not (tok.ordinal or tok.text in ("the", "last", *DAY_PARTS))

    def assemble(self, title: str, out: dict, due, recurrence) -> dict:
        title = _tidy(title)
        if not title:
            raise self.fail(self.line, "no title is left")
        body: dict = {"title": title}
        if recurrence is not None:
            spec, phrase = recurrence
            rec = spec.resolve(self.now, self.tz, self.field, phrase)
            body["recurrence"] = {"rrule": rec.rrule, "basis": rec.basis}
            if due is None and (due := rec.first_due) is None:
                try:
                    due = spec.first(self.now, self.tz)
                except _Reject as exc:
                    raise self.fail(phrase, str(exc)) from None
        if due is not None:
            body["due_at"] = _rfc3339(due)
            body["timezone"] = self.tz.key
        if out["reminders"]:
            if due is None and any("before" in r for r in out["reminders"]):
                raise self.fail(self.line, "a reminder before the due date needs a due date")
            body["reminders"] = out["reminders"]
        if "priority" in out:
            body["priority"] = out["priority"]
        if out["tags"]:
            body["tags"] = list(dict.fromkeys(out["tags"]))
        return body


_RECURRENCE_STARTS = {"every", "ev", "each", "after", *_ADVERBS}
#: words after which an unparsed phrase may be a rule meant but not understood (check_prose)
_RULE_OPENERS = {"every", "ev", "each"}
#: words the recurrence grammar reads: a word after `every` that is one of them, or close to
#: one of them, is meant as a rule
_RULE_WORDS = frozenset(
    {*_WEEKDAYS, *_MONTHS, *(u for u in _UNITS if len(u) > 1), *_WORKDAY_WORDS, *DAY_PARTS}
    | {"weekend", "weekends", "fortnight"}
)
_RULE_WORD_LIST = sorted(w for w in _RULE_WORDS if len(w) > 3)  # suggestions: full names
#: words that make a rule of the next word or of nothing ("every other monday", "every last
#: friday", "every second tuesday"), and prose of anything else ("every other person")
_RULE_MODIFIERS = frozenset({"other", "last", "one", *_ORDINAL_WORDS, *_NUMBER_WORDS} - {"a", "an"})
_RULE_GLUE = {"and", "or", "of", "to", "for", "the", "on", "at", "in", "remind"}


def _near_rule_word(tok: _Tok) -> bool:
    """A word that is not the grammar's but close to one of its words ("blursday", "wensday",
    "janury"), or a word ending in "day" ("payday"); short words are too easily close."""
    if tok.kind != "word" or tok.text in _RULE_WORDS:
        return False
    if tok.text.endswith(("day", "days")):
        return True
    return len(tok.text) >= 5 and bool(
        difflib.get_close_matches(tok.text, _RULE_WORDS, n=1, cutoff=0.8)
    )


def _tidy(title: str) -> str:
    title = re.sub(r"\s+([,.;:!?])", r"\1", title)
    return title.strip(" ,;:-")
