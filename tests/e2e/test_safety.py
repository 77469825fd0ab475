"""What an engine review found, on a real API server: Services that are not ours,
a lost status, live pods lost, Service fields, hand edits, a Deployment deleted by hand."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from greenlight.api import release as api
from greenlight.engine import naming
from tests.e2e.helpers import wait_for
from tests.e2e.support import (
    NEVER_READY,
    Operator,
    Releases,
    release_manifest,
    set_pod_ready,
    with_image,
)

pytestmark = pytest.mark.usefixtures("operator")


def released(releases: Releases, **kw: Any) -> dict[str, Any]:
    manifest = release_manifest("web", "example/web:1", **kw)
    releases.apply(manifest)
    releases.wait_phase("web", "Healthy", liveRevision=1)
    return manifest


def foreign_service(kube: Any, ns: str, name: str) -> None:
    kube.core.create_namespaced_service(
        ns,
        {
            "metadata": {"name": name, "labels": {"owner": "someone-else"}},
            "spec": {"selector": {"app": "theirs"}, "ports": [{"port": 80}]},
        },
    )


def test_a_service_of_someone_else_is_never_repointed(
    kube: Any, namespace: str, releases: Releases
) -> None:
    manifest = released(releases)
    foreign_service(kube, namespace, "theirs")
    moved = copy.deepcopy(manifest)
    moved["spec"]["service"]["name"] = "theirs"
    releases.apply(moved)
    st = releases.wait_phase("web", "Degraded")
    assert "spec.service.name" in st["message"] and "theirs" in st["message"]
    assert "ServiceConflict" in releases.events("web")
    assert releases.selector("theirs") == {"app": "theirs"}
    svc = kube.core.read_namespaced_service("theirs", namespace)
    assert not svc.metadata.owner_references and naming.LABEL_RELEASE not in svc.metadata.labels
    # the Release's own live Service keeps serving revision 1
    assert releases.selector("web")[naming.LABEL_HASH] == st["liveHash"]


def test_a_wiped_status_never_flips_live_traffic_to_a_revision_without_pods(
    kube: Any, namespace: str, releases: Releases, operator: Operator, zero_downtime: Any
) -> None:
    """A restore from backup: the Release comes back without status, a new spec arrives."""
    manifest = released(releases)
    v1 = releases.status("web")["liveHash"]
    watcher = zero_downtime("web")
    wait_for(lambda: watcher.max_ready == 3, 30, "watcher sees 3 ready endpoints")
    operator.stop()
    kube.kubectl(
        "patch", "-n", namespace, "release", "web", "--subresource=status", "--type=json",
        "-p", '[{"op": "remove", "path": "/status"}]',
    )  # fmt: skip
    assert releases.status("web") == {}
    releases.apply(with_image(manifest, "example/web:2", **NEVER_READY))
    operator.start()
    st = releases.wait_phase("web", "Progressing", liveRevision=1, candidateRevision=2)
    assert st["liveHash"] == v1 and releases.selector("web")[naming.LABEL_HASH] == v1
    assert releases.deployments("web")[v1].spec.replicas == 3, "the live slot keeps its pods"
    assert "Recovered" in releases.events("web")
    watcher.check()


def test_a_live_revision_that_lost_its_pods_is_degraded_after_the_deadline(
    kube: Any, namespace: str, releases: Releases
) -> None:
    released(releases, deadline=3)
    pods = kube.core.list_namespaced_pod(namespace, label_selector="app=web").items
    for pod in pods[:2]:
        set_pod_ready(kube, namespace, pod.metadata.name, ready=False)
    st = releases.wait_phase("web", "Degraded", timeout=30)
    assert "1/3" in st["message"] and "progressDeadlineSeconds=3" in st["message"]
    reasons = {c["type"]: c["reason"] for c in st["conditions"]}
    assert reasons["Available"] == reasons["Progressing"] == "LiveRevisionUnavailable"
    assert {c["type"]: c["status"] for c in st["conditions"]}["Stalled"] == "True"

    for pod in pods[:2]:
        set_pod_ready(kube, namespace, pod.metadata.name, ready=True)
    releases.wait_phase("web", "Healthy", timeout=30)


def test_service_ports_and_type_reach_the_services(
    kube: Any, namespace: str, releases: Releases
) -> None:
    manifest = released(releases)
    changed = copy.deepcopy(manifest)
    changed["spec"]["service"] = {
        "name": "web",
        "type": "NodePort",
        "ports": [{"name": "http", "port": 8081, "targetPort": "http"}],
    }
    changed["spec"]["previewService"]["ports"] = [{"port": 9000, "targetPort": 8080}]
    releases.apply(changed)

    def ports(name: str) -> list[tuple[Any, ...]]:
        svc = kube.core.read_namespaced_service(name, namespace)
        return [(svc.spec.type, p.name, p.port, p.target_port) for p in svc.spec.ports]

    wait_for(lambda: ports("web") == [("NodePort", "http", 8081, "http")], 30, "live ports")
    wait_for(
        lambda: ports("web-preview") == [("ClusterIP", "port-9000", 9000, 8080)], 30, "preview"
    )
    st = releases.wait_phase("web", "Healthy", liveRevision=1)
    assert releases.selector("web")[naming.LABEL_HASH] == st["liveHash"]


def test_an_adopted_service_without_a_selector_is_pointed(
    kube: Any, namespace: str, releases: Releases
) -> None:
    kube.core.create_namespaced_service(
        namespace, {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}
    )
    manifest = release_manifest("web", "example/web:1")
    manifest["spec"]["service"] = {"name": "web", "adopt": True}
    releases.apply(manifest)
    st = releases.wait_phase("web", "Healthy", liveRevision=1)
    assert releases.selector("web") == naming.pod_labels("web", st["liveHash"])
    svc = kube.core.read_namespaced_service("web", namespace)
    assert not svc.metadata.owner_references, "adopted: left in place when the Release goes"
    assert [p.port for p in svc.spec.ports] == [80]
    # deleted (while the operator runs: its finalizer would hold the namespace), the Service
    # goes back to selecting nothing, as it was adopted
    kube.custom.delete_namespaced_custom_object(
        api.GROUP, api.VERSION, namespace, api.PLURAL, "web"
    )
    wait_for(lambda: not releases.selector("web"), 30, "the Service selecting nothing again")
    listed = kube.custom.list_namespaced_custom_object
    wait_for(
        lambda: not listed(api.GROUP, api.VERSION, namespace, api.PLURAL)["items"],
        30,
        "the Release deleted",
    )
    assert [p.port for p in kube.core.read_namespaced_service("web", namespace).spec.ports] == [80]


def test_a_hand_edited_live_service_is_repaired_at_once(
    kube: Any, namespace: str, releases: Releases
) -> None:
    manifest = released(releases)
    releases.apply(with_image(manifest, "example/web:2"))
    st = releases.wait_phase("web", "Healthy", liveRevision=2)
    history = [(h["revision"], h["templateHash"]) for h in st["history"]]
    v1, v2 = history[0][1], history[1][1]
    expected = naming.pod_labels("web", v2)
    for wrong in ({"app": "web"}, naming.pod_labels("web", v1)):
        before = releases.events("web").count("Drift")
        patch = [{"op": "replace", "path": "/spec/selector", "value": wrong}]
        started = time.monotonic()
        kube.core.patch_namespaced_service(
            "web", namespace, patch, _content_type="application/json-patch+json"
        )
        wait_for(lambda: releases.selector("web") == expected, 10, "the live selector repaired")
        print(f"selector {wrong} repaired in {time.monotonic() - started:.2f}s")
        wait_for(
            lambda n=before + 1: releases.events("web").count("Drift") == n, 10, "a Drift Event"
        )
        st = releases.wait_phase("web", "Healthy", liveRevision=2)
        assert [(h["revision"], h["templateHash"]) for h in st["history"]] == history


def test_undo_to_a_revision_whose_deployment_was_deleted_by_hand_says_so(
    kube: Any, namespace: str, releases: Releases
) -> None:
    manifest = released(releases)
    v1 = releases.status("web")["liveHash"]
    releases.apply(with_image(manifest, "example/web:2"))
    releases.wait_phase("web", "Healthy", liveRevision=2)
    kube.apps.delete_namespaced_deployment(naming.deployment_name("web", v1), namespace)
    wait_for(lambda: v1 not in releases.deployments("web"), 30, "revision 1's Deployment gone")
    releases.annotate("web", naming.COMMAND_UNDO, "")
    wait_for(lambda: "UndoFailed" in releases.events("web"), 30, "an UndoFailed Event")
    found = kube.core.list_namespaced_event(
        namespace, field_selector="involvedObject.name=web,reason=UndoFailed"
    )
    assert "deleted outside Greenlight" in found.items[0].message
    assert releases.status("web")["liveRevision"] == 2
