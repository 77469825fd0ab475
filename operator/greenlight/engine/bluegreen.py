"""Blue-green: bring the candidate up beside the live slot, flip when every pod is available.

The candidate is sized to `lifecycle.candidate_size`: spec.replicas, or the live slot's size if
that is larger; a replica change mid-release (kubectl scale, an HPA) resizes the candidate and
never the live slot, so the flip never lands traffic on fewer pods than served it."""

from __future__ import annotations

from typing import Any

from greenlight.engine import checks, history, lifecycle, traffic, workload
from greenlight.engine.draft import Candidate, Work
from greenlight.engine.reasons import Reason
from greenlight.engine.strategy import Strategy


def release(w: Work, live: str | None, desired: str, template: dict[str, Any]) -> None:
    """One step of a blue-green release of `desired` while `live` serves."""
    spec = w.spec
    if w.d.aborted_hash == desired:
        lifecycle.aborted_outcome(w, desired)
        return
    if lifecycle.held(w) and w.snap.deployment(desired) is None:
        w.outcome(
            "Paused", "paused (spec.paused): the new revision waits to be created", Reason.PAUSED
        )
        return

    live_d = w.snap.deployment(live)
    size = lifecycle.candidate_size(spec.replicas, live_d)
    if live is None:  # an adopted Deployment's pods serve: never fewer than it had
        size = max(size, workload.adopting_size(w))
    c, started = lifecycle.start_candidate(w, "blueGreen", live, desired, template, size)
    label = f"revision {c.revision} ({c.color})"
    if started:
        beside = "beside the live slot" if live else "(nothing live yet)"
        w.event(Reason.PROGRESSING, f"{label} is coming up {beside}")

    d = w.snap.deployment(desired)
    endpoints = traffic.endpoints_wanted(w, desired, size)
    if not lifecycle.ready_to_flip(d, size, live_d) or endpoints:
        c.available_since = None
        progress = f"{d.available_replicas if d else 0}/{size}"
        if lifecycle.ready_to_flip(d, size, live_d):
            progress += f" pods available{endpoints}"
        elif size > spec.replicas:
            progress += f" pods available (sized to the live slot's {size})"
        elif d is not None and d.fully_available(size) and live_d is not None:
            progress += (
                f" pods available; the live slot still counts {live_d.available_replicas}"
                " available (a scale-down of it settling)"
            )
        else:
            progress += " pods available"
        if lifecycle.held(w):
            c.since = None  # the progress deadline does not run while held
            w.outcome("Paused", f"paused (spec.paused); {label}: {progress}", Reason.PAUSED)
        elif c.since is not None and lifecycle.deadline_passed(w, c.since, d):
            lifecycle.abort(
                w,
                desired,
                Reason.PROGRESS_DEADLINE_EXCEEDED,
                f"no progress for progressDeadlineSeconds={spec.progress_deadline_seconds}"
                f" at {progress}",
            )
        else:
            w.outcome("Progressing", f"{label}: {progress}", Reason.CANDIDATE_PROGRESSING)
        return
    _promote_when_due(w, c, label)


def _promote_when_due(w: Work, c: Candidate, label: str) -> None:
    """The candidate is fully available: flip now, at its due time, or when promoted."""
    bluegreen = w.spec.strategy.effective_blue_green
    c.available_since = c.available_since or w.now
    if lifecycle.held(w):
        w.outcome("Paused", f"paused (spec.paused); {label} is ready", Reason.PAUSED)
        return
    skip = w.d.promote_requested == c.hash and w.checks_skipped == c.hash
    pre = checks.gate(w, checks.PRE, bluegreen.pre_promotion, c.hash, c.revision, skip=skip)
    if pre.state == "failed":
        lifecycle.abort(w, c.hash, Reason.PRE_PROMOTION_CHECK_FAILED, pre.message)
        return
    if pre.state == "inconclusive":
        w.outcome(
            "Paused",
            f"{label} is ready; {pre.message}: promote with skip-checks"
            " (kubectl greenlight promote --skip-checks) or abort",
            Reason.CHECK_INCONCLUSIVE,
        )
        return
    if pre.state == "running":
        w.outcome("Progressing", f"{label} is ready; pre-promotion {pre.message}", Reason.CHECKS)
        return
    if w.d.promote_requested != c.hash:
        if not bluegreen.auto_promote:
            w.outcome(
                "Paused",
                f"{label} is ready; promote it with"
                " kubectl annotate release <name> greenlight.dev/promote=true",
                Reason.WAITING_FOR_PROMOTION,
            )
            return
        if not w.past(c.available_since, bluegreen.promote_after_seconds):
            wait = bluegreen.promote_after_seconds - (w.now - c.available_since).total_seconds()
            w.outcome(
                "Progressing", f"{label} is ready; promoting in {wait:.0f}s", Reason.PROMOTE_AFTER
            )
            return
    if w.snap.group is not None and w.snap.group_flip_to != c.revision:
        # the group decides when its members flip (its history entry names this revision)
        w.outcome(
            "Progressing", f"{label} is ready; group {w.snap.group} flips it", Reason.GROUP_WAITING
        )
        return
    if not _handed_over(w, c, label, skip):
        return
    lifecycle.promote(w, c.hash)
    w.outcome("Healthy", f"{label} is live", Reason.RELEASE_COMPLETE)
    if bluegreen.post_promotion:  # start them; the old slot stays warm until they pass
        post = checks.gate(w, checks.POST, bluegreen.post_promotion, c.hash, c.revision)
        w.outcome("Progressing", f"{label} is live; post-promotion {post.message}", Reason.CHECKS)


