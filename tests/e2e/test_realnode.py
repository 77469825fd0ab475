"""Zero downtime measured with real requests: the sample app on the real node (kubelet readiness
probes, kube-proxy iptables rules), a TrafficProbe sending requests to the live Service's
ClusterIP all the time, and the operator in-process. Figures (rate, latencies) are printed; the
assertions are about correctness only: no failed request, and which versions answered."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from greenlight.engine import naming
from tests.e2e.helpers import is_ready, wait_for, watch_for
from tests.e2e.realnode import on_real_node, probe_service, require_real_node, sample_release
from tests.e2e.support import Releases, pods
from tests.e2e.test_plugin import greenlight
from tests.e2e.traffic import TrafficProbe, percentile

pytestmark = [pytest.mark.realnode, pytest.mark.usefixtures("real_node", "operator")]

RATE = int(os.environ.get("GREENLIGHT_TRAFFIC_RATE", "50"))  # requests per second


@pytest.fixture(scope="module")
def real_node(kube: Any) -> None:
    require_real_node(kube)


def released(releases: Releases, name: str = "web", **kw: Any) -> dict[str, Any]:
    manifest = sample_release(name, "v1", **kw)
    releases.apply(manifest)
    releases.wait_phase(name, "Healthy", liveRevision=1, timeout=120)
    return manifest


@pytest.fixture
def probe(kube: Any, namespace: str) -> Iterator[Any]:
    started: list[TrafficProbe] = []

    def start(service: str = "web") -> TrafficProbe:
        p = probe_service(kube, namespace, service, rate=RATE).__enter__()
        p.wait_until_served()
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def report(text: str) -> None:
    """Figures for the log: to the real stdout (kopf's KopfRunner swaps sys.stdout while the
    in-process operator runs)."""
    print(f"\n[realnode] {text}", file=sys.__stdout__, flush=True)


def no_failures(probe: TrafficProbe) -> None:
    failed = probe.failures()
    if failed:
        t0 = probe.snapshot()[0].started
        lines = [f"t={r.started - t0:.3f}s {r.error}" for r in failed[:20]]
        raise AssertionError(f"{len(failed)} failed requests: " + "; ".join(lines))


def only_version_from_now(probe: TrafficProbe, version: str, requests: int = RATE) -> None:
    """Every request started from now on (the next `requests` of them) answers `version`."""
    now = time.monotonic()
    probe.wait_for_requests(requests, since=now)
    answers = probe.versions(since=now)
    assert set(answers) == {version}, f"after the flip to {version}: {answers}"


def test_ten_blue_green_flips_under_load_fail_no_request(releases: Releases, probe: Any) -> None:
    manifest = released(releases, blue_green={"scaleDownDelaySeconds": 5})
    traffic = probe()
    traffic.wait_for_version("v1")
    rest = time.monotonic()
    traffic.wait_for_requests(5 * RATE, since=rest)  # 5 s at rest, for the latency baseline
    flips_start = time.monotonic()
    for revision in range(2, 12):
        version = f"v{revision}"
        applied = time.monotonic()
        releases.apply(on_real_node(manifest, version))
        releases.wait_phase("web", "Healthy", liveRevision=revision, timeout=120)
        traffic.wait_for_version(version, timeout=30, since=applied)
        only_version_from_now(traffic, version)
    flips_end = time.monotonic()
    traffic.stop()
    at_rest = traffic.latencies(rest, flips_start)
    during = traffic.latencies(flips_start, flips_end)
    report(
        f"10 flips in {flips_end - flips_start:.0f} s at {RATE} req/s: {traffic.summary()}"
        f"\np99 at rest {percentile(at_rest, 99) * 1000:.1f} ms ({len(at_rest)} requests),"
        f" during flips {percentile(during, 99) * 1000:.1f} ms ({len(during)} requests)"
    )
    no_failures(traffic)
    assert len(traffic.snapshot()) > 10 * RATE


def test_undo_to_a_warm_revision_under_load_fails_no_request(
    releases: Releases, probe: Any, kube: Any
) -> None:
    manifest = released(releases, blue_green={"scaleDownDelaySeconds": 300})
    traffic = probe()
    traffic.wait_for_version("v1")
    releases.apply(on_real_node(manifest, "v2"))
    releases.wait_phase("web", "Healthy", liveRevision=2, timeout=120)
    traffic.wait_for_version("v2", timeout=30)
    only_version_from_now(traffic, "v2")
    pods_before = releases.pod_names()
    undone = time.monotonic()
    releases.annotate("web", naming.COMMAND_UNDO, "")
    releases.wait_phase("web", "Degraded", liveRevision=1, timeout=60)  # held: spec says v2
    traffic.wait_for_version("v1", timeout=30, since=undone)
    only_version_from_now(traffic, "v1")
    traffic.stop()
    report(f"undo under load: {traffic.summary()}")
    no_failures(traffic)
    assert releases.pod_names() <= pods_before, "the warm revision served the undo: no new pods"


def test_abort_of_a_never_ready_version_keeps_only_the_old_one_answering(
    releases: Releases, probe: Any, kube: Any, namespace: str
) -> None:
    manifest = released(releases)
    traffic = probe()
    traffic.wait_for_version("v1")
    start = time.monotonic()
    releases.apply(on_real_node(manifest, "v2", FAIL_READINESS="true"))

    def running_unready_v2(pod: Any) -> bool:
        env = {e.name: e.value for e in pod.spec.containers[0].env or []}
        statuses = pod.status.container_statuses or []
        return (
            env.get("APP_VERSION") == "v2"
            and bool(statuses)
            and statuses[0].state.running is not None
            and not is_ready(pod)
        )

    watch_for(
        kube.core.list_namespaced_pod,
        namespace,
        predicate=running_unready_v2,
        timeout=60,
        what="a v2 pod running but not ready (the kubelet's probe gets 503)",
    )
    traffic.wait_for_requests(3 * RATE, since=time.monotonic())  # v2 runs, unready, for 3 s
    releases.annotate("web", naming.COMMAND_ABORT)
    releases.wait_phase("web", "Aborted", timeout=60)
    traffic.wait_for_requests(RATE, since=time.monotonic())
    traffic.stop()
    report(f"abort: {traffic.summary(start)}")
    assert traffic.versions(since=start) == {"v1": len(traffic.snapshot(start))}
    no_failures(traffic)


class ReadyEndpoints(threading.Thread):
    """Follows the ready endpoints of a Service's EndpointSlices; records the lowest count."""

    def __init__(self, kube: Any, namespace: str, service: str) -> None:
        super().__init__(daemon=True)
        self.kube, self.ns, self.service = kube, namespace, service
        self.lowest: int | None = None
        self.counts: dict[str, int] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        list_fn = self.kube.discovery.list_namespaced_endpoint_slice
        label = f"kubernetes.io/service-name={self.service}"
        while not self._halt.is_set():
            w = watch.Watch()
            try:
                for event in w.stream(list_fn, self.ns, label_selector=label, timeout_seconds=2):
                    s = event["object"]
                    if event["type"] == "DELETED":
                        self.counts.pop(s.metadata.name, None)
                    else:
                        self.counts[s.metadata.name] = sum(
                            1
                            for e in s.endpoints or []
                            if e.conditions is None or e.conditions.ready
                        )
                    total = sum(self.counts.values())
                    self.lowest = total if self.lowest is None else min(self.lowest, total)
            except ApiException as e:
                if e.status != 410:
                    raise
            finally:
                w.stop()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


