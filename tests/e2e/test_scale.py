"""The scale subresource: `kubectl scale release` (and so a HorizontalPodAutoscaler) drives
spec.replicas; its status half reads the live revision."""

from __future__ import annotations

import json
from typing import Any

import pytest

from greenlight.engine import naming
from tests.e2e.support import Releases, release_manifest

pytestmark = pytest.mark.usefixtures("operator")


def test_kubectl_scale_resizes_the_live_revision(
    kube: Any, namespace: str, releases: Releases
) -> None:
    releases.apply(release_manifest("web", "example/web:1"))
    st = releases.wait_phase("web", "Healthy", liveRevision=1)
    kube.kubectl("scale", "-n", namespace, "release/web", "--replicas=5")
    releases.wait_phase("web", "Healthy", availableReplicas=5, timeout=60)
    assert releases.deployments("web")[st["liveHash"]].spec.replicas == 5
    scale = json.loads(
        kube.kubectl("get", "-n", namespace, "release/web", "--subresource=scale", "-o", "json")
    )
    assert scale["spec"]["replicas"] == 5 and scale["status"]["replicas"] == 5
    selector = dict(p.split("=") for p in scale["status"]["selector"].split(","))
    assert selector == naming.pod_labels("web", st["liveHash"])
    pods = kube.core.list_namespaced_pod(namespace, label_selector=scale["status"]["selector"])
    assert len(pods.items) == 5, "the selector picks the live revision's pods"
