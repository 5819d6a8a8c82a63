"""What an event use case did: words for people (logs, the response body) and a kind for metrics.

The edge counts deliveries by kind, never by the words: those name task ids and counts, too many
values for a metric label, and matching words against a list breaks when someone rewords one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    DONE = "ok"  # handled (also when there was nothing to do: a stale reminder, a task gone)
    DUPLICATE = "duplicate"  # a redelivery of what was handled before: nothing changed


@dataclass(frozen=True)
class Outcome:
    detail: str  # what happened, in words
    kind: Kind = Kind.DONE

    def __str__(self) -> str:
        return self.detail


def done(detail: str) -> Outcome:
    return Outcome(detail, Kind.DONE)


def duplicate(detail: str) -> Outcome:
    return Outcome(detail, Kind.DUPLICATE)