def test_rolling_release_never_serves_below_the_bound(
    releases: Releases, probe: Any, kube: Any, namespace: str
) -> None:
    replicas, unavailable = 4, 1
    rolling = {"maxSurge": 1, "maxUnavailable": unavailable}
    manifest = sample_release("web", "v1", replicas, rolling=rolling)
    releases.apply(manifest)
    releases.wait_phase("web", "Healthy", liveRevision=1, readyReplicas=replicas, timeout=120)
    endpoints = ReadyEndpoints(kube, namespace, "web")
    endpoints.start()
    traffic = probe()
    traffic.wait_for_version("v1")
    try:
        releases.apply(on_real_node(manifest, "v2", READY_AFTER="2s"))
        releases.wait_phase("web", "Healthy", liveRevision=2, timeout=180)
        # the old pods leave the endpoints one by one: no single moment to wait for, so wait
        # for a second of v2-only answers
        traffic.wait_for(
            lambda rs: len(rs) > RATE and {r.version for r in rs[-RATE:]} == {"v2"},
            timeout=60,
            what="only v2 answering",
        )
    finally:
        endpoints.stop()
        traffic.stop()
    report(f"rolling: {traffic.summary()}; fewest ready endpoints {endpoints.lowest}")
    assert endpoints.lowest is not None and endpoints.lowest >= replicas - unavailable
    no_failures(traffic)


def test_a_restart_under_load_replaces_every_pod_and_fails_no_request(
    releases: Releases, probe: Any, kube: Any, namespace: str
) -> None:
    """`kubectl greenlight restart`: every pod of the live revision replaced by the Deployment
    controller (maxUnavailable 0: never fewer ready endpoints than replicas), no new revision,
    and not one request failed."""
    replicas = 3
    releases.apply(sample_release("web", "v1", replicas))
    releases.wait_phase("web", "Healthy", liveRevision=1, readyReplicas=replicas, timeout=120)
    wait_for(lambda: releases.ready_endpoints("web") == replicas, 30, "every pod an endpoint")
    deployments = set(releases.deployments("web"))
    selector = f"{naming.LABEL_RELEASE}=web"
    before = {p.metadata.name for p in pods(kube, namespace, selector)}
    endpoints = ReadyEndpoints(kube, namespace, "web")
    endpoints.start()
    traffic = probe()
    traffic.wait_for_version("v1")
    try:
        asked = greenlight(releases, "restart", "web")
        assert asked.returncode == 0, asked.stderr
        assert "restart of revision 1 requested" in asked.stdout
        release = releases.get("web")
        at = release["spec"]["restartAt"]
        generation = release["metadata"]["generation"]
        releases.wait_phase(
            "web", "Healthy", timeout=180, restartedAt=at, observedGeneration=generation
        )
        after = {p.metadata.name for p in pods(kube, namespace, selector)}
        traffic.wait_for_requests(2 * RATE, since=time.monotonic())  # the old pods gone
    finally:
        endpoints.stop()
        traffic.stop()
    report(f"restart: {traffic.summary()}; fewest ready endpoints {endpoints.lowest}")
    no_failures(traffic)
    assert len(after) == replicas and after.isdisjoint(before), (before, after)
    assert endpoints.lowest is not None and endpoints.lowest >= replicas
    assert set(releases.deployments("web")) == deployments, "no new revision"
    status = releases.status("web")
    assert status["liveRevision"] == 1 and len(status["history"]) == 1
    assert releases.events("web").count("Restarted") == 1
    assert traffic.versions() == {"v1": len(traffic.snapshot())}
