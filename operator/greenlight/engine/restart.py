"""spec.restartAt: replace the live revision's pods in place, without a new revision.

As Argo Rollouts' restartAt (and `kubectl rollout restart`): when spec.restartAt is later than
the restart last carried out (status.restartedAt) and not in the future, the live revision's
Deployment gets `naming.ANNOTATION_RESTARTED_AT` on its pod template and the Deployment
controller replaces its pods by its own rolling update, with maxUnavailable 0 (kube/render.py:
a new pod is available before an old one goes). restartAt is not in the template hash: no new
revision, no new Deployment, history unchanged. Only the live revision is restarted: a warm
slot keeps its pods, and a candidate (in flight, or made later) is new pods anyway, created
without the annotation.
"""

from __future__ import annotations

from greenlight.engine import actions as act
from greenlight.engine import lifecycle, naming, snapshot
from greenlight.engine.draft import Work
from greenlight.engine.reasons import Reason

REPORTED = (Reason.RESTARTING, Reason.RESTART_STALLED)


def carry_out(w: Work) -> None:
    """Restart the live revision when spec.restartAt is due (a future one: wake up then);
    record it; `w.restarting`: its pods are being replaced."""
    at, done = w.spec.restart_at, w.d.restarted_at
    live = w.snap.deployment(w.d.live_hash)
    recorded_now = False
    if at is not None and (done is None or at > done):
        if at > w.now:
            w.wake_at(at)
        else:
            w.d.restarted_at = at  # no live Deployment: nothing to restart (new pods anyway)
            recorded_now = True
            stamp = naming.restart_stamp(at)
            if live is not None and live.restarted_at != stamp:  # (equal: a lost status write)
                w.do(act.RestartDeployment(live.name, stamp))
                w.event(
                    Reason.RESTARTED,
                    f"revision {w.revision_of(live.template_hash) or live.revision}: its pods"
                    f" are replaced for spec.restartAt={stamp}, none unavailable meanwhile",
                )
                w.restarting = True
                return
    w.restarting = live is not None and _replacing(w, live, recorded_now)


def _replacing(w: Work, d: snapshot.DeploymentView, recorded_now: bool) -> bool:
    """The live Deployment carries the restart recorded and still replaces pods for it."""
    recorded = w.d.restarted_at
    if recorded is None or d.restarted_at != naming.restart_stamp(recorded):
        return False
    if d.observed_generation < d.generation:
        # its controller has not seen the last change yet (our restart, or a scale since): it
        # is restarting if it was when last reported (or our restart was only recorded now)
        said = [c.reason for c in w.snap.release.status.conditions if c.type == "Progressing"]
        return recorded_now or any(reason in REPORTED for reason in said)
    return d.replacing()


def report(w: Work, d: snapshot.DeploymentView, label: str) -> None:
    """The outcome while the live revision's pods are replaced: Progressing, or Degraded when
    its Deployment reported no progress for progressDeadlineSeconds (the old pods serve on)."""
    want = w.spec.replicas
    replaced = max(0, want - (d.replicas - d.updated_replicas)) if d.replacing() else 0
    progress = f"{replaced}/{want} pods replaced, {d.available_replicas} available"
    assert w.d.restarted_at is not None  # (restarting: one was carried out)
    if d.replacing() and lifecycle.deadline_passed(w, w.d.restarted_at, d):
        deadline = f"progressDeadlineSeconds={w.spec.progress_deadline_seconds}"
        w.outcome(
            "Degraded",
            f"restarting {label}: no progress for {deadline} at {progress}; its old pods serve",
            Reason.RESTART_STALLED,
        )
        return
    w.outcome("Progressing", f"restarting {label}: {progress}", Reason.RESTARTING)
