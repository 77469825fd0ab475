"""Config per revision on the real node: the sample app answers GET /version with APP_VERSION,
read here from a ConfigMap (envFrom). An edit in place of that ConfigMap is a new revision; blue
keeps its own copy (its pods still answer the old value); an undo brings it back; a ConfigMap
annotated greenlight.dev/shared is referenced as it is by every revision."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from greenlight.engine import naming
from tests.e2e.helpers import wait_for
from tests.e2e.realnode import probe_service, require_real_node, sample_release
from tests.e2e.support import Releases, pods

pytestmark = [pytest.mark.realnode, pytest.mark.usefixtures("real_node", "operator")]


@pytest.fixture(scope="module")
def real_node(kube: Any) -> None:
    require_real_node(kube)


def configmap(kube: Any, namespace: str, version: str, shared: bool = False) -> None:
    annotations = {naming.ANNOTATION_SHARED: "true"} if shared else {}
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app-config", "annotations": annotations},
        "data": {"APP_VERSION": version},
    }
    kube.apply(body, namespace=namespace)


def reading_config(name: str = "web") -> dict[str, Any]:
    """The sample app with APP_VERSION from ConfigMap app-config, not from its own env."""
    body = sample_release(name)
    container = body["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [e for e in container["env"] if e["name"] != "APP_VERSION"]
    container["envFrom"] = [{"configMapRef": {"name": "app-config"}}]
    return body


@pytest.fixture
def answered(kube: Any, namespace: str) -> Iterator[Any]:
    """Start a probe of the live Service: wait_for_version(v) waits for an answer of `v`."""
    started = []

    def start() -> Any:
        p = probe_service(kube, namespace, "web", rate=20).__enter__()
        p.wait_until_served()
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def pod_answer(kube: Any, namespace: str, template_hash: str) -> str:
    """GET /version from one of the revision's pods, by its IP (the sample app's image has no
    shell to exec): APP_VERSION as that pod's environment has it."""
    pod = pods(kube, namespace, f"{naming.LABEL_HASH}={template_hash}")[0]
    with urllib.request.urlopen(f"http://{pod.status.pod_ip}:8080/version", timeout=5) as r:
        return str(r.read().decode()).strip()


def test_configmap_edited_in_place_is_a_new_revision_and_undo_restores_it(
    kube: Any, namespace: str, releases: Releases, answered: Any
) -> None:
    configmap(kube, namespace, "v1")
    releases.apply(reading_config())
    blue = releases.wait_phase("web", "Healthy", liveRevision=1, timeout=120)["liveHash"]
    probe = answered()
    probe.wait_for_version("v1")
    copy = kube.core.read_namespaced_config_map(f"app-config-{blue}", namespace)
    assert copy.immutable and copy.data == {"APP_VERSION": "v1"}
    assert copy.metadata.owner_references[0].name == f"web-{blue}"

    configmap(kube, namespace, "v2")  # kubectl edit, in place
    green = releases.wait_phase("web", "Healthy", liveRevision=2, timeout=120)["liveHash"]
    assert green != blue
    probe.wait_for_version("v2")
    # blue (warm for scaleDownDelaySeconds) keeps its own copy: its pods still read v1
    deployments = releases.deployments("web")
    blue_pod = deployments[blue].spec.template.spec.containers[0]
    assert blue_pod.env_from[0].config_map_ref.name == f"app-config-{blue}"
    assert pod_answer(kube, namespace, blue) == "v1"
    assert pod_answer(kube, namespace, green) == "v2"

    releases.annotate("web", naming.COMMAND_UNDO, "")
    wait_for(lambda: releases.status("web").get("liveHash") == blue or None, 60, "undo to blue")
    probe.wait_for_version("v1")
    assert releases.selector("web")[naming.LABEL_HASH] == blue
    assert not probe.failures(), "an undo drops no request"


def test_a_shared_configmap_is_referenced_as_it_is(
    kube: Any, namespace: str, releases: Releases
) -> None:
    configmap(kube, namespace, "v1", shared=True)
    releases.apply(reading_config())
    live = releases.wait_phase("web", "Healthy", liveRevision=1, timeout=120)["liveHash"]
    (d,) = releases.deployments("web").values()
    assert d.spec.template.spec.containers[0].env_from[0].config_map_ref.name == "app-config"
    configmap(kube, namespace, "v2", shared=True)
    found = kube.core.list_namespaced_config_map(namespace).items
    assert [c.metadata.name for c in found if c.metadata.name.startswith("app-config-")] == []
    st = releases.wait_phase("web", "Healthy", timeout=30)
    assert st["liveHash"] == live and st["liveRevision"] == 1, "a shared edit is no revision"
    assert len(releases.deployments("web")) == 1
