"""Blue-green transitions, state in / actions out."""

from __future__ import annotations

from typing import Any

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import naming

from .world import World, hash_of, released, spec


def reason(w: World) -> str:
    return next(c.reason for c in w.status.conditions if c.type == "Progressing")


def test_first_release_creates_deployment_and_fills_live_service_directly() -> None:
    w = World(spec("app:1"))
    p = w.reconcile()
    creates = [a for a in p.writes if isinstance(a, act.CreateDeployment)]
    assert [(c.revision, c.color, c.replicas) for c in creates] == [(1, "blue", 3)]
    h = hash_of(w.spec)
    assert w.live_selector() == naming.pod_labels("web", h)
    assert w.status.phase == "Progressing"
    assert "FirstRelease" in w.events()
    w.settle()
    w.reconcile()
    assert w.status.phase == "Healthy"
    assert w.status.live_revision == 1 and w.status.live_color == "blue"
    assert w.status.history[0].promoted_at is not None


def test_health_check_becomes_the_readiness_probe_of_containers_without_one() -> None:
    w = World(spec("app:1"))
    create = next(a for a in w.reconcile().writes if isinstance(a, act.CreateDeployment))
    container = create.template["spec"]["containers"][0]
    assert container["readinessProbe"] == {"httpGet": {"path": "/healthz", "port": 8080}}
    assert create.template["metadata"]["labels"][naming.LABEL_HASH] == create.template_hash
    assert "readinessProbe" not in create.user_template["spec"]["containers"][0]


def test_flip_waits_for_every_green_pod() -> None:
    w = released("app:1")
    blue = hash_of(w.spec)
    w.set_spec(spec("app:2"))
    green = hash_of(w.spec)
    p = w.reconcile()
    create = next(a for a in p.writes if isinstance(a, act.CreateDeployment))
    assert (create.revision, create.color) == (2, "green")
    assert w.live_hash() == blue
    assert w.services["web-preview"].selector[naming.LABEL_HASH] == blue, "no green pod yet"
    w.settle(create.name, available=2)
    w.reconcile()
    assert w.live_hash() == blue, "2 of 3 ready: no flip"
    assert w.services["web-preview"].selector[naming.LABEL_HASH] == green
    assert w.status.phase == "Progressing"
    w.settle(create.name)
    p = w.reconcile()
    assert w.live_hash() == green
    assert w.status.phase == "Healthy"
    assert (w.status.live_revision, w.status.live_color) == (2, "green")
    assert "Promoted" in w.events()
    # blue stays warm: not scaled down in the flip
    assert w.by_hash(blue).spec_replicas == 3


def test_manual_promotion_pauses_until_promoted() -> None:
    w = released("app:1", auto_promote=False)
    blue = hash_of(w.spec)
    w.set_spec(spec("app:2", auto_promote=False))
    w.reconcile()
    w.settle()
    w.reconcile()
    assert w.status.phase == "Paused"
    assert w.live_hash() == blue
    w.annotations[naming.COMMAND_PROMOTE] = "true"
    w.reconcile()
    assert naming.COMMAND_PROMOTE not in w.annotations, "commands are consumed"
    assert w.live_hash() == hash_of(w.spec)
    assert w.status.phase == "Healthy"


def test_promote_after_seconds_flips_at_exactly_the_due_time() -> None:
    w = released("app:1", promote_after=20)
    w.set_spec(spec("app:2", promote_after=20))
    w.reconcile()
    w.settle()
    p = w.reconcile()
    assert p.requeue_after == 20
    w.tick(19.9)
    w.reconcile()
    assert w.live_hash() != hash_of(w.spec)
    w.tick(0.1)
    w.reconcile()
    assert w.live_hash() == hash_of(w.spec)


def test_replica_change_mid_release_resizes_candidate_not_live() -> None:
    w = released("app:1")
    blue = hash_of(w.spec)
    w.set_spec(spec("app:2"))
    w.reconcile()
    w.set_spec(spec("app:2", replicas=5))
    w.reconcile()
    assert w.by_hash(hash_of(w.spec)).spec_replicas == 5
    assert w.by_hash(blue).spec_replicas == 3
    w.settle()
    w.reconcile()
    assert w.live_hash() == hash_of(w.spec)


