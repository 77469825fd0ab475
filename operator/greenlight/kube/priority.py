"""Which lane of the work queue an event puts its Release in: the fairness policy, pure.

Decided where the event is known (handlers.py passes what the informers delivered and what the
Release index keeps), from the new state alone: a trigger is URGENT when the Release has
something a user asked for that is not acted on yet, or a decision may just have become due;
TRAFFIC when that decision moves live traffic (a command, a flip, a repair); anything else is
BULK churn. No memory of the previous event is needed: the Release's own status says what was
last acted on (`observedGeneration`), and commands stay as annotations until consumed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from greenlight.engine import naming, snapshot
from greenlight.kube.workqueue import Priority


def release_event(indexed: Any, deployments: Iterable[Any] = ()) -> Priority:
    """A Release event, given its Release index entry (`reconcile.Indexed`, or None when gone)
    and its Deployments (their index views).

    TRAFFIC: a command annotation waiting to be consumed (undo, abort, promote, retry), or a
    spec not acted on yet whose revision already has every pod available (an undo sets the
    template back to a warm revision; a GitOps revert does the same): the flip is due now.
    URGENT: any other spec not acted on yet (generation ahead of status.observedGeneration: a
    new image, a pause), an invalid spec to report, or a deletion. BULK: status-only events
    (our own status writes), label edits."""
    if indexed is None:
        return Priority.URGENT  # deleted: forget it (cheap, and frees its metrics)
    view: snapshot.ReleaseView | None = indexed.view
    if view is None:
        return Priority.URGENT
    if view.annotations:
        return Priority.TRAFFIC
    if view.status.observed_generation == view.generation:
        return Priority.BULK
    desired = naming.template_hash(naming.effective_template(view.spec))
    for d in deployments:
        if d.template_hash == desired and d.fully_available(view.spec.replicas):
            return Priority.TRAFFIC
    return Priority.URGENT


def deployment_event(deployment: snapshot.DeploymentView | None, indexed: Any) -> Priority:
    """A Deployment event of a Release, given the Deployment (its index view) and the Release's
    index entry.

    TRAFFIC: the Release has a candidate in flight (blue-green or rolling) and this Deployment
    has settled (its controller observed the spec, every pod it wants is updated and available,
    no surplus pod left): that is what a flip, the next rolling batch or an abort waits on. BULK:
    progress on the way there, and every event of a Release with nothing in flight (a scale
    down, a trimmed revision)."""
    view: snapshot.ReleaseView | None = getattr(indexed, "view", None)
    if deployment is None or view is None or view.status.candidate_hash is None:
        return Priority.BULK
    if deployment.fully_available(deployment.spec_replicas):
        return Priority.TRAFFIC
    return Priority.BULK


def job_event(job: snapshot.JobView | None) -> Priority:
    """A check's Job: TRAFFIC once it finished (a verdict to record: a flip or a flip back may
    be due), BULK while it runs."""
    return Priority.TRAFFIC if job is not None and (job.succeeded or job.failed) else Priority.BULK


def service_event(service: Mapping[str, Any], indexed: Any) -> Priority:
    """A Service of a Release (its body, or the Service index's record): TRAFFIC when its selector
    is not what the Release's status says it serves (a hand edit to repair: live traffic may be
    going to the wrong revision; or our own flip, whose status write is on its way), else BULK."""
    view: snapshot.ReleaseView | None = getattr(indexed, "view", None)
    if view is None:
        return Priority.BULK
    name = (service.get("metadata") or {}).get("name")
    selected = ((service.get("spec") or {}).get("selector") or {}).get(naming.LABEL_HASH)
    st = view.status
    if name == view.spec.service.name:
        want = st.live_hash
    elif view.spec.preview_service is not None and name == view.spec.preview_service.name:
        want = st.candidate_hash or st.live_hash
    else:
        return Priority.BULK
    return Priority.BULK if want is None or selected == want else Priority.TRAFFIC
