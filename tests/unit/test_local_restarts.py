"""`make run`'s supervisor: when a dead function is started again (backoff) and when the stack
gives up (crash loop). The restart itself, with real processes, is in tests/e2e/test_faults.py."""

from __future__ import annotations

from dueflow_local.run import CRASH_LOOP, RESTART_FIRST, RESTART_MAX, RESTART_RESET, _Restarts


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def dies_and_restarts(restarts: _Restarts, clock: Clock, name: str = "notify") -> float:
    """The function dies now; returns how long its restart waited."""
    died = clock.now
    while not restarts.due(name, -9):
        clock.now += 0.05
    restarts.started(name)
    return clock.now - died


def test_a_dead_function_restarts_after_a_backoff_that_doubles_up_to_the_cap(capsys):
    clock = Clock()
    restarts = _Restarts(clock)
    waits = [round(dies_and_restarts(restarts, clock), 1) for _ in range(7)]  # dies at once
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert waits[0] == RESTART_FIRST and max(waits) == RESTART_MAX
    said = capsys.readouterr().err
    assert "notify exited (status -9); restarting it in 0.5 s" in said
    assert "notify restarted" in said


def test_the_backoff_resets_after_a_minute_of_running():
    clock = Clock()
    restarts = _Restarts(clock)
    assert round(dies_and_restarts(restarts, clock), 1) == RESTART_FIRST
    assert round(dies_and_restarts(restarts, clock), 1) == RESTART_FIRST * 2  # died at once
    clock.now += RESTART_RESET  # ran for a minute
    assert round(dies_and_restarts(restarts, clock), 1) == RESTART_FIRST


def test_quick_exits_in_a_row_are_a_crash_loop_that_stops_the_stack():
    clock = Clock()
    restarts = _Restarts(clock)
    count, window = CRASH_LOOP
    for _ in range(count - 1):
        dies_and_restarts(restarts, clock)
        assert not restarts.crash_looping("notify")
    restarts.due("notify", 1)
    assert restarts.crash_looping("notify")
    assert not restarts.crash_looping("tasks")  # per function
    clock.now += window + 1  # exits long ago no longer count
    assert not restarts.crash_looping("notify")
