"""The work queue's fairness policy (kube/priority.py): which events are user intent or a due
decision (URGENT), which move live traffic now (TRAFFIC) and which are churn (BULK), from what
the informers deliver and the Release index."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from greenlight.engine import naming
from greenlight.kube import observe, priority, reconcile
from greenlight.kube.workqueue import Priority

TRAFFIC, URGENT, BULK = Priority.TRAFFIC, Priority.URGENT, Priority.BULK

BODY: dict[str, Any] = {
    "metadata": {"name": "web", "namespace": "ns", "uid": "u-1", "generation": 2,
                 "resourceVersion": "100"},
    "spec": {
        "replicas": 3,
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "app:1"}]},
        },
        "healthCheck": {"httpGet": {"path": "/healthz", "port": 8080}},
        "service": {"name": "web", "ports": [{"port": 80, "targetPort": 8080}]},
        "previewService": {"name": "web-preview"},
    },
    "status": {"observedGeneration": 2, "phase": "Healthy", "liveHash": "aaa",
               "liveRevision": 1},
}  # fmt: skip


def indexed(**changes: Any) -> reconcile.Indexed:
    body = copy.deepcopy(BODY)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = body
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return reconcile.index_release(body)


def deployment(template_hash: str, want: int = 3, **status: int) -> dict[str, Any]:
    full = {"observedGeneration": 1, "replicas": want, "updatedReplicas": want,
            "readyReplicas": want, "availableReplicas": want}  # fmt: skip
    return {
        "metadata": {"name": f"web-{template_hash}", "generation": 1,
                     "labels": {naming.LABEL_HASH: template_hash}},
        "spec": {"replicas": want},
        "status": {**full, **status},
    }  # fmt: skip


IN_FLIGHT = {"status__candidateHash": "bbb", "status__phase": "Progressing"}


def test_a_status_only_event_is_bulk() -> None:
    assert priority.release_event(indexed()) == BULK


def test_a_spec_not_yet_acted_on_is_urgent() -> None:
    assert priority.release_event(indexed(metadata__generation=3)) == URGENT


def test_a_spec_set_back_to_a_warm_revision_goes_first() -> None:
    """An undo writes the template of a revision whose pods are all up: the flip is due now.
    A revision short of pods, or another one, waits with the other specs."""
    rel = indexed(metadata__generation=3)
    assert rel.view is not None
    desired = naming.template_hash(naming.effective_template(rel.view.spec))
    warm = observe.deployment_view(deployment(desired))
    short = observe.deployment_view(deployment(desired, availableReplicas=2))
    other = observe.deployment_view(deployment("other"))
    assert priority.release_event(rel, [other, warm]) == TRAFFIC
    assert priority.release_event(rel, [short, other]) == URGENT
    assert priority.release_event(indexed(), [warm]) == BULK  # acted on already


@pytest.mark.parametrize("command", naming.COMMANDS)
def test_a_command_waiting_to_be_consumed_goes_first(command: str) -> None:
    assert priority.release_event(indexed(metadata__annotations={command: "true"})) == TRAFFIC


def test_other_annotations_are_bulk() -> None:
    assert priority.release_event(indexed(metadata__annotations={"team": "a"})) == BULK


def test_a_deleted_or_invalid_release_is_urgent() -> None:
    assert priority.release_event(None) == URGENT
    invalid = indexed(spec__replicas="many")
    assert invalid.view is None
    assert priority.release_event(invalid) == URGENT


def test_a_candidate_that_settled_goes_first_its_progress_is_coalesced() -> None:
    rel = indexed(**IN_FLIGHT)
    ready = observe.deployment_view(deployment("bbb"))
    assert priority.deployment_event(ready, rel) == TRAFFIC
    for progress in (
        {"availableReplicas": 2},
        {"updatedReplicas": 0, "readyReplicas": 0, "availableReplicas": 0},
        {"observedGeneration": 0},
        {"replicas": 4},  # a surplus pod still terminating
    ):
        view = observe.deployment_view(deployment("bbb", **progress))
        assert priority.deployment_event(view, rel) == priority.PROGRESS, progress


def test_deployment_events_of_a_release_with_nothing_in_flight_are_bulk() -> None:
    for d in (deployment("aaa"), deployment("old", want=0)):
        assert priority.deployment_event(observe.deployment_view(d), indexed()) == BULK
    scaling = observe.deployment_view(deployment("aaa", replicas=1))  # (an HPA's scale-up)
    assert priority.deployment_event(scaling, indexed()) == priority.PROGRESS
    assert priority.deployment_event(None, indexed(**IN_FLIGHT)) == BULK
    assert priority.deployment_event(observe.deployment_view(deployment("b")), None) == BULK


def service(name: str, selected: str | None) -> dict[str, Any]:
    selector = {naming.LABEL_HASH: selected} if selected else {}
    return {"metadata": {"name": name}, "spec": {"selector": selector}}


def test_a_service_selecting_what_the_status_says_is_bulk_a_drifted_one_goes_first() -> None:
    rel = indexed(**IN_FLIGHT)
    assert priority.service_event(service("web", "aaa"), rel) == BULK
    assert priority.service_event(service("web-preview", "bbb"), rel) == BULK
    assert priority.service_event(service("web", "bbb"), rel) == TRAFFIC
    assert priority.service_event(service("web", None), rel) == TRAFFIC
    assert priority.service_event(service("web-preview", "aaa"), rel) == BULK, "no pod yet"
    assert priority.service_event(service("web-preview", "zzz"), rel) == TRAFFIC
    assert priority.service_event(service("web-preview", "aaa"), indexed()) == BULK
    assert priority.service_event(service("other", "zzz"), rel) == BULK
    assert priority.service_event(service("web", "zzz"), None) == BULK


def test_a_finished_check_job_goes_first_a_running_one_is_bulk() -> None:
    labels = {naming.LABEL_CHECK: "migrate", naming.LABEL_STAGE: "prePromotion",
              naming.LABEL_HASH: "bbb"}  # fmt: skip
    job: dict[str, Any] = {"metadata": {"name": "j", "labels": labels}, "status": {}}
    assert priority.job_event(observe.job_view(job)) == BULK
    job["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    assert priority.job_event(observe.job_view(job)) == TRAFFIC
    job["status"] = {"conditions": [{"type": "Failed", "status": "True"}]}
    assert priority.job_event(observe.job_view(job)) == TRAFFIC
    assert priority.job_event(None) == BULK


def check(stage: str, template_hash: str, phase: str) -> dict[str, Any]:
    return {"name": "smoke", "stage": stage, "templateHash": template_hash, "phase": phase,
            "startedAt": "2026-01-01T00:00:00Z"}  # fmt: skip


def test_a_recorded_verdict_that_decides_a_flip_an_abort_or_a_flip_back_goes_first() -> None:
    """Decisions use only verdicts already recorded in status, so the reconcile after the one
    that recorded a verdict is the one that flips, aborts or flips back: the status write
    that recorded it must wake that reconcile in the TRAFFIC lane, not with the churn."""
    decides = [
        indexed(**IN_FLIGHT, status__checks=[check("prePromotion", "bbb", "Passed")]),
        indexed(**IN_FLIGHT, status__checks=[check("prePromotion", "bbb", "Failed")]),
        indexed(
            **IN_FLIGHT, status__currentStep=1, status__checks=[check("step-1", "bbb", "Failed")]
        ),
        indexed(status__checks=[check("postPromotion", "aaa", "Failed")]),
    ]
    for rel in decides:
        assert priority.release_event(rel) == TRAFFIC, rel.view and rel.view.status.checks
    waits = [
        indexed(**IN_FLIGHT, status__checks=[check("prePromotion", "bbb", "Running")]),
        indexed(status__checks=[check("postPromotion", "aaa", "Passed")]),
        indexed(status__checks=[check("postPromotion", "aaa", "Running")]),
        indexed(status__checks=[check("prePromotion", "old", "Failed")]),  # decided already
    ]
    for rel in waits:
        assert priority.release_event(rel) == BULK, rel.view and rel.view.status.checks


def test_endpoints_of_a_first_route_go_before_churn_the_candidates_before_all() -> None:
    """spec.traffic: no request reaches a new Release through the gateway until its first
    route is written, which waits for the live revision's backend to list a pod."""
    first = indexed(status__liveHash=None, status__liveRevision=None)
    live = [observe.deployment_view(deployment("aaa"))]
    assert priority.endpoints_event("web-aaa", 1, first, live) == URGENT
    flight = indexed(**IN_FLIGHT)
    both = [*live, observe.deployment_view(deployment("bbb"))]
    assert priority.endpoints_event("web-bbb", 3, flight, both) == TRAFFIC
    assert priority.endpoints_event("web-bbb", 2, flight, both) is None, "not all listed yet"


def test_a_first_revision_that_settled_goes_before_churn_until_the_release_says_healthy() -> None:
    coming_up = indexed(status__liveHash="aaa", status__phase="Progressing")
    settled = observe.deployment_view(deployment("aaa"))
    assert priority.deployment_event(settled, coming_up) == URGENT, "CI and GitOps wait for it"
    progress = observe.deployment_view(deployment("aaa", availableReplicas=1))
    assert priority.deployment_event(progress, coming_up) == priority.PROGRESS
    healthy = indexed(status__liveHash="aaa", status__phase="Healthy")
    assert priority.deployment_event(settled, healthy) == BULK, "already said"
