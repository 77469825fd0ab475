"""The real Prometheus scrapes the sample app's own metrics through a target list the test writes,
and a slower, failing revision shows in range queries: what the statistical comparison of a
candidate with the live revision reads. No cluster: two sample-app host processes stand for two
revisions' pods (labels hash=a and hash=b, as `pod_targets` gives real pods), and Prometheus is
this test's own (hack/prometheus), not the session's. `pod_targets` itself is checked on a given
pod listing.
"""

from __future__ import annotations

import http.client
import math
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from greenlight.engine import naming
from tests.e2e import sample_app
from tests.e2e.sample_app import build_sample_app
from tests.e2e.servers import Prometheus, Series, pod_targets, prometheus_binary

REQUESTS = 400  # to each app, half to /, half to /version
FAIL_PERCENT = 20


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_sample_app(tmp_path_factory.mktemp("sample-app"))


class App(sample_app.App):
    """A sample app that a keep-alive client hammers."""

    def hammer(self, count: int, codes: Counter[int]) -> None:
        """`count` GETs on one keep-alive connection, alternating / and /version; counts codes."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            for i in range(count):
                conn.request("GET", "/" if i % 2 else "/version")
                answer = conn.getresponse()
                answer.read()
                codes[answer.status] += 1
        finally:
            conn.close()


@pytest.fixture
def apps(binary: Path, tmp_path: Path) -> Iterator[dict[str, App]]:
    """hash a: 20 ms; hash b: 26 ms (+30%) and 20% failures."""
    started = {
        "a": App(binary, tmp_path, "app-a", {"RESPONSE_DELAY": "20ms"}),
        "b": App(
            binary,
            tmp_path,
            "app-b",
            {"RESPONSE_DELAY": "26ms", "FAIL_PERCENT": str(FAIL_PERCENT)},
        ),
    }
    try:
        for app in started.values():
            app.wait_ready()
        yield started
    finally:
        for app in started.values():
            app.stop()


@pytest.fixture
def own_prometheus(tmp_path: Path) -> Iterator[Prometheus]:
    """A Prometheus of this test's own: no static target, only the `pods` job's target list."""
    workdir = tmp_path / "prometheus"
    workdir.mkdir()
    prom = Prometheus(prometheus_binary(), None, workdir)
    try:
        prom.start()
        yield prom
    finally:
        prom.stop()


def equals(want: float) -> Callable[[float], bool]:
    return lambda v: v == want


def by_hash(series: list[Series]) -> dict[str, list[float]]:
    """Each series' values that are numbers (0/0 where no request fell in the window is NaN)."""
    return {s.labels["hash"]: [v for v in s.values if not math.isnan(v)] for s in series}


