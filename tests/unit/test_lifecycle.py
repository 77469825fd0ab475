"""A candidate's life (engine/lifecycle.py), shared by every strategy: its size and readiness
to flip, the progress deadline, abort, supersede, and a Release held by spec.paused."""

from __future__ import annotations

import pytest

from greenlight.engine import actions as act
from greenlight.engine import lifecycle, naming, snapshot

from .world import World, hash_of, released, spec


def slot(replicas: int, available: int | None = None) -> snapshot.DeploymentView:
    """A Deployment the controller has caught up with: `available` of its `replicas` pods."""
    n = replicas if available is None else available
    return snapshot.DeploymentView(
        name="web-x",
        template_hash="x",
        revision=1,
        color="blue",
        spec_replicas=replicas,
        replicas=replicas,
        updated_replicas=replicas,
        ready_replicas=n,
        available_replicas=n,
        generation=1,
        observed_generation=1,
    )


@pytest.mark.parametrize(
    ("replicas", "live", "size"),
    [(3, None, 3), (5, 3, 5), (2, 5, 5), (0, 4, 4)],
)
def test_the_candidate_is_never_smaller_than_the_live_slot(
    replicas: int, live: int | None, size: int
) -> None:
    """spec.replicas, unless the live slot is bigger: traffic never moves to fewer pods."""
    assert lifecycle.candidate_size(replicas, slot(live) if live is not None else None) == size


def test_ready_to_flip_needs_every_candidate_pod_and_no_fewer_than_live_serves() -> None:
    assert lifecycle.ready_to_flip(slot(3), 3, slot(3))
    assert lifecycle.ready_to_flip(slot(3), 3, None), "a first release: nothing serves yet"
    assert not lifecycle.ready_to_flip(slot(3, 2), 3, slot(3)), "one pod short"
    assert not lifecycle.ready_to_flip(slot(2), 3, slot(3)), "sized below what it must bring"
    assert not lifecycle.ready_to_flip(None, 3, slot(3)), "no candidate Deployment yet"
    live_counting_more = slot(3, 5)  # scaled down from 5; its status still counts 5
    assert not lifecycle.ready_to_flip(slot(3), 3, live_counting_more)


def progressing_reason(w: World) -> str:
    return next(c.reason for c in w.status.conditions if c.type == "Progressing")


def test_the_progress_deadline_aborts_the_candidate_once_and_leaves_live_alone() -> None:
    w = released("app:1", deadline=60)
    blue = hash_of(w.spec)
    w.set_spec(spec("app:2", deadline=60))
    green = hash_of(w.spec)
    p = w.reconcile()
    assert p.requeue_after == 60
    w.settle(available=1)
    w.tick(60)
    w.reconcile()
    assert w.live_hash() == blue
    assert w.status.phase == "Degraded"
    assert w.by_hash(green).spec_replicas == 0
    entry = next(e for e in w.status.history if e.template_hash == green)
    assert entry.outcome == "Aborted"
    assert entry.reason is not None and entry.reason.startswith("ProgressDeadlineExceeded")
    assert "Aborted" in w.events()
    # not retried on later reconciles
    w.tick(600)
    p = w.reconcile()
    assert not [a for a in p.writes if isinstance(a, act.ScaleDeployment) and a.replicas]
    assert w.status.phase == "Degraded"
    # retry brings it back
    w.annotations[naming.COMMAND_RETRY] = "true"
    w.reconcile()
    assert w.by_hash(green).spec_replicas == 3
    assert w.status.phase == "Progressing"


