"""A candidate's life, shared by every strategy: start, promote, abort, supersede; when a
Release is held; the progress deadline."""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

from greenlight.api import release as api
from greenlight.engine import config, history, naming, reasons, snapshot
from greenlight.engine.draft import Candidate, Draft, RollingProgress, StrategyName, Work
from greenlight.engine.reasons import Reason


def held(w: Work) -> bool:
    """Held (spec.paused): no new slot, no batch, no flip; the progress deadline stops."""
    return w.spec.paused


def deadline_passed(
    w: Work, since: datetime.datetime, progressing: snapshot.DeploymentView | None
) -> bool:
    """No progress for progressDeadlineSeconds (if not yet, wake up when it would be).

    Progress is the later of `since` (the release started, resumed, took a batch) and the last
    progress the Deployment controller reported for `progressing`'s pods, as Kubernetes and
    Argo Rollouts count it: pods that keep arriving (a large candidate on an autoscaling
    cluster, a busy control plane) never abort a release; none arriving for that long does."""
    seen = progressing.progressed_at if progressing is not None else None
    return w.past(max(since, seen) if seen else since, w.spec.progress_deadline_seconds)


def seconds(duration: str) -> int:
    """A pause step's duration ("30s", "5m", "1h") in seconds."""
    match = re.fullmatch(r"(\d+)([smh])", duration)
    assert match, duration  # the CRD pattern guarantees it
    return int(match[1]) * {"s": 1, "m": 60, "h": 3600}[match[2]]


def settled(d: snapshot.DeploymentView | None) -> bool:
    """The Deployment controller caught up with the last scale of `d` (None: nothing to wait
    for)."""
    return d is None or (d.observed_generation >= d.generation and d.replicas == d.spec_replicas)


def candidate_size(replicas: int, live: snapshot.DeploymentView | None) -> int:
    """Blue-green: how many pods the candidate brings up while `live` serves.

    spec.replicas (what `kubectl scale` or an HPA last wrote), but never fewer than the live
    slot's own size: the live Deployment keeps its replicas until the flip (a change mid-release
    resizes only the candidate), so traffic never moves to fewer pods than served it. After the
    flip the new live slot follows spec.replicas again (`plan._steady`)."""
    return max(replicas, live.spec_replicas if live is not None else 0)


def ready_to_flip(
    candidate: snapshot.DeploymentView | None, size: int, live: snapshot.DeploymentView | None
) -> bool:
    """Every one of the candidate's `size` pods is available (invariant 1), and no fewer than
    the live slot has available now (more than its size only while a scale-down of it is still
    counted: the flip waits for that count to settle)."""
    return (
        candidate is not None
        and candidate.fully_available(size)
        and candidate.available_replicas >= (live.available_replicas if live is not None else 0)
    )


def start_candidate(
    w: Work,
    strategy: StrategyName,
    live: str | None,
    desired: str,
    template: dict[str, Any],
    replicas: int,
) -> tuple[Candidate, bool]:
    """Ensure the candidate Deployment at `replicas`; record it as the release in flight.

    Returns the candidate and whether its release started in this step (one Event each)."""
    color = naming.other_color(w.d.live_color) if live else "blue"
    entry = w.ensure_deployment(desired, template, color, replicas)
    w.update_entry(desired, outcome="Progressing", reason=None, message="")
    candidate = w.d.candidate
    started = candidate is None or candidate.hash != desired
    if candidate is None or started:
        candidate = Candidate(hash=desired, revision=entry.revision, color=color, since=None)
    candidate.revision, candidate.color = entry.revision, color
    if candidate.since is None and not held(w):
        candidate.since = w.now  # started, or resumed: the deadline counts from here
    w.d.candidate, w.d.strategy = candidate, strategy
    return candidate, started


def promote(w: Work, template_hash: str) -> None:
    """Record that `template_hash` is live now (the Services step points the selector)."""
    old = w.d.live_hash
    entry = w.entry(template_hash)
    assert entry is not None
    if old is not None and old != template_hash:  # (one an undo holds off stays RolledBack)
        held = old == w.d.aborted_hash
        w.update_entry(old, outcome="RolledBack" if held else "Retired", retired_at=w.now)
    w.update_entry(template_hash, outcome="Live", promoted_at=w.now, reason=None, message="")
    strategy = w.d.strategy
    w.d = Draft(
        live_hash=template_hash,
        live_revision=entry.revision,
        live_color=entry.color,
        aborted_hash=w.d.aborted_hash,
        rolled_back_to=w.d.rolled_back_to,
    )
    message = f"revision {entry.revision} ({entry.color}) is live"
    before = w.snap.deployment(old)
    if strategy != "rolling" and before is not None and before.spec_replicas > 0:
        delay = w.spec.strategy.effective_blue_green.scale_down_delay_seconds
        message += f"; revision {w.revision_of(old)} stays warm for {delay}s"
    w.event(Reason.PROMOTED, message)


