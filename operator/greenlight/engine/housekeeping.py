"""After the strategy's step: scale down what is neither live, candidate nor warm; delete and
forget what is beyond revisionHistoryLimit."""

from __future__ import annotations

import datetime

from greenlight.engine import actions as act
from greenlight.engine import history
from greenlight.engine.draft import Work
from greenlight.engine.reasons import Reason


def tidy(w: Work) -> None:
    keep = {h for h in (w.d.live_hash, w.d.candidate_hash) if h is not None}
    delay = datetime.timedelta(
        seconds=w.spec.strategy.effective_blue_green.scale_down_delay_seconds
    )
    with_pods = {d.template_hash for d in w.snap.deployments if d.spec_replicas > 0}
    warm = set()
    for entry in w.history:
        # Warm: retired (or rolled back) by a flip less than scaleDownDelaySeconds ago and still
        # has pods, so the connections it holds drain (a rolling release leaves nothing warm:
        # its old revision is already at zero).
        if (
            entry.outcome in ("Retired", "RolledBack")
            and entry.retired_at
            and entry.template_hash in with_pods
            and not w.past(entry.retired_at, delay.total_seconds())
        ):
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
    relevant = {h for h in (*keep, w.d.aborted_hash) if h is not None}
    w.checks = [c for c in w.checks if c.template_hash in relevant]
    old = sorted(
        (d for d in w.snap.deployments if d.template_hash not in keep),
        key=lambda d: w.revision_of(d.template_hash) or d.revision or 0,
        reverse=True,
    )
    # spec.traffic: a revision the observed route may still send requests to keeps its pods
    routed = w.snap.route.serving() if w.snap.route else set()
    for i, d in enumerate(old):
        if d.template_hash in w.draining or d.name in routed:
            continue
        if i >= w.spec.revision_history_limit:
            w.do(act.DeleteDeployment(d.name))
        elif d.template_hash not in warm and d.spec_replicas > 0:
            w.do(act.ScaleDeployment(d.name, 0))
            w.event(Reason.SCALED_DOWN, f"revision {w.revision_of(d.template_hash)} scaled to 0")
    w.history = history.trim(w.history, w.spec.revision_history_limit, keep)
