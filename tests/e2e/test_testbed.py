"""The test bed is real: pods get scheduled, IPs, and the readiness hack/kwok-stages.yaml scripts.

Each test fails when that scripting breaks (e.g. every pod Ready at once, or none ever Ready).
"""

from __future__ import annotations

import functools
import threading
import time
import types
from datetime import timedelta
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.e2e.conftest import Kube
from tests.e2e.helpers import condition, is_ready, wait_for, watch_for
from tests.e2e.support import ZeroDowntime

NEVER = {"greenlight.dev/test-readiness": "never"}
READY_AFTER = "greenlight.dev/test-ready-after"


@pytest.fixture(scope="module", autouse=True)
def kwok_test_bed(kube: Kube) -> None:
    nodes = kube.core.list_node().items
    if not any((n.metadata.annotations or {}).get("kwok.x-k8s.io/node") == "fake" for n in nodes):
        pytest.skip("needs kwok nodes: pod readiness is scripted by hack/kwok-stages.yaml")


def deployment(name: str, replicas: int, labels: dict[str, str] | None = None) -> dict[str, Any]:
    pod_labels = {"app": name, **(labels or {})}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]},
            },
        },
    }


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def pod(
    name: str, labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}},
        "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]},
    }


def watch_pod(
    kube: Kube, namespace: str, name: str, predicate: Any, what: str, timeout: float = 30
) -> Any:
    return watch_for(
        kube.core.list_namespaced_pod,
        namespace,
        field_selector=f"metadata.name={name}",
        predicate=predicate,
        timeout=timeout,
        what=what,
    )


def endpoints(kube: Kube, namespace: str, svc: str) -> list[tuple[str, bool]]:
    """(address, ready) of every endpoint of the Service, over all its EndpointSlices."""
    slices = kube.discovery.list_namespaced_endpoint_slice(
        namespace, label_selector=f"kubernetes.io/service-name={svc}"
    ).items
    return [
        (ep.addresses[0], bool(ep.conditions and ep.conditions.ready))
        for s in slices
        for ep in s.endpoints or []
    ]


def running_pods(kube: Kube, namespace: str, selector: str, count: int) -> list[Any]:
    def check() -> list[Any]:
        pods = kube.core.list_namespaced_pod(namespace, label_selector=selector).items
        running = [p for p in pods if p.status.phase == "Running" and p.status.pod_ip]
        assert len(running) == count, [(p.metadata.name, p.status.phase) for p in pods]
        return running

    return wait_for(check, timeout=30, what=f"{count} Running pods with an IP ({selector})")


def test_deployment_becomes_available_with_ready_endpoints(kube: Kube, namespace: str) -> None:
    kube.apply([deployment("web", 3), service("web")], namespace)

    watch_for(
        kube.apps.list_namespaced_deployment,
        namespace,
        field_selector="metadata.name=web",
        predicate=lambda d: (d.status.available_replicas or 0) == 3,
        timeout=30,
        what="Deployment web to have 3 available replicas",
    )
    pods = running_pods(kube, namespace, "app=web", 3)
    assert all(is_ready(p) for p in pods)
    ips = {p.status.pod_ip for p in pods}
    assert len(ips) == 3, f"pod IPs are not unique: {ips}"

    def three_ready() -> list[tuple[str, bool]]:
        eps = endpoints(kube, namespace, "web")
        assert sum(ready for _, ready in eps) == 3, eps
        return eps

    eps = wait_for(three_ready, timeout=30, what="3 ready endpoints of Service web")
    assert sorted(eps) == sorted((ip, True) for ip in ips)


def test_never_ready_pod_runs_but_is_never_a_ready_endpoint(kube: Kube, namespace: str) -> None:
    kube.apply([deployment("sick", 2, labels=NEVER), service("sick")], namespace)

    pods = running_pods(kube, namespace, "app=sick", 2)
    deadline = time.monotonic() + 4  # observe: they stay Running and not Ready
    while time.monotonic() < deadline:
        for p in kube.core.list_namespaced_pod(namespace, label_selector="app=sick").items:
            assert p.status.phase == "Running", p.status
            ready = condition(p, "Ready")
            assert ready is not None and ready.status == "False", p.status.conditions
            assert not any(cs.ready for cs in p.status.container_statuses), p.status
        time.sleep(0.25)

    ips = {p.status.pod_ip for p in pods}

    def both_listed() -> list[tuple[str, bool]]:
        eps = endpoints(kube, namespace, "sick")
        assert len(eps) == 2, eps
        return eps

    eps = wait_for(both_listed, timeout=30, what="Service sick to list both (not-ready) pods")
    assert sorted(eps) == sorted((ip, False) for ip in ips)
    d = kube.apps.read_namespaced_deployment("sick", namespace)
    assert not d.status.available_replicas, d.status


def test_readiness_label_switches_a_running_pod(kube: Kube, namespace: str) -> None:
    kube.apply(pod("flip"), namespace)
    watch_pod(kube, namespace, "flip", is_ready, "pod flip Ready", timeout=30)

    kube.kubectl("label", "-n", namespace, "pod/flip", "greenlight.dev/test-readiness=never")
    watch_pod(
        kube,
        namespace,
        "flip",
        lambda p: not is_ready(p) and p.status.phase == "Running",
        "pod flip Running and not Ready after labelling it never-ready",
        timeout=30,
    )

    kube.kubectl("label", "-n", namespace, "pod/flip", "greenlight.dev/test-readiness-")
    watch_pod(
        kube,
        namespace,
        "flip",
        is_ready,
        "pod flip Ready again after removing the label",
        timeout=30,
    )


