"""Every metric the chart's alerts and Grafana dashboard query is one the operator exports
(operator/greenlight/metrics.py), or Prometheus' own `up`: a renamed metric fails here, not
silently in someone's Prometheus. tests/tools/test_alerts.py runs the alerts in promtool."""

from __future__ import annotations

import json
import re
from pathlib import Path

import prometheus_client as prom
import pytest

from greenlight import metrics

CHART = Path(__file__).resolve().parents[2] / "charts" / "greenlight"
PROMETHEUS_OWN = {"up"}  # per scrape target, by Prometheus itself

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
_KEYWORDS |= {"and", "or", "unless", "atan2", "inf", "nan", "le"}
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
}


def metric_names(promql: str) -> set[str]:
    """Metric names a PromQL expression selects: identifiers that are not functions (followed by
    a parenthesis), keywords, label names (in braces or in by/without/on/ignoring lists),
    strings, durations or Grafana variables."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', promql)  # strings: label values, regexes
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables ($job, $__rate_interval)
    found = set()
    for m in re.finditer(r"(?<![\w.:])([a-zA-Z_:][\w:]*)(\s*\()?", text):
        name, call = m.group(1), m.group(2)
        if not call and name not in _KEYWORDS:
            found.add(name)
    return found


def test_metric_names_parser() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(greenlight_reconcile_seconds_bucket{job="x",'
        ' le!="+Inf"}[$__rate_interval]))) / on(instance) group_left up{job=~"$job"} > bool 0'
        " or absent(greenlight_queue_depth offset 5m) unless vector(1)"
    )
    assert metric_names(expr) == {
        "greenlight_reconcile_seconds_bucket",
        "up",
        "greenlight_queue_depth",
    }


def exported() -> set[str]:
    names: set[str] = set()
    for collector in vars(metrics).values():
        if isinstance(collector, prom.metrics.MetricWrapperBase):
            for family in collector.describe():
                names |= {family.name + s for s in _SUFFIXES[family.type]}
    return names


def rule_queries() -> list[str]:
    template = (CHART / "templates" / "monitoring.yaml").read_text()
    exprs = re.findall(r"^\s*expr:\s*(.+)$", template, flags=re.M)
    return [re.sub(r"\{\{.*?\}\}", "x", e) for e in exprs]  # helm values: label values only


def dashboard_queries() -> list[str]:
    board = json.loads((CHART / "files" / "grafana-dashboard.json").read_text())
    queries = [t["expr"] for p in board["panels"] for t in p["targets"]]
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            queries.append(re.sub(r"label_values\((\w+),.*\)", r"\1", var["definition"]))
    return queries


def test_exported_names_follow_the_exposition_format() -> None:
    assert {"greenlight_reconciles_total", "greenlight_release_phase"} <= exported()
    assert "greenlight_reconcile_seconds_bucket" in exported()
    assert "greenlight_reconciles" not in exported(), "counters are exposed with _total"


@pytest.mark.parametrize("source", [rule_queries, dashboard_queries])
def test_every_queried_metric_is_exported(source: object) -> None:
    assert callable(source)
    queries = source()
    assert len(queries) >= 4
    used: set[str] = set()
    for q in queries:
        names = metric_names(q)
        assert names, f"no metric found in {q!r}"
        used |= names
    unknown = used - exported() - PROMETHEUS_OWN
    assert not unknown, f"queried but not exported by the operator: {sorted(unknown)}"


def test_alerts_watch_phases_failed_reconciles_a_down_operator_and_no_leader() -> None:
    used = set().union(*(metric_names(q) for q in rule_queries()))
    assert {"greenlight_release_phase", "greenlight_reconciles_total", "up"} <= used
    assert "greenlight_leader" in used, "an alert when replicas are up but none leads"
