"""Blue-green on a real API server: what a user sees in Services, EndpointSlices, status, Events."""

from __future__ import annotations

import time
from typing import Any

import prometheus_client
import pytest

from greenlight.engine import naming
from tests.e2e.helpers import wait_for
from tests.e2e.support import (
    NEVER_READY,
    Releases,
    ZeroDowntime,
    pods,
    release_manifest,
    set_pod_ready,
    with_image,
)

pytestmark = pytest.mark.usefixtures("operator")


def live_hash(releases: Releases, service: str = "web") -> str | None:
    return releases.selector(service).get(naming.LABEL_HASH)


def released(releases: Releases, **kw: Any) -> dict[str, Any]:
    """Apply v1 of Release `web` and wait until it is live and Healthy."""
    manifest = release_manifest("web", "example/web:1", **kw)
    releases.apply(manifest)
    releases.wait_phase("web", "Healthy", liveRevision=1)
    return manifest


def test_first_release_creates_and_fills_the_live_service(releases: Releases) -> None:
    released(releases)
    st = releases.status("web")
    assert (st["liveColor"], st["readyReplicas"]) == ("blue", 3)
    assert releases.selector("web") == naming.pod_labels("web", st["liveHash"])
    wait_for(lambda: releases.ready_endpoints("web") == 3, 30, "3 ready endpoints")
    [entry] = st["history"]
    assert (entry["revision"], entry["outcome"], entry["images"]) == (1, "Live", ["example/web:1"])
    [deployment] = releases.deployments("web").values()
    probe = deployment.spec.template.spec.containers[0].readiness_probe
    assert probe.http_get.path == "/healthz", "healthCheck is injected as the readiness probe"
    assert "FirstRelease" in releases.events("web")


def test_image_update_flips_blue_to_green_with_zero_downtime(
    releases: Releases, zero_downtime: Any
) -> None:
    manifest = released(releases, blue_green={"scaleDownDelaySeconds": 3})
    blue = live_hash(releases)
    watcher = zero_downtime("web")
    wait_for(lambda: watcher.max_ready == 3, 30, "watcher sees 3 ready endpoints")
    releases.apply(with_image(manifest, "example/web:2"))
    st = releases.wait_phase("web", "Healthy", liveRevision=2)
    assert st["liveColor"] == "green"
    green = st["liveHash"]
    assert green != blue and live_hash(releases) == green
    assert releases.selector("web-preview")[naming.LABEL_HASH] == green
    assert "Promoted" in releases.events("web")
    # blue stays warm, then goes to zero after scaleDownDelaySeconds
    wait_for(
        lambda: releases.deployments("web")[blue].spec.replicas == 0, 30, "blue scaled to zero"
    )
    wait_for(lambda: releases.ready_endpoints("web") == 3, 30, "3 ready green endpoints")
    history = {e["revision"]: e for e in releases.status("web")["history"]}
    assert history[1]["outcome"] == "Retired" and history[2]["outcome"] == "Live"
    assert watcher.flips == [green]


def test_never_ready_candidate_is_aborted_at_the_deadline_and_blue_stays_live(
    releases: Releases, zero_downtime: Any
) -> None:
    manifest = released(releases, deadline=6)
    blue = live_hash(releases)
    zero_downtime("web")
    releases.apply(with_image(manifest, "example/web:2", **NEVER_READY))
    st = releases.wait_phase("web", "Degraded", timeout=40)
    assert live_hash(releases) == blue
    entry = next(e for e in st["history"] if e["revision"] == 2)
    assert entry["outcome"] == "Aborted"
    assert entry["reason"].startswith("ProgressDeadlineExceeded")
    wait_for(
        lambda: all(
            d.spec.replicas == 0 for h, d in releases.deployments("web").items() if h != blue
        ),
        30,
        "candidate scaled down",
    )
    assert "Aborted" in releases.events("web")
    assert releases.ready_endpoints("web") == 3
    # not retried by itself
    assert releases.wait_phase("web", "Degraded")["liveRevision"] == 1


