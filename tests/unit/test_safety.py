"""Regressions from the engine review (issue 8): each failed before its fix."""

from __future__ import annotations

import dataclasses

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import naming, plan, snapshot

from .world import World, hash_of, released, spec


def with_service(s: api.ReleaseSpec, **changes: object) -> api.ReleaseSpec:
    body = s.model_dump(by_alias=True, exclude_none=True)
    for key, value in changes.items():
        body[key] = value
    return api.ReleaseSpec.model_validate(body)


def touches(p: plan.Plan, name: str) -> list[act.ApplyService]:
    return [a for a in p.writes if isinstance(a, act.ApplyService) and a.name == name]


def test_a_foreign_service_is_never_repointed_when_the_guard_refuses_it() -> None:
    w = released()
    foreign = {"app": "someone-else"}
    w.services["other"] = snapshot.ServiceView("other", dict(foreign), owned=False)
    w.services["other-preview"] = snapshot.ServiceView("other-preview", dict(foreign), False)
    w.set_spec(with_service(w.spec, service={"name": "other", "ports": [{"port": 80}]}))
    p = w.reconcile()
    assert w.status.phase == "Degraded" and "spec.service.name" in w.status.message
    assert touches(p, "other") == [] and w.services["other"].selector == foreign
    assert [*p.writes, *p.jobs, *p.measurements, *p.notifications] == []

    w = released()
    w.services["other-preview"] = snapshot.ServiceView("other-preview", dict(foreign), False)
    w.set_spec(with_service(w.spec, previewService={"name": "other-preview"}))
    p = w.reconcile()
    assert w.status.phase == "Degraded" and "spec.previewService.name" in w.status.message
    assert w.services["other-preview"].selector == foreign
    assert [*p.writes, *p.jobs, *p.measurements, *p.notifications] == []


def test_a_wiped_status_never_flips_to_a_revision_without_pods() -> None:
    """A restore from backup: Deployments and Services come back, the status does not."""
    w = released("app:1")
    v1 = hash_of(w.spec)
    w.status = api.ReleaseStatus()
    w.set_spec(spec("app:2"))
    w.reconcile()
    assert w.live_hash() == v1, "live traffic stays on revision 1 until 2 is available"
    assert w.by_hash(v1).spec_replicas == 3
    assert w.status.live_revision == 1 and w.status.candidate_revision == 2
    w.settle()
    w.reconcile()
    assert w.live_hash() == hash_of(w.spec) and w.status.live_revision == 2
    assert [e.revision for e in w.status.history] == [1, 2]


def test_a_paused_release_emits_one_progressing_event() -> None:
    w = released("app:1")
    w.set_spec(spec("app:2"))
    w.reconcile()
    w.set_spec(spec("app:2", paused=True))
    for _ in range(5):
        w.tick(10)
        w.reconcile()
    assert w.status.phase == "Paused"
    assert w.events().count("Progressing") == 1
    w.set_spec(spec("app:2"))
    w.reconcile()
    assert w.events().count("Progressing") == 1
    w.tick(599)  # the progress deadline did not run while paused
    w.reconcile()
    assert w.status.phase == "Progressing"


def test_a_live_revision_that_lost_pods_is_degraded_after_the_deadline() -> None:
    w = released("app:1", deadline=60)
    w.settle(available=1)
    w.reconcile()
    assert w.status.phase == "Progressing"
    assert w.last is not None and w.last.requeue_after == 60
    w.tick(61)
    w.reconcile()
    assert w.status.phase == "Degraded"
    assert [c.reason for c in w.status.conditions][1] == "LiveRevisionUnavailable"
    assert "1/3" in w.status.message
    w.settle()
    w.reconcile()
    assert w.status.phase == "Healthy"


def test_a_rolling_release_says_nothing_of_a_warm_slot_and_wakes_no_one() -> None:
    rolling = {"maxSurge": 1, "maxUnavailable": 0}
    w = World(spec("app:1", rolling=rolling))
    for _ in range(3):
        w.reconcile()
        w.settle()
    w.set_spec(spec("app:2", rolling=rolling))
    for _ in range(10):
        w.reconcile()
        w.settle()
    assert w.status.phase == "Healthy" and w.status.live_revision == 2
    promoted = [a for a in w.log if isinstance(a, act.RecordEvent) and a.reason == "Promoted"]
    assert promoted and all("warm" not in a.message for a in promoted)
    assert w.last is not None and w.last.requeue_after is None


