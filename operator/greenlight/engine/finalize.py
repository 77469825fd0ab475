"""A Release that adopted a Service, deleted: the Service gets its own selector back first.

An adopted Service (spec.service.adopt) is not the Release's: it stays when the Release goes,
but it selects the Release's pods, which the garbage collector deletes with it. So a Release
that adopts its live Service holds `naming.FINALIZER` from its first reconcile (before the
selector first moves), and once deleted, each reconcile takes one step here (pure; the shell
reads what serves and applies the answer):

1. the Service still selects this Release's pods: put back the selector recorded when it was
   adopted (`naming.ANNOTATION_ADOPTED_SELECTOR`), once a pod it selects is Ready (meanwhile
   this Release's pods keep serving). None recorded (adopted before Greenlight recorded it):
   nothing is invented; the Service is left as it is, with a Warning Event;
2. the Service selects something else: wait until its EndpointSlices list a ready endpoint that
   is not one of this Release's pods, then let the Release go (its pods follow).

Each wait is bounded by the Release's progressDeadlineSeconds from its deletion: after that the
finalizer is released anyway, with a Warning Event saying what is left without endpoints.
"""

from __future__ import annotations

import dataclasses
import datetime

from greenlight.engine import actions as act
from greenlight.engine import naming, snapshot
from greenlight.engine.reasons import Reason

POLL_SECONDS = 1.0
"""How often a deleted Release looks again while it waits (nothing we watch says when a pod
behind a Service we no longer label becomes an endpoint)."""


def wanted(snap: snapshot.Snapshot) -> bool:
    """Add the finalizer now: the Release adopts its live Service and does not hold it yet
    (added before any write of this reconcile, so before the selector first moves)."""
    release, svc = snap.release, snap.live_service
    return (
        release.deleting is None
        and naming.FINALIZER not in release.finalizers
        and release.spec.service.adopt
        and svc is not None
        and not svc.owned
    )


@dataclasses.dataclass(frozen=True)
class Deleting:
    """What a deleted Release's reconcile observed."""

    release: snapshot.ReleaseView
    service: snapshot.ServiceView | None
    """Its live Service (spec.service.name), as it is now."""
    ready_pods: int
    """Ready pods (not being deleted) that the recorded selector selects, other than this
    Release's own."""
    ready_endpoints: int
    """Ready endpoints in the Service's EndpointSlices, other than this Release's pods."""
    now: datetime.datetime


@dataclasses.dataclass(frozen=True)
class Cleanup:
    """One step: restore the selector (with Greenlight's label and record dropped), then
    release the finalizer; or look again after `requeue_after` seconds."""

    restore: dict[str, str] | None = None
    release: bool = False
    events: tuple[act.RecordEvent, ...] = ()
    requeue_after: float | None = None


def on_delete(s: Deleting) -> Cleanup:
    release, svc = s.release, s.service
    if naming.FINALIZER not in release.finalizers:
        return Cleanup()  # not ours to hold
    if svc is None or svc.owned:
        return Cleanup(release=True)  # nothing adopted: a Service we created goes with us
    deadline = release.spec.progress_deadline_seconds
    started = release.deleting or s.now
    late = (s.now - started).total_seconds() >= deadline
    if naming.selects_release(svc.selector, release.name):
        original = svc.adopted_selector
        if original is None:
            message = (
                f"Service {svc.name} was adopted before Greenlight recorded adopted selectors"
                f" (annotation {naming.ANNOTATION_ADOPTED_SELECTOR}): its original selector"
                " could not be restored; it still selects this Release's pods, which are"
                " deleted with it"
            )
            return Cleanup(release=True, events=(_warning(message),))
        if not original or s.ready_pods:  # no selector to wait for, or something to serve
            return Cleanup(restore=original, requeue_after=POLL_SECONDS)
        wanted_ = _selector(original)
        if not late:
            message = (
                f"Service {svc.name} keeps selecting this Release's pods until a pod its"
                f" original selector {wanted_} selects is Ready (at most"
                f" progressDeadlineSeconds={deadline})"
            )
            event = act.RecordEvent(Reason.ADOPTED_SERVICE_WAITING, message)
            return Cleanup(events=(event,), requeue_after=POLL_SECONDS)
        message = (
            f"no pod selected by {wanted_} became Ready within progressDeadlineSeconds="
            f"{deadline}: Service {svc.name} gets its original selector back with no ready"
            " endpoint"
        )
        return Cleanup(restore=original, release=True, events=(_warning(message),))
    if not svc.selector or s.ready_endpoints:  # no selector: its endpoints are not managed
        message = f"Service {svc.name} selects {_selector(svc.selector)} again, as before adoption"
        return Cleanup(release=True, events=(act.RecordEvent(Reason.SELECTOR_RESTORED, message),))
    if not late:
        return Cleanup(requeue_after=POLL_SECONDS)
    message = (
        f"Service {svc.name} selects {_selector(svc.selector)} again but has no ready endpoint"
        f" after progressDeadlineSeconds={deadline}; the Release is deleted anyway"
    )
    return Cleanup(release=True, events=(_warning(message),))


def _warning(message: str) -> act.RecordEvent:
    return act.RecordEvent(Reason.SELECTOR_NOT_RESTORED, message, "Warning")


def _selector(selector: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "nothing"
