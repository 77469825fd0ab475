"""spec.workloadRef on a real API server: a plain Deployment behind its own Service is adopted
(its pods serve until revision 1 is whole), drained per scaleDown, released again when its pod
template changes, and given back when the Release is deleted: its replicas first, then the
Service's selector, with ready endpoints (kwok) and answered requests (the real node)
throughout."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from greenlight.api import release as api
from greenlight.engine import naming
from tests.e2e.helpers import wait_for
from tests.e2e.realnode import on_real_node, probe_service, require_real_node, sample_release
from tests.e2e.support import Releases, pods

pytestmark = pytest.mark.usefixtures("operator")

LEGACY = {"app": "web"}


def plain(template: dict[str, Any], replicas: int = 2) -> list[dict[str, Any]]:
    """A Deployment `web` with this pod template and a Service `web` selecting its pods."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": LEGACY}, "template": template},
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": LEGACY, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    return [deployment, service]


def adopting(scale_down: str = "afterFlip", delay: int = 2, **spec: Any) -> dict[str, Any]:
    """A Release of Deployment `web`, adopting Service `web`."""
    return {
        "apiVersion": f"{api.GROUP}/{api.VERSION}",
        "kind": api.KIND,
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                            "scaleDown": scale_down},
            "service": {"name": "web", "adopt": True},
            "strategy": {"blueGreen": {"scaleDownDelaySeconds": delay}},
            **spec,
        },
    }  # fmt: skip


def original(kube: Any, namespace: str) -> Any:
    return kube.apps.read_namespaced_deployment("web", namespace)


def delete_and_wait(kube: Any, namespace: str, releases: Releases) -> None:
    kube.custom.delete_namespaced_custom_object(
        api.GROUP, api.VERSION, namespace, api.PLURAL, "web"
    )

    def gone() -> bool:
        try:
            releases.get("web")
        except ApiException as e:
            return e.status == 404
        return False

    wait_for(gone, 120, "the Release deleted")
    release_pods = f"{naming.LABEL_RELEASE}=web"
    wait_for(lambda: not pods(kube, namespace, release_pods), 60, "the Release's pods gone")


def test_a_deleted_release_of_a_workload_gives_it_back_with_ready_endpoints_throughout(
    kube: Any, namespace: str, releases: Releases, zero_downtime: Any
) -> None:
    """kwok: adopted, drained (afterFlip), then deleted: the Deployment's 2 replicas come back
    and are ready before the Service selects them again; the Service never has 0 ready
    endpoints."""
    template = {
        "metadata": {"labels": LEGACY},
        "spec": {"containers": [{"name": "app", "image": "example/web:1"}]},
    }
    kube.apply(plain(template), namespace=namespace)
    wait_for(lambda: releases.ready_endpoints("web") == 2, 60, "the plain Deployment serving")
    watcher = zero_downtime("web")
    releases.apply(adopting(healthCheck={"httpGet": {"path": "/healthz", "port": 8080}}))
    st = releases.wait_phase("web", "Healthy", liveRevision=1)
    assert releases.selector("web") == naming.pod_labels("web", st["liveHash"])
    wait_for(lambda: original(kube, namespace).spec.replicas == 0, 60, "the original drained")
    meta = original(kube, namespace).metadata
    assert meta.labels[naming.LABEL_WORKLOAD_OF] == "web"
    assert meta.annotations[naming.ANNOTATION_ORIGINAL_REPLICAS] == "2"
    assert naming.FINALIZER in (releases.get("web")["metadata"].get("finalizers") or [])

    delete_and_wait(kube, namespace, releases)
    watcher.check()
    assert watcher.min_ready is not None and watcher.min_ready >= 1
    d = original(kube, namespace)
    assert d.spec.replicas == 2 and (d.status.available_replicas or 0) == 2
    assert naming.LABEL_WORKLOAD_OF not in (d.metadata.labels or {})
    assert naming.ANNOTATION_ORIGINAL_REPLICAS not in (d.metadata.annotations or {})
    assert releases.selector("web") == LEGACY
    assert releases.ready_endpoints("web") == 2


