"""spec.workloadRef (engine/workload.py): a Deployment someone else renders is adopted, its pod
template released, its pods drained per scaleDown; deleted or detached, it is handed back
first (engine/finalize.py)."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import finalize, naming, snapshot
from greenlight.engine.reasons import Reason
from greenlight.kube import observe
from tests.admission_cases import valid
from tests.unit.world import T0, World, hash_of, pod_template, spec

LEGACY = {"app": "web"}


def adopting(
    replicas: int = 3, policy: str = "afterFlip", image: str = "app:1", spec_replicas: int = 3
) -> World:
    """A plain Deployment `web` (`replicas` pods, all available) behind its own Service `web`,
    and a Release naming it (spec.workloadRef) and adopting the Service."""
    w = World(spec(image, spec_replicas, adopt=True, workload="web", scale_down=policy))
    w.workload = snapshot.WorkloadView(
        "web", pod_template(image), spec_replicas=replicas, available_replicas=replicas
    )
    w.services["web"] = snapshot.ServiceView("web", dict(LEGACY), owned=False)
    return w


def ready_behind_service(w: World) -> int:
    """Available pods the live Service selects: the original's (its pods carry app=web) and
    Greenlight's revisions' (their pods carry the template's labels and ours)."""
    sel = w.live_selector()
    wl = w.workload
    total = wl.available_replicas if wl and all(LEGACY.get(k) == v for k, v in sel.items()) else 0
    for d in w.deployments.values():
        labels = {**LEGACY, **naming.pod_labels(w.name, d.template_hash)}
        if all(labels.get(k) == v for k, v in sel.items()):
            total += d.available_replicas
    return total


def scaled(w: World) -> list[int]:
    return [a.replicas for a in w.log if isinstance(a, act.ScaleWorkload)]


def test_a_release_naming_a_workload_is_accepted_and_its_template_is_the_deployments() -> None:
    body = valid()
    del body["spec"]["template"]
    body["spec"]["workloadRef"] = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    parsed = api.Release.model_validate(body)
    assert parsed.spec.workload_ref is not None
    assert parsed.spec.workload_ref.scale_down == "afterFlip", "the default"


def test_adoption_keeps_the_original_serving_until_revision_1_is_whole_then_drains_it() -> None:
    w = adopting(replicas=3, spec_replicas=1)
    assert finalize.wanted(w.snapshot()), "held before anything is written"
    w.reconcile()
    first = w.last
    assert first is not None and isinstance(first.writes[0], act.AdoptWorkload)
    assert first.writes[0] == act.AdoptWorkload("web", 3), "its replicas recorded first"
    assert Reason.WORKLOAD_ADOPTED in w.events()
    (rev1,) = w.deployments.values()
    assert rev1.spec_replicas == 3, "sized to the original's replicas, not spec.replicas=1"
    assert rev1.template_hash == hash_of(spec("app:1")), "the same revision as its template"
    created = next(a for a in w.log if isinstance(a, act.CreateDeployment))
    assert created.user_template["spec"] == pod_template("app:1")["spec"], "what the original runs"
    assert created.template["metadata"]["labels"] == {
        **LEGACY,
        **naming.pod_labels("web", rev1.template_hash),
        naming.LABEL_ROLE: "candidate",  # (every pod is born a candidate)
    }
    for available in (0, 1, 2):
        w.settle(rev1.name, available)
        w.reconcile()
        assert w.live_selector() == LEGACY, "the original serves until revision 1 is whole"
        assert scaled(w) == [], "afterFlip: nothing drained before the flip"
        assert ready_behind_service(w) >= 3
    w.settle()
    w.reconcile()
    assert w.live_hash() == rev1.template_hash, "flipped once every pod is available"
    assert w.workload is not None and w.workload.spec_replicas == 3, "warm for the delay"
    w.tick(30)
    w.reconcile()
    assert scaled(w) == [0]
    assert Reason.WORKLOAD_SCALED_DOWN in w.events()
    assert ready_behind_service(w) >= 1


def test_progressive_drains_one_pod_per_available_pod_the_service_selects() -> None:
    w = adopting(replicas=3, policy="progressive")
    w.reconcile()
    name = next(iter(w.deployments))
    for available in (1, 2, 3):
        w.settle(name, available)
        w.reconcile()
        assert w.workload is not None and w.workload.spec_replicas == 3 - available
        assert ready_behind_service(w) >= 3, "never fewer ready pods than the original had"
    assert scaled(w) == [2, 1, 0]


def test_never_leaves_the_original_alone() -> None:
    w = adopting(replicas=3, policy="never")
    w.go_live()
    w.tick(3600)
    w.reconcile()
    assert w.live_hash() == w.spec_hash()
    assert scaled(w) == [] and w.workload is not None and w.workload.spec_replicas == 3


def drained() -> World:
    w = adopting(replicas=3)
    w.go_live()
    w.tick(30)
    w.reconcile()
    assert scaled(w) == [0]
    return w


def test_an_original_scaled_up_again_is_scaled_down_with_a_warning_naming_who() -> None:
    w = drained()
    assert w.workload is not None
    w.workload = dataclasses.replace(
        w.workload, spec_replicas=3, replicas_manager="argocd-controller"
    )  # a GitOps sync re-applies its replicas: 3
    w.reconcile()
    assert scaled(w) == [0, 0]
    warnings = [e for e in w.log if isinstance(e, act.RecordEvent) and e.type == "Warning"]
    assert [e.reason for e in warnings] == [Reason.WORKLOAD_RESCALED]
    assert "argocd-controller" in warnings[0].message
    assert "spec.workloadRef.scaleDown" in warnings[0].message


def test_a_new_pod_template_in_the_deployment_is_a_new_revision_released_as_usual() -> None:
    w = drained()
    assert w.workload is not None
    w.workload = dataclasses.replace(w.workload, template=pod_template("app:2"))
    w.reconcile()
    assert w.status.candidate_revision == 2 and w.status.live_revision == 1
    assert w.live_hash() != hash_of(spec("app:2")), "not flipped before its pods are up"
    w.settle()
    w.reconcile()
    assert w.live_hash() == hash_of(spec("app:2"))
    assert w.workload.spec_replicas == 0 and scaled(w) == [0], "drained stays drained"


def test_a_missing_foreign_or_unusable_workload_is_refused_touching_nothing() -> None:
    w = adopting()
    w.workload = None
    w.reconcile()
    assert w.status.phase == "Degraded" and "spec.workloadRef" in w.status.message
    assert w.last is not None and w.last.writes == ()
    w = adopting()
    assert w.workload is not None
    w.workload = dataclasses.replace(w.workload, adopted_by="other")
    w.reconcile()
    assert "adopted by Release 'other'" in w.status.message
    assert w.last is not None and w.last.writes == ()
    w = adopting()
    w.spec = w.spec.model_copy(update={"health_check": None})
    w.reconcile()
    assert w.status.message.startswith("spec.healthCheck: required")
    assert w.last is not None and w.last.writes == ()


def test_the_finalizer_is_wanted_for_any_workload_ref_and_not_while_detaching() -> None:
    w = adopting()
    w.services.clear()  # no Service yet: ours will be created; the workload still goes back
    assert finalize.wanted(w.snapshot())
    snap = w.snapshot()
    detaching = dataclasses.replace(snap.release, annotations={naming.ANNOTATION_DETACH: "true"})
    assert not finalize.wanted(dataclasses.replace(snap, release=detaching))


OURS = naming.pod_labels("web", "abcdef0123")
DEADLINE = 600


def handing_back(
    workload: snapshot.WorkloadView,
    selector: dict[str, str] = OURS,
    pods: int = 0,
    endpoints: int = 0,
    after: float = 1,
    detach: bool = False,
) -> finalize.Cleanup:
    release = dataclasses.replace(
        World(spec("app:1", adopt=True, workload="web", deadline=DEADLINE)).snapshot().release,
        deleting=None if detach else T0,
        finalizers=(naming.FINALIZER,),
        annotations={naming.ANNOTATION_DETACH: "true"} if detach else {},
    )
    svc = snapshot.ServiceView("web", selector, owned=False, adopted_selector=dict(LEGACY))
    now = T0 + datetime.timedelta(seconds=after)
    return finalize.on_delete(finalize.Deleting(release, svc, pods, endpoints, now, workload))


def original(replicas: int, available: int) -> snapshot.WorkloadView:
    return snapshot.WorkloadView(
        "web", pod_template(), replicas, available, "web", original_replicas=3, scaled=True
    )


def test_deletion_restores_replicas_then_waits_for_them_then_the_selector_then_goes() -> None:
    first = handing_back(original(0, 0))
    assert first.scale_workload == 3 and first.restore is None and not first.release
    assert [e.reason for e in first.events] == [Reason.WORKLOAD_RESTORING]
    waiting = handing_back(original(3, 2), pods=2)
    assert waiting == finalize.Cleanup(requeue_after=finalize.POLL_SECONDS), "ours still serve"
    ready = handing_back(original(3, 3), pods=3)
    assert ready.restore == LEGACY and not ready.release
    done = handing_back(original(3, 3), selector=dict(LEGACY), endpoints=3)
    assert done.release and done.release_workload == "web", "its label goes with the finalizer"


def test_deletion_waits_for_the_originals_pods_at_most_the_deadline() -> None:
    late = handing_back(original(3, 1), pods=1, after=DEADLINE)
    assert late.restore == LEGACY
    assert (Reason.WORKLOAD_NOT_RESTORED, "Warning") in [(e.reason, e.type) for e in late.events]


def test_detach_takes_the_same_steps_and_is_never_cut_short() -> None:
    assert handing_back(original(0, 0), detach=True).scale_workload == 3
    waiting = handing_back(original(3, 1), pods=1, after=10 * DEADLINE, detach=True)
    assert waiting == finalize.Cleanup(requeue_after=finalize.POLL_SECONDS)
    done = handing_back(original(3, 3), selector=dict(LEGACY), endpoints=3, detach=True)
    assert done.release and done.release_workload == "web"


def test_a_workload_never_scaled_is_only_waited_for() -> None:
    never = dataclasses.replace(original(3, 3), scaled=False)
    assert handing_back(never, pods=3).restore == LEGACY


def test_the_replicas_manager_is_the_latest_writer_of_spec_replicas() -> None:
    body = {
        "metadata": {
            "name": "web",
            "labels": {naming.LABEL_WORKLOAD_OF: "web"},
            "annotations": {
                naming.ANNOTATION_ORIGINAL_REPLICAS: "3",
                naming.ANNOTATION_SCALED_DOWN: "true",
            },
            "managedFields": [
                {
                    "manager": "greenlight",
                    "time": "2026-01-01T00:00:01Z",
                    "fieldsV1": {"f:spec": {"f:replicas": {}}},
                },
                {
                    "manager": "kubectl",
                    "subresource": "scale",
                    "time": "2026-01-01T00:00:02Z",
                    "fieldsV1": {"f:spec": {"f:replicas": {}}},
                },
                {
                    "manager": "argocd-controller",
                    "time": "2026-01-01T00:00:03Z",
                    "fieldsV1": {"f:spec": {"f:template": {}}},
                },
            ],
        },
        "spec": {"replicas": 3, "template": pod_template()},
        "status": {"availableReplicas": 3},
    }
    view = observe.workload_view(body)
    assert view.replicas_manager == "kubectl (subresource scale)"
    assert (view.adopted_by, view.original_replicas, view.scaled) == ("web", 3, True)
    assert view.template == pod_template() and view.available_replicas == 3


def test_an_hpa_or_pdb_still_on_the_original_is_named_at_adoption() -> None:
    w = adopting()
    assert w.workload is not None
    w.workload = dataclasses.replace(w.workload, autoscalers=("web-hpa",), budgets=("web-pdb",))
    w.reconcile()
    warned = [a for a in w.log if isinstance(a, act.RecordEvent) and a.type == "Warning"]
    assert [a.reason for a in warned] == [Reason.WORKLOAD_TARGETED] * 2
    assert "HorizontalPodAutoscaler web-hpa" in warned[0].message
    assert "kind: Release" in warned[0].message
    assert "PodDisruptionBudget web-pdb" in warned[1].message
    w.reconcile()
    assert [a for a in w.last.events if a.type == "Warning"] == [], "once, at adoption"  # type: ignore[union-attr]


def test_which_hpa_and_pdb_point_at_the_original() -> None:
    def hpa(name: str, kind: str, target: str) -> dict[str, Any]:
        return {
            "metadata": {"name": name},
            "spec": {"scaleTargetRef": {"kind": kind, "name": target}},
        }

    hpas = [hpa("a", "Deployment", "web"), hpa("b", "Release", "web"), hpa("c", "Deployment", "x")]
    assert observe.autoscalers_of(hpas, "web") == ("a",)
    labels = {"app": "web", "tier": "front"}
    pdbs = [
        {"metadata": {"name": "all"}, "spec": {"selector": {}}},
        {"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}}}},
        {"metadata": {"name": "in"}, "spec": {"selector": {"matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "back"]}]}}},
        {"metadata": {"name": "other"}, "spec": {"selector": {"matchLabels": {"app": "db"}}}},
        {"metadata": {"name": "notin"}, "spec": {"selector": {"matchExpressions": [
            {"key": "tier", "operator": "NotIn", "values": ["front"]}]}}},
        {"metadata": {"name": "absent"}, "spec": {"selector": {"matchExpressions": [
            {"key": "canary", "operator": "DoesNotExist"}]}}},
    ]  # fmt: skip
    assert observe.budgets_of(pdbs, labels) == ("absent", "all", "in", "web")
