"""The plan's last step: order the writes, and turn the draft into the next status."""

from __future__ import annotations

import datetime
from typing import Any

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import config, naming, snapshot
from greenlight.engine.draft import Plan, Work
from greenlight.engine.reasons import Reason


def _order(a: act.Write, draining: set[str]) -> float:
    """Grow before the Service moves; shrink and delete only after it has moved. Pods' roles
    move with the Services, `draining` last (a draining app closing its connections sends its
    clients to the revision now live; a worker's new live one takes over before the old one
    stops). The sort is stable: a rolling batch keeps the order it was planned in (olds
    shrink, then new grows)."""
    if isinstance(a, act.SetPodRole):
        return 2.5 if a.role == "draining" else 2
    if isinstance(a, act.AdoptWorkload):
        return 0  # its replicas recorded before anything else is written
    if isinstance(a, act.CreateDeployment | act.LabelDeployment | act.RestartDeployment):
        return 1
    if isinstance(a, act.ScaleWorkload):
        return 3
    if isinstance(a, act.ScaleDeployment):
        return 3 if a.replicas == 0 and a.name not in draining else 1
    if isinstance(a, act.ApplyBackend):
        return 1
    if isinstance(a, act.ApplyService | act.ApplyRoute):
        return 2
    if isinstance(a, act.DeleteDeployment):
        return 4
    return 5  # the Release's own: commands cleared, an undo's template written back


def finish(w: Work) -> Plan:
    """Writes in a safe order, the next status, and the next wake-up."""
    draining = {naming.deployment_name(w.name, h) for h in w.shrinking}
    writes = sorted(w.writes, key=lambda a: _order(a, draining))
    live = w.snap.deployment(w.d.live_hash)
    candidate = w.snap.deployment(w.d.candidate_hash)
    old = w.snap.release.status
    fields = old.model_dump()
    fields.update(w.d.fields())
    fields.update(
        phase=w.phase,
        message=w.message,
        observed_generation=w.snap.release.generation,
        replicas=w.spec.replicas,
        desired_hash=w.spec_hash if config.spec_references(w.snap.release.spec) else None,
        selector=",".join(f"{k}={v}" for k, v in naming.pod_labels(w.name, w.d.live_hash).items())
        if w.d.live_hash
        else "",
        ready_replicas=live.ready_replicas if live else 0,
        available_replicas=live.available_replicas if live else 0,
        candidate_ready_replicas=candidate.ready_replicas if candidate else 0,
        revisions=[
            api.RevisionReplicas(
                revision=w.revision_of(d.template_hash) or d.revision,
                template_hash=d.template_hash,
                replicas=d.spec_replicas,
                available_replicas=d.available_replicas,
            )
            for d in w.snap.deployments
            if d.spec_replicas or d.replicas
        ],
        history=w.history,
        checks=w.checks,
        checks_skipped=w.checks_skipped,
        traffic=w.traffic,
        conditions=_conditions(w, live, old.conditions),
    )
    status = api.ReleaseStatus(**fields)
    due = [t for t in w.due if t > w.now]
    requeue = min((t - w.now).total_seconds() for t in due) if due else None
    return Plan(
        writes=tuple(writes),
        events=tuple(w.events),
        jobs=tuple(w.jobs),
        measurements=tuple(w.measurements),
        notifications=tuple(w.notifications),
        status=status,
        requeue_after=requeue,
    )


def _conditions(
    w: Work, live: snapshot.DeploymentView | None, old: list[api.Condition]
) -> list[api.Condition]:
    want = w.spec.replicas
    if live is not None and w.d.candidate is not None and w.d.strategy == "blueGreen":
        want = live.spec_replicas  # the live slot keeps its size until the flip
    available = live is not None and (
        live.fully_available(want) or (w.restarting and live.available_replicas >= want)
    )
    progressing = w.phase in ("Progressing", "Paused")
    wanted = [
        (
            "Available",
            available,
            Reason.LIVE_REVISION_AVAILABLE if available else Reason.LIVE_REVISION_UNAVAILABLE,
            f"{live.available_replicas if live else 0}/{want} live pods available",
        ),
        ("Progressing", progressing, w.reason or w.phase, w.message),
        *kstatus(w.phase, w.reason, w.message),
    ]
    return conditions(wanted, old, w.now, w.snap.release.generation)


Wanted = tuple[str, bool, str, str]
"""A condition as decided: (type, true?, reason, message)."""


def kstatus(phase: str | None, reason: str | None, message: str) -> list[Wanted]:
    """The conditions kstatus (Flux's health checks, `kubectl wait`, Argo CD) read:
    Ready (the desired revision is live, fully available, nothing in flight), Reconciling (a
    release is in progress, or held), Stalled (it cannot progress without someone: Degraded,
    aborted, an invalid spec, a refused action)."""
    reason = reason or phase or "Unknown"
    return [
        ("Ready", phase == "Healthy", reason, message),
        ("Reconciling", phase in ("Progressing", "Paused"), reason, message),
        ("Stalled", phase in ("Degraded", "Aborted"), reason, message),
    ]


def conditions(
    wanted: list[Wanted], old: list[api.Condition], now: datetime.datetime, generation: int | None
) -> list[api.Condition]:
    """Conditions with lastTransitionTime kept while their status is unchanged."""
    out = []
    for type_, ok, reason, message in wanted:
        status: Any = "True" if ok else "False"
        before = next((c for c in old if c.type == type_), None)
        since = before.last_transition_time if before and before.status == status else now
        out.append(
            api.Condition(
                type=type_,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=since,
                observed_generation=generation,
            )
        )
    return out


def invalid(message: str, old: list[api.Condition], now: datetime.datetime, generation: int | None
            ) -> list[api.Condition]:  # fmt: skip
    """The conditions of a Release whose spec cannot be acted on."""
    return conditions(kstatus("Degraded", Reason.INVALID_SPEC, message), old, now, generation)


def apply_failed(
    status: api.ReleaseStatus, error: str, now: datetime.datetime, generation: int | None
) -> api.ReleaseStatus | None:
    """The status that reports an action the API server refused (None: it already does).

    Everything else is kept as observed: the failed step did not happen, so nothing it would
    have changed (live revision, history) may be claimed. The next successful reconcile writes
    its own conditions, which drops this one."""
    before = next((c for c in status.conditions if c.type == "ReconcileError"), None)
    if before is not None and before.message == error:
        return None
    condition = api.Condition(
        type="ReconcileError",
        status="True",
        reason=Reason.APPLY_FAILED,
        message=error,
        last_transition_time=before.last_transition_time if before else now,
        observed_generation=generation,
    )
    stalled = conditions(
        [
            ("Ready", False, Reason.APPLY_FAILED, error),
            ("Stalled", True, Reason.APPLY_FAILED, error),
        ],
        status.conditions,
        now,
        generation,
    )
    replaced = {"ReconcileError", "Ready", "Stalled"}
    others = [c for c in status.conditions if c.type not in replaced]
    return status.model_copy(
        update={
            "message": f"cannot apply: {error}",
            "conditions": [*others, *stalled, condition],
        }
    )
