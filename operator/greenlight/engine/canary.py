"""Canary: the rolling strategy's steps with spec.traffic.gatewayAPI, where `setWeight` is a
share of *requests* at the gateway, not of replicas (5% works with 3 replicas).

Same API as rolling (steps of setWeight, pause and analysis; promote, abort, retry), chosen by
adding spec.traffic: one vocabulary for both, and a Release moves from replica shares to request
shares without rewriting its steps. Each setWeight step, in order:

1. the new side is scaled to carry the step's share (`pods_for`), beside the stable side;
2. once those pods are available and listed in its backend's EndpointSlices, the step's weight
   is the new side's weight (`traffic.point` writes it to the route in the same reconcile);
3. the step is done when the gateway has accepted the route's generation with that weight;
4. the stable side shrinks to what its remaining share needs, only once the weight has left it
   and `drainSeconds` have passed (it never shrinks below what its weight needs).

After the last step the new side carries 100% with spec.replicas pods, and is promoted. An
abort (or a failed analysis step) puts every request back on the stable side in one route write
and scales it back to spec.replicas at once; the new side is scaled down once the gateway no
longer sends it requests (housekeeping)."""

from __future__ import annotations

import math
from typing import Any

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import checks, lifecycle, naming, snapshot, traffic
from greenlight.engine.draft import Work
from greenlight.engine.reasons import Reason
from greenlight.engine.strategy import Strategy


def pods_for(weight: int, replicas: int) -> int:
    """Pods that carry `weight`% of the requests of `replicas` pods (at least one when any)."""
    if weight <= 0:
        return 0
    return max(1, math.ceil(replicas * weight / 100))


def in_effect(w: Work, template_hash: str | None) -> int | None:
    """The weight the gateway applies to a revision now: its weight in the observed route's
    live rule, once the gateway accepted that generation (None: not accepted yet)."""
    route = w.snap.route
    if route is None or not route.accepted or template_hash is None:
        return None
    name = naming.deployment_name(w.name, template_hash)
    for rule in route.spec.get("rules") or []:
        if rule.get("name") == "live":
            for b in rule.get("backendRefs") or []:
                if b.get("name") == name:
                    return int(b.get("weight", 1))
            return 0
    return None


def release(w: Work, live: str | None, desired: str, template: dict[str, Any]) -> None:
    """One step of a canary of `desired` while `live` is the stable revision."""
    spec, replicas = w.spec, w.spec.replicas
    steps = (spec.strategy.rolling or api.Rolling()).steps
    if w.d.aborted_hash == desired:
        done = back_to_stable(w, live)
        lifecycle.aborted_outcome(w, desired)
        if not done:
            w.message = f"moving back to revision {w.d.live_revision}: {w.message}"
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
    promoted = w.d.promote_requested == desired
    index, target, hold, analysis = r.step or 0, 100, False, None
    while index < len(steps):
        step = steps[index]
        if step.analysis is not None:
            skip = promoted and w.checks_skipped == desired
            stage = checks.step_stage(index)
            g = checks.gate(
                w, stage, step.analysis.checks, desired, w.revision_of(desired) or 0, skip
            )
            r.progress_at = w.now  # checks running are not a lack of progress
            if g.state != "passed":
                analysis, hold = g, True
                break
        elif promoted:
            pass
        elif step.pause is not None:
            r.step_started_at = r.step_started_at or w.now
            r.progress_at = w.now  # a pause is not a lack of progress
            duration = step.pause.duration
            if duration is None or not w.past(r.step_started_at, lifecycle.seconds(duration)):
                hold = True
                break
        else:
            target = step.set_weight or 0
            if not _at(w, new, desired, target):
                break
            target = 100
        index += 1
        r.step_started_at = None
    r.step = index if steps else None

    held = lifecycle.held(w) or hold
    current = new.spec_replicas if new else 0
    size = current if held else max(current, pods_for(target, replicas))
    c, started = lifecycle.start_candidate(w, "rolling", live, desired, template, size)
    if new is not None and size != current:
        r.progress_at = w.now
    label = f"revision {c.revision}"
    if started:
        w.event(Reason.PROGRESSING, f"{label}: canary of {replicas} replicas at the gateway")
    available = new.available_replicas if new else 0
    weight = r.weight or 0
    if (
        not held
        and lifecycle.settled(new)
        and available >= pods_for(target, replicas)
        and traffic.routable(w, desired, pods_for(target, replicas))
        and weight != target
    ):
        r.weight, r.last_batch_at, r.progress_at = target, w.now, w.now
    _size_stable(w, live)

    if analysis is not None and analysis.state == "failed":
        lifecycle.abort(w, desired, Reason.ANALYSIS_FAILED, f"step {index}: {analysis.message}")
        back_to_stable(w, live)
        return
    share = f"{r.weight or 0}% of requests on the new revision"
    if analysis is not None and not lifecycle.held(w):
        how = "" if analysis.state == "running" else "; promote with skip-checks or abort"
        w.outcome(
            "Paused" if analysis.state == "inconclusive" else "Progressing",
            f"{label}: step {index} analysis with {share}: {analysis.message}{how}",
            Reason.CHECK_INCONCLUSIVE if analysis.state == "inconclusive" else Reason.CHECKS,
        )
        return
    if index >= len(steps) and _at(w, new, desired, 100) and available >= replicas:
        lifecycle.promote(w, desired)
        w.outcome("Healthy", f"{label} is live: 100% of requests", Reason.RELEASE_COMPLETE)
        return
    if held:
        how = ""
        pause = steps[index].pause if index < len(steps) else None
        if not lifecycle.held(w) and pause is not None and pause.duration is None:
            how = "; promote with kubectl annotate release <name> greenlight.dev/promote=true"
        w.outcome(
            "Paused",
            f"{label}: paused at step {index} with {share}{how}",
            Reason.PAUSED if lifecycle.held(w) else Reason.PAUSE_STEP,
        )
        return
    assert r.progress_at is not None
    if lifecycle.deadline_passed(w, r.progress_at, new):
        lifecycle.abort(
            w,
            desired,
            Reason.PROGRESS_DEADLINE_EXCEEDED,
            f"no progress for progressDeadlineSeconds={spec.progress_deadline_seconds}"
            f" at {available}/{pods_for(target, replicas)} new pods available",
        )
        back_to_stable(w, live)
        return
    endpoints = traffic.endpoints_wanted(w, desired, pods_for(target, replicas))
    w.outcome(
        "Progressing",
        f"{label}: {share}, going to {target}% ({available} new pods available{endpoints})",
        Reason.CANDIDATE_PROGRESSING,
    )


