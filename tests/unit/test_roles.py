"""Pod roles (engine/roles.py): candidate, live, draining, moved with the flip, the undo, the
abort; a worker (no Service) hands over; the scaleDown gate holds and paces the draining
revision."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import naming
from greenlight.engine.reasons import Reason

from .world import World, hash_of, released, spec

pytestmark = pytest.mark.unit

CHECK = {"name": "drained", "webhook": {"url": "http://checks/drained?rev=$(DRAINING_HASH)"}}
OK = {"status": 200, "body": {"ok": True}, "headers": {}}
BAD = {"status": 503, "body": {"ok": False}, "headers": {}}


def roles(w: World, template_hash: str) -> set[str | None]:
    return w.pod_roles().get(template_hash, set())


def role_writes(w: World) -> list[tuple[str, str]]:
    assert w.last is not None
    return [(a.pod, a.role) for a in w.last.writes if isinstance(a, act.SetPodRole)]


def test_a_flip_makes_the_new_pods_live_and_the_old_ones_draining_after_the_service() -> None:
    w = released("app:1")
    v1 = w.live_hash() or ""
    assert roles(w, v1) == {"live"}
    w.set_spec(spec("app:2"))
    w.reconcile()
    w.settle()
    w.reconcile()  # the candidate's pods appear: candidate; every one available: the flip
    v2 = hash_of(w.spec)
    assert w.live_hash() == v2
    assert roles(w, v2) == {"live"} and roles(w, v1) == {"draining"}
    assert w.last is not None
    kinds = [
        (type(a).__name__, getattr(a, "role", None))
        for a in w.last.writes
        if isinstance(a, act.ApplyService | act.SetPodRole)
    ]
    service = kinds.index(("ApplyService", "live"))
    live = [i for i, k in enumerate(kinds) if k == ("SetPodRole", "live")]
    draining = [i for i, k in enumerate(kinds) if k == ("SetPodRole", "draining")]
    assert live and draining and service < min(live) and max(live) < min(draining)
    w.tick(31)
    w.reconcile()
    w.settle()
    assert v1 not in w.pod_roles(), "scaled down after scaleDownDelaySeconds"


def test_a_candidate_is_labelled_candidate_and_an_undo_swaps_live_and_draining() -> None:
    w = released("app:1")
    v1 = w.live_hash() or ""
    w.set_spec(spec("app:2", auto_promote=False))
    w.reconcile()
    w.settle()
    w.reconcile()
    v2 = hash_of(w.spec)
    assert roles(w, v2) == {"candidate"} and roles(w, v1) == {"live"}
    w.annotations[naming.COMMAND_PROMOTE] = "true"
    w.reconcile()
    assert roles(w, v2) == {"live"} and roles(w, v1) == {"draining"}
    w.annotations[naming.COMMAND_UNDO] = ""
    w.reconcile()
    assert w.live_hash() == v1
    assert roles(w, v1) == {"live"} and roles(w, v2) == {"draining"}


def test_an_aborted_candidate_stays_candidate_until_it_is_gone() -> None:
    w = released("app:1")
    v1 = w.live_hash() or ""
    w.set_spec(spec("app:2", auto_promote=False))
    w.reconcile()
    w.settle()
    w.reconcile()
    v2 = hash_of(w.spec)
    w.annotations[naming.COMMAND_ABORT] = "true"
    w.reconcile()
    assert roles(w, v1) == {"live"} and roles(w, v2) <= {"candidate"}


def test_a_new_pod_gets_its_revisions_role_and_a_hand_edit_is_set_back() -> None:
    w = released("app:1")
    live = w.by_hash(w.live_hash() or "")
    w.deployments[live.name] = live.__class__(**{**live.__dict__, "replicas": 4})
    w.roles[f"{live.name}-0"] = "draining"  # someone relabelled one
    w.reconcile()
    assert sorted(role_writes(w)) == [(f"{live.name}-0", "live"), (f"{live.name}-3", "live")]
    w.reconcile()
    assert role_writes(w) == [], "nothing more to write"


# --- workers: no Service ----------------------------------------------------------------------


def worker(image: str, **kw: Any) -> api.ReleaseSpec:
    return spec(image, worker=True, **kw)


def test_a_worker_without_a_service_goes_live_by_its_pods_role_with_overlap() -> None:
    w = World(worker("app:1")).go_live()
    v1 = w.live_hash() or ""
    assert w.services == {} and roles(w, v1) == {"live"}
    w.set_spec(worker("app:2"))
    w.reconcile()
    w.settle()
    w.reconcile()
    v2 = hash_of(w.spec)
    assert roles(w, v2) == {"live"} and roles(w, v1) == {"draining"}
    writes = role_writes(w)
    assert [r for _, r in writes] == ["live"] * 3 + ["draining"] * 3, "overlap: live first"
    assert w.status.phase == "Healthy" and w.services == {}


def test_a_worker_whose_status_was_lost_reads_its_live_revision_from_its_pods() -> None:
    w = World(worker("app:1")).go_live()
    v1 = w.live_hash() or ""
    w.set_spec(worker("app:2"))
    w.status = api.ReleaseStatus()  # a failed write, a restore from backup
    w.reconcile()
    assert w.status.live_hash == v1 and Reason.RECOVERED in w.events()
    assert roles(w, v1) == {"live"}, "the new revision is not made live by the loss"
    w.settle()
    w.reconcile()
    assert w.status.live_hash == hash_of(w.spec) and roles(w, v1) == {"draining"}


def test_a_handover_drains_the_old_worker_first_then_the_new_one_takes_over() -> None:
    handover = {"policy": "handover", "timeoutSeconds": 60}
    w = World(worker("app:1", handover=handover)).go_live()
    v1 = w.live_hash() or ""
    w.set_spec(worker("app:2", handover=handover))
    w.reconcile()
    w.settle()
    w.reconcile()
    v2 = hash_of(w.spec)
    assert roles(w, v1) == {"draining"} and roles(w, v2) == {"candidate"}, "nobody works"
    assert w.status.candidate_handover_since == w.now
    assert Reason.HANDING_OVER in w.events()
    w.tick(30)
    w.reconcile()
    assert roles(w, v2) == {"candidate"} and w.status.live_hash == v1
    w.tick(31)
    w.reconcile()
    assert roles(w, v2) == {"live"} and roles(w, v1) == {"draining"}
    assert w.status.live_hash == v2 and w.status.phase == "Healthy"


def test_a_handover_check_that_passes_ends_the_wait_and_one_that_fails_aborts() -> None:
    handover = {"policy": "handover", "checks": [CHECK]}
    w = World(worker("app:1", handover=handover)).go_live()
    v1 = w.live_hash() or ""
    w.set_spec(worker("app:2", handover=handover))
    for _ in range(3):
        w.reconcile()
        w.settle()
    asked = w.answer(OK)
    assert asked and asked[0].stage == "handover" and asked[0].template_hash == v1
    assert asked[0].check.webhook is not None and v1 in asked[0].check.webhook.url
    w.reconcile()  # recorded
    w.reconcile()  # decided on the recorded verdict
    v2 = hash_of(w.spec)
    assert roles(w, v2) == {"live"} and roles(w, v1) == {"draining"}

    w.set_spec(worker("app:3", handover=handover))
    for _ in range(3):
        w.reconcile()
        w.settle()
    w.answer(BAD)
    w.reconcile()
    w.reconcile()
    assert w.status.live_hash == v2 and roles(w, v2) == {"live"}, "the old one works again"
    assert w.status.history[-1].outcome == "Aborted"
    assert w.status.history[-1].reason == Reason.HANDOVER_FAILED


# --- the scaleDown gate -----------------------------------------------------------------------


def test_the_scale_down_waits_for_its_checks_at_most_max_delay_and_is_paced() -> None:
    gate = {"when": [CHECK], "maxDelaySeconds": 300, "podsPerInterval": 1, "intervalSeconds": 5}
    w = released("app:1", scale_down_gate=gate, scale_down_delay=0)
    v1 = w.live_hash() or ""
    w.set_spec(spec("app:2", scale_down_gate=gate, scale_down_delay=0))
    for _ in range(2):
        w.reconcile()
        w.settle()
    assert roles(w, v1) == {"draining"} and w.by_hash(v1).spec_replicas == 3
    asked = w.answer(BAD)
    assert asked and asked[0].stage == "scaleDown" and asked[0].template_hash == v1
    w.reconcile()
    assert w.by_hash(v1).spec_replicas == 3, "held while its check has not passed"
    w.tick(300)
    w.reconcile()
    assert w.by_hash(v1).spec_replicas == 2, "maxDelaySeconds: one pod (podsPerInterval)"
    w.settle()
    w.reconcile()
    assert w.by_hash(v1).spec_replicas == 2, "the next batch after intervalSeconds"
    w.tick(5)
    w.reconcile()
    assert w.by_hash(v1).spec_replicas == 1
    w.tick(5)
    w.reconcile()
    assert w.by_hash(v1).spec_replicas == 0


# --- properties -------------------------------------------------------------------------------

FLIP = [("settle", 3), ("image", 1), ("settle", 3), ("answer", True), ("tick", 1), ("tick", 1)]
op = st.one_of(
    st.tuples(st.just("image"), st.integers(1, 4)),
    st.tuples(st.just("settle"), st.integers(0, 3)),
    st.tuples(st.just("tick"), st.sampled_from([1, 31, 61, 700])),
    st.tuples(
        st.just("command"),
        st.sampled_from([naming.COMMAND_PROMOTE, naming.COMMAND_ABORT, naming.COMMAND_UNDO]),
    ),
    st.tuples(st.just("answer"), st.booleans()),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example("handover", FLIP)
@example("overlap", FLIP)
@example("service", [*FLIP, ("command", naming.COMMAND_UNDO), ("tick", 1)])
@given(st.sampled_from(["service", "overlap", "handover"]), st.lists(op, min_size=1, max_size=30))
def test_role_invariants_hold_for_any_history(mode: str, ops: list[tuple[str, Any]]) -> None:
    pre = [{**CHECK, "name": "pre"}]

    def make(image: int) -> api.ReleaseSpec:
        s = spec(f"app:{image}", worker=mode != "service")
        body = s.model_dump(by_alias=True, exclude_none=True)
        body["strategy"]["blueGreen"]["prePromotion"] = pre
        if mode == "handover":
            body["strategy"]["blueGreen"]["handover"] = {"policy": "handover", "checks": [CHECK]}
        return api.ReleaseSpec.model_validate(body)

    w = World(make(0))
    passed: set[str] = set()  # revisions whose pre-promotion checks passed
    for name, arg in ops:
        if name == "image":
            w.set_spec(make(arg))
        elif name == "settle":
            w.settle(available=arg)
        elif name == "tick":
            w.tick(arg)
        elif name == "command":
            w.annotations[arg] = "" if arg == naming.COMMAND_UNDO else "true"
        elif name == "answer":
            w.answer(OK if arg else BAD)
        before = w.pod_roles()
        was_live = {e.template_hash for e in w.status.history if e.promoted_at is not None}
        w.reconcile()
        passed |= {
            c.template_hash
            for c in w.status.checks
            if c.stage == "prePromotion" and c.phase in ("Passed", "Skipped")
        }
        now = w.pod_roles()
        live = [h for h, r in now.items() if "live" in r]
        handing_over = w.status.candidate_handover_since is not None
        # at most one revision is live, none while a handover drains the old one
        assert len(live) <= (0 if handing_over and mode == "handover" else 1), now
        for h in live:
            # a candidate becomes live only once its pre-promotion checks passed (or it was
            # live before: an undo; or it is the first revision, which fills the Service)
            if "live" in before.get(h, set()) or h in was_live:
                continue
            entry = next(e for e in w.status.history if e.template_hash == h)
            assert entry.revision == 1 or h in passed, (h, now)
        # draining pods are of revisions that were live, and every pod of one that was live
        # and is not now (nor in flight again) drains
        for h, r in now.items():
            entry = next(e for e in w.status.history if e.template_hash == h)
            retired = entry.outcome in ("Retired", "RolledBack")
            if "draining" in r:
                assert retired or (h == w.status.live_hash and handing_over), (h, now)
            if retired and h != w.status.candidate_hash:
                assert r == {"draining"}, (h, now)
    # draining always ends in a scale-down or an undo: left alone long enough, nothing drains
    for _ in range(8):  # (pre-promotion, then handover checks: a few reconciles each)
        w.answer(OK)
        w.tick(700)
        w.reconcile()
        w.settle()
    w.reconcile()
    assert not any(
        "draining" in r and w.by_hash(h).spec_replicas > 0 for h, r in w.pod_roles().items()
    ), w.pod_roles()


async def test_labels_of_one_role_go_at_once_and_live_ones_before_any_draining_one() -> None:
    """The shell writes adjacent labels of the same role at once (one round trip, not one per
    pod), never a `draining` label before every `live` label of the plan was written."""
    import asyncio

    from greenlight.kube import cluster as kube_cluster
    from greenlight.kube import reconcile
    from tests.unit.test_reconciler import BODY

    log: list[tuple[str, str, str]] = []

    async def label(release: object, a: act.Write) -> None:
        assert isinstance(a, act.SetPodRole)
        log.append(("start", a.role, a.pod))
        await asyncio.sleep(0.01)
        log.append(("end", a.role, a.pod))

    cluster = object.__new__(kube_cluster.Cluster)
    cluster._apply = label  # type: ignore[method-assign]
    release = reconcile.index_release(BODY).view
    assert release is not None
    plan = tuple(act.SetPodRole(f"new-{i}", "live") for i in range(3)) + tuple(
        act.SetPodRole(f"old-{i}", "draining") for i in range(3)
    )
    await cluster.apply(release, plan)
    starts = [i for i, e in enumerate(log) if e[0] == "start" and e[1] == "live"]
    assert starts == [0, 1, 2], f"the live labels went at once: {log}"
    last_live_end = max(i for i, e in enumerate(log) if e[0] == "end" and e[1] == "live")
    first_draining = min(i for i, e in enumerate(log) if e[1] == "draining")
    assert last_live_end < first_draining, log
