"""Which transitions of this plan the Release's notifications are told about."""

from __future__ import annotations

from greenlight.api import checks as api_checks
from greenlight.engine import actions as act
from greenlight.engine.draft import Work
from greenlight.engine.reasons import Reason

BY_EVENT: dict[Reason, api_checks.NotifyEvent] = {
    Reason.PROGRESSING: "Started",
    Reason.PROMOTED: "Promoted",
    Reason.ABORTED: "Aborted",
    Reason.ROLLED_BACK: "RolledBack",
}
"""Event reasons that are transitions users subscribe to, and the notification's name."""


def transitions(w: Work) -> None:
    """Add a Notify for each subscribed transition: the Events above, and the phase becoming
    Degraded or Paused awaiting a promotion (once each, on the change)."""
    if not w.spec.notifications:
        return
    happened: list[tuple[str, str]] = [
        (BY_EVENT[e.reason], e.message) for e in w.events if e.reason in BY_EVENT
    ]
    before = w.snap.release.status
    old_reason = next((c.reason for c in before.conditions if c.type == "Progressing"), "")
    if w.phase == "Degraded" and before.phase != "Degraded":
        happened.append(("Degraded", w.message))
    if w.reason == Reason.WAITING_FOR_PROMOTION and old_reason != Reason.WAITING_FOR_PROMOTION:
        happened.append(("AwaitingPromotion", w.message))
    for event, message in happened:
        payload = {
            "event": event,
            "release": w.name,
            "namespace": w.snap.release.namespace,
            "liveRevision": w.d.live_revision,
            "candidateRevision": w.d.candidate.revision if w.d.candidate else None,
            "phase": w.phase,
            "message": message,
            "at": w.now.isoformat(),
        }
        for n in w.spec.notifications:
            if event in n.on:
                w.notifications.append(act.Notify(n, event, message, payload))
