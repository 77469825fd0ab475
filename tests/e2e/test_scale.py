"""The scale subresource: `kubectl scale release` (and so a HorizontalPodAutoscaler) drives
spec.replicas; its status half reads the live revision."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from greenlight.api import release as api
from greenlight.engine import naming
from tests.e2e.conftest import CLUSTER, KubectlError
from tests.e2e.helpers import wait_for
from tests.e2e.metrics_api import APISERVICE, MetricsAPI
from tests.e2e.support import NEVER_READY, Releases, release_manifest, with_image

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


# -- mid-release: the candidate is resized, the live slot is not, the flip waits for the size --


def _candidate_pods(kube: Any, namespace: str, template_hash: str) -> list[Any]:
    selector = f"{naming.LABEL_HASH}={template_hash}"
    pods = kube.core.list_namespaced_pod(namespace, label_selector=selector).items
    return sorted((p for p in pods if not p.metadata.deletion_timestamp), key=_name)


def _name(pod: Any) -> str:
    return str(pod.metadata.name)


def _make_ready(kube: Any, namespace: str, pods: list[Any]) -> None:
    """Drop the never-ready knob (hack/kwok-stages.yaml) from these pods: kwok makes them Ready."""
    (knob,) = NEVER_READY
    for p in pods:
        kube.kubectl("label", "-n", namespace, "pod", p.metadata.name, f"{knob}-")


def _released_with_a_held_candidate(
    releases: Releases, replicas: int
) -> tuple[dict[str, Any], str, str]:
    """v1 live and Healthy, v2's candidate up but never ready: mid-release. (manifest, blue,
    green)."""
    manifest = release_manifest("web", "example/web:1", replicas)
    releases.apply(manifest)
    blue = releases.wait_phase("web", "Healthy", liveRevision=1)["liveHash"]
    releases.apply(with_image(manifest, "example/web:2", **NEVER_READY))
    st = releases.wait_phase("web", "Progressing", candidateRevision=2)
    return manifest, blue, st["candidateHash"]


def _stays_live(releases: Releases, blue: str, seconds: float = 3) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert releases.selector("web")[naming.LABEL_HASH] == blue, "flipped too early"
        time.sleep(0.2)


def test_kubectl_scale_up_mid_release_grows_the_candidate_and_the_flip_waits_for_it(
    kube: Any, namespace: str, releases: Releases, zero_downtime: Any
) -> None:
    _, blue, green = _released_with_a_held_candidate(releases, 3)
    watcher = zero_downtime("web")
    wait_for(lambda: watcher.max_ready == 3, 30, "the watcher sees 3 ready endpoints")
    kube.kubectl("scale", "-n", namespace, "release/web", "--replicas=5")
    wait_for(lambda: releases.deployments("web")[green].spec.replicas == 5, 30, "green at 5")
    assert releases.deployments("web")[blue].spec.replicas == 3, "the live slot is not resized"
    wait_for(lambda: len(_candidate_pods(kube, namespace, green)) == 5, 30, "5 green pods")
    pods = _candidate_pods(kube, namespace, green)
    _make_ready(kube, namespace, pods[:4])
    releases.wait_phase("web", "Progressing", message="revision 2 (green): 4/5 pods available")
    _stays_live(releases, blue)
    _make_ready(kube, namespace, pods[4:])
    st = releases.wait_phase("web", "Healthy", liveRevision=2, availableReplicas=5)
    assert watcher.flips == [green]  # (the watcher checks green was fully available at 5)
    assert releases.deployments("web")[green].spec.replicas == 5
    assert st["replicas"] == 5


def test_kubectl_scale_down_mid_release_keeps_the_candidate_at_the_live_slot_size(
    kube: Any, namespace: str, releases: Releases
) -> None:
    """Users of other tools lose capacity at the flip here: green comes up with blue's 3 pods
    although spec.replicas went to 1, and settles to 1 only once it serves."""
    _, blue, green = _released_with_a_held_candidate(releases, 3)
    kube.kubectl("scale", "-n", namespace, "release/web", "--replicas=1")
    sized = "revision 2 (green): 0/3 pods available (sized to the live slot's 3)"
    releases.wait_phase("web", "Progressing", message=sized)
    deployments = releases.deployments("web")
    assert (deployments[blue].spec.replicas, deployments[green].spec.replicas) == (3, 3)
    pods = _candidate_pods(kube, namespace, green)
    assert len(pods) == 3
    _make_ready(kube, namespace, pods[:2])
    sized = "revision 2 (green): 2/3 pods available (sized to the live slot's 3)"
    releases.wait_phase("web", "Progressing", message=sized)
    _stays_live(releases, blue)
    assert releases.deployments("web")[blue].spec.replicas == 3, "blue keeps serving with 3"
    _make_ready(kube, namespace, pods[2:])
    releases.wait_phase("web", "Healthy", liveRevision=2, timeout=30)
    assert "Promoted" in releases.events("web")
    # then the live slot follows spec.replicas
    releases.wait_phase("web", "Healthy", liveRevision=2, availableReplicas=1, timeout=30)
    assert releases.deployments("web")[green].spec.replicas == 1


# -- a HorizontalPodAutoscaler: the control plane's own controller, fed by metrics we serve --


def _local_kwok(kubeconfig: str) -> bool:
    """The API server runs on this host (hack/cluster's kwok cluster): it can reach us."""
    if os.environ.get("CLUSTER", "kwok") != "kwok":
        return False
    env = subprocess.run([CLUSTER, "env"], capture_output=True, text=True, check=False).stdout
    return env.strip() == f"export KUBECONFIG={kubeconfig}"


@pytest.fixture
def metrics(kube: Any, kubeconfig: str, namespace: str) -> Iterator[MetricsAPI]:
    if not _local_kwok(kubeconfig):
        pytest.skip("serves metrics.k8s.io from this host: needs the local kwok cluster")
    try:
        kube.kubectl("get", "apiservice", APISERVICE)
        pytest.skip(f"{APISERVICE} exists already (a metrics-server?): not replacing it")
    except KubectlError:
        pass
    api = MetricsAPI(kube)
    try:
        api.register(namespace)
        wait_for(api.available, 30, f"APIService {APISERVICE} Available")
        yield api
    finally:
        api.close()


def test_an_hpa_resizes_the_candidate_mid_release(
    kube: Any, namespace: str, releases: Releases, metrics: MetricsAPI
) -> None:
    """autoscaling/v2 on the Release's /scale, memory per pod from the metrics API: 2 live pods
    at 250Mi against a target of 100Mi make the HPA ask for 5 while v2 comes up; green grows to 5,
    blue keeps its 2, and the flip waits for all 5."""
    _, blue, green = _released_with_a_held_candidate(releases, 2)
    metrics.memory[namespace] = "250Mi"
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": f"{api.GROUP}/{api.VERSION}", "kind": api.KIND,
                               "name": "web"},
            "minReplicas": 1,
            "maxReplicas": 10,
            "metrics": [{"type": "Resource", "resource": {
                "name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}}],
        },
    }  # fmt: skip
    kube.apply(hpa, namespace=namespace)
    wait_for(lambda: releases.get("web")["spec"]["replicas"] == 5, 90, "the HPA scales web to 5")
    status = json.loads(kube.kubectl("get", "-n", namespace, "hpa/web", "-o", "json"))["status"]
    [current] = status["currentMetrics"]
    assert current["resource"]["current"]["averageValue"] in ("250Mi", "262144k", "262144000")
    live_pods = ",".join(f"{k}={v}" for k, v in naming.pod_labels("web", blue).items())
    assert any(f"labelSelector={live_pods}" in r for r in metrics.requests), (
        "the HPA measured the live revision's pods (the scale selector)",
        metrics.requests[-5:],
    )
    wait_for(lambda: releases.deployments("web")[green].spec.replicas == 5, 30, "green at 5")
    assert releases.deployments("web")[blue].spec.replicas == 2, "the live slot is not resized"
    metrics.memory[namespace] = "100Mi"  # at the target from now on: the HPA holds 5
    wait_for(lambda: len(_candidate_pods(kube, namespace, green)) == 5, 30, "5 green pods")
    pods = _candidate_pods(kube, namespace, green)
    _make_ready(kube, namespace, pods[:4])
    releases.wait_phase("web", "Progressing", message="revision 2 (green): 4/5 pods available")
    _stays_live(releases, blue)
    _make_ready(kube, namespace, pods[4:])
    st = releases.wait_phase("web", "Healthy", liveRevision=2, availableReplicas=5, timeout=30)
    assert st["liveHash"] == green and releases.get("web")["spec"]["replicas"] == 5
