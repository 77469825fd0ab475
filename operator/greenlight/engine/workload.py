"""spec.workloadRef: release the pod template of a Deployment someone else renders.

The referenced Deployment (the original) keeps being rendered by kustomize, Helm or GitOps;
Greenlight reads its pod template (`resolve`: each change is a new revision, released as any
other: checks, flip, undo) and runs the pods itself, in its revisions' Deployments. Adoption
is three steps, one safe step per reconcile:

1. `drain` labels the original ours and records its replicas on it (`AdoptWorkload`:
   `naming.ANNOTATION_ORIGINAL_REPLICAS`, written before any scale, never changed);
2. the first revision comes up beside it, sized to at least those replicas
   (`adopting_size`), while the original's pods keep serving behind the adopted Service;
   the Service moves to revision 1 only once every one of its pods is available (blue-green);
3. the original is drained per spec.workloadRef.scaleDown: `afterFlip` (to 0 once a Greenlight
   revision has been live for scaleDownDelaySeconds), `progressive` (down by each available
   pod of revision 1 the Service selects, so the ready pods behind it never drop below the
   original's count; to 0 after the flip as afterFlip), or `never`. On every reconcile, not
   only the first: a scale-up by anyone else (a GitOps re-apply) is taken back, with a
   Warning naming the field manager that wrote spec.replicas.

"Adopted with zero restarts" means: no pod of the original is restarted or deleted before
revision 1 serves; revision 1's pods are new pods running the same pod template (Greenlight's
labels added), so no container restarts and no request fails. The original's pods are not
taken over (a ReplicaSet owns them). The hand-back (deletion, detach) is engine/finalize.py.
"""

from __future__ import annotations

import dataclasses

import pydantic

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import naming, snapshot
from greenlight.engine.draft import Work
from greenlight.engine.reasons import Reason


def resolve(snap: snapshot.Snapshot) -> snapshot.Snapshot | str:
    """The snapshot with spec.template taken from spec.workloadRef's Deployment (unchanged
    without one), or why it cannot be (the message names the field)."""
    spec, release = snap.release.spec, snap.release
    ref = spec.workload_ref
    if ref is None:
        return snap
    wl = snap.workload
    where = f"spec.workloadRef: Deployment {ref.name!r}"
    if wl is None or wl.name != ref.name:
        return f"{where} not found in namespace {release.namespace}"
    if wl.adopted_by not in (None, release.name):
        return f"{where} is adopted by Release {wl.adopted_by!r}"
    try:
        template = api.PodTemplate.model_validate(wl.template)
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        return f"{where}: its pod template: {first['msg']}"
    bare = [c.name for c in template.spec.containers if c.readiness_probe is None]
    if spec.health_check is None and bare:
        return (
            f"spec.healthCheck: required: container {bare[0]!r} of Deployment {ref.name!r} has"
            " no readinessProbe; add spec.healthCheck (e.g. httpGet) or set"
            " spec.healthCheck.disabled: true"
        )
    resolved = spec.model_copy(update={"template": template})
    return _with_spec(snap, resolved)


def _with_spec(snap: snapshot.Snapshot, spec: api.ReleaseSpec) -> snapshot.Snapshot:
    return dataclasses.replace(snap, release=dataclasses.replace(snap.release, spec=spec))


def refuse(w: Work, problem: str) -> None:
    """spec.workloadRef cannot be released: nothing but the Release's status changes."""
    if w.snap.release.status.message != problem:
        w.event(Reason.WORKLOAD_INVALID, problem, warning=True)
    w.outcome("Degraded", problem, Reason.WORKLOAD_INVALID)
    w.refused = True


def adopting_size(w: Work) -> int:
    """Blue-green, nothing live yet: the first revision brings up at least the original's
    replicas as recorded (its capacity never drops at the takeover)."""
    wl = w.snap.workload
    if w.spec.workload_ref is None or wl is None:
        return 0
    if wl.adopted_by == w.name and wl.original_replicas is not None:
        return wl.original_replicas
    return wl.spec_replicas  # adopted in this reconcile: what is being recorded


