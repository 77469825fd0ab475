"""The next safe step for one Release: `plan(snapshot) -> Plan`. Pure: no I/O, no clock.

One reconcile reads as ordered steps, each in its own module:

1. guards: refuse Services that are not ours; recover what a lost status forgot;
   consume user commands (`commands`);
2. a due spec.restartAt restarts the live revision's pods (`restart`); the strategy's step
   (`bluegreen`, `rolling`), or the steady state of the live revision;
3. housekeeping: scale down and delete what is no longer needed;
4. point the Services (`services`: the only place a selector moves) and, with
   spec.traffic, the route (`traffic`: the only place a route weight moves);
5. tell the notifications what changed (`notify`);
6. the next status (`status`).

A ReleaseGroup's decisions (when its members flip together) are `group.plan_group`.
"""

from __future__ import annotations

import datetime
from typing import Any

from greenlight.api import release as api
from greenlight.engine import (
    bluegreen,
    canary,
    checks,
    commands,
    guards,
    housekeeping,
    lifecycle,
    naming,
    notify,
    restart,
    roles,
    rolling,
    services,
    snapshot,
    status,
    traffic,
    workload,
)
from greenlight.engine.draft import Plan, StrategyName, Work
from greenlight.engine.reasons import Reason
from greenlight.engine.strategy import Strategy

STRATEGIES: dict[StrategyName, Strategy] = {
    "blueGreen": bluegreen.STRATEGY,
    "rolling": rolling.STRATEGY,
}

__all__ = ["Plan", "plan"]


def plan(snap: snapshot.Snapshot) -> Plan:
    """Read the snapshot, decide every safe step that is due now, and the next status."""
    resolved = workload.resolve(snap)  # spec.workloadRef: the template is its Deployment's
    if isinstance(resolved, str):
        w = Work(snap)
        workload.refuse(w, resolved)
        return _done(w)
    w = Work(resolved)
    if not guards.services_are_ours(w) or not traffic.route_is_ours(w):
        return _done(w)  # refused: nothing but the Release's own status changes
    problem = checks.template_error(w)
    if problem is not None:  # a check's template is missing or cannot make it
        if w.snap.release.status.message != problem:
            w.event(Reason.INVALID_SPEC, problem, warning=True)
        w.outcome("Degraded", problem, Reason.INVALID_SPEC)
        w.refused = True
        return _done(w)
    desired = w.revision.hash  # the spec's template and the config it references, observed
    guards.recover(w, desired)
    if commands.consume(w, desired):
        return _done(w)
    lifecycle.undo_hold(w, desired)
    # (an undo wrote or holds the spec: w.revision is that one)
    template, desired = w.revision.template, w.revision.hash
    restart.carry_out(w)  # the live revision's, in flight or not (a candidate is new pods)
    live = w.d.live_hash
    # A strategy switch takes effect at the next release, never mid-release (a newer spec
    # during a release continues it: a rolling release's pods of every revision still serve).
    strategy = _strategy(w, w.d.strategy if w.d.in_flight and w.d.strategy else _chosen(w.spec))
    if w.revision.missing and w.snap.deployment(desired) is None:
        _config_missing(w)
    elif live is None and _no_traffic(w) and not _first_release_gated(w, desired):
        _first_release(w, desired, template)
    elif live == desired:
        lifecycle.supersede(w, "the spec went back to the live revision")
        returning = _strategy(w, w.d.strategy) if w.d.strategy else None
        if returning is not None and not returning.return_to_live(w, live):
            w.outcome("Progressing", f"returning to revision {w.d.live_revision}", Reason.ROLL_BACK)
        else:
            w.d.strategy = None
            _steady(w, desired, template)
            strategy.verify_live(w, live)
    else:
        waits = lifecycle.held(w) and w.snap.deployment(desired) is None
        if w.d.candidate_hash not in (None, desired) and not waits:
            # (held before the new revision exists: the one in flight keeps its pods, and a
            # rolling release keeps serving from every revision, until the hold ends)
            lifecycle.supersede(w, "a newer spec replaced it")
        strategy.release(w, live, desired, template)
    housekeeping.tidy(w)
    workload.drain(w)  # spec.workloadRef: adopt the Deployment, or drain it per its policy
    services.point(w)
    traffic.point(w)
    roles.label(w)
    return _done(w)


