"""Synthetic but realistic task data: titles a person would write, tags, priorities, due dates.

Deterministic (seeded), so two runs measure the same data.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

VERBS = (
    "buy call email fix clean book pay review plan write read water order schedule cancel "
    "renew prepare send check update"
).split()
OBJECTS = (
    "milk plumber report invoice garden flights dentist car taxes meeting presentation groceries "
    "birthday insurance newsletter budget kitchen laptop library passport"
).split()
EXTRAS = (
    "before friday",
    "for the team",
    "with anna",
    "at home",
    "next week",
    "asap",
    "for mum",
    "online",
    "downtown",
    "quarterly",
)
TAGS = ("work", "home", "errands", "health", "finance", "garden", "family", "travel")
PRIORITIES = ("none", "low", "medium", "high")
# what people type into the search box: a word, two words, or a half-typed last word
QUERIES = (
    *OBJECTS,
    "buy milk",
    "call plumber",
    "meeting notes",
    "plum",
    "meet",
    "invo",
    "pay taxes",
    "team report",
    "flight",
    "birthdays",
)


def task_body(rng: random.Random, now: datetime | None = None) -> dict:
    """A `POST /tasks` body."""
    now = now or datetime.now(UTC)
    verb, obj = rng.choice(VERBS), rng.choice(OBJECTS)
    body: dict = {
        "title": f"{verb.capitalize()} {obj} {rng.choice(EXTRAS)}",
        "priority": rng.choice(PRIORITIES),
        "tags": rng.sample(TAGS, rng.randint(0, 2)),
    }
    if rng.random() < 0.5:
        body["description"] = f"Remember to {rng.choice(VERBS)} the {rng.choice(OBJECTS)} too"
    if rng.random() < 0.8:
        due = now + timedelta(minutes=rng.randint(-30 * 24 * 60, 30 * 24 * 60))
        body["due_at"] = due.replace(microsecond=0).isoformat()
    return body


def list_query(rng: random.Random, now: datetime | None = None) -> str:
    """A filtered list page: priority and tag filters, a due-date window, a sort order."""
    now = now or datetime.now(UTC)
    before = (now + timedelta(days=rng.randint(1, 30))).strftime("%Y-%m-%dT%H:%M:%SZ")
    # `priority` (low first since issue 11) runs the SQL that `-priority` ran before
    sort = rng.choice(("due_at", "priority", "title", "-created_at"))
    return (
        f"/tasks?priority={rng.choice(PRIORITIES[1:])}&tag={rng.choice(TAGS)}"
        f"&due_before={before}&sort={sort}&limit=20"
    )


def search_query(rng: random.Random, filtered: bool = False) -> str:
    q = rng.choice(QUERIES).replace(" ", "+")
    path = f"/tasks?q={q}&limit=20"
    if filtered:
        path += f"&priority={rng.choice(PRIORITIES[1:])}&tag={rng.choice(TAGS)}"
    return path
