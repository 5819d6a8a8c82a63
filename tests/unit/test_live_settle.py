"""`settle`: which changes a live tail may publish, given the snapshot bounds and fence of its
read (dueflow.service.live). The database side is tested in
tests/integration/test_change_log_order.py; here the rule itself."""

from __future__ import annotations

from dueflow.service.live import Settling, settle
from dueflow.service.ports import Change, ChangesRead


def _changes(*ids: int) -> list[Change]:
    return [Change(i, "alice", "dev.dueflow.task.created", "{}") for i in ids]


def test_nothing_read_waits_for_nothing():
    assert settle(ChangesRead([], 0, 0, 0), Settling(9, 100)) == ([], None)


def test_no_writer_in_flight_publishes_everything_at_once():
    read = ChangesRead(_changes(5, 6), 100, 100, 100)
    assert settle(read, None) == (read.changes, None)


def test_writers_in_flight_hold_back_until_every_one_below_the_fence_ended():
    # xmin == xmax but the fence is above: a writer that started after the last one ended runs
    first = ChangesRead(_changes(6), 100, 100, 101)
    assert settle(first, None) == ([], Settling(6, 102))
    still = ChangesRead(_changes(6), 101, 102, 103)
    assert settle(still, Settling(6, 102)) == ([], Settling(6, 102))
    ended = ChangesRead(_changes(5, 6, 7), 102, 104, 104)
    published, waiting = settle(ended, Settling(6, 102))
    assert [c.id for c in published] == [5, 6]  # 7 was not read the first time: it waits
    assert waiting == Settling(7, 105)


def test_nothing_in_flight_publishes_everything_whatever_was_waiting():
    read = ChangesRead(_changes(3, 4, 8), 50, 50, 50)
    published, waiting = settle(read, Settling(8, 40))
    assert [c.id for c in published] == [3, 4, 8] and waiting is None