def _done(w: Work) -> Plan:
    """Tell the notifications what changed; the next status."""
    notify.transitions(w)
    return status.finish(w)


def _strategy(w: Work, name: StrategyName) -> Strategy:
    """Rolling steps behind a gateway move requests, not replicas: the canary."""
    return canary.STRATEGY if name == "rolling" and w.spec.gateway else STRATEGIES[name]


def _chosen(spec: api.ReleaseSpec) -> StrategyName:
    return "rolling" if spec.strategy.rolling is not None else "blueGreen"


def _no_traffic(w: Work) -> bool:
    """No live traffic to protect: the Service is ours (or absent) and selects no revision."""
    svc = w.snap.live_service
    return svc is None or (svc.owned and naming.LABEL_HASH not in svc.selector)


def _config_missing(w: Work) -> None:
    """The revision references a ConfigMap or Secret that does not exist (not optional): it
    cannot start. Nothing is created for it; the live revision (and any candidate in flight)
    stays as it is until the object exists."""
    names = ", ".join(str(ref) for ref in w.revision.missing)
    w.outcome(
        "Progressing",
        f"the new revision waits for {names}: its pod template references it (create it, or"
        " mark the reference optional: true); nothing changes until it exists",
        Reason.CONFIG_MISSING,
    )


def _first_release_gated(w: Work, desired: str) -> bool:
    """The first revision goes live as any later one, through its strategy's gates: opted in
    (firstReleaseChecks), or such a release already in flight or aborted (it never goes live
    directly, whatever the spec says now)."""
    bluegreen = w.spec.strategy.effective_blue_green
    return bluegreen.first_release_checks or w.d.in_flight or w.d.aborted_hash == desired


def _first_release(w: Work, desired: str, template: dict[str, Any]) -> None:
    """No traffic yet: the first revision fills the live Service directly."""
    w.d.live_hash, w.d.live_color = desired, "blue"
    _steady(w, desired, template)
    w.event(Reason.FIRST_RELEASE, f"revision {w.d.live_revision} (blue) fills the live Service")


def _steady(w: Work, live: str, template: dict[str, Any]) -> None:
    """No candidate: the live revision follows spec.replicas, and says when it cannot."""
    color: api.Color = w.d.live_color or "blue"
    entry = w.ensure_deployment(live, template, color, w.spec.replicas)
    w.update_entry(live, outcome="Live")
    w.d.live_revision = entry.revision
    d = w.snap.deployment(live)
    label = f"revision {entry.revision} ({color})"
    if d is not None and w.restarting:
        restart.report(w, d, label)
        return
    if d is not None and d.fully_available(w.spec.replicas):
        if entry.promoted_at is None:
            w.update_entry(live, promoted_at=w.now)
        w.outcome("Healthy", f"{label} is live", Reason.RELEASE_COMPLETE)
        return
    ready = f"{d.available_replicas if d else 0}/{w.spec.replicas}"
    deadline = f"progressDeadlineSeconds={w.spec.progress_deadline_seconds}"
    if entry.promoted_at is None:  # the first release coming up: no progress for that long
        if lifecycle.deadline_passed(w, entry.created_at, d):
            message = f"no progress for {deadline} at {ready} available"
            w.outcome("Degraded", f"{label}: {message}", Reason.PROGRESS_DEADLINE_EXCEEDED)
            return
    elif lifecycle.deadline_passed(w, _unavailable_since(w), None):  # short for that long
        message = f"{ready} available for more than {deadline}"
        w.outcome("Degraded", f"{label}: {message}", Reason.LIVE_REVISION_UNAVAILABLE)
        return
    w.outcome("Progressing", f"{label}: {ready} available", Reason.LIVE_REVISION_PROGRESSING)


def _unavailable_since(w: Work) -> datetime.datetime:
    """When the live revision stopped being fully available (the Available condition)."""
    before = next((c for c in w.snap.release.status.conditions if c.type == "Available"), None)
    if before is not None and before.status == "False":
        return before.last_transition_time
    return w.now
