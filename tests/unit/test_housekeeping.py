"""Housekeeping after the strategy's step (engine/housekeeping.py): what is scaled down, kept
warm (scaleDownDelaySeconds; the previous revision while post-promotion checks have not
passed), deleted and forgotten (revisionHistoryLimit)."""

from __future__ import annotations

from greenlight.engine import actions as act

from .test_checks import BAD, OK, smoke, with_checks
from .world import World, hash_of, released, spec


def test_the_old_slot_stays_warm_then_scales_to_zero_at_its_due_time() -> None:
    w = released("app:1", scale_down_delay=30)
    blue = hash_of(w.spec)
    w.set_spec(spec("app:2", scale_down_delay=30))
    w.reconcile()
    w.settle()
    p = w.reconcile()
    assert p.requeue_after == 30
    w.tick(29)
    w.reconcile()
    assert w.by_hash(blue).spec_replicas == 3
    w.tick(1)
    p = w.reconcile()
    assert w.by_hash(blue).spec_replicas == 0
    assert p.requeue_after is None
    entry = next(e for e in w.status.history if e.template_hash == blue)
    assert entry.outcome == "Retired" and entry.retired_at is not None


def test_with_no_delay_the_old_slot_is_scaled_down_after_the_flip() -> None:
    w = released("app:1", scale_down_delay=0)
    v1 = hash_of(w.spec)
    w.set_spec(spec("app:2", scale_down_delay=0))
    w.go_live()
    p = w.reconcile()
    assert w.by_hash(v1).spec_replicas == 0
    scaled = [a for a in w.log if isinstance(a, act.ScaleDeployment) and a.replicas == 0]
    assert [a.name for a in scaled] == [w.by_hash(v1).name]
    assert p.requeue_after is None, "nothing left to wake up for"


def test_the_old_slot_is_kept_warm_until_post_promotion_checks_pass() -> None:
    post = [smoke(count=2, interval="10s")]
    w = World(with_checks(spec("app:1", scale_down_delay=30), post=post)).go_live()
    v1 = hash_of(w.spec)
    w.set_spec(with_checks(spec("app:2", scale_down_delay=30), post=post))
    w.reconcile()
    w.settle()
    w.reconcile()  # flips; the post-promotion check starts
    assert w.live_hash() == hash_of(w.spec)
    w.tick(60)  # past scaleDownDelaySeconds
    w.reconcile()
    w.answer(OK)
    w.reconcile()
    assert w.by_hash(v1).spec_replicas == 3, "one measurement of two: still warm"
    w.tick(10)
    w.reconcile()
    w.answer(OK)
    w.reconcile()  # records the pass
    w.reconcile()
    assert [c.phase for c in w.status.checks if c.stage == "postPromotion"] == ["Passed"]
    assert w.by_hash(v1).spec_replicas == 0, "passed, and past its delay: scaled down"
    assert "ScaledDown" in w.events()


def test_the_flip_back_target_outlives_revision_history_limit() -> None:
    """Found by bench/checks.py: after two rollbacks the warm revision 1 was the oldest entry,
    and revisionHistoryLimit deleted it while the third release's checks were running."""
    post = [smoke()]
    w = World(with_checks(spec("app:1", history_limit=2), post=post)).go_live()
    v1 = w.live_hash()
    for image in ("app:2", "app:3", "app:4"):
        w.set_spec(with_checks(spec(image, history_limit=2), post=post))
        for _ in range(3):
            w.reconcile()
            w.settle()
        w.answer(BAD)
        for _ in range(3):
            w.reconcile()
        assert w.live_hash() == v1 and w.status.live_revision == 1, image
        assert w.by_hash(v1 or "").spec_replicas == 3


def test_history_and_deployments_are_bounded_by_revision_history_limit() -> None:
    w = released("app:0", history_limit=2, scale_down_delay=0)
    for i in range(1, 6):
        w.set_spec(spec(f"app:{i}", history_limit=2, scale_down_delay=0))
        w.reconcile()
        w.settle()
        w.reconcile()
        w.reconcile()
    assert len(w.deployments) == 3, "live + 2 old"
    assert [e.revision for e in w.status.history] == [4, 5, 6]


def test_the_live_and_candidate_slots_are_never_scaled_down_or_deleted() -> None:
    w = released("app:0", history_limit=1, scale_down_delay=0)
    for i in range(1, 4):
        w.set_spec(spec(f"app:{i}", history_limit=1, scale_down_delay=0))
        w.reconcile()
        assert w.by_hash(hash_of(w.spec)).spec_replicas == 3, "the candidate"
        w.settle()
        w.reconcile()
        w.reconcile()
        assert w.live_hash() == hash_of(w.spec)
        assert w.by_hash(hash_of(w.spec)).spec_replicas == 3, "the live slot"
    replicas = sorted(d.spec_replicas for d in w.deployments.values())
    assert replicas == [0, 3], "the live slot, and one old revision at zero"
