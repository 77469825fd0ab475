"""Rolling: move replicas from the stable revision to the new one in batches, within
maxSurge / maxUnavailable, through optional setWeight and pause steps.

Shares everything else (history, commands, deadline, promote, abort) with blue-green through
`lifecycle`. Abort rolls back with the same batch function, roles swapped.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import checks, lifecycle, snapshot
from greenlight.engine.draft import Work
from greenlight.engine.reasons import Reason
from greenlight.engine.strategy import Strategy


def resolve(value: int | str, replicas: int, round_up: bool) -> int:
    """An int-or-percent against `replicas`, with Kubernetes' rounding (surge up, unavailable
    down)."""
    if isinstance(value, int):
        return value
    share = replicas * int(value.rstrip("%")) / 100
    return math.ceil(share) if round_up else math.floor(share)


def bounds(rolling: api.Rolling, replicas: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) in pods. Both 0 after rounding: allow one unavailable pod,
    as the Deployment controller does, so that a rollout can always proceed."""
    surge = resolve(rolling.max_surge, replicas, round_up=True)
    unavailable = resolve(rolling.max_unavailable, replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


@dataclasses.dataclass(frozen=True)
class Side:
    """Pods of one side of a move: desired and available (never more than desired)."""

    spec: int
    available: int


def batch(
    to: Side, olds: list[Side], target: int, replicas: int, surge: int, unavailable: int
) -> tuple[int, list[int]]:
    """One batch toward `target` pods on the new side: (new desired, desired of each old).

    Old pods go first (unavailable ones are free to remove; available ones only down to
    replicas - maxUnavailable), then the new side grows within replicas + maxSurge. Olds are
    drained in the order given.
    """
    old_spec = sum(o.spec for o in olds)
    old_available = sum(min(o.available, o.spec) for o in olds)
    new_available = min(to.available, to.spec)
    removable = (old_spec - old_available) + max(
        0, old_available + new_available - (replicas - unavailable)
    )
    old_target = min(old_spec, max(replicas - target, old_spec - removable))
    if to.spec > target:
        new_target = target
    else:
        new_target = max(to.spec, min(target, replicas + surge - old_target))
    remove = old_spec - old_target
    desired = []
    for o in olds:
        take = min(o.spec, remove)
        desired.append(o.spec - take)
        remove -= take
    return new_target, desired


def _side(d: snapshot.DeploymentView | None) -> Side:
    return Side(d.spec_replicas, d.available_replicas) if d else Side(0, 0)


def release(w: Work, live: str | None, desired: str, template: dict[str, Any]) -> None:
    """One step of a rolling release of `desired` while `live` is the stable revision."""
    spec, r = w.spec, w.d.rolling
    replicas = spec.replicas
    surge, unavailable = bounds(spec.strategy.rolling or api.Rolling(), replicas)
    if w.d.aborted_hash == desired:
        done = roll_back(w, live, surge, unavailable)
        lifecycle.aborted_outcome(w, desired)
        if not done:
            w.message = f"rolling back to revision {w.d.live_revision}: {w.message}"
        return
    new = w.snap.deployment(desired)
    if lifecycle.held(w) and new is None:
        w.outcome(
            "Paused", "paused (spec.paused): the new revision waits to be created", Reason.PAUSED
        )
        return
    if w.d.candidate_hash != desired:
        lifecycle.reset_rolling(w)
        r = w.d.rolling
    olds = _olds(w, desired, live)
    w.shrinking |= {d.template_hash for d in olds}
    target, hold, analysis = _step_target(w, new, olds, desired)

    new_target = new.spec_replicas if new else 0
    if not lifecycle.held(w) and not hold and all(lifecycle.settled(d) for d in (new, *olds)):
        new_target = _move(w, new, olds, target, surge, unavailable)
    c, started = lifecycle.start_candidate(w, "rolling", live, desired, template, new_target)
    label = f"revision {c.revision}"
    if started:
        w.event(
            Reason.PROGRESSING,
            f"{label}: rolling {replicas} replicas"
            f" (maxSurge {surge}, maxUnavailable {unavailable})",
        )
    available = new.available_replicas if new else 0
    r.weight = math.floor(100 * min(available, replicas) / replicas) if replicas else 100
    steps = (spec.strategy.rolling or api.Rolling()).steps
    index = r.step if r.step is not None else len(steps)

    if analysis is not None and analysis.state == "failed":
        _abort(w, desired, live, Reason.ANALYSIS_FAILED, f"step {index}: {analysis.message}")
        return
    if analysis is not None and not lifecycle.held(w):
        how = "" if analysis.state == "running" else "; promote with skip-checks or abort"
        w.outcome(
            "Paused" if analysis.state == "inconclusive" else "Progressing",
            f"{label}: step {index} analysis with {r.weight}% on the new revision:"
            f" {analysis.message}{how}",
            Reason.CHECK_INCONCLUSIVE if analysis.state == "inconclusive" else Reason.CHECKS,
        )
        return
    if index >= len(steps) and _reached(new, olds, replicas, replicas):
        lifecycle.promote(w, desired)
        w.outcome(
            "Healthy", f"{label} is live: {replicas}/{replicas} available", Reason.RELEASE_COMPLETE
        )
        return
    if lifecycle.held(w) or hold:
        how = ""
        pause = steps[index].pause if index < len(steps) else None
        if not lifecycle.held(w) and pause is not None and pause.duration is None:
            how = "; promote with kubectl annotate release <name> greenlight.dev/promote=true"
        w.outcome(
            "Paused",
            f"{label}: paused at step {index} with {r.weight}% on the new revision{how}",
            Reason.PAUSED if lifecycle.held(w) else Reason.PAUSE_STEP,
        )
        return
    assert r.progress_at is not None
    if lifecycle.deadline_passed(w, r.progress_at, new):
        _abort(
            w,
            desired,
            live,
            Reason.PROGRESS_DEADLINE_EXCEEDED,
            f"no progress for progressDeadlineSeconds={spec.progress_deadline_seconds}"
            f" at {available}/{target} new pods available",
        )
        return
    w.outcome(
        "Progressing",
        f"{label}: {available}/{target} new pods available ({r.weight}% of {replicas})",
        Reason.CANDIDATE_PROGRESSING,
    )


def _abort(w: Work, desired: str, live: str | None, reason: Reason, message: str) -> None:
    """Abort, and start moving back in this same step (the new pods are drained within the
    bounds, never dropped at once)."""
    lifecycle.abort(w, desired, reason, message)
    surge, unavailable = bounds(w.spec.strategy.rolling or api.Rolling(), w.spec.replicas)
    if not roll_back(w, live, surge, unavailable):
        w.message = f"rolling back to revision {w.d.live_revision}: {w.message}"


def _step_target(
    w: Work,
    new: snapshot.DeploymentView | None,
    olds: list[snapshot.DeploymentView],
    desired: str,
) -> tuple[int, bool, checks.GateState | None]:
    """Walk the steps from the current one: (new pods to aim for, hold here, the analysis it
    holds at). A promote passes pauses and weights; analysis steps still gate it unless it
    skips checks."""
    r, replicas = w.d.rolling, w.spec.replicas
    steps = (w.spec.strategy.rolling or api.Rolling()).steps
    index = r.step or 0
    promoted = w.d.promote_requested == desired
    target, hold, analysis = replicas, False, None
    while index < len(steps):
        step = steps[index]
        if step.analysis is not None:
            skip = promoted and w.checks_skipped == desired
            revision = w.revision_of(desired) or 0
            stage = checks.step_stage(index)
            g = checks.gate(w, stage, step.analysis.checks, desired, revision, skip)
            r.progress_at = w.now  # checks running are not a lack of progress
            if g.state != "passed":
                analysis, hold = g, True
                break
        elif promoted:
            pass
        elif step.pause is not None:
            r.step_started_at = r.step_started_at or w.now
            r.progress_at = w.now  # a pause is not a lack of progress
            if step.pause.duration is None or not w.past(
                r.step_started_at, lifecycle.seconds(step.pause.duration)
            ):
                hold = True
                break
        else:
            target = math.ceil(replicas * (step.set_weight or 0) / 100)
            if not _reached(new, olds, target, replicas):
                break
            target = replicas
        index += 1
        r.step_started_at = None
    r.step = index if steps else None
    return target, hold, analysis


def _olds(w: Work, desired: str, live: str | None) -> list[snapshot.DeploymentView]:
    """Deployments with pods other than `desired`: superseded ones first, the stable one last."""
    others = [d for d in w.snap.deployments if d.template_hash != desired and d.spec_replicas > 0]
    return sorted(others, key=lambda d: d.template_hash == live)


def _reached(
    new: snapshot.DeploymentView | None,
    olds: list[snapshot.DeploymentView],
    target: int,
    replicas: int,
) -> bool:
    """`target` new pods are available and the olds are down to replicas - target."""
    if target == 0:
        return True
    return (
        new is not None
        and lifecycle.settled(new)
        and new.spec_replicas == target
        and new.available_replicas >= target
        and sum(o.spec_replicas for o in olds) <= replicas - target
        and all(lifecycle.settled(o) for o in olds)
    )


def _move(
    w: Work,
    new: snapshot.DeploymentView | None,
    olds: list[snapshot.DeploymentView],
    target: int,
    surge: int,
    unavailable: int,
) -> int:
    """Scale the olds down for one batch; return the new revision's replicas for it."""
    r = w.d.rolling
    new_target, old_targets = batch(
        _side(new), [_side(o) for o in olds], target, w.spec.replicas, surge, unavailable
    )
    current = new.spec_replicas if new else 0
    delay = (w.spec.strategy.rolling or api.Rolling()).step_delay_seconds
    growing = new_target > current and delay and r.last_batch_at is not None
    if growing and r.last_batch_at is not None and not w.past(r.last_batch_at, delay):
        new_target = current  # stepDelaySeconds between batches
    for o, n in zip(olds, old_targets, strict=True):
        if n != o.spec_replicas:
            w.do(act.ScaleDeployment(o.name, n))
            r.progress_at = w.now
    if new_target > current:
        r.last_batch_at = r.progress_at = w.now
    return new_target


def roll_back(w: Work, live: str | None, surge: int, unavailable: int) -> bool:
    """Move replicas back to the stable revision within the same bounds. True when done."""
    stable = w.snap.deployment(live)
    froms = [d for d in w.snap.deployments if d.template_hash != live and d.spec_replicas > 0]
    w.shrinking |= {d.template_hash for d in froms}
    replicas = w.spec.replicas
    if stable is not None and all(lifecycle.settled(d) for d in (stable, *froms)):
        new_target, old_targets = batch(
            _side(stable), [_side(d) for d in froms], replicas, replicas, surge, unavailable
        )
        for d, n in zip(froms, old_targets, strict=True):
            if n != d.spec_replicas:
                w.do(act.ScaleDeployment(d.name, n))
        if new_target != stable.spec_replicas:
            w.do(act.ScaleDeployment(stable.name, new_target))
    done = stable is not None and _reached(stable, froms, replicas, replicas)
    w.d.rolling.rolling_back = not done
    if done:
        w.d.strategy = None
    return done


def return_to_live(w: Work, live: str) -> bool:
    surge, unavailable = bounds(w.spec.strategy.rolling or api.Rolling(), w.spec.replicas)
    return roll_back(w, live, surge, unavailable)


STRATEGY = Strategy("rolling", release, return_to_live)
