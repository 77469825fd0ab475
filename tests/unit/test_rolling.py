"""Rolling releases: batch decisions, steps, abort and the surge/unavailability bounds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import naming, rolling
from greenlight.engine.rolling import Side, batch

from .world import World, hash_of, released, spec


@pytest.mark.parametrize(
    ("new", "old", "target", "replicas", "surge", "unavailable", "expected"),
    [
        # maxSurge 3, maxUnavailable 0: grow by 3, then swap 3 for 3 once they are available
        (Side(0, 0), Side(10, 10), 10, 10, 3, 0, (3, [10])),
        (Side(3, 0), Side(10, 10), 10, 10, 3, 0, (3, [10])),
        (Side(3, 3), Side(10, 10), 10, 10, 3, 0, (6, [7])),
        (Side(9, 9), Side(1, 1), 10, 10, 3, 0, (10, [1])),
        (Side(10, 10), Side(1, 1), 10, 10, 3, 0, (10, [0])),
        # maxSurge 0, maxUnavailable 1: shrink first, then grow into the room
        (Side(0, 0), Side(3, 3), 3, 3, 0, 1, (1, [2])),
        (Side(1, 0), Side(2, 2), 3, 3, 0, 1, (1, [2])),
        (Side(1, 1), Side(2, 2), 3, 3, 0, 1, (2, [1])),
        # a setWeight step stops the move at its target
        (Side(5, 5), Side(5, 5), 5, 10, 3, 0, (5, [5])),
        # unavailable old pods are free to remove
        (Side(0, 0), Side(4, 1), 4, 4, 1, 0, (4, [1])),
    ],
)
def test_batch(
    new: Side,
    old: Side,
    target: int,
    replicas: int,
    surge: int,
    unavailable: int,
    expected: tuple[int, list[int]],
) -> None:
    assert batch(new, [old], target, replicas, surge, unavailable) == expected


@pytest.mark.parametrize(
    ("surge", "unavailable", "replicas", "expected"),
    [("25%", 0, 10, (3, 0)), ("25%", "25%", 10, (3, 2)), (0, "10%", 5, (0, 1)), (1, 0, 3, (1, 0))],
)
def test_bounds_round_like_kubernetes(
    surge: Any, unavailable: Any, replicas: int, expected: tuple[int, int]
) -> None:
    r = api.Rolling(max_surge=surge, max_unavailable=unavailable)
    assert rolling.bounds(r, replicas) == expected


def drive(w: World, rounds: int = 50, ready: bool = True) -> None:
    for _ in range(rounds):
        w.reconcile()
        if ready:
            w.settle()
        if w.status.phase in ("Healthy", "Paused", "Degraded", "Aborted"):
            w.reconcile()
            return


def test_rolling_release_reaches_100_percent_and_pins_the_new_revision() -> None:
    w = released(replicas=10, rolling={"maxSurge": "25%", "maxUnavailable": 0})
    w.set_spec(spec("app:2", replicas=10, rolling={"maxSurge": "25%", "maxUnavailable": 0}))
    w.reconcile()
    assert w.live_selector() == {naming.LABEL_RELEASE: "web"}, "every revision serves"
    assert w.services["web-preview"].selector[naming.LABEL_HASH] == hash_of(spec()), "no pod"
    assert w.by_hash(hash_of(w.spec)).spec_replicas == 3
    w.settle()
    w.reconcile()
    assert w.services["web-preview"].selector[naming.LABEL_HASH] == hash_of(w.spec)
    drive(w)
    assert w.status.phase == "Healthy"
    assert w.live_selector() == naming.pod_labels("web", hash_of(w.spec))
    assert w.status.live_revision == 2 and w.status.weight is None


def test_set_weight_and_indefinite_pause_wait_for_promote() -> None:
    steps = [{"setWeight": 50}, {"pause": {}}, {"setWeight": 80}]
    w = released(replicas=10, rolling={"maxSurge": 2, "maxUnavailable": 0, "steps": steps})
    w.set_spec(
        spec("app:2", replicas=10, rolling={"maxSurge": 2, "maxUnavailable": 0, "steps": steps})
    )
    drive(w)
    assert w.status.phase == "Paused"
    assert (w.status.current_step, w.status.weight) == (1, 50)
    assert w.by_hash(hash_of(w.spec)).spec_replicas == 5
    w.annotations[naming.COMMAND_PROMOTE] = "true"
    drive(w)
    assert w.status.phase == "Healthy" and w.status.live_revision == 2


def test_timed_pause_resumes_at_its_due_time() -> None:
    steps = [{"setWeight": 20}, {"pause": {"duration": "30s"}}]
    w = released(replicas=10, rolling={"maxSurge": 2, "maxUnavailable": 0, "steps": steps})
    w.set_spec(
        spec("app:2", replicas=10, rolling={"maxSurge": 2, "maxUnavailable": 0, "steps": steps})
    )
    drive(w)
    assert (w.status.phase, w.status.weight) == ("Paused", 20)
    assert w.last is not None and w.last.requeue_after == 30
    w.tick(30)
    drive(w)
    assert w.status.phase == "Healthy"


def test_step_delay_spaces_the_batches() -> None:
    params = {"maxSurge": 5, "maxUnavailable": 0, "stepDelaySeconds": 10}
    w = released(replicas=10, rolling=params)
    w.set_spec(spec("app:2", replicas=10, rolling=params))
    w.reconcile()
    w.settle()
    p = w.reconcile()
    new = w.by_hash(hash_of(w.spec))
    assert new.spec_replicas == 5, "second batch waits for stepDelaySeconds"
    assert p.requeue_after == 10
    w.settle()
    w.tick(10)
    w.reconcile()
    assert w.by_hash(hash_of(w.spec)).spec_replicas == 10


def test_deadline_aborts_and_rolls_back_to_stable_within_bounds() -> None:
    params = {"maxSurge": 2, "maxUnavailable": 0}
    w = World(spec("app:1", replicas=4, rolling=params, deadline=60))
    drive(w)
    stable = hash_of(w.spec)
    w.set_spec(spec("app:2", replicas=4, rolling=params, deadline=60))
    w.reconcile()
    new = hash_of(w.spec)
    w.settle(w.by_hash(new).name, available=0)  # never ready
    w.reconcile()
    w.tick(60)
    w.reconcile()
    assert w.status.rolling_back
    drive(w)
    assert w.status.phase == "Degraded" and not w.status.rolling_back
    assert w.by_hash(new).spec_replicas == 0 and w.by_hash(stable).spec_replicas == 4
    assert w.live_selector() == naming.pod_labels("web", stable)
    entry = next(e for e in w.status.history if e.template_hash == new)
    assert entry.outcome == "Aborted" and "ProgressDeadlineExceeded" in (entry.reason or "")


def test_the_deadline_counts_from_the_new_pods_last_progress() -> None:
    params = {"maxSurge": 2, "maxUnavailable": 0}
    w = World(spec("app:1", replicas=4, rolling=params, deadline=60))
    drive(w)
    w.set_spec(spec("app:2", replicas=4, rolling=params, deadline=60))
    w.reconcile()
    w.tick(50)  # a busy controller creates the batch's pods only now: progress
    w.settle(w.by_hash(hash_of(w.spec)).name, available=0)
    w.tick(50)
    w.reconcile()
    assert w.status.phase == "Progressing" and not w.status.rolling_back
    w.tick(10)
    w.reconcile()
    assert w.status.rolling_back, "none of them ready for the deadline: rolled back"


def test_strategy_switch_waits_for_the_next_release() -> None:
    w = released(replicas=4, rolling={"maxSurge": 1, "maxUnavailable": 0})
    w.set_spec(spec("app:2", replicas=4, rolling={"maxSurge": 1, "maxUnavailable": 0}))
    w.reconcile()
    assert w.status.strategy == "rolling"
    w.set_spec(spec("app:2", replicas=4))  # switched to blueGreen mid-release
    w.reconcile()
    assert w.status.strategy == "rolling", "the release in flight keeps its strategy"
    drive(w)
    assert w.status.phase == "Healthy"
    w.set_spec(spec("app:3", replicas=4))
    w.reconcile()
    assert w.status.strategy == "blueGreen"


@settings(max_examples=300, deadline=None)
@given(
    replicas=st.integers(1, 12),
    surge=st.one_of(st.integers(0, 4), st.sampled_from(["0%", "10%", "25%", "50%", "100%"])),
    unavailable=st.one_of(st.integers(0, 4), st.sampled_from(["0%", "10%", "25%", "50%"])),
    readiness=st.lists(st.tuples(st.booleans(), st.integers(0, 12)), min_size=1, max_size=60),
    abort_at=st.one_of(st.none(), st.integers(0, 30)),
)
def test_bounds_hold_and_the_rollout_terminates(
    replicas: int,
    surge: Any,
    unavailable: Any,
    readiness: list[tuple[bool, int]],
    abort_at: int | None,
) -> None:
    zero = {0, "0%"}
    if surge in zero and unavailable in zero:
        surge = 1
    params = {"maxSurge": surge, "maxUnavailable": unavailable}
    w = World(spec("app:1", replicas=replicas, rolling=params))
    drive(w)
    stable = hash_of(w.spec)
    w.set_spec(spec("app:2", replicas=replicas, rolling=params))
    new = hash_of(w.spec)
    max_surge, max_unavailable = rolling.bounds(api.Rolling.model_validate(params), replicas)

    def check() -> None:
        pods = sum(d.spec_replicas for d in w.deployments.values())
        available = sum(min(d.available_replicas, d.spec_replicas) for d in w.deployments.values())
        assert pods <= replicas + max_surge, (pods, replicas, max_surge)
        assert available >= replicas - max_unavailable, (available, replicas, max_unavailable)

    w.after_each = check
    for i, (all_ready, k) in enumerate(readiness):
        if i == abort_at:
            w.annotations[naming.COMMAND_ABORT] = "true"
        w.reconcile()
        check()
        if all_ready:
            w.settle()
        else:  # up to k new pods become ready (ready pods stay ready); old ones stay as they are
            for d in list(w.deployments.values()):
                ready = max(k, d.available_replicas) if d.template_hash == new else None
                w.settle(d.name, available=ready if ready is not None else d.available_replicas)
        check()
    # then every pod becomes ready: the rollout must end, all new or (aborted) all stable
    for _ in range(4 * replicas + 10):
        w.reconcile()
        check()
        w.settle()
        check()
    w.reconcile()
    assert w.status.phase in ("Healthy", "Aborted"), (w.status.phase, w.status.message)
    final = new if w.status.phase == "Healthy" else stable
    assert w.by_hash(final).spec_replicas == replicas
    assert w.live_selector() == naming.pod_labels("web", final)
    assert all(d.spec_replicas == 0 for d in w.deployments.values() if d.template_hash != final)


ROLLING = {"maxSurge": 1, "maxUnavailable": 1}


def rolling_in_flight() -> World:
    """Revision 1 live (rolling strategy); revision 2 rolling in, mid-way."""
    w = released("app:1", rolling=ROLLING)
    w.set_spec(spec("app:2", rolling=ROLLING))
    w.reconcile()  # the first batch: revision 1 shrinks, revision 2 grows
    w.settle()
    assert w.live_selector() == {naming.LABEL_RELEASE: "web"}, "mixed: both revisions serve"
    assert w.status.candidate_revision == 2
    return w


def test_a_rolling_release_says_nothing_of_a_warm_slot_and_wakes_no_one() -> None:
    rolling = {"maxSurge": 1, "maxUnavailable": 0}
    w = released("app:1", rolling=rolling)
    w.set_spec(spec("app:2", rolling=rolling))
    for _ in range(10):
        w.reconcile()
        w.settle()
    assert w.status.phase == "Healthy" and w.status.live_revision == 2
    promoted = [a for a in w.log if isinstance(a, act.RecordEvent) and a.reason == "Promoted"]
    assert promoted and all("warm" not in a.message for a in promoted)
    assert w.last is not None and w.last.requeue_after is None


def test_a_rolling_release_held_before_its_newer_revision_exists_keeps_serving() -> None:
    w = rolling_in_flight()
    before = w.serving()
    w.set_spec(spec("app:3", rolling=ROLLING, paused=True))
    w.reconcile()
    assert w.status.phase == "Paused"
    assert w.live_selector() == {naming.LABEL_RELEASE: "web"} and w.serving() == before


def test_an_abort_after_a_strategy_switch_rolls_back_within_bounds() -> None:
    w = rolling_in_flight()
    s = w.spec.model_dump(by_alias=True, exclude_none=True)
    s["strategy"] = {"blueGreen": {}}
    w.set_spec(api.ReleaseSpec.model_validate(s))  # same template: the release goes on, rolling
    w.annotations[naming.COMMAND_ABORT] = "true"
    for _ in range(5):
        w.reconcile()
        assert w.serving() >= 3 - 1, "never below replicas - maxUnavailable"
        w.settle()
    w.reconcile()
    assert w.status.live_revision == 1 and w.live_selector() == naming.pod_labels(
        "web", w.status.live_hash or ""
    )
    assert w.by_hash(w.status.live_hash or "").spec_replicas == 3
