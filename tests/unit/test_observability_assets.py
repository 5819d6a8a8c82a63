"""The Grafana dashboard and PrometheusRule in charts/dueflow/files/ agree with the metrics dueflow
exports: every series they query exists, every exported metric is on the dashboard, and the alerts
are the documented ones."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client.metrics import MetricWrapperBase

from dueflow import metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "charts" / "dueflow" / "files" / "grafana-dashboard.json"
RULES = ROOT / "charts" / "dueflow" / "files" / "prometheus-rules.yaml"
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}
SERIES = re.compile(r"\bdueflow_[a-z_]+")
TICK_SECONDS = 60  # the PingSource's period


def exported() -> dict[str, set[str]]:
    """metric name -> the series names Prometheus sees for it."""
    found = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            [family] = value.describe()
            found[family.name] = {family.name + s for s in SUFFIXES[family.type]}
    return found


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def alerts() -> dict[str, dict]:
    rule = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["kind"] == "PrometheusRule"
    return {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}


def test_the_metrics_the_issue_names_are_exported():
    names = exported()
    for name in (
        "dueflow_http_requests",
        "dueflow_http_request_duration_seconds",
        "dueflow_events_handled",
        "dueflow_outbox_backlog",
        "dueflow_outbox_oldest_age_seconds",
        "dueflow_reminder_lateness_seconds",
        "dueflow_emails",
        "dueflow_dead_letters",
        "dueflow_dead_letters_pending",
        "dueflow_reminders_overdue",
        "dueflow_reminders_reemitted",
    ):
        assert name in names


def test_the_dashboard_queries_only_exported_series_and_shows_every_metric():
    known = set().union(*exported().values())
    exprs = dashboard_exprs()
    used = {series for expr in exprs for series in SERIES.findall(expr)}
    assert used <= known, used - known
    for name, series in exported().items():
        assert series & used, f"{name} is on no panel"
    assert all('namespace=~"$namespace"' in expr for expr in exprs)


def test_the_dashboard_is_importable_grafana_json():
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert board["uid"] and board["title"] == "dueflow" and board["id"] is None
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    variables = {v["name"] for v in board["templating"]["list"]}
    assert variables == {"datasource", "namespace"}


def test_the_alerts_are_the_four_of_the_issues_on_exported_series():
    found = alerts()
    assert set(found) == {
        "DeadLettersPresent",
        "OutboxBacklogGrowing",
        "ReminderLatenessHigh",
        "RemindersStuck",  # issue 17: reminders emitted again and still not sent
    }
    known = set().union(*exported().values())
    for name, rule in found.items():
        assert set(SERIES.findall(rule["expr"])) <= known, name
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert re.fullmatch(r"\d+[smh]", rule["for"])


def test_reminder_lateness_alerts_above_the_tick_period_on_a_bucket_edge():
    expr = alerts()["ReminderLatenessHigh"]["expr"]
    assert "dueflow_reminder_lateness_seconds_bucket" in expr
    assert re.search(rf"\)\s*>\s*{TICK_SECONDS}$", expr.strip())
    # histogram_quantile interpolates inside a bucket: at an edge, "above 60 s" is exact
    assert float(TICK_SECONDS) in metrics.REMINDER_LATENESS._upper_bounds
