"""Helpers for e2e tests on the real node (hack/realnode): a kubelet with containerd and
kube-proxy, so readiness comes from real probes and Service ClusterIPs carry real traffic.

The node is `real-node-0`, labelled and tainted `greenlight.dev/real-node=true`; `on_real_node`
makes a Release's pods select and tolerate it. Images are local (`imagePullPolicy: Never`):
`local.test/sample-app:v1..v3` (hack/images/sample-app) and the operator image of `make image`.

When the node is missing, tests fail if GREENLIGHT_REAL_NODE=1 or CI is set (hack/test.sh sets
the first: CI must not pass without them) and are skipped otherwise (`make e2e` on any cluster).
"""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.e2e.helpers import condition
from tests.e2e.support import release_manifest
from tests.e2e.traffic import TrafficProbe

NODE = "real-node-0"
LABEL = "greenlight.dev/real-node"
APP_IMAGE = "local.test/sample-app"
PLACEMENT: dict[str, Any] = {
    "nodeSelector": {LABEL: "true"},
    "tolerations": [{"key": LABEL, "operator": "Exists", "effect": "NoSchedule"}],
}


def required() -> bool:
    return os.environ.get("GREENLIGHT_REAL_NODE") == "1" or bool(os.environ.get("CI"))


def require_real_node(kube: Any) -> None:
    """Fail (in CI) or skip unless the real node is registered and Ready."""
    why = None
    try:
        node = kube.core.read_node(NODE)
        ready = condition(node, "Ready")
        if ready is None or ready.status != "True":
            why = f"node {NODE} is not Ready: {ready and ready.message}"
    except ApiException as e:
        if e.status != 404:
            raise
        why = f"no node {NODE} (start it with GREENLIGHT_REAL_NODE=1 hack/cluster up)"
    if why is None:
        return
    if required():
        pytest.fail(f"the real node is required here (GREENLIGHT_REAL_NODE=1 or CI): {why}")
    pytest.skip(why)


def on_real_node(
    manifest: dict[str, Any], version: str | None = None, **env: str
) -> dict[str, Any]:
    """A copy of a Release manifest whose pods run on the real node; `version` sets APP_VERSION
    and `env` the sample app's switches (READY_AFTER, FAIL_READINESS, FAIL_PERCENT, ...). Any
    env change is a new template, hence a new revision."""
    body = copy.deepcopy(manifest)
    pod = body["spec"]["template"]["spec"]
    pod.update(copy.deepcopy(PLACEMENT))
    pod["terminationGracePeriodSeconds"] = 10
    container = pod["containers"][0]
    container["imagePullPolicy"] = "Never"
    values = {e["name"]: e["value"] for e in container.get("env", [])}
    values.setdefault("SHUTDOWN_DELAY", "2s")  # keep serving until kube-proxy drops the pod
    if version is not None:
        values["APP_VERSION"] = version
    values.update(env)
    container["env"] = [{"name": k, "value": v} for k, v in sorted(values.items())]
    return body


def sample_release(name: str, version: str = "v1", replicas: int = 2, **kw: Any) -> dict[str, Any]:
    """A Release of the sample app on the real node, probed every second by the kubelet."""
    body = release_manifest(name, f"{APP_IMAGE}:v1", replicas, **kw)
    body["spec"]["healthCheck"] = {
        "httpGet": {"path": "/healthz", "port": 8080},
        "periodSeconds": 1,
        "failureThreshold": 1,
    }
    return on_real_node(body, version)


def probe_service(kube: Any, namespace: str, service: str, rate: float = 50) -> TrafficProbe:
    """A TrafficProbe (to be started) against the Service's ClusterIP, port 80."""
    svc = kube.core.read_namespaced_service(service, namespace)
    return TrafficProbe(svc.spec.cluster_ip, svc.spec.ports[0].port, rate=rate)


ROLE_FILE = "/etc/podinfo/labels"


def with_role_file(manifest: dict[str, Any]) -> dict[str, Any]:
    """The pods see their labels (greenlight.dev/role among them) in a Downward API file, and
    the sample app reads its role from it (ROLE_FILE)."""
    body = on_real_node(manifest, ROLE_FILE=ROLE_FILE)
    pod = body["spec"]["template"]["spec"]
    items = [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]
    pod["volumes"] = [{"name": "podinfo", "downwardAPI": {"items": items}}]
    pod["containers"][0]["volumeMounts"] = [{"name": "podinfo", "mountPath": "/etc/podinfo"}]
    return body