def drain(w: Work) -> None:
    """Adopt the original (label, record) or scale it toward what its policy allows now."""
    ref, wl = w.spec.workload_ref, w.snap.workload
    if ref is None or wl is None or w.refused:
        return
    if wl.adopted_by != w.name or wl.original_replicas is None:
        w.do(act.AdoptWorkload(wl.name, wl.spec_replicas))
        message = (
            f"Deployment {wl.name}: its pod template is released by this Release; its"
            f" {wl.spec_replicas} replicas are recorded ({naming.ANNOTATION_ORIGINAL_REPLICAS})"
            " and put back when the Release is deleted or detached; its pods serve until a"
            f" Greenlight revision is live (spec.workloadRef.scaleDown: {ref.scale_down})"
        )
        if w.spec.replicas < wl.spec_replicas:
            message += (
                f"; spec.replicas={w.spec.replicas} is fewer: revision 1 comes up with"
                f" {wl.spec_replicas} and follows spec.replicas after the flip"
            )
        w.event(Reason.WORKLOAD_ADOPTED, message)
        for hpa in wl.autoscalers:
            w.event(
                Reason.WORKLOAD_TARGETED,
                f"HorizontalPodAutoscaler {hpa} scales Deployment {wl.name}, which Greenlight"
                f" drains: point its scaleTargetRef at Release {w.name} (kind: Release,"
                " apiVersion: greenlight.dev/v1alpha1; it has the scale subresource)",
                warning=True,
            )
        for pdb in wl.budgets:
            w.event(
                Reason.WORKLOAD_TARGETED,
                f"PodDisruptionBudget {pdb} selects Deployment {wl.name}'s pods, which Greenlight"
                " drains: give it a selector the Release's pods carry (the template's labels)",
                warning=True,
            )
        return
    target = _target(w, wl, ref.scale_down)
    if target is None or wl.spec_replicas <= target:
        return
    w.do(act.ScaleWorkload(wl.name, target))
    policy = f"spec.workloadRef.scaleDown: {ref.scale_down}"
    manager = wl.replicas_manager
    if wl.scaled and manager is not None and manager != naming.MANAGER:
        w.event(
            Reason.WORKLOAD_RESCALED,
            f"Deployment {wl.name} was scaled to {wl.spec_replicas} by {manager}; scaled to"
            f" {target} again ({policy}; its pods serve no Greenlight revision: remove its"
            " replicas from what renders it, or scale the Release instead)",
            warning=True,
        )
    else:
        w.event(
            Reason.WORKLOAD_SCALED_DOWN,
            f"Deployment {wl.name} scaled from {wl.spec_replicas} to {target} ({policy})",
        )


def _target(w: Work, wl: snapshot.WorkloadView, policy: api.ScaleDown) -> int | None:
    """The original's replicas its policy allows now (None: no limit)."""
    if policy == "never":
        return None
    flipped = [e.promoted_at for e in w.history if e.promoted_at is not None]
    delay = w.spec.strategy.effective_blue_green.scale_down_delay_seconds
    after_flip = 0 if flipped and w.past(min(flipped), delay) else None
    if policy == "afterFlip":
        return after_flip
    original = wl.original_replicas or 0
    progressive = max(0, original - _served(w))
    return progressive if after_flip is None else min(progressive, after_flip)


def _served(w: Work) -> int:
    """Available pods of the revision in flight (or live) that the live Service selects now
    (the original's selector selects them too when their labels match it)."""
    svc = w.snap.live_service
    h = w.d.candidate_hash or w.d.live_hash
    d = w.snap.deployment(h)
    if svc is None or d is None or not svc.selector or w.spec.template is None:
        return 0
    labels = {**(w.spec.template.metadata.labels or {}), **naming.pod_labels(w.name, h or "")}
    if any(labels.get(k) != v for k, v in svc.selector.items()):
        return 0
    return d.available_replicas
