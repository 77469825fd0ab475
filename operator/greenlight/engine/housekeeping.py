"""After the strategy's step: scale down what is neither live, candidate nor warm; delete and
forget what is beyond revisionHistoryLimit."""

from __future__ import annotations

import datetime

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import checks, history, snapshot
from greenlight.engine.draft import Work
from greenlight.engine.reasons import Reason


def tidy(w: Work) -> None:
    keep = {h for h in (w.d.live_hash, w.d.candidate_hash) if h is not None}
    with_pods = {d.template_hash for d in w.snap.deployments if d.spec_replicas > 0}
    warm, gated = set(), set()
    for entry in w.history:
        # Warm: retired (or rolled back) by a flip and still has pods, so the connections it
        # holds drain: for scaleDownDelaySeconds, then until its scaleDown checks pass (a
        # rolling release leaves nothing warm: its old revision is already at zero).
        if (
            entry.outcome in ("Retired", "RolledBack")
            and entry.retired_at
            and entry.template_hash in with_pods
        ):
            gated.add(entry.template_hash)
            if _warm(w, entry, entry.retired_at):
                warm.add(entry.template_hash)
    if any(
        c.stage == "postPromotion"
        and c.template_hash == w.d.live_hash
        and c.phase not in ("Passed", "Skipped")
        for c in w.checks
    ):  # post-promotion checks not passed (yet): the revision to flip back to stays warm
        previous = history.undo_target(w.history, w.d.live_hash, "")
        if not isinstance(previous, str):
            warm.add(previous.template_hash)
            keep.add(previous.template_hash)  # also beyond revisionHistoryLimit
    relevant = {h for h in (*keep, *gated, w.d.aborted_hash) if h is not None}
    w.checks = [c for c in w.checks if c.template_hash in relevant]
    old = sorted(
        (d for d in w.snap.deployments if d.template_hash not in keep),
        key=lambda d: w.revision_of(d.template_hash) or d.revision or 0,
        reverse=True,
    )
    # spec.traffic: a revision the observed route may still send requests to keeps its pods
    routed = w.snap.route.serving() if w.snap.route else set()
    for i, d in enumerate(old):
        if d.template_hash in w.shrinking or d.name in routed:
            continue
        if i >= w.spec.revision_history_limit:
            w.do(act.DeleteDeployment(d.name))
        elif d.template_hash not in warm and d.spec_replicas > 0:
            _scale_down(w, d)
    w.history = history.trim(w.history, w.spec.revision_history_limit, keep)


def _warm(w: Work, entry: api.HistoryEntry, retired_at: datetime.datetime) -> bool:
    """A revision retired at `retired_at` keeps its pods: for scaleDownDelaySeconds, then while
    the scaleDown checks have not passed, never past maxDelaySeconds."""
    bluegreen = w.spec.strategy.effective_blue_green
    if not w.past(retired_at, bluegreen.scale_down_delay_seconds):
        return True
    gate = bluegreen.scale_down
    if gate is None or not gate.when:
        return False
    g = checks.gate(w, checks.SCALE_DOWN, gate.when, entry.template_hash, entry.revision)
    return g.state != "passed" and not w.past(retired_at, gate.max_delay_seconds)


def _scale_down(w: Work, d: snapshot.DeploymentView) -> None:
    """To zero, or by blueGreen.scaleDown.podsPerInterval every intervalSeconds."""
    revision = w.revision_of(d.template_hash)
    gate = w.spec.strategy.effective_blue_green.scale_down
    step = gate.pods_per_interval if gate is not None else 0
    entry = w.entry(d.template_hash)
    if gate is None or not step or d.spec_replicas <= step or entry is None:
        w.do(act.ScaleDeployment(d.name, 0))
        w.event(Reason.SCALED_DOWN, f"revision {revision} scaled to 0")
        return
    if entry.scaled_down_at is not None and not w.past(entry.scaled_down_at, gate.interval_seconds):
        return
    replicas = d.spec_replicas - step
    w.do(act.ScaleDeployment(d.name, replicas))
    w.update_entry(d.template_hash, scaled_down_at=w.now)
    w.event(Reason.SCALED_DOWN, f"revision {revision} scaled to {replicas} (podsPerInterval)")