def _at(w: Work, new: snapshot.DeploymentView | None, desired: str, weight: int) -> bool:
    """The step's share is in effect: its pods are available, listed as the gateway's
    endpoints, and the gateway applies it."""
    pods = pods_for(weight, w.spec.replicas)
    return (
        new is not None
        and lifecycle.settled(new)
        and new.available_replicas >= pods
        and traffic.routable(w, desired, pods)
        and in_effect(w, desired) == weight
    )


def _size_stable(w: Work, live: str | None) -> None:
    """The stable side follows its share: up at once when it grows, down only once the weight
    has left it (the gateway applies it) and drainSeconds have passed."""
    stable = w.snap.deployment(live)
    gw = w.spec.gateway
    if stable is None or gw is None:
        return
    r, replicas = w.d.rolling, w.spec.replicas
    new_weight = in_effect(w, w.d.candidate_hash)
    written = r.weight or 0
    if new_weight is None or new_weight != written:  # not applied yet: keep what serves now
        need = max(pods_for(100 - written, replicas), stable.spec_replicas)
    else:  # (never below one pod: it is the live revision until the promotion)
        need = max(1, pods_for(100 - written, replicas))
        drained = r.last_batch_at is None or w.past(r.last_batch_at, gw.drain_seconds)
        if need < stable.spec_replicas and not drained:
            need = stable.spec_replicas
    if need != stable.spec_replicas:
        w.do(act.ScaleDeployment(stable.name, need))


def back_to_stable(w: Work, live: str | None) -> bool:
    """Every request back on the stable side (weight 0 on the new one, written by
    `traffic.point` in this reconcile) and its pods back to spec.replicas at once. True when
    it has them all available."""
    stable = w.snap.deployment(live)
    w.d.rolling.weight = 0
    replicas = w.spec.replicas
    if stable is not None and stable.spec_replicas != replicas:
        w.do(act.ScaleDeployment(stable.name, replicas))
    done = stable is not None and stable.fully_available(replicas)
    w.d.rolling.rolling_back = not done
    if done:
        w.d.strategy = None
    return done


def return_to_live(w: Work, live: str) -> bool:
    return back_to_stable(w, live)


STRATEGY = Strategy("rolling", release, return_to_live)
