"""Rolling: move replicas from the stable revision to the new one in batches, within
maxSurge / maxUnavailable, through optional setWeight and pause steps.

Shares everything else (history, commands, deadline, promote, abort) with blue-green via
`plan.Work`. Abort rolls back with the same batch function, roles swapped.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import re
from typing import Any

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import plan, snapshot


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


def _settled(d: snapshot.DeploymentView | None) -> bool:
    return d is None or (d.observed_generation >= d.generation and d.replicas == d.spec_replicas)


def _side(d: snapshot.DeploymentView | None) -> Side:
    return Side(d.spec_replicas, d.available_replicas) if d else Side(0, 0)


def _seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)([smh])", duration)
    assert match, duration  # the CRD pattern guarantees it
    return int(match[1]) * {"s": 1, "m": 60, "h": 3600}[match[2]]


def release_candidate(
    w: plan.Work, live: str | None, desired: str, template: dict[str, Any]
) -> None:
    """One step of a rolling release of `desired` while `live` is the stable revision."""
    spec, st = w.spec, w.st
    replicas = spec.replicas
    surge, unavailable = bounds(spec.strategy.rolling or api.Rolling(), replicas)
    if st["aborted_hash"] == desired:
        if not roll_back(w, live, surge, unavailable):
            plan.aborted_outcome(w, desired)
            w.message = f"rolling back to revision {st['live_revision']}: {w.message}"
            return
        plan.aborted_outcome(w, desired)
        return
    new = w.snap.deployment(desired)
    if spec.paused and new is None:
        w.outcome("Paused", "paused (spec.paused): the new revision waits to be created", "Paused")
        return
    if st["candidate_hash"] != desired:
        st.update(current_step=0, step_started_at=None, progress_at=w.now, last_batch_at=None)
    olds = _olds(w, desired, live)
    w.draining |= {d.template_hash for d in olds}
    target, hold = _step_target(w, new, olds, desired)

    new_target = new.spec_replicas if new else 0
    if not spec.paused and not hold and all(_settled(d) for d in (new, *olds)):
        new_target = _move(w, new, olds, target, surge, unavailable)
    revision, _, started = plan.start_candidate(w, "rolling", live, desired, template, new_target)
    label = f"revision {revision}"
    if started:
        w.event(
            "Progressing",
            f"{label}: rolling {replicas} replicas"
            f" (maxSurge {surge}, maxUnavailable {unavailable})",
        )
    available = new.available_replicas if new else 0
    st["weight"] = math.floor(100 * min(available, replicas) / replicas) if replicas else 100
    steps = (spec.strategy.rolling or api.Rolling()).steps
    index = st["current_step"] if st["current_step"] is not None else len(steps)

    if index >= len(steps) and _reached(new, olds, replicas, replicas):
        plan.promote(w, desired)
        st.update(current_step=None, step_started_at=None, progress_at=None, last_batch_at=None)
        w.outcome("Healthy", f"{label} is live: {replicas}/{replicas} available", "ReleaseComplete")
        return
    if spec.paused or hold:
        how = ""
        pause = steps[index].pause if index < len(steps) else None
        if not spec.paused and pause is not None and pause.duration is None:
            how = "; promote with kubectl annotate release <name> greenlight.dev/promote=true"
        w.outcome(
            "Paused",
            f"{label}: paused at step {index} with {st['weight']}% on the new revision{how}",
            "Paused" if spec.paused else "PauseStep",
        )
        return
    deadline = st["progress_at"] + datetime.timedelta(seconds=spec.progress_deadline_seconds)
    if w.now >= deadline:
        plan.abort(
            w,
            desired,
            "ProgressDeadlineExceeded",
            f"no progress for progressDeadlineSeconds={spec.progress_deadline_seconds}"
            f" at {available}/{target} new pods available",
        )
        st["strategy"] = "rolling"
        st["rolling_back"] = True
        return
    w.wake_at(deadline)
    w.outcome(
        "Progressing",
        f"{label}: {available}/{target} new pods available ({st['weight']}% of {replicas})",
        "CandidateProgressing",
    )


def _step_target(
    w: plan.Work,
    new: snapshot.DeploymentView | None,
    olds: list[snapshot.DeploymentView],
    desired: str,
) -> tuple[int, bool]:
    """Walk the steps from the current one: (new pods to aim for, hold at a pause)."""
    st, replicas = w.st, w.spec.replicas
    steps = (w.spec.strategy.rolling or api.Rolling()).steps
    index = st["current_step"] or 0
    if st["promote_requested"] == desired:
        index = len(steps)  # promote skips the remaining steps
    target, hold = replicas, False
    while index < len(steps):
        step = steps[index]
        if step.pause is not None:
            started = st["step_started_at"] or w.now
            st["step_started_at"] = started
            st["progress_at"] = w.now  # a pause is not a lack of progress
            if step.pause.duration is None:
                hold = True
                break
            due = started + datetime.timedelta(seconds=_seconds(step.pause.duration))
            if w.now < due:
                w.wake_at(due)
                hold = True
                break
        else:
            target = math.ceil(replicas * (step.set_weight or 0) / 100)
            if not _reached(new, olds, target, replicas):
                break
            target = replicas
        index += 1
        st["step_started_at"] = None
    st["current_step"] = index if steps else None
    return target, hold


def _olds(w: plan.Work, desired: str, live: str | None) -> list[snapshot.DeploymentView]:
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
        and _settled(new)
        and new.spec_replicas == target
        and new.available_replicas >= target
        and sum(o.spec_replicas for o in olds) <= replicas - target
        and all(_settled(o) for o in olds)
    )


def _move(
    w: plan.Work,
    new: snapshot.DeploymentView | None,
    olds: list[snapshot.DeploymentView],
    target: int,
    surge: int,
    unavailable: int,
) -> int:
    """Scale the olds down for one batch; return the new revision's replicas for it."""
    st = w.st
    new_target, old_targets = batch(
        _side(new), [_side(o) for o in olds], target, w.spec.replicas, surge, unavailable
    )
    current = new.spec_replicas if new else 0
    delay = (w.spec.strategy.rolling or api.Rolling()).step_delay_seconds
    if new_target > current and delay and st["last_batch_at"] is not None:
        due = st["last_batch_at"] + datetime.timedelta(seconds=delay)
        if w.now < due:
            w.wake_at(due)
            new_target = current
    for o, n in zip(olds, old_targets, strict=True):
        if n != o.spec_replicas:
            w.do(act.ScaleDeployment(o.name, n))
            st["progress_at"] = w.now
    if new_target > current:
        st.update(last_batch_at=w.now, progress_at=w.now)
    return new_target


def roll_back(w: plan.Work, live: str | None, surge: int, unavailable: int) -> bool:
    """Move replicas back to the stable revision within the same bounds. True when done."""
    stable = w.snap.deployment(live)
    froms = [d for d in w.snap.deployments if d.template_hash != live and d.spec_replicas > 0]
    w.draining |= {d.template_hash for d in froms}
    replicas = w.spec.replicas
    if stable is not None and all(_settled(d) for d in (stable, *froms)):
        new_target, old_targets = batch(
            _side(stable), [_side(d) for d in froms], replicas, replicas, surge, unavailable
        )
        for d, n in zip(froms, old_targets, strict=True):
            if n != d.spec_replicas:
                w.do(act.ScaleDeployment(d.name, n))
        if new_target != stable.spec_replicas:
            w.do(act.ScaleDeployment(stable.name, new_target))
    done = stable is not None and _reached(stable, froms, replicas, replicas)
    w.st["rolling_back"] = not done
    if done:
        w.st["strategy"] = None
    return done
