"""The chart's PrometheusRule, as helm renders it, checked and unit-tested by Prometheus' own
promtool (hack/prometheus promtool: the pinned Prometheus release) against
tests/tools/alerts.promtool.yaml."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CASES = Path(__file__).resolve().parent / "alerts.promtool.yaml"


def tool(*args: str) -> str:
    out = subprocess.run(
        [str(ROOT / "hack" / args[0]), *args[1:]],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
        timeout=1800,  # first use builds it (minutes)
    )
    return out.stdout.strip().splitlines()[-1]


def rendered(*values: str) -> list[dict[str, Any]]:
    helm = tool("helm.sh")
    sets = [f"--set={v}" for v in values]
    out = subprocess.run(
        [helm, "template", "greenlight", str(ROOT / "charts" / "greenlight"), *sets],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def rule_groups(*values: str) -> list[dict[str, Any]]:
    [rule] = [d for d in rendered(*values) if d["kind"] == "PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    return list(rule["spec"]["groups"])


def promtool(tmp_path: Path, groups: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    cases = yaml.safe_load(CASES.read_text())
    cases["rule_files"] = ["rules.yaml"]
    (tmp_path / "cases.yaml").write_text(yaml.safe_dump(cases))
    binary = tool("prometheus", "promtool")
    check = subprocess.run(
        [binary, "check", "rules", "rules.yaml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    return subprocess.run(
        [binary, "test", "rules", "cases.yaml"], cwd=tmp_path, capture_output=True, text=True
    )


def test_monitoring_is_off_by_default() -> None:
    kinds = {d["kind"] for d in rendered()}
    assert not kinds & {"PrometheusRule", "ServiceMonitor"}
    assert all(d["metadata"]["name"] != "greenlight-dashboard" for d in rendered())


def test_alert_rules_pass_promtool_unit_tests(tmp_path: Path) -> None:
    groups = rule_groups("prometheusRule.enabled=true")
    alerts = {r["alert"] for g in groups for r in g["rules"]}
    assert alerts == {
        "GreenlightReleaseDegraded",
        "GreenlightReleaseStuckProgressing",
        "GreenlightOperatorDown",
        "GreenlightNoLeader",
        "GreenlightReconcileErrors",
    }
    result = promtool(tmp_path, groups)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_fails_rules_that_do_not_match_the_cases(tmp_path: Path) -> None:
    """The cases pin the chart's values: another job name or deadline fails them (so they test
    what the chart renders, not anything that parses)."""
    for changed in ("prometheusRule.job=other", "prometheusRule.progressingFor=30m"):
        groups = rule_groups("prometheusRule.enabled=true", changed)
        result = promtool(tmp_path, groups)
        assert result.returncode != 0, changed
        assert "FAILED" in result.stdout + result.stderr, changed


def test_service_monitor_and_dashboard_render() -> None:
    docs = rendered("serviceMonitor.enabled=true", "grafanaDashboard.enabled=true")
    [monitor] = [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True
    [service] = [
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"].endswith("-metrics")
    ]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "greenlight"
    [board] = [d for d in docs if d["metadata"]["name"] == "greenlight-dashboard"]
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = (ROOT / "charts" / "greenlight" / "files" / "grafana-dashboard.json").read_text()
    assert board["data"]["greenlight.json"] == shipped.rstrip("\n")