def test_a_hand_edited_live_selector_is_repaired_with_a_warning() -> None:
    w = released("app:1")
    w.set_spec(spec("app:2"))
    for _ in range(2):
        w.reconcile()
        w.settle()
    assert w.status.live_revision == 2
    v2 = hash_of(w.spec)
    history = list(w.status.history)
    for wrong in ({"app": "web"}, naming.pod_labels("web", history[0].template_hash)):
        svc = w.services["web"]
        w.services["web"] = dataclasses.replace(svc, selector=wrong)
        p = w.reconcile()
        assert w.live_hash() == v2 and w.live_selector() == naming.pod_labels("web", v2)
        drift = [a for a in p.events if isinstance(a, act.RecordEvent) and a.reason == "Drift"]
        assert drift and drift[0].type == "Warning" and "web" in drift[0].message
        assert w.status.phase == "Healthy" and w.status.live_revision == 2
        assert w.status.history == history, "a repair is not a new release"


def test_healthy_only_when_the_live_service_selects_the_live_revision() -> None:
    w = released("app:1")
    svc = w.services["web"]
    w.services["web"] = dataclasses.replace(svc, selector={"app": "web"})
    p = w.reconcile()
    # the repair is planned in the same reconcile, before the status that says Healthy
    kinds = [type(a).__name__ for a in p.writes]
    assert "ApplyService" in kinds


def test_undo_to_a_revision_whose_deployment_was_deleted_by_hand_says_so() -> None:
    w = released("app:1")
    w.set_spec(spec("app:2"))
    for _ in range(2):
        w.reconcile()
        w.settle()
    old = w.status.history[0]
    del w.deployments[naming.deployment_name("web", old.template_hash)]
    w.annotations[naming.COMMAND_UNDO] = ""
    p = w.reconcile()
    failed = [a for a in p.events if isinstance(a, act.RecordEvent) and a.reason == "UndoFailed"]
    assert failed and "deleted" in failed[0].message
    assert "beyond revisionHistoryLimit" not in failed[0].message


# Found by the extended property test (each failed before its fix):

ROLLING = {"maxSurge": 1, "maxUnavailable": 1}


def rolling_in_flight() -> World:
    """Revision 1 live (rolling strategy); revision 2 rolling in, mid-way."""
    w = World(spec("app:1", rolling=ROLLING))
    for _ in range(3):
        w.reconcile()
        w.settle()
    w.set_spec(spec("app:2", rolling=ROLLING))
    w.reconcile()  # the first batch: revision 1 shrinks, revision 2 grows
    w.settle()
    assert w.live_selector() == {naming.LABEL_RELEASE: "web"}, "mixed: both revisions serve"
    assert w.status.candidate_revision == 2
    return w


def serving(w: World) -> int:
    sel = w.live_selector()
    return sum(
        d.available_replicas
        for d in w.deployments.values()
        if all(naming.pod_labels("web", d.template_hash).get(k) == v for k, v in sel.items())
    )


def test_a_status_lost_mid_rolling_release_resumes_it_without_a_flip() -> None:
    w = rolling_in_flight()
    before = serving(w)
    w.status = api.ReleaseStatus()
    w.reconcile()
    assert w.live_selector() == {naming.LABEL_RELEASE: "web"} and serving(w) >= before - 1
    assert (w.status.live_revision, w.status.candidate_revision) == (1, 2)
    for _ in range(6):
        w.settle()
        w.reconcile()
    assert w.status.phase == "Healthy" and w.status.live_revision == 2


def test_a_rolling_release_held_before_its_newer_revision_exists_keeps_serving() -> None:
    w = rolling_in_flight()
    before = serving(w)
    w.set_spec(spec("app:3", rolling=ROLLING, paused=True))
    w.reconcile()
    assert w.status.phase == "Paused"
    assert w.live_selector() == {naming.LABEL_RELEASE: "web"} and serving(w) == before


def test_an_abort_after_a_strategy_switch_rolls_back_within_bounds() -> None:
    w = rolling_in_flight()
    s = w.spec.model_dump(by_alias=True, exclude_none=True)
    s["strategy"] = {"blueGreen": {}}
    w.set_spec(api.ReleaseSpec.model_validate(s))  # same template: the release goes on, rolling
    w.annotations[naming.COMMAND_ABORT] = "true"
    for _ in range(5):
        w.reconcile()
        assert serving(w) >= 3 - 1, "never below replicas - maxUnavailable"
        w.settle()
    w.reconcile()
    assert w.status.live_revision == 1 and w.live_selector() == naming.pod_labels(
        "web", w.status.live_hash or ""
    )
    assert w.by_hash(w.status.live_hash or "").spec_replicas == 3