def test_a_workload_scaled_up_again_is_scaled_down_with_a_warning_naming_who(
    kube: Any, namespace: str, releases: Releases
) -> None:
    """kwok: a re-apply of the Deployment's replicas (kubectl scale here) is taken back."""
    template = {
        "metadata": {"labels": LEGACY},
        "spec": {"containers": [{"name": "app", "image": "example/web:1"}]},
    }
    kube.apply(plain(template), namespace=namespace)
    releases.apply(adopting(healthCheck={"httpGet": {"path": "/healthz", "port": 8080}}))
    releases.wait_phase("web", "Healthy", liveRevision=1)
    wait_for(lambda: original(kube, namespace).spec.replicas == 0, 60, "the original drained")
    kube.kubectl("scale", "-n", namespace, "deployment/web", "--replicas=2")
    wait_for(lambda: "WorkloadRescaled" in releases.events("web"), 60, "the Warning")
    wait_for(lambda: original(kube, namespace).spec.replicas == 0, 60, "drained again")
    found = kube.core.list_namespaced_event(
        namespace, field_selector="involvedObject.name=web,involvedObject.kind=Release"
    ).items
    warning = next(e for e in found if e.reason == "WorkloadRescaled")
    assert "kubectl" in warning.message and warning.type == "Warning"


def restarts(kube: Any, namespace: str, selector: str) -> int:
    return sum(
        c.restart_count
        for p in pods(kube, namespace, selector)
        for c in (p.status.container_statuses or [])
    )


@pytest.mark.realnode
def test_a_deployment_adopted_released_and_given_back_under_load_fails_no_request(
    kube: Any, namespace: str, releases: Releases
) -> None:
    """The real node: the sample app as a plain Deployment (its template has the readiness
    probe, so the Release's template is the same: nothing injected) serving requests all the
    time; adopted (no container restarted, no request failed), released v2 by changing the
    Deployment (the original drained after the flip), then the Release deleted: the original
    back at its replicas and selected by the Service, and still no request failed."""
    require_real_node(kube)
    sample = sample_release("web", "v1", 2)
    template = copy.deepcopy(sample["spec"]["template"])
    template["spec"]["containers"][0]["readinessProbe"] = sample["spec"]["healthCheck"]
    template["metadata"] = {"labels": LEGACY}
    kube.apply(plain(template), namespace=namespace)
    wait_for(lambda: releases.ready_endpoints("web") == 2, 120, "the plain Deployment serving")
    traffic = probe_service(kube, namespace, "web").__enter__()
    traffic.wait_until_served()
    try:
        releases.apply(adopting())
        st = releases.wait_phase("web", "Healthy", liveRevision=1, timeout=180)
        assert releases.selector("web") == naming.pod_labels("web", st["liveHash"])
        assert restarts(kube, namespace, f"{naming.LABEL_RELEASE}=web") == 0
        assert restarts(kube, namespace, "app=web") == 0, "no pod of the original restarted"
        wait_for(lambda: original(kube, namespace).spec.replicas == 0, 60, "the original drained")

        v2 = on_real_node({"spec": {"template": copy.deepcopy(template)}}, "v2")
        patch = {"spec": {"template": v2["spec"]["template"]}}
        kube.apps.patch_namespaced_deployment("web", namespace, patch)
        releases.wait_phase("web", "Healthy", liveRevision=2, timeout=180)
        traffic.wait_for_version("v2")
        assert original(kube, namespace).spec.replicas == 0, "drained on every revision"

        delete_and_wait(kube, namespace, releases)
        assert releases.selector("web") == LEGACY
        d = original(kube, namespace)
        assert d.spec.replicas == 2 and (d.status.available_replicas or 0) == 2
        traffic.wait_for_requests(100, since=time.monotonic())
    finally:
        traffic.stop()
    failed = traffic.failures()
    assert not failed, f"{len(failed)} failed requests: {[r.error for r in failed[:10]]}"
    assert restarts(kube, namespace, "app=web") == 0