def test_scale_down_mid_release_sizes_the_candidate_to_the_live_slot_until_the_flip() -> None:
    """An HPA (or kubectl scale) lowers spec.replicas while green comes up: blue keeps serving
    with its 5, green is brought to 5 before the flip, and only then settles to 2."""
    w = released("app:1", replicas=5)
    blue = hash_of(w.spec)
    w.set_spec(spec("app:2", replicas=5))
    green = hash_of(w.spec)
    w.reconcile()
    w.settle(w.by_hash(green).name, available=3)
    w.set_spec(spec("app:2", replicas=2))
    p = w.reconcile()
    assert not [a for a in p.writes if isinstance(a, act.ScaleDeployment)], "no slot shrinks"
    assert w.by_hash(green).spec_replicas == 5 and w.by_hash(blue).spec_replicas == 5
    assert w.live_hash() == blue
    assert w.status.message == "revision 2 (green): 3/5 pods available (sized to the live slot's 5)"
    w.settle(w.by_hash(green).name, available=4)
    w.reconcile()
    assert w.live_hash() == blue, "4 of 5: no flip, although spec.replicas is 2"
    w.settle()
    w.reconcile()
    assert w.live_hash() == green and w.status.phase == "Healthy"
    assert w.by_hash(blue).spec_replicas == 5, "the old slot stays warm at its size"
    w.reconcile()
    assert w.by_hash(green).spec_replicas == 2, "after the flip the live slot follows the spec"
    w.settle()
    w.reconcile()
    assert w.status.phase == "Healthy" and w.status.available_replicas == 2


def test_scale_up_mid_release_grows_only_the_candidate_and_the_flip_waits_for_it() -> None:
    w = released("app:1", replicas=2)
    blue = hash_of(w.spec)
    w.set_spec(spec("app:2", replicas=2))
    green = hash_of(w.spec)
    w.reconcile()
    w.settle()
    w.set_spec(spec("app:2", replicas=2, auto_promote=False))  # ready, waiting for a promote
    w.reconcile()
    assert reason(w) == "WaitingForPromotion"
    w.set_spec(spec("app:2", replicas=4, auto_promote=False))  # the HPA scales up
    p = w.reconcile()
    scaled = [(a.name, a.replicas) for a in p.writes if isinstance(a, act.ScaleDeployment)]
    assert scaled == [(w.by_hash(green).name, 4)]
    assert w.by_hash(blue).spec_replicas == 2
    assert w.status.message == "revision 2 (green): 2/4 pods available"
    w.annotations[naming.COMMAND_PROMOTE] = "true"
    w.reconcile()
    assert w.live_hash() == blue, "promoted, but 2 of 4: no flip"
    w.settle()
    w.reconcile()
    assert w.live_hash() == green and w.by_hash(green).available_replicas == 4


def test_the_flip_waits_while_the_live_slot_still_counts_more_available_pods() -> None:
    """A scale-down of the live slot whose status still counts the old pods (5 available of 3)
    when a release starts: the candidate is sized 3, and flips once that count has settled."""
    w = released("app:1", replicas=5)
    blue = hash_of(w.spec)
    w.set_spec(spec("app:1", replicas=3))
    w.reconcile()  # blue scaled to 3; its status still says 5 available
    w.set_spec(spec("app:2", replicas=3))
    green = hash_of(w.spec)
    w.reconcile()
    w.settle(w.by_hash(green).name)
    w.reconcile()
    assert w.live_hash() == blue and w.by_hash(green).spec_replicas == 3
    assert "the live slot still counts 5 available" in w.status.message
    w.settle(w.by_hash(blue).name)
    w.reconcile()
    assert w.live_hash() == green


def test_a_group_member_is_ready_only_at_the_live_slot_size() -> None:
    w = released("app:1", replicas=4)
    w.group = "shop"
    w.set_spec(spec("app:2", replicas=4))
    green = hash_of(w.spec)
    w.reconcile()
    w.set_spec(spec("app:2", replicas=1))
    w.settle(w.by_hash(green).name, available=1)
    w.reconcile()
    assert reason(w) == "CandidateProgressing"
    w.settle()
    w.reconcile()
    assert reason(w) == "GroupWaiting" and w.by_hash(green).spec_replicas == 4


def second_live(**kw: Any) -> tuple[World, str, str]:
    """app:2 live, app:1 still warm; with both template hashes (blue, green)."""
    w = released("app:1", **kw)
    blue = hash_of(w.spec)
    w.set_spec(spec("app:2", **kw))
    w.go_live()
    return w, blue, hash_of(w.spec)


def test_undo_flips_to_the_warm_revision_and_holds_without_writing_the_spec() -> None:
    w, blue, green = second_live()
    w.annotations[naming.COMMAND_UNDO] = ""
    p = w.reconcile()
    assert not [a for a in p.writes if isinstance(a, act.RestoreTemplate)]
    assert hash_of(w.spec) == green, "the spec is not written"
    assert w.live_hash() == blue, "warm: the same reconcile flips"
    assert not [a for a in p.writes if isinstance(a, act.CreateDeployment)]
    assert not [a for a in p.writes if isinstance(a, act.ScaleDeployment) and a.replicas]
    assert w.status.live_revision == 1 and w.status.rolled_back_to == blue
    stalled = next(c for c in w.status.conditions if c.type == "Stalled")
    assert (w.status.phase, stalled.status, stalled.reason) == ("Degraded", "True", "Undone")
    assert "Change the spec" in w.status.message
    w.set_spec(spec("app:2"))  # a GitOps tool applies the same spec again
    for _ in range(3):
        w.reconcile()
        w.settle()
        w.tick(40)
    assert w.live_hash() == blue, "the spec re-applied does not undo the undo"
    assert w.status.phase == "Degraded" and w.by_hash(green).spec_replicas == 0
    w.set_spec(spec("app:3"))  # fixed in git
    w.go_live()
    assert w.status.rolled_back_to is None and w.status.phase == "Healthy"