def _handed_over(w: Work, c: Candidate, label: str, skip: bool) -> bool:
    """A worker (no spec.service) with handover policy `handover`: the live revision drains
    first (its pods' role becomes `draining`), and the candidate goes live once the handover
    checks passed against it, or timeoutSeconds passed. A failed check without a timeout
    aborts the candidate: the old revision is live again."""
    handover = w.spec.strategy.effective_blue_green.handover
    live = w.d.live_hash
    if w.spec.service is not None or handover is None or handover.policy != "handover":
        return True
    if live is None or w.d.live_revision is None:
        return True  # nothing to drain
    if c.handover_since is None:
        c.handover_since = w.now
        w.event(
            Reason.HANDING_OVER,
            f"revision {w.d.live_revision} is draining; {label} takes over once it has drained",
        )
    g = checks.gate(w, checks.HANDOVER, handover.checks, live, w.d.live_revision, skip=skip)
    timeout = handover.timeout_seconds
    drained = bool(handover.checks) and g.state == "passed"
    if drained or (timeout is not None and w.past(c.handover_since, timeout)):
        return True
    if g.state in ("failed", "inconclusive") and timeout is None:
        lifecycle.abort(w, c.hash, Reason.HANDOVER_FAILED, f"handover {g.message}")
        return False
    w.outcome(
        "Progressing",
        f"{label} is ready; revision {w.d.live_revision} is draining"
        + (f": {g.message}" if handover.checks else f" (up to {timeout}s)"),
        Reason.HANDING_OVER,
    )
    return False


def verify_live(w: Work, live: str) -> None:
    """After a flip: post-promotion checks run while the old slot stays warm; a failure flips
    the live Service back to the previous revision at once (no new pods).

    They start from what is observed, whichever path recorded the flip: the revision the
    observed status had in flight is live now (a flip whose status write was lost, recorded
    from the Service by `guards.recover`) and its checks have not started."""
    post = w.spec.strategy.effective_blue_green.post_promotion
    started = [c for c in w.checks if c.stage == checks.POST and c.template_hash == live]
    just_flipped = w.snap.release.status.candidate_hash == live
    entry = w.entry(live)
    if not post or not (started or just_flipped) or entry is None:
        return
    g = checks.gate(w, checks.POST, post, live, entry.revision)
    label = f"revision {entry.revision} ({entry.color})"
    if g.state == "running":
        if w.phase == "Healthy":
            w.outcome("Progressing", f"{label} is live; post-promotion {g.message}", Reason.CHECKS)
        return
    if g.state == "passed":
        return
    previous = history.undo_target(w.history, live, "")
    d = None if isinstance(previous, str) else w.snap.deployment(previous.template_hash)
    if isinstance(previous, str) or d is None or d.spec_replicas == 0:
        w.outcome(
            "Degraded",
            f"{label}: post-promotion {g.message}; no warm revision to flip back to",
            Reason.POST_PROMOTION_CHECK_FAILED,
        )
        return
    lifecycle.roll_back(w, previous.template_hash, Reason.POST_PROMOTION_CHECK_FAILED, g.message)


def return_to_live(w: Work, live: str) -> bool:
    """Nothing to move: the candidate slot is scaled down by housekeeping."""
    return True


STRATEGY = Strategy("blueGreen", release, return_to_live, verify_live)
