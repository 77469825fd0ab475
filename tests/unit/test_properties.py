"""Property tests of the invariants in docs/design.md over random histories of a Release."""

from __future__ import annotations

import datetime
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import naming, snapshot

from .world import World, released, spec

op = st.one_of(
    st.tuples(st.just("image"), st.integers(1, 4)),
    st.tuples(st.just("replicas"), st.integers(1, 5)),
    st.tuples(st.just("manual"), st.booleans()),
    st.tuples(st.just("settle"), st.integers(0, 5)),
    st.tuples(st.just("settle_one"), st.integers(0, 5)),
    st.tuples(st.just("tick"), st.sampled_from([1, 10, 31, 120, 700])),
    st.tuples(
        st.just("command"),
        st.sampled_from(
            [
                naming.COMMAND_PROMOTE,
                naming.COMMAND_ABORT,
                naming.COMMAND_RETRY,
                naming.COMMAND_UNDO,
            ]
        ),
    ),
    st.tuples(st.just("lose_status"), st.just(0)),
    st.tuples(st.just("paused"), st.booleans()),
    st.tuples(st.just("foreign"), st.booleans()),
    st.tuples(st.just("rolling"), st.booleans()),
    st.tuples(st.just("first_checks"), st.booleans()),
    st.tuples(st.just("restart"), st.sampled_from([-30, 0, 60])),  # spec.restartAt: now + s
)

FOREIGN = {"app": "someone-else"}


def _spec(params: dict[str, Any]) -> Any:
    s = spec(
        f"app:{params['image']}",
        replicas=params["replicas"],
        auto_promote=not params["manual"],
        deadline=600,
        scale_down_delay=30,
        history_limit=3,
        paused=params["paused"],
        rolling={"maxSurge": 1, "maxUnavailable": 1} if params["rolling"] else None,
        restart_at=params["restart"],
    )
    if params["first_checks"] and not params["rolling"]:  # gated like any later revision
        body = s.model_dump(by_alias=True, exclude_none=True)
        body["strategy"].setdefault("blueGreen", {})["firstReleaseChecks"] = True
        s = api.ReleaseSpec.model_validate(body)
    if params["foreign"]:  # the spec names a Service someone else owns
        body = s.model_dump(by_alias=True, exclude_none=True)
        body["service"]["name"] = "theirs"
        s = api.ReleaseSpec.model_validate(body)
    return s


