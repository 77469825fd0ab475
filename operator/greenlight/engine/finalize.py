"""A Release that adopted a Service or a workload, deleted (or detached): what it adopted is
handed back before its own pods go.

A workload (spec.workloadRef) first: its Deployment gets the replicas recorded at adoption
(`naming.ANNOTATION_ORIGINAL_REPLICAS`) back, and the Release waits until that many of its pods
are available (the Service still selects this Release's pods meanwhile), so the Service's
restored selector finds them ready; once the Service is served, the Deployment's label and
records go with the finalizer. Detaching (`naming.ANNOTATION_DETACH`) takes the same steps and
then releases the finalizer without deleting anything: the Release holds.

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
    adopts = release.spec.service is not None and release.spec.service.adopt
    adopts_service = adopts and svc is not None and not svc.owned
    return (
        release.deleting is None
        and naming.ANNOTATION_DETACH not in release.annotations
        and naming.FINALIZER not in release.finalizers
        and (adopts_service or release.spec.workload_ref is not None)
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
    workload: snapshot.WorkloadView | None = None
    """spec.workloadRef's Deployment, as it is now."""


@dataclasses.dataclass(frozen=True)
class Cleanup:
    """One step: restore the selector (with Greenlight's label and record dropped), then
    release the finalizer; or look again after `requeue_after` seconds."""

    restore: dict[str, str] | None = None
    release: bool = False
    events: tuple[act.RecordEvent, ...] = ()
    requeue_after: float | None = None
    scale_workload: int | None = None
    """Put the adopted Deployment's recorded replicas back."""
    release_workload: str | None = None
    """The adopted Deployment whose label and records go (just before the finalizer)."""


def on_delete(s: Deleting) -> Cleanup:
    release, wl = s.release, s.workload
    if naming.FINALIZER not in release.finalizers:
        return Cleanup()  # not ours to hold
    ours = wl is not None and wl.adopted_by == release.name
    late: tuple[act.RecordEvent, ...] = ()
    if wl is not None and ours and wl.original_replicas is not None:
        waiting = _workload_back(s, wl, wl.original_replicas)
        if isinstance(waiting, Cleanup):
            return waiting
        late = waiting
    step = _service_back(s)
    if step.release and wl is not None and ours:
        step = dataclasses.replace(step, release_workload=wl.name)
    return dataclasses.replace(step, events=late + step.events)


def _late(s: Deleting) -> bool:
    started = s.release.deleting or s.now  # (detached: never late, nothing waits on it)
    return (s.now - started).total_seconds() >= s.release.spec.progress_deadline_seconds


def _workload_back(
    s: Deleting, wl: snapshot.WorkloadView, want: int
) -> Cleanup | tuple[act.RecordEvent, ...]:
    """The adopted Deployment's replicas back, then its pods available: a step to take, or
    done (with a Warning when the deadline cut the wait short)."""
    if wl.spec_replicas < want:
        message = (
            f"Deployment {wl.name} gets its {want} replicas back; the Service keeps this"
            " Release's pods until they are available"
        )
        event = act.RecordEvent(Reason.WORKLOAD_RESTORING, message)
        return Cleanup(scale_workload=want, events=(event,), requeue_after=POLL_SECONDS)
    if wl.available_replicas >= want:
        return ()
    if not _late(s):
        return Cleanup(requeue_after=POLL_SECONDS)
    message = (
        f"Deployment {wl.name} has {wl.available_replicas}/{want} pods available after"
        f" progressDeadlineSeconds={s.release.spec.progress_deadline_seconds}; the Service is"
        " given back anyway"
    )
    return (act.RecordEvent(Reason.WORKLOAD_NOT_RESTORED, message, "Warning"),)


def _service_back(s: Deleting) -> Cleanup:
    release, svc = s.release, s.service
    if svc is None or svc.owned:
        return Cleanup(release=True)  # nothing adopted: a Service we created goes with us
    deadline = release.spec.progress_deadline_seconds
    late = _late(s)
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
