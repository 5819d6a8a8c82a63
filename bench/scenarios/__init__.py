"""One module per scenario of the benchmark issue, in its order.

Each module has KEY, NUMBER, TITLE, `applies(profile)`, `run(ctx) -> dict` (JSON-able),
`targets(result) -> list[Target]` and `markdown(result) -> list[str]`.
"""

from bench.scenarios import (
    api,
    assistant,
    cold_start,
    event_path,
    live,
    recurrence_cost,
    reminder_lateness,
    reminder_storm,
    search,
)

ALL = (
    api,
    event_path,
    reminder_storm,
    reminder_lateness,
    recurrence_cost,
    cold_start,
    search,
    live,
    assistant,
)
BY_KEY = {module.KEY: module for module in ALL}
