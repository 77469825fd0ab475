"""spec.restartAt (engine/restart.py): the live revision's pods replaced in place, once, within
their availability bounds, with no new revision; a warm slot and a candidate untouched."""

from __future__ import annotations

import dataclasses
import datetime

from greenlight.engine import actions as act
from greenlight.engine import naming
from greenlight.engine.reasons import Reason
from greenlight.kube import render

from .world import World, hash_of, released, spec


def restart(w: World, at: datetime.datetime) -> None:
    """What `kubectl greenlight restart` does: spec.restartAt set (a new generation)."""
    w.set_spec(w.spec.model_copy(update={"restart_at": at}))


def replacing(w: World, name: str, replaced: int) -> None:
    """The Deployment controller midway through the restart: `replaced` old pods gone, one
    surge pod of the new template coming up, every other pod available."""
    d = w.deployments[name]
    n = d.spec_replicas
    w.deployments[name] = dataclasses.replace(
        d,
        observed_generation=d.generation,
        replicas=n + 1,
        updated_replicas=replaced + 1,
        ready_replicas=n,
        available_replicas=n,
        progressed_at=w.now,
    )


def restarts(w: World) -> list[act.RestartDeployment]:
    return [a for a in w.log if isinstance(a, act.RestartDeployment)]


def condition(w: World, type_: str) -> tuple[str, str]:
    c = next(c for c in w.status.conditions if c.type == type_)
    return c.status, c.reason


def reason(w: World) -> str:
    return condition(w, "Progressing")[1]


def two_slots() -> World:
    """Revision 2 live, revision 1 warm (within scaleDownDelaySeconds)."""
    w = released("app:1", scale_down_delay=600)
    w.set_spec(spec("app:2", scale_down_delay=600))
    w.go_live()
    assert w.status.live_revision == 2
    return w


def test_a_restart_replaces_the_live_pods_once_without_a_new_revision() -> None:
    w = two_slots()
    live, warm = w.by_hash(w.live_hash() or ""), w.by_hash(w.status.history[0].template_hash)
    assert warm.spec_replicas == 3 and warm.name != live.name
    history, deployments, hashed = w.status.history, set(w.deployments), hash_of(w.spec)
    at = w.now
    restart(w, at)
    w.reconcile()
    stamp = naming.restart_stamp(at)
    assert w.last is not None and w.last.writes == (act.RestartDeployment(live.name, stamp),)
    assert w.status.restarted_at == at
    assert (w.status.phase, w.status.message) == (
        "Progressing",
        "restarting revision 2 (green): 0/3 pods replaced, 3 available",
    )
    assert condition(w, "Available") == ("True", Reason.LIVE_REVISION_AVAILABLE)
    assert w.events().count(Reason.RESTARTED) == 1
    assert set(w.deployments) == deployments, "no Deployment created"
    assert w.status.history == history and w.status.live_revision == 2
    assert hash_of(w.spec) == hashed
    assert w.deployments[warm.name] == warm, "the warm slot untouched"
    assert w.live_hash() == live.template_hash

    w.reconcile()  # its controller has not seen it yet: still restarting, nothing written
    assert w.last.writes == () and reason(w) == Reason.RESTARTING
    replacing(w, live.name, 1)
    w.reconcile()  # the new pod takes its revision's role; nothing else is written
    assert w.last.writes == (act.SetPodRole(f"{live.name}-3", "live"),)
    assert w.status.message == "restarting revision 2 (green): 1/3 pods replaced, 3 available"
    assert condition(w, "Available") == ("True", Reason.LIVE_REVISION_AVAILABLE)
    assert condition(w, "Ready")[0] == "False"
    w.settle(live.name)
    w.reconcile()
    assert (w.status.phase, reason(w)) == ("Healthy", Reason.RELEASE_COMPLETE)
    for _ in range(3):
        w.tick(60)
        w.reconcile()
        w.settle()
    assert len(restarts(w)) == 1 and w.events().count(Reason.RESTARTED) == 1
    assert w.deployments[live.name].restarted_at == stamp
    assert w.deployments[warm.name].restarted_at is None


def test_a_restart_not_later_than_the_one_recorded_does_nothing() -> None:
    w = released()
    at = w.now
    restart(w, at)
    w.reconcile()
    w.settle()
    restart(w, at)  # the same restartAt written again (a re-apply): a new generation
    w.reconcile()
    restart(w, at - datetime.timedelta(hours=1))  # an earlier one
    w.reconcile()
    assert w.last is not None and w.last.writes == () and w.status.phase == "Healthy"
    assert len(restarts(w)) == 1 and w.status.restarted_at == at
    w.tick(1)
    restart(w, w.now)  # a later one: restarted again
    w.reconcile()
    assert len(restarts(w)) == 2


def test_a_restart_in_the_future_waits_for_its_time() -> None:
    w = released()
    restart(w, w.now + datetime.timedelta(seconds=120))
    w.reconcile()
    assert w.last is not None and w.last.writes == () and w.last.requeue_after == 120
    assert w.status.phase == "Healthy" and w.status.restarted_at is None
    w.tick(119)
    w.reconcile()
    assert w.last.writes == () and w.last.requeue_after == 1
    w.tick(1)
    w.reconcile()
    assert [type(a) for a in w.last.writes] == [act.RestartDeployment]


