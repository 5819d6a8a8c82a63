"""`make bench`'s harness, kept working by `make test`: every scenario once in the `smoke` profile
(tiny sizes, a minute in all), writing its results to a temporary directory. Only that results
are produced, with the keys the tables and docs/performance.md rely on, is asserted: never a
timing (a machine running the test suite is no place to judge speed)."""

from __future__ import annotations

import json

import pytest

from bench.run import run_bench
from bench.scenarios import ALL

pytestmark = pytest.mark.e2e

LATENCY_KEYS = {"n", "p50_ms", "p90_ms", "p99_ms", "max_ms", "sent", "ok", "failed"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    return run_bench(profile="smoke", results_dir=tmp_path_factory.mktemp("bench-results"))


@pytest.fixture(scope="module")
def scenarios(smoke):
    return smoke["results"]["scenarios"]


def test_every_scenario_runs_in_the_smoke_profile(scenarios):
    assert list(scenarios) == [module.KEY for module in ALL]
    for entry in scenarios.values():
        assert "error" not in entry, entry.get("traceback")
        assert "skipped" not in entry
        assert entry["targets"], f"scenario {entry['number']} has no targets"


def test_results_are_written_as_json_and_markdown(smoke):
    written = json.loads(smoke["json"].read_text())
    assert written["meta"]["profile"] == "smoke"
    assert written["meta"]["cores"] >= 1 and written["meta"]["seconds"] > 0
    assert {"scenarios", "targets"} <= set(written)
    for target in written["targets"]:
        assert {"scenario", "what", "op", "threshold", "measured", "ok"} <= set(target)
        assert target["ok"] or target["miss"], target
    markdown = smoke["md"].read_text()
    assert "## Targets:" in markdown and "| # | what | target | measured |" in markdown
    for module in ALL:
        assert f"## {module.NUMBER}. {module.TITLE}" in markdown


def test_api_has_latency_throughput_and_ratios_per_database_and_operation(scenarios):
    api = scenarios["api"]
    assert set(api["databases"]) == {"postgresql", "sqlite"}
    for db in api["databases"].values():
        for op in ("reference", "get", "list", "search", "create"):
            assert LATENCY_KEYS <= set(db["latency"][op])
            assert "throughput_rps" in db["throughput"][op]
        for op in ("get", "list", "search", "create"):
            assert set(db["ratios"][op]) == {"p50", "p99", "throughput"}
        assert "events_per_s" in db["relay"]


def test_event_path_measures_both_routings(scenarios):
    modes = scenarios["events"]["modes"]
    assert set(modes) == {"in-process", "kafka"}
    for mode in modes.values():
        assert LATENCY_KEYS - {"sent", "ok", "failed"} <= set(mode)
        assert mode["n"] == scenarios["events"]["config"]["completions"]
        assert {"unseen", "complete_request", "poll_request"} <= set(mode)


def test_reminder_storm_counts_losses_and_duplicates_with_and_without_the_kill(scenarios):
    runs = scenarios["storm"]["runs"]
    assert set(runs) == {"plain", "killed", "smtp"}  # smtp: the same storm over SMTP
    for run in runs.values():
        assert {"e_mails", "lost", "duplicates", "reminders_per_s", "complete"} <= set(run)
    assert "killed_at_s" in runs["killed"] and "killed_at_s" not in runs["plain"]
    assert "killed_at_s" not in runs["smtp"] and runs["smtp"]["duplicates_visible"]


def test_reminder_lateness_measures_the_tick_and_dapr_jobs(scenarios):
    runs = scenarios["lateness"]["runs"]
    assert set(runs) == {"tick", "jobs"}
    for run in runs.values():
        assert {"p50_s", "p99_s", "e_mails", "early"} <= set(run)
        assert run["e_mails"] == run["reminders"] and run["early"] == 0  # never early
    assert runs["jobs"]["jobs_scheduled"] >= runs["jobs"]["reminders"]


def test_recurrence_cost_compares_first_and_ten_thousandth_instance(scenarios):
    rules = scenarios["recurrence"]["rules"]
    assert set(rules) == {"daily", "weekly BYDAY", "monthly BYSETPOS"}
    for rule in rules.values():
        assert {"first_us", "later_us", "ratio"} <= set(rule)


def test_cold_start_covers_every_function_and_the_reference(scenarios):
    functions = scenarios["cold"]["functions"]
    names = {"reference", "tasks", "recurrence", "reminders", "notify", "commands", "deadletter"}
    assert set(functions) == names
    for function in functions.values():
        assert {"start_s", "start_ratio", "import_s", "import_ratio"} <= set(function)
        # the CPU the process tree used until its first answer (steadier than the wall time)
        assert function["start_cpu_s"] > 0 and function["start_cpu_ratio"] > 0
        # idle memory of the process tree (master and worker), once the first answer is out
        assert function["idle_pss_mib"] > 0
        assert len(function["idle_rss_mib"]) == 2


def test_search_reports_each_kind_of_query(scenarios):
    latency = scenarios["search"]["latency"]
    assert set(latency) == {"reference", "q", "q + filters", "list page"}
    for kind in ("q", "q + filters", "list page"):
        assert LATENCY_KEYS <= set(latency[kind]) and "p50_ratio" in latency[kind]


def test_assistant_compares_each_tool_call_with_the_same_rest_call(scenarios):
    assistant = scenarios["assistant"]
    assert set(assistant["latency"]) == {"find", "add"}
    for op, by_transport in assistant["latency"].items():
        assert set(by_transport) == {"rest", "mcp", "mcp_2026"}
        for latency in by_transport.values():
            assert LATENCY_KEYS <= set(latency) and latency["ok"] > 0, latency
        assert set(assistant["ratios"][op]) == {"p50", "p99"}
        assert set(assistant["ratios_2026"][op]) == {"p50", "p99"}


def test_live_reports_delivery_latency_and_memory_per_stream(scenarios):
    live = scenarios["live"]
    keys = {"n", "p50_ms", "p90_ms", "p99_ms", "max_ms", "sent", "expected", "delivered"}
    assert keys <= set(live["latency"])
    assert {"rss_before_kib", "rss_open_kib", "per_stream_kib"} <= set(live["memory"])
    assert live["config"]["streams"] == live["config"]["users"] * live["config"]["streams_per_user"]
