"""User commands (promote, abort, retry, undo): when each may apply, and consuming them.

`refusal` is the one precondition: the engine ignores a command it refuses (with an Event),
and `kubectl greenlight` refuses the same command up front with the same words.
"""

from __future__ import annotations

import json

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import config, history, lifecycle, naming, snapshot
from greenlight.engine.draft import Work
from greenlight.engine.reasons import Reason

SKIP_CHECKS = "skip-checks"
"""greenlight.dev/promote=skip-checks: promote and skip the pre-promotion checks left."""

BY_NAME = {
    "promote": naming.COMMAND_PROMOTE,
    "abort": naming.COMMAND_ABORT,
    "retry": naming.COMMAND_RETRY,
    "undo": naming.COMMAND_UNDO,
}


def refusal(
    command: str, status: api.ReleaseStatus, desired: str, argument: str = ""
) -> str | None:
    """Why `command` cannot apply to a Release whose spec is `desired` (None: it can)."""
    live = status.live_hash
    # (with nothing live, a release is in progress once its candidate is: firstReleaseChecks)
    in_progress = desired != live and (live is not None or status.candidate_hash is not None)
    if command in ("promote", "abort"):
        if not in_progress:
            return (
                f"nothing to {command}: no release in progress (phase {status.phase or 'unknown'})"
            )
        if status.aborted_hash == desired:
            entry = history.find(status.history, desired)
            number = entry.revision if entry else "?"
            return f"nothing to {command}: revision {number} is aborted (retry it first)"
        return None
    if command == "retry":
        return None if status.aborted_hash is not None else "nothing to retry: no aborted revision"
    if command == "undo":
        target = history.undo_target(status.history, live, argument)
        if isinstance(target, str):
            return target
        if target.template_hash == desired:
            return f"revision {target.revision} is already the spec"
        return None
    return f"unknown command {command!r}"


def deployment_gone(revision: int, deployment: str) -> str:
    return (
        f"revision {revision}: its Deployment {deployment} was deleted outside Greenlight"
        " (it is within revisionHistoryLimit) and its template with it; apply that template"
        " again to release it anew"
    )


def consume(w: Work, desired: str) -> bool:
    """Carry out the command annotations and clear them. True: stop this reconcile here (undo
    rewrote the spec and the next reconcile releases it). An undo whose revision this reconcile
    can release at once sets `w.spec` to the spec it wrote and returns False: the same
    reconcile goes on to that revision (a warm one flips now, not one watch event later)."""
    given = {k: v for k, v in w.snap.release.annotations.items() if k in naming.COMMANDS}
    if not given:
        return False
    w.do(act.ClearCommands(tuple(sorted(given))))
    status = w.snap.release.status.model_copy(update={**w.d.fields(), "history": w.history})

    def refused(command: str) -> str | None:
        return refusal(command, status, desired, given[BY_NAME[command]].strip())

    if naming.COMMAND_RETRY in given:
        if (why := refused("retry")) is None:
            w.checks = [c for c in w.checks if c.template_hash != w.d.aborted_hash]
            w.d.aborted_hash = None
            w.d.candidate = None
            w.event(Reason.RETRY, "retrying the aborted revision")
        else:
            w.event(Reason.RETRY_IGNORED, why)
    if naming.COMMAND_ABORT in given:
        if (why := refused("abort")) is None:
            lifecycle.abort(w, desired, Reason.ABORTED_BY_USER, "aborted by a user command")
        else:
            w.event(Reason.ABORT_IGNORED, why)
    if naming.COMMAND_PROMOTE in given:
        if (why := refused("promote")) is None:
            w.d.promote_requested = desired
            skip = given[naming.COMMAND_PROMOTE].strip() == SKIP_CHECKS
            w.checks_skipped = desired if skip else w.checks_skipped
            also = "; the remaining checks are skipped" if skip else ""
            w.event(
                Reason.PROMOTE_REQUESTED,
                f"promotion requested: flip as soon as it is available{also}",
            )
        else:
            w.event(Reason.PROMOTE_IGNORED, why)
    if naming.COMMAND_UNDO in given:
        return _undo(w, desired, given[naming.COMMAND_UNDO], refused("undo"))
    return False


def _undo(w: Work, desired: str, argument: str, why: str | None) -> bool:
    if why is not None:
        ignored = "already" in why
        w.event(Reason.UNDO_IGNORED if ignored else Reason.UNDO_FAILED, why, warning=not ignored)
        return False
    target = history.undo_target(w.history, w.d.live_hash, argument)
    assert not isinstance(target, str)
    name = naming.deployment_name(w.name, target.template_hash)
    d = w.snap.deployment(target.template_hash)
    if d is None or d.template is None:
        w.event(Reason.UNDO_FAILED, deployment_gone(target.revision, name), warning=True)
        return False
    template = json.loads(d.template)
    spec = w.spec.model_copy(update={"template": api.PodTemplate.model_validate(template)})
    now = config.revision(w.name, spec, w.snap.config)
    # (writing the template back cannot bring back the data of its ConfigMaps and Secrets:
    # when it changed since, the spec is held instead, as without undoWritesSpec)
    if not w.spec.undo_writes_spec or (d.config and now.hash != config.recorded(spec, d).hash):
        _hold(w, desired, target, d)
        return False
    w.do(act.RestoreTemplate(template=template, revision=target.revision))
    w.event(Reason.UNDO, f"spec.template set back to revision {target.revision}")
    if now.hash == target.template_hash:
        w.spec, w.revision = spec, now
        return False
    # (spec.healthCheck changed since: the template written back is a new revision, which
    # the next reconcile releases from the spec as written)
    w.outcome(w.snap.release.status.phase or "Progressing", w.snap.release.status.message)
    return True


def _hold(w: Work, desired: str, target: api.HistoryEntry, d: snapshot.DeploymentView) -> None:
    """Roll back without writing the spec: the spec's revision is held off (abortedHash) and
    the target recorded (rolledBackTo) until spec.template changes or a retry. A warm target
    is live again in this reconcile; a cold one (or a group member's: its group flips the
    members together) is released in its place (`lifecycle.undo_hold`)."""
    message = f"undone by a user command, back to revision {target.revision}"
    live = w.snap.deployment(w.d.live_hash)
    size = lifecycle.candidate_size(w.spec.replicas, live)
    warm = w.snap.group is None and lifecycle.ready_to_flip(d, size, live)
    if desired == w.d.live_hash and warm and w.entry(target.template_hash) is not None:
        lifecycle.roll_back(w, target.template_hash, Reason.UNDONE, message)
    elif desired == w.d.live_hash:
        w.update_entry(desired, outcome="RolledBack", reason=Reason.UNDONE, message=message)
        # (it serves until the revision undone to is back: `lifecycle.promote` retires it)
        w.d.aborted_hash = desired
    else:
        lifecycle.abort(w, desired, Reason.UNDONE, message)
    w.d.rolled_back_to = target.template_hash
    w.event(
        Reason.UNDO,
        f"revision {target.revision} is live again (or being brought back); spec.template"
        f" (revision {w.revision_of(desired)}) is held until it changes",
    )
