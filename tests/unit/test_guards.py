"""Before any strategy runs (engine/guards.py): a Release that names a Service it does not own
is refused and touches nothing but its status; a status that lost what is live is recovered
from the live Service and the Deployment it selects, without moving traffic."""

from __future__ import annotations

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import naming, plan, snapshot

from .test_rolling import rolling_in_flight
from .world import World, hash_of, released, spec


def with_service(s: api.ReleaseSpec, **changes: object) -> api.ReleaseSpec:
    body = s.model_dump(by_alias=True, exclude_none=True)
    for key, value in changes.items():
        body[key] = value
    return api.ReleaseSpec.model_validate(body)


def touches(p: plan.Plan, name: str) -> list[act.ApplyService]:
    return [a for a in p.writes if isinstance(a, act.ApplyService) and a.name == name]


def test_a_foreign_service_refuses_the_release_which_then_writes_nothing() -> None:
    w = World(spec("app:1"))
    w.services["web"] = snapshot.ServiceView("web", {"app": "legacy"}, owned=False)
    p = w.reconcile()
    assert [*p.writes, *p.jobs, *p.measurements, *p.notifications] == []
    assert w.status.phase == "Degraded"
    assert "spec.service.adopt" in w.status.message


def test_a_foreign_service_named_later_is_never_repointed() -> None:
    """A live Release whose spec now names a Service someone else made: refused, untouched."""
    w = released()
    foreign = {"app": "someone-else"}
    w.services["other"] = snapshot.ServiceView("other", dict(foreign), owned=False)
    w.services["other-preview"] = snapshot.ServiceView("other-preview", dict(foreign), False)
    w.set_spec(with_service(w.spec, service={"name": "other", "ports": [{"port": 80}]}))
    p = w.reconcile()
    assert w.status.phase == "Degraded" and "spec.service.name" in w.status.message
    assert touches(p, "other") == [] and w.services["other"].selector == foreign
    assert [*p.writes, *p.jobs, *p.measurements, *p.notifications] == []


def test_a_foreign_preview_service_is_never_repointed_even_with_adopt() -> None:
    """Only the live Service can be adopted; a preview Service must be the Release's own."""
    foreign = {"app": "someone-else"}
    w = released(adopt=True)
    w.services["other-preview"] = snapshot.ServiceView("other-preview", dict(foreign), False)
    w.set_spec(with_service(w.spec, previewService={"name": "other-preview"}))
    p = w.reconcile()
    assert w.status.phase == "Degraded" and "spec.previewService.name" in w.status.message
    assert w.services["other-preview"].selector == foreign
    assert [*p.writes, *p.jobs, *p.measurements, *p.notifications] == []


def test_a_refusal_is_announced_once_and_lifts_when_the_release_may_adopt() -> None:
    w = World(spec("app:1"))
    w.services["web"] = snapshot.ServiceView("web", {"app": "legacy"}, owned=False)
    for _ in range(3):
        w.tick(10)
        w.reconcile()
    assert w.events().count("ServiceConflict") == 1, "one Warning, not one per reconcile"
    w.set_spec(spec("app:1", adopt=True))
    w.reconcile()
    assert w.status.phase == "Progressing" and w.by_hash(hash_of(w.spec))
    assert w.live_selector() == {"app": "legacy"}, "adopted: its traffic stays until ready"


def test_a_lost_status_is_recovered_from_the_live_service_without_moving_traffic() -> None:
    """Revision 2 live, 1 warm; the status is wiped (a restore from a backup without it): the
    live Service and the Deployment it selects say revision 2 is live, and no selector moves."""
    w = released("app:1")
    w.set_spec(spec("app:2"))
    w.go_live()
    live, selectors = w.live_hash(), {n: s.selector for n, s in w.services.items()}
    w.status = api.ReleaseStatus()
    p = w.reconcile()
    assert not [a for a in p.writes if isinstance(a, act.ApplyService)], "no selector moves"
    assert {n: s.selector for n, s in w.services.items()} == selectors
    assert w.status.live_hash == live and w.status.live_revision == 2
    assert w.status.phase == "Healthy"
    assert "Recovered" in w.events()
    recovered = [a for a in p.events if isinstance(a, act.RecordEvent) and a.reason == "Recovered"]
    assert recovered and "revision 2 is live (read from Service web)" in recovered[0].message


def test_a_flip_whose_status_write_was_lost_is_recorded_from_the_live_service() -> None:
    w = released("app:1")
    w.set_spec(spec("app:2"))
    w.reconcile()
    w.settle()
    before = w.status
    w.reconcile()  # flips
    w.status = before  # the status patch was lost (operator killed)
    w.reconcile()
    assert w.status.live_hash == hash_of(w.spec)
    assert w.status.phase == "Healthy"


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


def test_a_status_lost_mid_rolling_release_resumes_it_without_a_flip() -> None:
    w = rolling_in_flight()
    before = w.serving()
    w.status = api.ReleaseStatus()
    w.reconcile()
    assert w.live_selector() == {naming.LABEL_RELEASE: "web"} and w.serving() >= before - 1
    assert (w.status.live_revision, w.status.candidate_revision) == (1, 2)
    for _ in range(6):
        w.settle()
        w.reconcile()
    assert w.status.phase == "Healthy" and w.status.live_revision == 2