def test_a_candidate_whose_pods_keep_coming_is_not_aborted_after_the_deadline(
    releases: Releases, kube: Any, zero_downtime: Any
) -> None:
    """progressDeadlineSeconds counts from the last progress, as a Deployment's does: pods that
    become Ready one by one, each well within the deadline of the one before, are never aborted,
    although the whole candidate takes longer than the deadline (its pods wait behind a busy
    kube-controller-manager or a slow image pull in a real cluster)."""
    deadline, replicas, pace = 10, 5, 3.0
    manifest = released(releases, deadline=deadline, replicas=replicas)
    blue = live_hash(releases)
    watcher = zero_downtime("web")
    releases.apply(with_image(manifest, "example/web:2", **NEVER_READY))
    started = time.monotonic()
    green = wait_for(
        lambda: next((h for h in releases.deployments("web") if h != blue), None),
        30,
        "candidate Deployment",
    )
    selector = f"{naming.LABEL_HASH}={green}"
    wait_for(lambda: len(pods(kube, releases.ns, selector)) == replicas, 30, "candidate pods")
    for name in sorted(p.metadata.name for p in pods(kube, releases.ns, selector)):
        time.sleep(pace)  # the scenario's pace: one more pod Ready every `pace` seconds
        assert releases.status("web")["phase"] == "Progressing", releases.status("web")
        set_pod_ready(kube, releases.ns, name, ready=True)
    st = releases.wait_phase("web", "Healthy", liveRevision=2)
    assert time.monotonic() - started > deadline, "the candidate took longer than the deadline"
    assert st["liveHash"] == green and live_hash(releases) == green
    assert all(e["outcome"] != "Aborted" for e in st["history"]), st["history"]
    assert "Aborted" not in releases.events("web")
    assert watcher.flips == [green]


def test_the_preview_service_moves_to_the_candidate_once_one_of_its_pods_is_ready(
    releases: Releases, kube: Any
) -> None:
    """Argo Rollouts #2641: requests sent to the preview Service always find a ready endpoint;
    it keeps selecting the live revision until a candidate pod is ready."""
    manifest = released(releases)
    blue = live_hash(releases)
    with ZeroDowntime(kube, releases.ns, "web-preview") as preview:
        wait_for(lambda: preview.max_ready == 3, 30, "the preview's 3 ready endpoints")
        releases.apply(with_image(manifest, "example/web:2", **NEVER_READY))
        green = wait_for(
            lambda: next((h for h in releases.deployments("web") if h != blue), None),
            30,
            "candidate Deployment",
        )
        selector = f"{naming.LABEL_HASH}={green}"
        wait_for(lambda: len(pods(kube, releases.ns, selector)) == 3, 30, "candidate pods")
        time.sleep(2)  # reconciles of the candidate's pods coming up, none Ready
        assert releases.selector("web-preview")[naming.LABEL_HASH] == blue
        first = min(p.metadata.name for p in pods(kube, releases.ns, selector))
        set_pod_ready(kube, releases.ns, first, ready=True)
        wait_for(
            lambda: releases.selector("web-preview").get(naming.LABEL_HASH) == green,
            30,
            "the preview Service on the candidate",
        )
        wait_for(lambda: releases.ready_endpoints("web-preview") == 1, 30, "its ready pod")
    assert live_hash(releases) == blue, "1 of 3 Ready: no flip"
    # (the watcher's flip check, for a live Service, wants every pod Ready: not this one's)
    outage = [p for p in preview.problems if "flip to" not in p]
    assert not outage and preview.flips == [green], preview.problems


def test_manual_promotion(releases: Releases, zero_downtime: Any) -> None:
    manifest = released(releases, blue_green={"autoPromote": False})
    zero_downtime("web")
    blue = live_hash(releases)
    releases.apply(with_image(manifest, "example/web:2"))
    st = releases.wait_phase("web", "Paused", candidateRevision=2)
    assert live_hash(releases) == blue
    assert releases.selector("web-preview")[naming.LABEL_HASH] == st["candidateHash"]
    releases.annotate("web", naming.COMMAND_PROMOTE)
    releases.wait_phase("web", "Healthy", liveRevision=2)
    annotations = releases.get("web")["metadata"].get("annotations") or {}
    assert naming.COMMAND_PROMOTE not in annotations, "commands are consumed"


def test_undo_to_a_warm_revision_creates_no_pods(releases: Releases, zero_downtime: Any) -> None:
    manifest = released(releases, blue_green={"scaleDownDelaySeconds": 600})
    blue = live_hash(releases)
    releases.apply(with_image(manifest, "example/web:2"))
    releases.wait_phase("web", "Healthy", liveRevision=2)
    zero_downtime("web")
    pods_before = releases.pod_names()
    releases.annotate("web", naming.COMMAND_UNDO, "")
    st = releases.wait_phase("web", "Degraded", liveRevision=1)
    assert st["liveHash"] == blue and live_hash(releases) == blue and st["rolledBackTo"] == blue
    assert "Change the spec" in st["message"]
    spec_image = releases.get("web")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert spec_image == "example/web:2", "undo leaves the spec as it is"
    assert releases.pod_names() == pods_before, "the warm slot served: no new pods"


