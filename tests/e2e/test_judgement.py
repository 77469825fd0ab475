"""Canary judgement on the real node: a rolling release's analysis step with a `compare` check
judges the new revision against the live one by statistics, under the same traffic (the live
Service spans both revisions), with the sample app's real metrics scraped by the project's real
Prometheus and real requests flowing all the time.

- a candidate 30% slower (RESPONSE_DELAY 52ms vs 40ms) fails on latency and is rolled back;
- a candidate answering 20% of requests with 500 fails on errors and is rolled back;
- a candidate that differs in nothing that matters passes, and the release completes.
"""

from __future__ import annotations

import sys
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from greenlight.engine import naming
from tests.e2e.helpers import wait_for
from tests.e2e.realnode import on_real_node, require_real_node, sample_release
from tests.e2e.servers import Prometheus, pod_targets
from tests.e2e.support import Releases
from tests.e2e.traffic import TrafficProbe

pytestmark = [pytest.mark.realnode, pytest.mark.usefixtures("real_node", "operator")]

DELAY = "40ms"
RATE = 60
STEP = "3s"
RANGE = "45s"


@pytest.fixture(scope="module")
def real_node(kube: Any) -> None:
    require_real_node(kube)


def report(text: str) -> None:
    print(f"\n[judgement] {text}", file=sys.__stdout__, flush=True)


def per_pod(metric: str, side: str) -> str:
    """The mean latency of each pod of one side over each step (one sample per pod and step)."""
    selector = f'hash="$({side})"'
    return (
        f"rate(sample_app_request_duration_seconds_sum{{{selector}}}[{STEP}])"
        f" / rate(sample_app_request_duration_seconds_count{{{selector}}}[{STEP}])"
        if metric == "latency"
        else f"sum(increase(sample_app_requests_total{{{selector}{metric}}}[{STEP}]))"
    )


def judge(address: str) -> dict[str, Any]:
    latency = {
        "name": "latency",
        "query": per_pod("latency", "TEMPLATE_HASH"),
        "baselineQuery": per_pod("latency", "BASELINE_HASH"),
        "direction": "increase",
        "tolerance": 0.1,
        "minSamples": 10,
        "weight": 50,
    }
    errors = {
        "name": "errors",
        "test": "proportion",
        "query": per_pod(',code="500"', "TEMPLATE_HASH"),
        "baselineQuery": per_pod(',code="500"', "BASELINE_HASH"),
        "totalQuery": per_pod("", "TEMPLATE_HASH"),
        "baselineTotalQuery": per_pod("", "BASELINE_HASH"),
        "tolerance": 0.5,
        "minSamples": 200,
        "weight": 50,
    }
    compare = {"address": address, "range": RANGE, "step": STEP, "metrics": [latency, errors]}
    # Inconclusive (too few samples yet) is tolerated while the window fills.
    return {"name": "judge", "compare": compare, "initialDelay": "20s", "interval": "8s",
            "inconclusiveLimit": 6, "timeoutSeconds": 20}  # fmt: skip


def judged_release(version: str, address: str, **env: str) -> dict[str, Any]:
    switches = {"RESPONSE_DELAY": DELAY, **env}
    body = on_real_node(sample_release("web", version, replicas=2), version, **switches)
    steps = [{"setWeight": 50}, {"analysis": {"checks": [judge(address)]}}]
    body["spec"]["strategy"] = {"rolling": {"maxSurge": 1, "maxUnavailable": 0, "steps": steps}}
    body["spec"].pop("previewService", None)
    return body


@pytest.fixture
def served(
    kube: Any, namespace: str, releases: Releases, prometheus: Prometheus
) -> Iterator[TrafficProbe]:
    """v1 live behind its Service, requests at RATE/s, and Prometheus scraping every Ready pod
    of the Release (a target list kept current, labelled with each pod's template hash)."""
    releases.apply(judged_release("v1", prometheus.url))
    releases.wait_phase("web", "Healthy", liveRevision=1, timeout=120)
    ip = kube.core.read_namespaced_service("web", namespace).spec.cluster_ip

    def programmed() -> bool:  # (kube-proxy must have the rule before a client connects)
        with urllib.request.urlopen(f"http://{ip}/version", timeout=2) as r:
            return r.read().decode().strip() == "v1"

    wait_for(programmed, 60, f"kube-proxy serving the Service web on {ip}")
    stop = threading.Event()

    def follow() -> None:
        while not stop.is_set():
            prometheus.set_targets(pod_targets(kube.core, namespace, "web"))
            stop.wait(1)

    follower = threading.Thread(target=follow, daemon=True, name="targets")
    follower.start()
    try:
        with TrafficProbe(ip, 80, rate=RATE) as probe:
            probe.wait_until_served(timeout=60)
            yield probe
    finally:
        stop.set()
        follower.join(timeout=5)
        prometheus.set_targets([])