def test_the_progress_deadline_counts_from_the_last_progress() -> None:
    w = released("app:1", deadline=60)
    blue = hash_of(w.spec)
    w.set_spec(spec("app:2", deadline=60))
    w.reconcile()
    for available in (0, 1, 2):  # its controller's first sync, then a pod every 50 s
        w.tick(50)
        w.settle(available=available)
        p = w.reconcile()
        assert w.status.phase == "Progressing" and w.live_hash() == blue
    assert p.requeue_after == 60, "the deadline counts from the last progress"
    w.tick(59.9)
    w.reconcile()
    assert w.status.phase == "Progressing"
    w.tick(0.1)
    w.reconcile()
    assert w.status.phase == "Degraded" and w.live_hash() == blue
    assert progressing_reason(w) == "ProgressDeadlineExceeded"
    assert "no progress for progressDeadlineSeconds=60 at 2/3" in w.status.message


def test_a_first_release_is_degraded_only_after_no_progress_for_the_deadline() -> None:
    w = World(spec("app:1", deadline=60))
    w.reconcile()
    w.tick(50)
    w.settle(available=1)  # one of its three pods: progress
    w.tick(50)
    w.reconcile()
    assert w.status.phase == "Progressing"
    w.tick(10)
    w.reconcile()
    assert w.status.phase == "Degraded" and progressing_reason(w) == "ProgressDeadlineExceeded"


def test_an_abort_scales_the_candidate_down_and_never_changes_live() -> None:
    w = released("app:1")
    blue = hash_of(w.spec)
    w.set_spec(spec("app:2"))
    w.reconcile()
    w.annotations[naming.COMMAND_ABORT] = "true"
    w.reconcile()
    assert w.status.phase == "Aborted"
    assert w.live_hash() == blue
    assert w.by_hash(hash_of(w.spec)).spec_replicas == 0
    w.settle()
    w.reconcile()
    assert w.live_hash() == blue, "an aborted revision never goes live, even when ready"


def test_a_new_spec_mid_release_supersedes_the_candidate() -> None:
    w = released("app:1")
    one = hash_of(w.spec)
    w.set_spec(spec("app:2"))
    w.reconcile()
    two = hash_of(w.spec)
    w.settle(naming.deployment_name("web", two), available=1)
    w.reconcile()
    assert w.services["web-preview"].selector[naming.LABEL_HASH] == two
    w.set_spec(spec("app:3"))
    w.reconcile()
    three = hash_of(w.spec)
    assert w.by_hash(two).spec_replicas == 0
    assert w.status.candidate_hash == three and w.status.candidate_revision == 3
    assert next(e for e in w.status.history if e.template_hash == two).outcome == "Superseded"
    assert w.services["web-preview"].selector[naming.LABEL_HASH] == one, "3 has no pod yet"
    w.settle(naming.deployment_name("web", three), available=1)
    w.reconcile()
    assert w.services["web-preview"].selector[naming.LABEL_HASH] == three


def test_a_held_release_stops_its_deadline_and_says_progressing_once() -> None:
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


def test_a_resumed_release_gets_the_whole_deadline_again() -> None:
    """The deadline counts from when the release started or resumed, not across a pause."""
    w = released("app:1", deadline=60)
    w.set_spec(spec("app:2", deadline=60))
    w.reconcile()
    w.tick(50)
    w.set_spec(spec("app:2", deadline=60, paused=True))
    w.reconcile()
    assert w.status.phase == "Paused"
    w.tick(3600)
    w.reconcile()
    assert w.status.phase == "Paused", "held: no deadline"
    w.set_spec(spec("app:2", deadline=60))
    p = w.reconcile()
    assert w.status.phase == "Progressing" and p.requeue_after == 60
    w.tick(59)
    w.reconcile()
    assert w.status.phase == "Progressing"
    w.tick(1)
    w.reconcile()
    assert w.status.phase == "Degraded" and progressing_reason(w) == "ProgressDeadlineExceeded"


def test_a_held_release_starts_no_candidate() -> None:
    w = released("app:1")
    w.set_spec(spec("app:2", paused=True))
    p = w.reconcile()
    assert not [a for a in p.writes if isinstance(a, act.CreateDeployment)]
    assert w.status.phase == "Paused" and w.live_hash() != hash_of(w.spec)
    w.set_spec(spec("app:2"))
    w.go_live()