def test_prometheus_scrapes_the_sample_apps_and_sees_the_slower_failing_one(
    apps: dict[str, App], own_prometheus: Prometheus
) -> None:
    prom = own_prometheus
    prom.set_targets(
        [
            (apps["a"].address, {"pod": "app-a", "hash": "a", "role": "live"}),
            (apps["b"].address, {"pod": "app-b", "hash": "b", "role": "candidate"}),
        ]
    )
    prom.wait_targets_up(2, timeout=30)
    info = {s.labels["hash"]: s.labels for s in prom.query("sample_app_info")}
    assert info["a"] == {
        "__name__": "sample_app_info",
        "job": "pods",
        "instance": apps["a"].address,
        "pod": "app-a",
        "hash": "a",
        "role": "live",
        "version": "app-a",
    }
    assert info["b"]["role"] == "candidate"

    codes: dict[str, Counter[int]] = {"a": Counter(), "b": Counter()}
    start = time.time()
    senders = [
        threading.Thread(target=apps[h].hammer, args=(REQUESTS, codes[h])) for h in ("a", "b")
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(timeout=60)
    assert not any(sender.is_alive() for sender in senders), "requests still running after 60 s"
    assert codes["a"] == {200: REQUESTS}
    assert set(codes["b"]) == {200, 500} and codes["b"].total() == REQUESTS

    # Prometheus has scraped every request (counted by code in both metrics, as the client saw it)
    counted = ("sample_app_requests_total", "sample_app_request_duration_seconds_count")
    for h in ("a", "b"):
        for code in (200, 500):
            for metric in counted:
                query = f'sum({metric}{{hash="{h}",code="{code}"}})'
                prom.wait_value(query, equals(codes[h][code]), timeout=15)
    end = time.time()

    latency = prom.query_range(
        "sum by (hash) (rate(sample_app_request_duration_seconds_sum[5s]))"
        " / sum by (hash) (rate(sample_app_request_duration_seconds_count[5s]))",
        start,
        end,
        1,
    )
    mean = by_hash(latency)
    assert sorted(mean) == ["a", "b"]
    assert len(mean["a"]) >= 3 and len(mean["b"]) >= 3, mean
    a, b = statistics.median(mean["a"]), statistics.median(mean["b"])
    assert 0.019 < a < 0.035, mean["a"]  # 20 ms and what the machine adds
    assert 1.15 < b / a < 1.45, (a, b)  # +30% (26 ms against 20 ms)
    steps_a = {t: v for s in latency if s.labels["hash"] == "a" for t, v in s.points}
    for s in latency:
        if s.labels["hash"] == "b":
            for t, v in s.points:
                if t in steps_a and not (math.isnan(v) or math.isnan(steps_a[t])):
                    assert v > steps_a[t], f"at {t}: b {v} <= a {steps_a[t]}"

    errors = by_hash(
        prom.query_range(
            'sum by (hash) (rate(sample_app_requests_total{code="500"}[5s]))'
            " / sum by (hash) (rate(sample_app_requests_total[5s]))",
            start,
            end,
            1,
        )
    )
    assert errors["a"] and all(v == 0 for v in errors["a"]), errors["a"]
    assert 0.12 < statistics.mean(errors["b"]) < 0.28, errors["b"]
    share = codes["b"][500] / REQUESTS  # binomial(400, 0.2): 0.2 ± 0.02
    assert 0.12 < share < 0.28, codes["b"]

    # a role changes (the test lists the pods again): Prometheus scrapes with the new labels
    prom.set_targets(
        [
            (apps["a"].address, {"pod": "app-a", "hash": "a", "role": "draining"}),
            (apps["b"].address, {"pod": "app-b", "hash": "b", "role": "live"}),
        ]
    )
    prom.wait_targets_up(2, timeout=15)
    prom.set_targets([(apps["b"].address, {"pod": "app-b", "hash": "b", "role": "live"})])
    prom.wait_targets_up(1, timeout=15)
    assert [s.labels["hash"] for s in prom.query("sample_app_info")] == ["b"]


def test_pod_targets_are_the_ready_pods_with_hash_and_role() -> None:
    """pod_targets on what a CoreV1Api lists (no cluster: the listing is given)."""

    def pod(name: str, ip: str | None, ready: str, **labels: str) -> SimpleNamespace:
        return SimpleNamespace(
            metadata=SimpleNamespace(name=name, labels={"app": "web", **labels}),
            status=SimpleNamespace(
                pod_ip=ip, conditions=[SimpleNamespace(type="Ready", status=ready)]
            ),
        )

    release, h1, h2 = {naming.LABEL_RELEASE: "web"}, "5d8f9c7b6a", "0a1b2c3d4e"
    listed = [
        pod("web-2", "10.0.0.2", "True", **release, **{naming.LABEL_HASH: h2}),
        pod("web-1", "10.0.0.1", "True", **release, **{naming.LABEL_HASH: h1},
            **{naming.LABEL_ROLE: "live"}),
        pod("web-3", "10.0.0.3", "False", **release, **{naming.LABEL_HASH: h2}),
        pod("web-4", None, "True", **release, **{naming.LABEL_HASH: h2}),
    ]  # fmt: skip
    selectors: list[str] = []

    class Core:
        def list_namespaced_pod(self, namespace: str, label_selector: str) -> SimpleNamespace:
            assert namespace == "shop"
            selectors.append(label_selector)
            return SimpleNamespace(items=listed)

    assert pod_targets(Core(), "shop", "web") == [
        ("10.0.0.1:8080", {"pod": "web-1", "hash": h1, "role": "live"}),
        ("10.0.0.2:8080", {"pod": "web-2", "hash": h2, "role": ""}),
    ]
    assert selectors == ["greenlight.dev/release=web"]