def test_an_undo_holds_when_gitops_applies_the_same_spec_again(
    releases: Releases, zero_downtime: Any
) -> None:
    manifest = released(releases, blue_green={"scaleDownDelaySeconds": 600})
    blue = live_hash(releases)
    v2 = with_image(manifest, "example/web:2")
    releases.apply(v2)
    releases.wait_phase("web", "Healthy", liveRevision=2)
    zero_downtime("web")
    releases.annotate("web", naming.COMMAND_UNDO, "")
    releases.wait_phase("web", "Degraded", liveRevision=1)
    releases.apply(v2)  # a GitOps sync of the unchanged manifest: nothing to undo the undo
    v2["spec"]["revisionHistoryLimit"] = 9  # and one that changes the spec, not the template
    releases.apply(v2)
    generation = releases.get("web")["metadata"]["generation"]
    st = releases.wait_phase("web", "Degraded", liveRevision=1, observedGeneration=generation)
    assert live_hash(releases) == blue == st["rolledBackTo"], "the sync did not undo the undo"
    stalled = next(c for c in st["conditions"] if c["type"] == "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "Undone")
    releases.apply(with_image(v2, "example/web:3"))  # fixed in git
    st = releases.wait_phase("web", "Healthy", liveRevision=3)
    assert "rolledBackTo" not in st and live_hash(releases) == st["liveHash"] != blue


def test_undo_to_a_cold_revision(releases: Releases, zero_downtime: Any) -> None:
    manifest = released(releases, blue_green={"scaleDownDelaySeconds": 0})
    blue = live_hash(releases)
    releases.apply(with_image(manifest, "example/web:2"))
    releases.wait_phase("web", "Healthy", liveRevision=2)
    wait_for(lambda: releases.deployments("web")[blue].spec.replicas == 0, 30, "blue cold")
    zero_downtime("web")
    releases.annotate("web", naming.COMMAND_UNDO, "1")
    st = releases.wait_phase("web", "Degraded", liveHash=blue)  # (new pods: a new revision)
    assert live_hash(releases) == blue == st["rolledBackTo"] and st["liveRevision"] == 3
    assert releases.deployments("web")[blue].status.available_replicas == 3


def test_new_spec_mid_release_supersedes_the_candidate(
    releases: Releases, zero_downtime: Any
) -> None:
    manifest = released(releases)
    zero_downtime("web")
    releases.apply(with_image(manifest, "example/web:2", **NEVER_READY))
    two = releases.wait_phase("web", "Progressing", candidateRevision=2)["candidateHash"]
    releases.apply(with_image(manifest, "example/web:3"))
    st = releases.wait_phase("web", "Healthy", liveRevision=3)
    assert live_hash(releases) == st["liveHash"]
    entry = next(e for e in st["history"] if e["templateHash"] == two)
    assert entry["outcome"] == "Superseded"
    wait_for(lambda: releases.deployments("web")[two].spec.replicas == 0, 30, "rev 2 scaled down")


def test_replica_change_mid_release_resizes_the_candidate_not_the_live_slot(
    releases: Releases, zero_downtime: Any
) -> None:
    manifest = released(releases)
    blue = live_hash(releases)
    zero_downtime("web")
    slow = with_image(manifest, "example/web:2", ready_after="8s")
    releases.apply(slow)
    green = releases.wait_phase("web", "Progressing", candidateRevision=2)["candidateHash"]
    slow["spec"]["replicas"] = 5
    releases.apply(slow)
    wait_for(lambda: releases.deployments("web")[green].spec.replicas == 5, 30, "green at 5")
    assert releases.deployments("web")[blue].spec.replicas == 3, "live slot untouched"
    releases.wait_phase("web", "Healthy", liveRevision=2, readyReplicas=5)


def test_operator_restarted_mid_release_converges_without_duplicates(
    releases: Releases, operator: Any, zero_downtime: Any
) -> None:
    manifest = released(releases)
    zero_downtime("web")
    slow = with_image(manifest, "example/web:2", ready_after="5s")
    releases.apply(slow)
    releases.wait_phase("web", "Progressing", candidateRevision=2)
    operator.stop()
    green = releases.status("web")["candidateHash"]
    wait_for(
        lambda: releases.deployments("web")[green].status.available_replicas == 3,
        30,
        "green pods ready while the operator is down",
    )
    assert live_hash(releases) != green, "nobody flipped while the operator was down"
    operator.start()
    releases.wait_phase("web", "Healthy", liveRevision=2)
    assert len(releases.deployments("web")) == 2
    assert [e["revision"] for e in releases.status("web")["history"]] == [1, 2]


def test_deleting_a_release_removes_its_deployments_and_service(
    releases: Releases, kube: Any, namespace: str
) -> None:
    released(releases)
    kube.kubectl("delete", "-n", namespace, "release", "web", "--wait=true")

    def gone() -> bool:
        services = [s.metadata.name for s in kube.core.list_namespaced_service(namespace).items]
        return not releases.deployments("web") and "web" not in services

    wait_for(gone, 60, "Deployments and Service garbage-collected")


def test_invalid_spec_is_rejected_with_a_message_that_names_the_field(
    releases: Releases, kube: Any
) -> None:
    manifest = release_manifest("web", "example/web:1")
    del manifest["spec"]["healthCheck"]
    with pytest.raises(Exception, match=r"spec\.healthCheck"):
        releases.apply(manifest)
    manifest = release_manifest("web", "example/web:1", replicas=-1)
    with pytest.raises(Exception, match=r"spec\.replicas"):
        releases.apply(manifest)


def test_kubectl_explain_reads_the_schema(kube: Any, crd: None) -> None:
    out = kube.kubectl("explain", "release.spec.strategy.blueGreen")
    assert "autoPromote" in out and "scaleDownDelaySeconds" in out


def failed_reconciles() -> float:
    """The in-process operator's count of reconciles that raised (its Prometheus counter)."""
    found = prometheus_client.REGISTRY.get_sample_value(
        "greenlight_reconciles_total", {"result": "error"}
    )
    return found or 0.0


def test_a_service_the_quota_refuses_is_reported_then_recovered(
    releases: Releases, kube: Any, namespace: str
) -> None:
    quota = {"metadata": {"name": "no-services"}, "spec": {"hard": {"services": "0"}}}
    kube.core.create_namespaced_resource_quota(namespace, quota)
    wait_for(
        lambda: kube.core.read_namespaced_resource_quota("no-services", namespace).status.hard,
        30,
        "the quota controller to compute the quota",
    )
    failed_before = failed_reconciles()
    releases.apply(release_manifest("web", "example/web:1"))

    def reported() -> dict[str, Any] | None:
        st = releases.status("web")
        return st if any(c["type"] == "ReconcileError" for c in st.get("conditions", [])) else None

    st = wait_for(reported, 30, "a ReconcileError condition")
    [condition] = [c for c in st["conditions"] if c["type"] == "ReconcileError"]
    assert condition["message"].startswith("create live Service web: "), condition
    assert "exceeded quota" in condition["message"] and condition["message"].endswith("(403)")
    assert st["message"] == f"cannot apply: {condition['message']}"
    assert "liveRevision" not in st or st["liveRevision"] is None, "nothing claimed live"
    wait_for(lambda: failed_reconciles() - failed_before >= 3, 30, "two retries (backoff)")
    assert releases.events("web") == ["ApplyFailed"], "retries failing alike post no more Events"

    kube.core.delete_namespaced_resource_quota("no-services", namespace)
    st = releases.wait_phase("web", "Healthy", liveRevision=1, timeout=90)
    assert "ReconcileError" not in [c["type"] for c in st["conditions"]]
    assert releases.selector("web") == naming.pod_labels("web", st["liveHash"])


def test_the_phase_metric_follows_the_release(releases: Releases, kube: Any) -> None:
    def phases() -> dict[str, float]:
        found = {}
        for family in prometheus_client.REGISTRY.collect():
            for s in family.samples:
                labels = s.labels
                if s.name == "greenlight_release_phase" and labels["namespace"] == releases.ns:
                    found[labels["phase"]] = s.value
        return found

    manifest = released(releases, deadline=3)
    wait_for(lambda: phases() == {"Healthy": 1.0}, 10, "phase Healthy in the metrics")
    releases.apply(with_image(manifest, "example/web:2", **NEVER_READY))
    releases.wait_phase("web", "Degraded", liveRevision=1, timeout=30)
    wait_for(lambda: phases() == {"Degraded": 1.0}, 10, "only phase Degraded in the metrics")
    kube.custom.delete_namespaced_custom_object(
        "greenlight.dev", "v1alpha1", releases.ns, "releases", "web"
    )
    wait_for(lambda: phases() == {}, 30, "no phase series once the Release is gone")