def _available(w: World, selector: dict[str, str]) -> int:
    """Available pods the selector picks (each revision's pods carry release + hash labels)."""
    picked = 0
    for d in w.deployments.values():
        labels = naming.pod_labels("web", d.template_hash)
        if selector and all(labels.get(k) == v for k, v in selector.items()):
            picked += min(d.available_replicas, d.spec_replicas)
    return picked


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=1, max_size=40))
@example(  # found in a CI run: an abort consumed right after a whole-status loss mid-rolling
    [("rolling", True), ("image", 2), ("foreign", True), ("lose_status", 0), ("settle_one", 0),
     ("command", naming.COMMAND_ABORT), ("foreign", False)]
)  # fmt: skip
def test_invariants_hold_for_any_history(ops: list[tuple[str, Any]]) -> None:
    params = {
        "image": 0, "replicas": 3, "manual": False, "paused": False, "foreign": False,
        "rolling": False, "first_checks": False, "restart": None,
    }  # fmt: skip
    w = World(_spec(params))
    w.services["theirs"] = snapshot.ServiceView("theirs", dict(FOREIGN), owned=False)
    promoted_once = False
    for name, arg in ops:
        if name in ("image", "replicas", "manual", "paused", "foreign", "rolling", "first_checks"):
            params[name] = arg
            w.set_spec(_spec(params))
        elif name == "restart":
            params[name] = w.now + datetime.timedelta(seconds=arg)
            w.set_spec(_spec(params))
        elif name == "settle":
            w.settle(available=arg)
        elif name == "settle_one" and w.deployments:
            w.settle(sorted(w.deployments)[arg % len(w.deployments)])
        elif name == "tick":
            w.tick(arg)
        elif name == "command":
            w.annotations[arg] = "true" if arg != naming.COMMAND_UNDO else ""
        elif name == "lose_status":  # a failed write or a restore from backup: all of it
            w.status = api.ReleaseStatus()

        before = w.snapshot()
        live_before = w.live_hash()
        web = w.services.get("web")
        selector_before = dict(web.selector) if web else {}
        serving_before = _available(w, selector_before)
        result = w.reconcile()
        live_after = w.live_hash()
        web = w.services.get("web")
        selector_after = dict(web.selector) if web else {}

        # 0. a Service that is not ours is never changed
        assert w.services["theirs"].selector == FOREIGN and not w.services["theirs"].owned
        # 0'. pinning the live selector to one revision never leaves fewer available pods
        # serving than before (up to spec.replicas): no flip to a revision that is not ready,
        # whatever was lost. (Rolling's own bounds are tested in test_rolling.py.)
        moved = selector_after != selector_before and naming.LABEL_HASH in selector_after
        if moved and serving_before > 0:
            replicas = before.release.spec.replicas
            assert _available(w, selector_after) >= min(serving_before, replicas), (
                selector_before, selector_after,
            )  # fmt: skip
        if params["foreign"]:
            refused = [*result.writes, *result.jobs, *result.measurements, *result.notifications]
            assert refused == [] and w.status.phase == "Degraded"
            continue
        aborted = [e.template_hash for e in w.status.history if e.outcome == "Aborted"]

        if live_after is not None and live_after != live_before and live_before is not None:
            # 1. a flip only ever selects a fully available revision, of at least spec.replicas
            # pods, and never fewer available than the live slot had just before (7.)
            target = before.deployment(live_after)
            assert target is not None and target.fully_available(target.spec_replicas)
            assert target.spec_replicas >= before.release.spec.replicas
            old = before.deployment(live_before)
            assert target.available_replicas >= (old.available_replicas if old else 0)
            assert target.available_replicas > 0
        in_flight = before.release.status.candidate_hash and w.status.candidate_hash
        if live_before is not None and live_after == live_before and in_flight:
            # 7. a replica change mid-release resizes the candidate, never the live slot
            was = before.deployment(live_before)
            if was is not None and w.status.strategy == "blueGreen":
                assert w.by_hash(live_before).spec_replicas >= was.spec_replicas
        if live_after is not None:
            # the live Service pins exactly one revision by its hash
            assert selector_after == naming.pod_labels("web", live_after)
            live = w.by_hash(live_after)
            # 2. the live slot is never scaled to zero or deleted by the operator
            assert live.spec_replicas > 0
            if promoted_once and live_before is None:
                assert selector_before == {naming.LABEL_RELEASE: "web"}, "only after rolling"
        elif selector_after:
            assert selector_after == {naming.LABEL_RELEASE: "web"}, "rolling: every revision"
        # 3. an abort never changes the live revision (rolling: it may end the mixed selector
        # by pinning the revision that was live all along)
        if any(isinstance(a, act.RecordEvent) and a.reason == "Aborted" for a in result.writes):
            recorded = before.release.status.live_hash
            assert w.status.live_hash == recorded or recorded is None
            if recorded is not None:
                assert live_after == live_before or (live_before is None and live_after == recorded)
            else:  # the status was lost: the live revision is the one recovered from the cluster
                assert live_after in (None, w.status.live_hash)
        # 5. a restart replaces the pods of the live revision only, in place: one Deployment,
        # the live one as the status (or, lost, the live Service) said, never twice the same
        for a in result.writes:
            if isinstance(a, act.RestartDeployment):
                target = next(d for d in before.deployments if d.name == a.name)
                assert target.template_hash in (before.release.status.live_hash, live_before)
                assert target.restarted_at != a.at
                assert a.at == naming.restart_stamp(params["restart"])
        # 4. an aborted revision never receives live traffic
        if live_before is not None:
            assert live_after not in aborted
        # 12. the preview Service never selects a revision with no available pod while the
        # live revision has one (Argo Rollouts #2641)
        preview = w.services.get("web-preview")
        live_pods = _available(w, naming.pod_labels("web", live_after)) if live_after else 0
        if preview is not None and live_pods > 0:
            assert _available(w, preview.selector) > 0, (preview.selector, live_after)
        if w.status.history and any(e.promoted_at for e in w.status.history):
            promoted_once = True


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6))
def test_a_settled_release_always_goes_live(first: int, second: int) -> None:
    """With every pod ready, any image change ends live and Healthy, blue then green."""
    w = World(spec("app:1", replicas=first))
    for _ in range(3):
        w.reconcile()
        w.settle()
    w.set_spec(spec("app:2", replicas=second))
    for _ in range(4):  # (fewer replicas: sized like the live slot, then settled after the flip)
        w.reconcile()
        w.settle()
    assert w.status.phase == "Healthy"
    assert w.status.live_color == "green"
    assert w.by_hash(w.live_hash() or "").spec_replicas == second


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 6),
    st.lists(st.tuples(st.integers(1, 8), st.integers(0, 8)), min_size=1, max_size=6),
)
def test_a_resize_mid_release_never_flips_to_fewer_pods(
    first: int, resizes: list[tuple[int, int]]
) -> None:
    """kubectl scale or an HPA writes spec.replicas while a blue-green candidate comes up (its
    pods partly available): the live slot keeps its size, the candidate follows spec.replicas but
    never below the live slot's, and at the flip it has at least as many pods available as the
    live slot had just before."""
    w = released("app:1", replicas=first)
    live = w.live_hash()
    assert live is not None
    w.set_spec(spec("app:2", replicas=first))
    steps = [*resizes, (resizes[-1][0], 8), (resizes[-1][0], 8), (resizes[-1][0], 8)]
    for replicas, available in steps:
        if replicas != w.spec.replicas:
            w.set_spec(spec("app:2", replicas=replicas))
        serving = w.by_hash(live).available_replicas
        candidate = w.status.candidate_hash
        w.reconcile()
        if w.live_hash() != live:  # the flip
            assert candidate is not None and w.live_hash() == candidate
            assert w.by_hash(candidate).available_replicas >= serving
            break
        candidate = w.status.candidate_hash
        assert candidate is not None
        assert w.by_hash(live).spec_replicas == first
        assert w.by_hash(candidate).spec_replicas == max(replicas, first)
        w.settle(w.by_hash(candidate).name, available)
    assert w.live_hash() != live and w.status.phase == "Healthy"
    for _ in range(2):
        w.reconcile()
        w.settle()
    assert w.by_hash(w.live_hash() or "").spec_replicas == w.spec.replicas