def release_v2(releases: Releases, prometheus: Prometheus, **env: str) -> dict[str, Any]:
    """Release v2 with `env`; the analysis step's verdict, once the Release has one."""
    releases.apply(judged_release("v2", prometheus.url, **env))

    def judged() -> dict[str, Any] | None:
        st = releases.status("web")
        check = next((c for c in st.get("checks", []) if c["name"] == "judge"), None)
        return check if check and check["phase"] not in ("Running",) else None

    check: dict[str, Any] = wait_for(judged, 240, "the judgement of v2")
    for m in (check.get("judgement") or {}).get("metrics", []):
        report(f"{env or 'identical'}: {m['name']} {m['verdict']}: {m['message']}"
               f" (samples {m['candidateN']}/{m['baselineN']})")  # fmt: skip
    return check


def metric(check: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in check["judgement"]["metrics"] if m["name"] == name)


def test_a_slower_candidate_fails_on_latency_and_is_rolled_back(
    served: TrafficProbe, releases: Releases, prometheus: Prometheus
) -> None:
    check = release_v2(releases, prometheus, RESPONSE_DELAY="52ms")
    assert check["phase"] == "Failed", check
    latency = metric(check, "latency")
    assert latency["verdict"] == "Fail" and 0.15 < latency["relative"] < 0.45, latency
    assert metric(check, "errors")["verdict"] == "Pass"
    st = releases.wait_phase("web", "Degraded", liveRevision=1, timeout=120)
    assert "AnalysisFailed" in (st["history"][-1].get("reason") or ""), st["history"][-1]
    failed = [e for e in releases.event_messages("web") if "latency" in e and "Fail" in e]
    assert failed, "an Event names the metric that failed and by how much"
    assert "%" in failed[-1], failed[-1]
    v1 = _v1_hash(releases)
    wait_for(lambda: _serving(releases) == {v1}, 120, "only v1's pods left")

    def all_v1() -> bool:  # (kube-proxy drops a deleted pod's endpoint a moment after)
        recent = served.snapshot()[-100:]
        return len(recent) == 100 and all(r.version == "v1" for r in recent)

    wait_for(all_v1, 30, "100 answers in a row from v1")
    assert not served.failures(), served.summary()


def test_a_candidate_with_more_errors_fails_on_errors(
    served: TrafficProbe, releases: Releases, prometheus: Prometheus
) -> None:
    check = release_v2(releases, prometheus, FAIL_PERCENT="20")
    assert check["phase"] == "Failed", check
    errors = metric(check, "errors")
    assert errors["verdict"] == "Fail" and 0.1 < errors["estimate"] < 0.3, errors
    assert errors.get("relative") is None, "the baseline answered no 500: a number, not NaN"
    releases.wait_phase("web", "Degraded", liveRevision=1, timeout=120)


def test_an_identical_candidate_passes_and_the_release_completes(
    served: TrafficProbe, releases: Releases, prometheus: Prometheus
) -> None:
    check = release_v2(releases, prometheus, UNUSED="1")
    assert check["phase"] == "Passed", check
    assert check["judgement"]["score"] == 100
    releases.wait_phase("web", "Healthy", liveRevision=2, timeout=120)
    assert not served.failures(), served.summary()


def _v1_hash(releases: Releases) -> str:
    st = releases.status("web")
    return next(h["templateHash"] for h in st["history"] if h["revision"] == 1)


def _serving(releases: Releases) -> set[str]:
    """The hashes of the Release's pods (a terminating one still answers for a moment)."""
    pods = releases.kube.core.list_namespaced_pod(
        releases.ns, label_selector=f"{naming.LABEL_RELEASE}=web"
    )
    return {p.metadata.labels[naming.LABEL_HASH] for p in pods.items}