def abort(w: Work, template_hash: str, reason: Reason, message: str) -> None:
    """Stop a candidate for good (until the spec changes or a retry): it never goes live."""
    if w.entry(template_hash) is None:  # aborted before its first reconcile
        template = naming.effective_template(w.spec)
        color = naming.other_color(w.d.live_color)
        history.put(w.history, w.new_entry(template_hash, color, naming.images(template)))
    revision = w.revision_of(template_hash)
    w.update_entry(template_hash, outcome="Aborted", reason=reason, message=message)
    w.d.candidate, w.d.promote_requested, w.d.aborted_hash = None, None, template_hash
    stop_checks(w, template_hash, "stopped: the release was aborted")
    if w.d.strategy == "rolling":  # its pods serve beside the live ones: move back in bounds
        w.d.rolling.rolling_back = True
    w.event(
        Reason.ABORTED, f"revision {revision}: {message}; live revision unchanged", warning=True
    )
    aborted_outcome(w, template_hash)


def aborted_outcome(w: Work, template_hash: str) -> None:
    entry = w.entry(template_hash)
    # (an entry written before reasons and messages were kept apart says just Aborted)
    reason = (reasons.known(entry.reason) if entry else None) or Reason.ABORTED
    phase: api.Phase = "Aborted" if reason == Reason.ABORTED_BY_USER else "Degraded"
    revision = entry.revision if entry else "?"
    why = f"{reason}: {entry.message}" if entry is not None and entry.message else reason
    what = "rolled back" if entry is not None and entry.outcome == "RolledBack" else "aborted"
    live = (
        "nothing is live"
        if w.d.live_revision is None
        else f"live revision {w.d.live_revision} serves"
    )
    w.outcome(
        phase,
        f"revision {revision} {what} ({why}); {live}."
        " Change the spec, or annotate greenlight.dev/retry=true to try again",
        reason,
    )


def supersede(w: Work, why: str) -> None:
    """The candidate in flight is no longer wanted (a newer spec, or back to live)."""
    old = w.d.candidate_hash
    if old is not None and old != w.d.live_hash:
        w.update_entry(old, outcome="Superseded", reason=Reason.SUPERSEDED, message=why)
        w.event(Reason.SUPERSEDED, f"revision {w.revision_of(old)} superseded: {why}")
    w.d.candidate, w.d.promote_requested = None, None


def reset_rolling(w: Work) -> None:
    """A new rolling release starts at step 0 (a roll-back in progress keeps going)."""
    w.d.rolling = RollingProgress(step=0, progress_at=w.now, rolling_back=w.d.rolling.rolling_back)


def roll_back(w: Work, to: str, reason: Reason, message: str) -> None:
    """A live revision failed its post-promotion checks: `to` (still warm) is live again."""
    failed = w.d.live_hash
    assert failed is not None
    entry = w.entry(to)
    assert entry is not None
    bad = w.revision_of(failed)
    w.update_entry(failed, outcome="RolledBack", reason=reason, message=message, retired_at=w.now)
    w.update_entry(to, outcome="Live", reason=None, message="", retired_at=None)
    w.d = Draft(
        live_hash=to, live_revision=entry.revision, live_color=entry.color, aborted_hash=failed
    )
    w.event(
        Reason.ROLLED_BACK,
        f"revision {bad}: {message}; revision {entry.revision} ({entry.color}) is live again",
        warning=True,
    )
    w.outcome(
        "Degraded",
        f"revision {bad} rolled back ({reason}: {message}); revision {entry.revision} serves."
        " Change the spec, or annotate greenlight.dev/retry=true to try again",
        reason,
    )


def wanted(
    release: str,
    spec: api.ReleaseSpec,
    status: api.ReleaseStatus,
    seen: tuple[snapshot.ConfigView, ...] = (),
) -> str:
    """The revision a Release is going to: its spec's (with the config `seen`), or, while an
    undo holds the spec's revision off, the one the undo went back to (`undo_hold`)."""
    desired = config.revision(release, spec, seen).hash
    if status.rolled_back_to is not None and status.aborted_hash == desired:
        return status.rolled_back_to
    return desired


def undo_hold(w: Work, desired: str) -> None:
    """An undo holds while the spec still names the revision it rolled back from
    (abortedHash): until the revision it went back to is live, that one is released in the
    spec's place (`w.spec` with its template, in memory: the spec is never written). Once it
    is live the strategy reports the held revision as aborted. A changed spec.template or a
    retry ends the hold."""
    to = w.d.rolled_back_to
    if to is None:
        return
    if w.d.aborted_hash != desired:
        w.d.rolled_back_to = None
        return
    d = w.snap.deployment(to)
    if w.d.live_hash == to or d is None or d.template is None:
        return  # (gone: the held revision stays aborted; the live one serves)
    template = api.PodTemplate.model_validate(json.loads(d.template))
    w.spec = w.spec.model_copy(update={"template": template})
    # (with a probe changed since, that template is another revision: the one brought back;
    # its ConfigMaps and Secrets are its copies, as its Deployment recorded them)
    w.revision = config.recorded(w.spec, d)
    w.d.rolled_back_to = w.revision.hash


def stop_checks(w: Work, template_hash: str, why: str) -> None:
    w.checks = [
        c.model_copy(update={"phase": "Skipped", "next_at": None, "message": why})
        if c.template_hash == template_hash and c.phase == "Running"
        else c
        for c in w.checks
    ]
