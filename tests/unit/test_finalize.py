"""A deleted Release that adopted its Service (engine/finalize.py): the original selector,
recorded at adoption, goes back before the Release's pods; nothing is invented, nothing hangs."""

from __future__ import annotations

import dataclasses
import datetime

from greenlight.engine import actions as act
from greenlight.engine import finalize, lanes, naming, snapshot
from greenlight.engine.reasons import Reason
from tests.unit.world import T0, World, hash_of, spec

LEGACY = {"app": "legacy"}
DEADLINE = 600


def adopted(w: World) -> list[act.ApplyService]:
    return [a for a in w.log if isinstance(a, act.ApplyService) and a.name == "web"]


def test_the_selector_is_recorded_at_adoption_and_kept_through_later_flips() -> None:
    w = World(spec("app:1", adopt=True))
    w.services["web"] = snapshot.ServiceView("web", dict(LEGACY), owned=False)
    assert finalize.wanted(w.snapshot()), "held before the selector first moves"
    w.reconcile()
    w.settle()
    w.reconcile()  # the first revision takes the adopted Service over
    assert w.live_hash() == hash_of(w.spec)
    assert w.services["web"].adopted_selector == LEGACY
    for image in ("app:2", "app:3"):
        w.set_spec(spec(image, adopt=True))
        w.reconcile()
        w.settle()
        w.reconcile()
        assert w.live_hash() == hash_of(w.spec)
    assert [a.original for a in adopted(w)] == [LEGACY] * 3, "every apply carries the record"


def test_a_service_adopted_before_selectors_were_recorded_gets_no_invented_one() -> None:
    w = World(spec("app:1", adopt=True))
    theirs = naming.pod_labels("web", "0ld0ld0ld0")  # ours already; no record on it
    w.services["web"] = snapshot.ServiceView("web", theirs, owned=False)
    w.reconcile()
    w.settle()
    w.reconcile()
    assert adopted(w) and all(a.original is None for a in adopted(w))


def test_the_finalizer_is_wanted_only_for_an_adopted_service_not_yet_held() -> None:
    w = World(spec("app:1", adopt=True))
    assert not finalize.wanted(w.snapshot()), "no Service yet: ours will be created, owned"
    w.services["web"] = snapshot.ServiceView("web", dict(LEGACY), owned=True)
    assert not finalize.wanted(w.snapshot()), "owned: it goes with the Release"
    w.services["web"] = snapshot.ServiceView("web", dict(LEGACY), owned=False)
    snap = w.snapshot()
    assert finalize.wanted(snap)
    held = dataclasses.replace(snap.release, finalizers=("other", naming.FINALIZER))
    assert not finalize.wanted(dataclasses.replace(snap, release=held))
    gone = dataclasses.replace(snap.release, deleting=T0)
    assert not finalize.wanted(dataclasses.replace(snap, release=gone))
    refused = World(spec("app:1"), services={"web": w.services["web"]})
    assert not finalize.wanted(refused.snapshot()), "not adopting: refused, nothing touched"


def deleting(
    selector: dict[str, str] | None,
    recorded: dict[str, str] | None = LEGACY,
    pods: int = 0,
    endpoints: int = 0,
    after: float = 1,
    owned: bool = False,
    finalizers: tuple[str, ...] = (naming.FINALIZER,),
) -> finalize.Cleanup:
    release = dataclasses.replace(
        World(spec("app:1", adopt=True, deadline=DEADLINE)).snapshot().release,
        deleting=T0,
        finalizers=finalizers,
    )
    svc = None
    if selector is not None:
        svc = snapshot.ServiceView("web", selector, owned=owned, adopted_selector=recorded)
    now = T0 + datetime.timedelta(seconds=after)
    return finalize.on_delete(finalize.Deleting(release, svc, pods, endpoints, now))


OURS = naming.pod_labels("web", "abcdef0123")


def reasons(step: finalize.Cleanup) -> list[tuple[str, str]]:
    return [(e.reason, e.type) for e in step.events]


def test_the_original_selector_goes_back_once_its_pods_are_ready_then_the_release_goes() -> None:
    first = deleting(OURS, pods=2)
    assert first == finalize.Cleanup(restore=LEGACY, requeue_after=finalize.POLL_SECONDS)
    waiting = deleting(LEGACY, recorded=None, endpoints=0)  # the EndpointSlices not there yet
    assert waiting == finalize.Cleanup(requeue_after=finalize.POLL_SECONDS)
    done = deleting(LEGACY, recorded=None, endpoints=2)
    assert done.release and done.restore is None
    assert reasons(done) == [(Reason.SELECTOR_RESTORED, "Normal")]


def test_no_ready_original_pod_keeps_our_pods_serving_until_the_deadline() -> None:
    early = deleting(OURS, pods=0, after=10)
    assert early.restore is None and not early.release and early.requeue_after
    assert reasons(early) == [(Reason.ADOPTED_SERVICE_WAITING, "Normal")]
    late = deleting(OURS, pods=0, after=DEADLINE)
    assert late.restore == LEGACY and late.release, "never held forever"
    assert reasons(late) == [(Reason.SELECTOR_NOT_RESTORED, "Warning")]


def test_restored_but_never_served_releases_at_the_deadline_with_a_warning() -> None:
    late = deleting(LEGACY, recorded=None, endpoints=0, after=DEADLINE + 1)
    assert late.release and late.restore is None
    assert reasons(late) == [(Reason.SELECTOR_NOT_RESTORED, "Warning")]


def test_an_unrecorded_selector_is_left_as_it_is_with_a_warning() -> None:
    step = deleting(OURS, recorded=None, pods=2)
    assert step.restore is None and step.release
    assert reasons(step) == [(Reason.SELECTOR_NOT_RESTORED, "Warning")]
    assert naming.ANNOTATION_ADOPTED_SELECTOR in step.events[0].message


def test_a_service_adopted_without_a_selector_gets_none_back_at_once() -> None:
    assert deleting(OURS, recorded={}).restore == {}
    assert deleting({}, recorded=None).release, "no selector: no endpoints to wait for"


def test_nothing_adopted_or_not_ours_to_hold() -> None:
    assert deleting(None) == finalize.Cleanup(release=True), "the Service is gone"
    assert deleting(OURS, owned=True) == finalize.Cleanup(release=True), "ours: goes with it"
    assert deleting(OURS, pods=2, finalizers=()) == finalize.Cleanup()


def test_a_deleted_release_holding_the_finalizer_is_woken_in_the_traffic_lane() -> None:
    release = World(spec("app:1", adopt=True)).snapshot().release
    held = dataclasses.replace(release, deleting=T0, finalizers=(naming.FINALIZER,))
    assert lanes.release(held, ()) == "traffic", "its next step moves the Service's selector"
    assert lanes.release(dataclasses.replace(held, finalizers=()), ()) == "bulk"