def test_restart_at_is_not_part_of_the_template_hash() -> None:
    plain = spec("app:1")
    restarted = spec("app:1", restart_at=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC))
    assert restarted.restart_at is not None
    assert naming.effective_template(restarted) == naming.effective_template(plain)
    assert hash_of(restarted) == hash_of(plain)


def test_a_restart_in_flight_restarts_the_live_revision_only() -> None:
    """The candidate is new pods anyway; the release in flight reports as before."""
    w = released("app:1", auto_promote=False)
    w.set_spec(spec("app:2", auto_promote=False))
    for _ in range(2):
        w.reconcile()
        w.settle()
    assert w.status.phase == "Paused" and w.status.candidate_revision == 2
    live, candidate = w.by_hash(w.live_hash() or ""), w.by_hash(w.status.candidate_hash or "")
    restart(w, w.now)
    w.reconcile()
    assert w.last is not None
    assert w.last.writes == (act.RestartDeployment(live.name, naming.restart_stamp(w.now)),)
    assert w.deployments[candidate.name] == candidate
    assert (w.status.phase, reason(w)) == ("Paused", Reason.WAITING_FOR_PROMOTION)


def test_a_revision_made_after_a_restart_carries_no_restart() -> None:
    w = released()
    restart(w, w.now)
    w.reconcile()
    w.settle()
    w.set_spec(w.spec.model_copy(update={"replicas": 3}))  # (keeps restartAt)
    image = spec("app:2").template
    w.set_spec(w.spec.model_copy(update={"template": image}))
    w.go_live()
    (created,) = [a for a in w.log if isinstance(a, act.CreateDeployment) and a.revision == 2]
    assert naming.ANNOTATION_RESTARTED_AT not in created.template.get("metadata", {}).get(
        "annotations", {}
    )
    assert len(restarts(w)) == 1, "the new live revision is not restarted"


def test_a_hand_edit_removing_the_annotation_is_left_as_it_is() -> None:
    """Not repaired (as no hand edit of a revision's pod template is): removing it makes the
    Deployment controller replace the pods again anyway; never a new revision."""
    w = released()
    restart(w, w.now)
    w.reconcile()
    w.settle()
    name = w.by_hash(w.live_hash() or "").name
    d = w.deployments[name]
    w.deployments[name] = dataclasses.replace(d, restarted_at=None, generation=d.generation + 1)
    w.settle()
    w.reconcile()
    assert w.last is not None and w.last.writes == ()
    assert w.status.phase == "Healthy" and len(w.status.history) == 1


def test_a_restart_whose_write_was_recorded_nowhere_is_not_repeated() -> None:
    """The annotation reached the Deployment, the status write was lost: no second restart."""
    w = released()
    before = w.status
    restart(w, w.now)
    w.reconcile()
    w.status = before
    w.reconcile()
    assert w.last is not None and w.last.writes == ()
    assert w.status.restarted_at == w.now and reason(w) == Reason.RESTARTING
    assert len(restarts(w)) == 1


def test_a_restart_that_makes_no_progress_is_degraded_while_the_old_pods_serve() -> None:
    w = released(deadline=600)
    restart(w, w.now)
    w.reconcile()
    name = w.by_hash(w.live_hash() or "").name
    replacing(w, name, 0)  # the new pod never becomes available (a bad rotated secret)
    w.tick(599)
    w.reconcile()
    assert w.status.phase == "Progressing"
    assert w.last is not None and w.last.requeue_after == 1
    w.tick(1)
    w.reconcile()
    assert (w.status.phase, reason(w)) == ("Degraded", Reason.RESTART_STALLED)
    assert w.status.message == (
        "restarting revision 1 (blue): no progress for progressDeadlineSeconds=600 at 0/3 pods"
        " replaced, 3 available; its old pods serve"
    )
    assert condition(w, "Available")[0] == "True" and w.serving() == 3
    w.settle()
    w.reconcile()
    assert w.status.phase == "Healthy"


def test_a_revision_replaces_its_pods_with_none_unavailable() -> None:
    """Its Deployment's rolling update as created, and as the restart's patch sets it on one
    created before: a new pod available first (maxSurge rounds up), then an old one goes."""
    w = released()
    (created,) = [a for a in w.log if isinstance(a, act.CreateDeployment)]
    view = w.snapshot().release
    rolling = {"maxSurge": "25%", "maxUnavailable": 0}
    assert render.deployment(view, created)["spec"]["strategy"]["rollingUpdate"] == rolling
    patch = render.restart(act.RestartDeployment(created.name, "2026-01-01T00:00:00Z"))
    assert patch == {
        "spec": {
            "strategy": {"type": "RollingUpdate", "rollingUpdate": rolling},
            "template": {"metadata": {"annotations": {
                naming.ANNOTATION_RESTARTED_AT: "2026-01-01T00:00:00Z"}}},
        }
    }  # fmt: skip
