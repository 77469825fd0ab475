"""Before any strategy runs: refuse what is not ours, and recover what a lost status forgot.

The Deployments and the live Service are the truth about what serves; the status is the
truth about what was decided. When the status is lost (a failed write, a restore from a
backup that does not keep status), the live Service's selector and the selected Deployment's
revision label say which revision is live.
"""

from __future__ import annotations

from greenlight.engine import lifecycle, naming
from greenlight.engine.draft import Work


def services_are_ours(w: Work) -> bool:
    """Never take over a Service we did not create, unless the Release asks to (adopt).

    False: the Release is refused; it may change nothing but its own status."""
    svc, preview = w.snap.live_service, w.snap.preview_service
    problem = None
    if svc is not None and not svc.owned and not w.spec.service.adopt:
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
        w.event("ServiceConflict", problem, warning=True)
    w.outcome("Degraded", problem, "ServiceConflict")
    w.refused = True
    return False


def recover(w: Work, desired: str) -> None:
    """Take back from the cluster what the status should say and does not."""
    svc = w.snap.live_service
    selected = svc.selector.get(naming.LABEL_HASH) if svc else None
    if svc is not None and w.d.live_hash is None and svc.selector == {naming.LABEL_RELEASE: w.name}:
        # A rolling release was in flight (its selector serves every revision): the stable
        # revision is the newest one with pods other than the spec's.
        with_pods = [d for d in w.snap.deployments if d.spec_replicas > 0 and d.revision]
        others = [d for d in with_pods if d.template_hash != desired] or with_pods
        if not others:
            return
        selected = max(others, key=lambda d: d.revision or 0).template_hash
        w.d.strategy = "rolling"
    d = w.snap.deployment(selected)
    if selected is None or d is None or selected == w.d.live_hash:
        return
    if w.d.live_hash is None:
        # The status lost the live revision: the Service selects it, its Deployment numbers it.
        entry = w.entry(selected)
        if entry is None:
            entry = w.new_entry(selected, d.color or "blue", [], d.revision)  # images unknown
            w.history.append(entry)
        w.d.live_hash, w.d.live_revision = selected, entry.revision
        w.d.live_color = entry.color
        w.update_entry(selected, outcome="Live", promoted_at=entry.promoted_at or w.now)
        w.event(
            "Recovered",
            f"revision {entry.revision} is live (read from Service {w.spec.service.name})",
        )
        return
    if w.d.candidate_hash == selected and d.fully_available(w.spec.replicas):
        lifecycle.promote(w, selected, event=False)  # a flip whose status write was lost
    # Anything else the Service selects is drift: the Services step puts it back.