def test_ready_after_delay(kube: Kube, namespace: str) -> None:
    delay = 5
    kube.apply(pod("slow", annotations={READY_AFTER: f"{delay}s"}), namespace)

    running = watch_pod(
        kube,
        namespace,
        "slow",
        lambda p: p.status.phase == "Running",
        "pod slow Running",
        timeout=30,
    )
    assert not is_ready(running), running.status
    seen_running = time.monotonic()

    time.sleep(2)
    early = kube.core.read_namespaced_pod("slow", namespace)
    assert not is_ready(early), (
        f"Ready ~2s after Running, before its {delay}s delay: {early.status}"
    )

    ready = watch_pod(
        kube, namespace, "slow", is_ready, f"pod slow Ready after {delay}s", timeout=delay + 15
    )
    waited = time.monotonic() - seen_running
    ready_at = condition(ready, "Ready").last_transition_time
    scheduled_at = condition(ready, "PodScheduled").last_transition_time
    started_at = ready.status.start_time
    # timestamps have second precision; the delay counts from status.startTime
    assert ready_at - started_at >= timedelta(seconds=delay), (started_at, ready_at)
    assert ready_at - scheduled_at >= timedelta(seconds=delay), (scheduled_at, ready_at)
    assert ready_at - started_at <= timedelta(seconds=delay + 5), (started_at, ready_at)
    assert waited >= delay - 1.5, f"observed Ready only {waited:.1f}s after Running"


def job(name: str, **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": annotations or {}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "task", "image": "example.invalid/task:1"}],
                },
            },
        },
    }


@pytest.mark.parametrize(
    ("annotations", "outcome"),
    [({}, "Complete"), ({"greenlight.dev/test-job-result": "failed"}, "Failed")],
    ids=["succeeds", "fails"],
)
def test_job_pods_finish(
    kube: Kube, namespace: str, annotations: dict[str, str], outcome: str
) -> None:
    kube.apply(job("task", **annotations), namespace)
    watch_for(
        kube.batch.list_namespaced_job,
        namespace,
        field_selector="metadata.name=task",
        predicate=lambda j: any(
            c.type in ("Complete", "Failed") and c.status == "True"
            for c in j.status.conditions or []
        ),
        timeout=60,
        what="Job task to finish",
    )
    j = kube.batch.read_namespaced_job("task", namespace)
    finished = {c.type for c in j.status.conditions if c.status == "True"}
    assert outcome in finished, j.status


def test_deleted_pod_goes_away_despite_finalizer(kube: Kube, namespace: str) -> None:
    manifest = pod("doomed")
    manifest["metadata"]["finalizers"] = ["greenlight.dev/test"]
    kube.apply(manifest, namespace)
    watch_for(
        kube.core.list_namespaced_pod,
        namespace,
        field_selector="metadata.name=doomed",
        predicate=is_ready,
        timeout=30,
        what="pod doomed Ready",
    )
    kube.core.delete_namespaced_pod("doomed", namespace)

    def gone() -> bool:
        return not kube.core.list_namespaced_pod(
            namespace, field_selector="metadata.name=doomed"
        ).items

    wait_for(gone, timeout=30, what="pod doomed to be deleted")


class Faulty:
    """`kube` whose EndpointSlice list/watch requests fail with `status` when told to, once."""

    def __init__(self, kube: Kube) -> None:
        real = kube.discovery.list_namespaced_endpoint_slice
        self.fail: int | None = None
        self.failed = threading.Event()

        @functools.wraps(real)  # the watch reads the return type from its docstring
        def list_slices(*args: Any, **kwargs: Any) -> Any:
            status, self.fail = self.fail, None
            if status is not None:
                self.failed.set()
                raise ApiException(status=status, reason="injected")
            return real(*args, **kwargs)

        discovery = types.SimpleNamespace(list_namespaced_endpoint_slice=list_slices)
        self.kube = types.SimpleNamespace(core=kube.core, apps=kube.apps, discovery=discovery)

    def inject(self, status: int) -> None:
        self.failed.clear()
        self.fail = status
        assert self.failed.wait(10), "the watcher made no request within 10 s"


def test_a_zero_downtime_watcher_that_stopped_watching_fails_the_check(
    kube: Kube, namespace: str
) -> None:
    """The watcher lists, then watches from there; a 410 Gone (its resourceVersion too old)
    makes it list again and go on. Any other error ends its watch: from then on it sees
    nothing, so the check must fail, saying why (it used to pass, as if all was well)."""
    kube.apply([deployment("web", 1), service("web")], namespace)
    faulty = Faulty(kube)
    with ZeroDowntime(faulty.kube, namespace, "web") as watcher:
        wait_for(lambda: watcher.max_ready == 1, 30, "the watcher sees 1 ready endpoint")
        faulty.inject(410)
        time.sleep(0.5)
        watcher.check()  # a 410 is a relist, not a failure
        faulty.inject(500)
        threads = watcher._threads
        wait_for(lambda: not all(t.is_alive() for t in threads), 10, "the error to end one")
    with pytest.raises(AssertionError, match=r"the slices watcher failed: .*injected"):
        watcher.check()
