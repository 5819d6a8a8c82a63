"""Property: whatever valid task a client sends comes back, normalised, exactly as stored."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import auth

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata"]
text = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=60)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2099, 12, 31),
    timezones=st.just(timezone.utc),
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)


def rfc3339(instant: datetime, tz) -> str:
    return instant.astimezone(tz).isoformat()


def utc_z(instant: datetime) -> str:
    utc = instant.replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds") + "Z"


task_bodies = st.fixed_dictionaries(
    {"title": text.filter(lambda t: t.strip())},
    optional={
        "description": st.one_of(st.none(), text),
        "priority": st.sampled_from(["none", "low", "medium", "high"]),
        "tags": st.lists(
            st.text("abcdefgXYZ-_ ", min_size=1, max_size=8).filter(str.strip), max_size=20
        ),
        "timezone": st.sampled_from(ZONES),
        "due": st.tuples(instants, offsets),
        "at": st.lists(st.tuples(instants, offsets), max_size=3),
    },
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=task_bodies)
def test_task_fields_round_trip(client, spec):
    body = {k: v for k, v in spec.items() if k not in ("due", "at")}
    if "due" in spec:
        body["due_at"] = rfc3339(*spec["due"])
    if "at" in spec:
        body["reminders"] = [{"at": rfc3339(*a)} for a in spec["at"]]
    created = client.post("/tasks", json=body, headers=auth())
    assert created.status_code == 201, created.get_data(as_text=True)
    task = created.json
    assert client.get(f"/tasks/{task['id']}", headers=auth()).json == task
    assert task["title"] == body["title"].strip()
    assert task["description"] == body.get("description")
    assert task["priority"] == body.get("priority", "none")
    assert task["tags"] == list(dict.fromkeys(t.strip().lower() for t in body.get("tags", [])))
    assert task["timezone"] == body.get("timezone", "UTC")
    assert task["due_at"] == (utc_z(spec["due"][0]) if "due" in spec else None)
    assert [r["at"] for r in task["reminders"]] == [utc_z(a[0]) for a in spec.get("at", [])]
