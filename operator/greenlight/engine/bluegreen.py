"""Blue-green: bring the candidate up beside the live slot, flip when every pod is available."""

from __future__ import annotations

import datetime
from typing import Any

from greenlight.engine import plan


def release_candidate(
    w: plan.Work, live: str | None, desired: str, template: dict[str, Any]
) -> None:
    """One step of a blue-green release of `desired` while `live` serves (None: adopted Service)."""
    spec, st = w.spec, w.st
    if st["aborted_hash"] == desired:
        plan.aborted_outcome(w, desired)
        return
    if spec.paused and w.snap.deployment(desired) is None:
        w.outcome("Paused", "paused (spec.paused): the new revision waits to be created", "Paused")
        return

    revision, color, started = plan.start_candidate(
        w, "blueGreen", live, desired, template, spec.replicas
    )
    label = f"revision {revision} ({color})"
    if started:
        w.event("Progressing", f"{label} is coming up beside the live slot")

    d = w.snap.deployment(desired)
    if d is None or not d.fully_available(spec.replicas):
        st["candidate_available_since"] = None
        ready = d.available_replicas if d else 0
        if spec.paused:
            st["candidate_since"] = None  # the progress deadline does not run while paused
            progress = f"{ready}/{spec.replicas}"
            w.outcome("Paused", f"paused (spec.paused); {label}: {progress}", "Paused")
            return
        budget = datetime.timedelta(seconds=spec.progress_deadline_seconds)
        deadline = st["candidate_since"] + budget
        if w.now >= deadline:
            plan.abort(
                w,
                desired,
                "ProgressDeadlineExceeded",
                f"{ready}/{spec.replicas} pods available after"
                f" progressDeadlineSeconds={spec.progress_deadline_seconds}",
            )
            return
        w.wake_at(deadline)
        w.outcome(
            "Progressing",
            f"{label}: {ready}/{spec.replicas} pods available",
            "CandidateProgressing",
        )
        return

    _promote_when_due(w, desired, label)


def _promote_when_due(w: plan.Work, desired: str, label: str) -> None:
    """The candidate is fully available: flip now, at its due time, or when promoted."""
    spec, st = w.spec, w.st
    bluegreen = spec.strategy.effective_blue_green
    since = st["candidate_available_since"] or w.now
    st["candidate_available_since"] = since
    if spec.paused:
        w.outcome("Paused", f"paused (spec.paused); {label} is ready", "Paused")
        return
    if st["promote_requested"] != desired:
        if not bluegreen.auto_promote:
            w.outcome(
                "Paused",
                f"{label} is ready; promote it with"
                " kubectl annotate release <name> greenlight.dev/promote=true",
                "WaitingForPromotion",
            )
            return
        due = since + datetime.timedelta(seconds=bluegreen.promote_after_seconds)
        if w.now < due:
            w.wake_at(due)
            wait = (due - w.now).total_seconds()
            w.outcome("Progressing", f"{label} is ready; promoting in {wait:.0f}s", "PromoteAfter")
            return
    plan.promote(w, desired)
    entry = w.entry(desired)
    assert entry is not None
    w.outcome("Healthy", f"revision {entry.revision} ({entry.color}) is live", "ReleaseComplete")
