"""Adopting a Service that already serves, and giving it back (engine/finalize.py): deleting the
Release puts the Service's original selector back before the Release's pods go, and its ready
endpoints never drop to zero, as the EndpointSlices show throughout."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from greenlight.api import release as api
from greenlight.engine import naming
from tests.e2e.helpers import wait_for
from tests.e2e.support import Releases, pods, release_manifest

pytestmark = pytest.mark.usefixtures("operator")

LEGACY = {"app": "legacy"}


def legacy(kube: Any, namespace: str, releases: Releases) -> None:
    """A plain Deployment's 2 pods behind Service `web` (kwok makes them Ready)."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "legacy"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": LEGACY},
            "template": {
                "metadata": {"labels": LEGACY},
                "spec": {"containers": [{"name": "app", "image": "example/legacy:1"}]},
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": LEGACY, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    kube.apply([deployment, service], namespace=namespace)
    wait_for(lambda: releases.ready_endpoints("web") == 2, 60, "the legacy pods serving")


def endpoint_pods(kube: Any, namespace: str) -> list[str]:
    slices = kube.discovery.list_namespaced_endpoint_slice(
        namespace, label_selector="kubernetes.io/service-name=web"
    )
    return sorted(
        e.target_ref.name
        for s in slices.items
        for e in s.endpoints or []
        if e.target_ref is not None and (e.conditions is None or e.conditions.ready is not False)
    )


def test_deleting_a_release_gives_an_adopted_service_back_with_ready_endpoints_throughout(
    kube: Any, namespace: str, releases: Releases, zero_downtime: Any
) -> None:
    legacy(kube, namespace, releases)
    watcher = zero_downtime("web")  # EndpointSlices watched from here to the end
    manifest = release_manifest("web", "example/web:1", replicas=2)
    manifest["spec"]["service"] = {"name": "web", "adopt": True}
    releases.apply(manifest)
    st = releases.wait_phase("web", "Healthy", liveRevision=1)
    assert releases.selector("web") == naming.pod_labels("web", st["liveHash"])
    annotations = kube.core.read_namespaced_service("web", namespace).metadata.annotations
    recorded = (annotations or {}).get(naming.ANNOTATION_ADOPTED_SELECTOR)
    held = releases.get("web")["metadata"].get("finalizers") or []
    mine = f"web-{st['liveHash']}-"
    wait_for(
        lambda: all(p.startswith(mine) for p in endpoint_pods(kube, namespace)),
        30,
        "the Release's pods serving",
    )

    kube.custom.delete_namespaced_custom_object(
        api.GROUP, api.VERSION, namespace, api.PLURAL, "web"
    )

    def gone() -> bool:
        try:
            releases.get("web")
        except ApiException as e:
            return e.status == 404
        return False

    wait_for(gone, 60, "the Release deleted")
    release_pods = f"{naming.LABEL_RELEASE}=web"
    wait_for(lambda: not pods(kube, namespace, release_pods), 60, "the Release's pods gone")
    wait_for(
        lambda: not any(p.startswith(mine) for p in endpoint_pods(kube, namespace)),
        30,
        "the EndpointSlices without the Release's pods",
    )
    watcher.check()  # never 0 ready endpoints, from before the adoption to after the delete
    assert watcher.min_ready is not None and watcher.min_ready >= 1
    svc = kube.core.read_namespaced_service("web", namespace)
    assert svc.spec.selector == LEGACY, "the original selector is back"
    assert all(p.startswith("legacy-") for p in endpoint_pods(kube, namespace))
    assert releases.ready_endpoints("web") == 2
    assert recorded is not None and json.loads(recorded) == LEGACY, "recorded when adopted"
    assert naming.FINALIZER in held, "held while the Release had adopted the Service"
    assert naming.ANNOTATION_ADOPTED_SELECTOR not in (svc.metadata.annotations or {})
    assert naming.LABEL_RELEASE not in (svc.metadata.labels or {})
    managers = [m.manager for m in svc.metadata.managed_fields or []]
    assert naming.MANAGER not in managers, f"Greenlight still owns fields: {managers}"
    reasons = [
        e.reason
        for e in kube.core.list_namespaced_event(
            namespace, field_selector="involvedObject.name=web,involvedObject.kind=Release"
        ).items
    ]
    assert "SelectorRestored" in reasons, reasons