def test_undo_to_a_cold_revision_brings_it_back_and_then_holds() -> None:
    w = released("app:1", scale_down_delay=0)
    blue = hash_of(w.spec)
    w.set_spec(spec("app:2", scale_down_delay=0))
    w.go_live()
    w.reconcile()
    assert w.by_hash(blue).spec_replicas == 0
    w.annotations[naming.COMMAND_UNDO] = ""
    for _ in range(4):
        w.reconcile()
        w.settle()
    assert w.live_hash() == blue and hash_of(w.spec) != blue
    assert w.status.phase == "Degraded" and w.status.rolled_back_to == blue
    w.annotations[naming.COMMAND_RETRY] = "true"  # retry: the spec's revision again
    w.go_live()
    assert w.live_hash() == hash_of(w.spec) and w.status.rolled_back_to is None


def test_undo_writes_spec_releases_the_old_template_as_a_new_revision() -> None:
    w, blue, _ = second_live(undo_writes_spec=True)
    w.annotations[naming.COMMAND_UNDO] = ""
    p = w.reconcile()
    assert [a for a in p.writes if isinstance(a, act.RestoreTemplate)]
    assert hash_of(w.spec) == blue, "undo writes the old template back into the spec"
    assert w.live_hash() == blue, "warm: the same reconcile flips (no wait for a watch event)"
    assert not [
        a
        for a in p.writes
        if isinstance(a, act.CreateDeployment | act.ScaleDeployment) and getattr(a, "replicas", 0)
    ]
    assert w.status.live_revision == 3, "undo releases the old template as a new revision"
    assert w.status.observed_generation == w.generation - 1, "written before the spec changed"
    w.reconcile()
    assert w.status.observed_generation == w.generation and w.status.phase == "Healthy"
    assert w.live_hash() == blue and w.status.live_revision == 3


def test_undo_after_a_health_check_change_releases_the_template_as_a_new_revision() -> None:
    w, blue, green = second_live(undo_writes_spec=True)
    body = w.spec.model_dump(by_alias=True, exclude_none=True)
    body["healthCheck"]["httpGet"]["path"] = "/ready"
    w.set_spec(api.ReleaseSpec.model_validate(body))
    w.annotations[naming.COMMAND_UNDO] = "1"
    p = w.reconcile()
    assert [a for a in p.writes if isinstance(a, act.RestoreTemplate)]
    assert w.live_hash() == green, "revision 1's template with another probe is not revision 1"
    w.reconcile()
    w.settle()
    w.reconcile()
    assert w.live_hash() not in (blue, green)
    assert w.status.phase == "Healthy" and naming.images(naming.user_template(w.spec)) == ["app:1"]


def test_undo_to_cold_revision_scales_it_up_first() -> None:
    w = released("app:1", scale_down_delay=0)
    blue = hash_of(w.spec)
    w.set_spec(spec("app:2", scale_down_delay=0))
    w.reconcile()
    w.settle()
    w.reconcile()
    w.reconcile()
    assert w.by_hash(blue).spec_replicas == 0
    w.annotations[naming.COMMAND_UNDO] = "1"
    w.reconcile()
    w.reconcile()
    assert w.by_hash(blue).spec_replicas == 3
    assert w.live_hash() != blue, "cold: wait for its pods"
    w.settle()
    w.reconcile()
    assert w.live_hash() == blue


def test_undo_to_unknown_revision_is_a_warning_and_changes_nothing() -> None:
    w = released("app:1")
    w.annotations[naming.COMMAND_UNDO] = "7"
    p = w.reconcile()
    warning = next(a for a in p.events if isinstance(a, act.RecordEvent))
    assert warning.type == "Warning" and "revision 7 is not in the history" in warning.message
    assert not [a for a in p.writes if isinstance(a, act.RestoreTemplate)]


def test_steady_state_is_a_fixed_point() -> None:
    w = released("app:1")
    before = w.status
    p = w.reconcile()
    assert [*p.writes, *p.events, *p.jobs, *p.measurements, *p.notifications] == []
    assert p.status == before, "a settled Release plans no action and no status write"


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


def test_undo_to_a_revision_whose_deployment_was_deleted_by_hand_says_so() -> None:
    w = released("app:1")
    w.set_spec(spec("app:2"))
    w.go_live()
    old = w.status.history[0]
    del w.deployments[naming.deployment_name("web", old.template_hash)]
    w.annotations[naming.COMMAND_UNDO] = ""
    p = w.reconcile()
    failed = [a for a in p.events if isinstance(a, act.RecordEvent) and a.reason == "UndoFailed"]
    assert failed and "deleted" in failed[0].message
    assert "beyond revisionHistoryLimit" not in failed[0].message
