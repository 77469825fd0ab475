"""The operator image for real: `make image` (hack/image.sh) built it from Dockerfile and put it in
the real node's containerd; here manifests/ and the Helm chart run it as a pod on the real node,
non-root with a read-only root filesystem, exactly as rendered (placed on the real node, and
watching only the test's namespace). A blue-green release then goes through the in-cluster
operator under real traffic; its liveness probe (run by the kubelet) and its metrics endpoint
(through the metrics Service's ClusterIP) are checked. A start-up crash, such as kopf's passwd
lookup for uid 65532 without POD_ID, fails here."""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.helpers import wait_for, watch_for
from tests.e2e.realnode import NODE, PLACEMENT, on_real_node, require_real_node, sample_release
from tests.e2e.support import Releases
from tests.e2e.traffic import TrafficProbe

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.realnode, pytest.mark.usefixtures("real_node", "crd")]


@pytest.fixture(scope="module")
def real_node(kube: Any) -> None:
    require_real_node(kube)


def rendered(source: str, namespace: str) -> list[dict[str, Any]]:
    """manifests/greenlight.yaml, or the chart rendered by helm into `namespace`."""
    if source == "manifests":
        text = (ROOT / "manifests" / "greenlight.yaml").read_text()
    else:
        helm = subprocess.run(
            [ROOT / "hack" / "helm.sh"], check=True, capture_output=True, text=True
        ).stdout.strip()
        text = subprocess.run(
            [helm, "template", "greenlight", ROOT / "charts" / "greenlight", "-n", namespace],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return [d for d in yaml.safe_load_all(text) if d]


def for_this_test(docs: list[dict[str, Any]], watch: str) -> list[dict[str, Any]]:
    """The operator Deployment on the real node, with the image `make image` imported (never
    pulled: there is no registry), watching only the test's namespace. Nothing else changes."""
    for d in docs:
        if d["kind"] == "Deployment":
            pod = d["spec"]["template"]["spec"]
            pod.update(PLACEMENT)
            container = pod["containers"][0]
            container["imagePullPolicy"] = "Never"
            container["args"].append(f"--namespace={watch}")
    return docs


@pytest.fixture(params=["manifests", "chart"])
def installed(request: Any, kube: Any, namespace: str) -> Iterator[tuple[str, dict[str, Any]]]:
    docs = for_this_test(rendered(request.param, namespace), watch=namespace)
    text = yaml.safe_dump_all(docs)
    kube.kubectl("apply", "-f", "-", input=text)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    try:
        yield deployment["metadata"]["namespace"], deployment
    finally:
        kube.kubectl("delete", "--wait=true", "--ignore-not-found", "-f", "-", input=text)


def operator_pod(kube: Any, namespace: str) -> Any:
    def summary(pod: Any) -> Any:
        statuses = pod.status.container_statuses or []
        return {
            "node": pod.spec.node_name,
            "phase": pod.status.phase,
            "containers": [(s.state, s.last_state, s.restart_count) for s in statuses],
        }

    return watch_for(
        kube.core.list_namespaced_pod,
        namespace,
        label_selector="app.kubernetes.io/name=greenlight",
        predicate=lambda p: (
            bool(p.status.container_statuses)
            and p.status.container_statuses[0].ready
            and p.status.container_statuses[0].state.running is not None
        ),
        timeout=120,
        what="the operator pod running (a crash at start-up shows in last_state; "
        "ErrImageNeverPull: run `make image`)",
        summary=summary,
    )


def successful_liveness_probes(kube: Any, namespace: str, pod: str) -> int:
    """The kubelet's own count of successful liveness probes of the pod (/metrics/probes)."""
    text = kube.kubectl("get", "--raw", f"/api/v1/nodes/{NODE}/proxy/metrics/probes")
    for line in text.splitlines():
        if (
            line.startswith("prober_probe_total{")
            and f'namespace="{namespace}"' in line
            and f'pod="{pod}"' in line
            and 'probe_type="Liveness"' in line
            and 'result="successful"' in line
        ):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def metrics(kube: Any, namespace: str) -> str:
    """GET /metrics through the metrics Service's ClusterIP (kube-proxy), as Prometheus would."""
    svc = kube.core.read_namespaced_service("greenlight-metrics", namespace)
    url = f"http://{svc.spec.cluster_ip}:{svc.spec.ports[0].port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as answer:
        return str(answer.read().decode())


def test_the_operator_image_runs_a_blue_green_release_in_cluster(
    installed: tuple[str, dict[str, Any]], kube: Any, releases: Releases, namespace: str
) -> None:
    op_namespace, deployment = installed
    pod = operator_pod(kube, op_namespace)
    assert pod.spec.node_name == NODE
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod.spec.security_context.run_as_user == 65532
    # a crash at start-up shows as restarts, and the kubelet's liveness probe never succeeding
    wait_for(
        lambda: successful_liveness_probes(kube, op_namespace, pod.metadata.name) >= 2,
        timeout=90,
        what="two successful liveness probes of the operator by the kubelet",
    )
    restarts = kube.core.read_namespaced_pod(pod.metadata.name, op_namespace)
    assert restarts.status.container_statuses[0].restart_count == 0, restarts.status

    manifest = sample_release("web", "v1", blue_green={"scaleDownDelaySeconds": 5})
    releases.apply(manifest)
    releases.wait_phase("web", "Healthy", liveRevision=1, timeout=120)
    svc = kube.core.read_namespaced_service("web", namespace)
    with TrafficProbe(svc.spec.cluster_ip, 80, rate=20) as traffic:
        traffic.wait_until_served()
        traffic.wait_for_version("v1")
        releases.apply(on_real_node(manifest, "v2"))
        releases.wait_phase("web", "Healthy", liveRevision=2, timeout=120)
        traffic.wait_for_version("v2", timeout=30)
    assert traffic.failures() == [], traffic.summary()

    restarts = kube.core.read_namespaced_pod(pod.metadata.name, op_namespace)
    assert restarts.status.container_statuses[0].restart_count == 0, restarts.status
    text = wait_for(
        lambda: (m := metrics(kube, op_namespace)) and 'reason="Promoted"' in m and m,
        timeout=30,
        what="greenlight_transitions_total{reason=Promoted} on the metrics Service",
    )
    assert "greenlight_reconciles_total" in text
