"""Before any strategy runs: refuse what is not ours, and recover what a lost status forgot.

The Deployments and the live Service are the truth about what serves; the status is the
truth about what was decided. When the status is lost (a failed write, a restore from a
backup that does not keep status), the live Service's selector and the selected Deployment's
revision label say which revision is live.
"""

from __future__ import annotations

from greenlight.engine import history, lifecycle, naming, snapshot
from greenlight.engine.draft import Candidate, Work
from greenlight.engine.reasons import Reason


def services_are_ours(w: Work) -> bool:
    """Never take over a Service we did not create, unless the Release asks to (adopt).

    False: the Release is refused; it may change nothing but its own status."""
    svc, preview = w.snap.live_service, w.snap.preview_service
    problem = None
    if svc is not None and not svc.owned and not (w.spec.service and w.spec.service.adopt):
        problem = (
            f"spec.service.name: Service {svc.name!r} exists and was not created by this Release;"
            " set spec.service.adopt: true to let Greenlight manage its selector"
        )
    elif preview is not None and not preview.owned:
        problem = (
            f"spec.previewService.name: Service {preview.name!r} exists and was not created by"
            " this Release; choose another name"
        )
    if problem is None:
        return True
    if w.snap.release.status.message != problem:
        w.event(Reason.SERVICE_CONFLICT, problem, warning=True)
    w.outcome("Degraded", problem, Reason.SERVICE_CONFLICT)
    w.refused = True
    return False


def recover(w: Work, desired: str) -> None:
    """Take back from the cluster what the status should say and does not."""
    svc = w.snap.live_service
    if svc is None:
        if w.spec.service is None and w.d.live_hash is None:
            _recover_worker(w)
        return
    if w.d.live_hash is None and svc.selector == {naming.LABEL_RELEASE: w.name}:
        _recover_rolling(w, desired)
        return
    selected = svc.selector.get(naming.LABEL_HASH)
    d = w.snap.deployment(selected)
    if selected is None or d is None or selected == w.d.live_hash:
        return
    if w.d.live_hash is None:
        # The status lost the live revision: the Service selects it, its Deployment numbers it.
        _recovered_live(w, d, f"Service {svc.name}")
        return
    live = w.snap.deployment(w.d.live_hash)
    size = lifecycle.candidate_size(w.spec.replicas, live)
    if w.d.candidate_hash == selected and lifecycle.ready_to_flip(d, size, live):
        # a flip whose status write (and Events) was lost: record it, and say so again
        lifecycle.promote(w, selected)
    # Anything else the Service selects is drift: the Services step puts it back.


def _recover_rolling(w: Work, desired: str) -> None:
    """A rolling release was in flight (the selector serves every revision): the oldest
    revision with pods was live, the newest other one was rolling in. Both keep their pods and
    the selector stays mixed until the rolling release (resumed from there) ends."""
    with_pods = sorted(
        (d for d in w.snap.deployments if d.spec_replicas > 0 and d.revision),
        key=lambda d: d.revision or 0,
    )
    if not with_pods:
        return
    stable = with_pods[0]
    _recovered_live(w, stable, f"Service {w.snap.live_service.name}" if w.snap.live_service else "")
    w.d.strategy = "rolling"
    moving = [d for d in with_pods[1:] if d.template_hash != stable.template_hash]
    if moving:
        new = next((d for d in moving if d.template_hash == desired), moving[-1])
        entry = w.entry(new.template_hash) or w.new_entry(
            new.template_hash, new.color or "green", [], new.revision
        )
        history.put(w.history, entry)
        w.d.candidate = Candidate(new.template_hash, entry.revision, entry.color, since=w.now)
        lifecycle.reset_rolling(w)


def _recover_worker(w: Work) -> None:
    """A worker (no Service) whose status lost the live revision: the one whose pods carry the
    live role (one revision only; else nothing is recovered and none is made live by it)."""
    live = {p.template_hash for p in w.snap.pods if p.role == "live"}
    d = w.snap.deployment(next(iter(live))) if len(live) == 1 else None
    if d is not None:
        _recovered_live(w, d, "its pods' greenlight.dev/role")


def _recovered_live(w: Work, d: snapshot.DeploymentView, source: str) -> None:
    entry = w.entry(d.template_hash)
    if entry is None:
        entry = w.new_entry(d.template_hash, d.color or "blue", [], d.revision)  # images unknown
        w.history.append(entry)
    w.d.live_hash, w.d.live_revision, w.d.live_color = d.template_hash, entry.revision, entry.color
    w.update_entry(d.template_hash, outcome="Live", promoted_at=entry.promoted_at or w.now)
    w.event(
        Reason.RECOVERED,
        f"revision {entry.revision} is live (read from {source})",
    )
