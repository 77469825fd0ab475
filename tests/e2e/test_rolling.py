"""Rolling releases on a real API server, with the surge/unavailability bounds checked on every
Deployment event by a watcher outside the operator."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kubernetes import watch

from greenlight.engine import naming
from tests.e2e.helpers import is_ready, wait_for
from tests.e2e.support import (
    NEVER_READY,
    Releases,
    pods,
    release_manifest,
    with_image,
)

pytestmark = pytest.mark.usefixtures("operator")


class Bounds:
    """Follows the Release's Deployments; records every moment that breaks the bounds.

    Pods: the Deployments' desired replicas, in the order we wrote them. Availability: at each
    scale-down (the only step of ours that can lower it), the pods Ready at that moment, each
    revision's counted up to what it is scaled to (its surplus is about to go). Read from the
    pods, the truth: the operator may act on a ReplicaSet's status, ahead of the Deployment's."""

    def __init__(
        self, kube: Any, namespace: str, release: str, replicas: int, surge: int, unavailable: int
    ) -> None:
        self.kube, self.ns, self.release = kube, namespace, release
        self.replicas, self.surge, self.unavailable = replicas, surge, unavailable
        self.problems: list[str] = []
        self.events = 0
        self.peak_pods = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)

    def __enter__(self) -> Bounds:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _follow(self) -> None:
        list_fn = self.kube.apps.list_namespaced_deployment
        selector = f"{naming.LABEL_RELEASE}={self.release}"
        listing = list_fn(self.ns, label_selector=selector)
        state = {_hash(d): d.spec.replicas or 0 for d in listing.items}
        version = listing.metadata.resource_version
        while not self._stop.is_set():
            w = watch.Watch()
            for event in w.stream(
                list_fn, self.ns, label_selector=selector, resource_version=version,
                timeout_seconds=2,
            ):  # fmt: skip
                d = event["object"]
                version = d.metadata.resource_version
                before = state.get(_hash(d), 0)
                if event["type"] == "DELETED":
                    state.pop(_hash(d), None)
                else:
                    state[_hash(d)] = d.spec.replicas or 0
                self.events += 1
                total = sum(state.values())
                self.peak_pods = max(self.peak_pods, total)
                if total > self.replicas + self.surge:
                    self.problems.append(
                        f"{total} pods > {self.replicas} + maxSurge {self.surge}: {state}"
                    )
                if state.get(_hash(d), 0) < before:
                    self._check_available(dict(state))

    def _check_available(self, want: dict[str, int]) -> None:
        ready: dict[str, int] = {}
        selector = f"{naming.LABEL_RELEASE}={self.release}"
        for p in pods(self.kube, self.ns, selector):
            if is_ready(p):
                h = p.metadata.labels[naming.LABEL_HASH]
                ready[h] = ready.get(h, 0) + 1
        available = sum(min(n, ready.get(h, 0)) for h, n in want.items())
        if available < self.replicas - self.unavailable:
            self.problems.append(
                f"{available} available < {self.replicas} - maxUnavailable {self.unavailable}:"
                f" scaled to {want}, Ready {ready}"
            )


def _hash(d: Any) -> str:
    return str(d.metadata.labels[naming.LABEL_HASH])


@pytest.fixture
def bounds(kube: Any, namespace: str) -> Any:
    started: list[Bounds] = []

    def start(release: str, replicas: int, surge: int, unavailable: int) -> Bounds:
        b = Bounds(kube, namespace, release, replicas, surge, unavailable).__enter__()
        started.append(b)
        return b

    yield start
    for b in started:
        b.__exit__()


def rolled_out(releases: Releases, replicas: int, rolling: dict[str, Any]) -> dict[str, Any]:
    manifest = release_manifest("web", "example/web:1", replicas, rolling=rolling)
    releases.apply(manifest)
    releases.wait_phase("web", "Healthy", liveRevision=1, readyReplicas=replicas, timeout=60)
    return manifest


def test_ten_replicas_reach_100_percent_within_the_bounds(
    releases: Releases, bounds: Any, zero_downtime: Any
) -> None:
    manifest = rolled_out(releases, 10, {"maxSurge": "25%", "maxUnavailable": 0})
    watcher = bounds("web", replicas=10, surge=3, unavailable=0)
    zero_downtime("web")
    slow = with_image(manifest, "example/web:2", ready_after="1s")
    releases.apply(slow)
    st = releases.wait_phase("web", "Healthy", liveRevision=2, timeout=120)
    assert releases.selector("web") == naming.pod_labels("web", st["liveHash"])
    assert watcher.events > 8 and watcher.peak_pods == 13, (watcher.events, watcher.peak_pods)
    assert not watcher.problems, watcher.problems
    deployments = releases.deployments("web")
    assert deployments[st["liveHash"]].spec.replicas == 10
    assert sum(d.spec.replicas for d in deployments.values()) == 10


def test_steps_with_a_timed_pause_and_an_indefinite_pause_then_promote(
    releases: Releases, bounds: Any
) -> None:
    steps = [{"setWeight": 20}, {"pause": {"duration": "3s"}}, {"setWeight": 60}, {"pause": {}}]
    manifest = rolled_out(releases, 5, {"maxSurge": 1, "maxUnavailable": 0, "steps": steps})
    watcher = bounds("web", replicas=5, surge=1, unavailable=0)
    releases.apply(with_image(manifest, "example/web:2"))
    st = releases.wait_phase("web", "Paused", currentStep=1, weight=20)
    st = releases.wait_phase("web", "Paused", currentStep=3, weight=60, timeout=60)
    new = st["candidateHash"]
    counts = {r["templateHash"]: r["replicas"] for r in st["revisions"]}
    assert counts[new] == 3 and sum(counts.values()) == 5
    assert releases.selector("web") == {naming.LABEL_RELEASE: "web"}, "both revisions serve"
    assert releases.selector("web-preview")[naming.LABEL_HASH] == new
    releases.annotate("web", naming.COMMAND_PROMOTE)
    releases.wait_phase("web", "Healthy", liveRevision=2, timeout=60)
    assert not watcher.problems, watcher.problems
    out = releases.kube.kubectl("get", "release", "web", "-n", releases.ns)
    assert "STEP" in out


def test_never_ready_pods_hit_the_deadline_and_roll_back_to_stable(
    releases: Releases, bounds: Any, zero_downtime: Any
) -> None:
    manifest = rolled_out(releases, 4, {"maxSurge": 1, "maxUnavailable": 0})
    manifest["spec"]["progressDeadlineSeconds"] = 5
    releases.apply(manifest)
    stable = releases.wait_phase("web", "Healthy", liveRevision=1)["liveHash"]
    watcher = bounds("web", replicas=4, surge=1, unavailable=0)
    zero_downtime("web")
    releases.apply(with_image(manifest, "example/web:2", **NEVER_READY))
    st = releases.wait_phase("web", "Degraded", timeout=60, rollingBack=False)
    entry = next(e for e in st["history"] if e["revision"] == 2)
    assert entry["outcome"] == "Aborted" and entry["reason"].startswith("ProgressDeadlineExceeded")
    assert releases.selector("web") == naming.pod_labels("web", stable)
    wait_for(lambda: releases.ready_endpoints("web") == 4, 30, "4 ready stable endpoints")
    deployments = releases.deployments("web")
    assert deployments[stable].spec.replicas == 4
    assert all(d.spec.replicas == 0 for h, d in deployments.items() if h != stable)
    assert not watcher.problems, watcher.problems


def test_undo_after_a_completed_rolling_release(releases: Releases, bounds: Any) -> None:
    manifest = rolled_out(releases, 4, {"maxSurge": 1, "maxUnavailable": 1})
    first = releases.status("web")["liveHash"]
    releases.apply(with_image(manifest, "example/web:2"))
    releases.wait_phase("web", "Healthy", liveRevision=2, timeout=60)
    watcher = bounds("web", replicas=4, surge=1, unavailable=1)
    releases.annotate("web", naming.COMMAND_UNDO, "")
    st = releases.wait_phase("web", "Degraded", liveHash=first, timeout=60)
    assert st["rolledBackTo"] == first
    assert releases.selector("web") == naming.pod_labels("web", first)
    assert not watcher.problems, watcher.problems


def test_operator_restarted_mid_batch_finishes_within_the_bounds(
    releases: Releases, bounds: Any, operator: Any, zero_downtime: Any
) -> None:
    manifest = rolled_out(releases, 10, {"maxSurge": "25%", "maxUnavailable": 0})
    watcher = bounds("web", replicas=10, surge=3, unavailable=0)
    zero_downtime("web")
    slow = with_image(manifest, "example/web:2", ready_after="3s")
    releases.apply(slow)
    new = releases.wait_phase("web", "Progressing", candidateRevision=2)["candidateHash"]
    wait_for(lambda: releases.deployments("web")[new].spec.replicas >= 3, 30, "a first batch")
    operator.stop()
    frozen = {h: d.spec.replicas for h, d in releases.deployments("web").items()}
    wait_for(
        lambda: releases.deployments("web")[new].status.available_replicas == frozen[new],
        30,
        "the batch ready while the operator is down",
    )
    assert {h: d.spec.replicas for h, d in releases.deployments("web").items()} == frozen, (
        "nothing moved while the operator was down"
    )
    operator.start()
    st = releases.wait_phase("web", "Healthy", liveRevision=2, timeout=120)
    assert not watcher.problems, watcher.problems
    assert releases.selector("web") == naming.pod_labels("web", st["liveHash"])
    assert [e["revision"] for e in st["history"]] == [1, 2]
    assert sum(d.spec.replicas for d in releases.deployments("web").values()) == 10
