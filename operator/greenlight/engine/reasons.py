"""Every reason Greenlight gives: of its Events, of its conditions, of a history entry.

One vocabulary, each reason with its meaning, as users read them in `kubectl describe`,
`kubectl get events`, alerts and notifications. A reason is never spelled anywhere else
(`tests/unit/test_reasons.py` holds that) and never parsed back out of a message: a history
entry keeps its reason and its message apart.
"""

from __future__ import annotations

import enum


class Reason(enum.StrEnum):
    # -- a release's life (Events; the last ones are also history entries' reasons) -----------
    FIRST_RELEASE = "FirstRelease"
    """Event: the first revision fills the live Service directly (no traffic to protect)."""
    PROGRESSING = "Progressing"
    """Event: a new revision is coming up beside the live one (notification: Started)."""
    PROMOTED = "Promoted"
    """Event: a revision went live (the live Service selects it; notification: Promoted)."""
    SUPERSEDED = "Superseded"
    """Event and history: a newer spec (or the spec going back) replaced the revision in flight."""
    ABORTED = "Aborted"
    """Event: a revision was stopped for good (until the spec changes or a retry); live
    unchanged (notification: Aborted)."""
    ROLLED_BACK = "RolledBack"
    """Event: the live revision failed its post-promotion checks; the previous one is live
    again (notification: RolledBack)."""
    SCALED_DOWN = "ScaledDown"
    """Event: a revision that is neither live, in flight nor warm was scaled to zero."""
    RECOVERED = "Recovered"
    """Event: the status had lost the live revision; it was read back from the live Service."""
    DRIFT = "Drift"
    """Warning Event: a Service selector was changed outside Greenlight and is set back."""
    RESTARTED = "Restarted"
    """Event: spec.restartAt was carried out: the live revision's Deployment replaces its pods
    (none unavailable meanwhile); no new revision."""

    # -- commands (Events) ---------------------------------------------------------------------
    PROMOTE_REQUESTED = "PromoteRequested"
    """A promote command was taken: the candidate flips as soon as it is ready."""
    PROMOTE_IGNORED = "PromoteIgnored"
    """A promote command could not apply (nothing in flight, or aborted); it was cleared."""
    ABORT_IGNORED = "AbortIgnored"
    """An abort command could not apply (nothing in flight); it was cleared."""
    RETRY = "Retry"
    """A retry command cleared the abort: the revision is released again."""
    RETRY_IGNORED = "RetryIgnored"
    """A retry command found nothing aborted; it was cleared."""
    UNDO = "Undo"
    """An undo was carried out (spec.undoWritesSpec: it wrote an earlier revision's template
    back; a group: every member's)."""
    UNDONE = "Undone"
    """An undo rolled the spec's revision back without writing the spec: it is held off (not
    released again) until spec.template changes or a retry, so GitOps cannot undo the undo."""
    UNDO_IGNORED = "UndoIgnored"
    """An undo asked for the revision the spec already names; nothing to do."""
    UNDO_FAILED = "UndoFailed"
    """Warning Event: an undo could not apply (no such revision, or its Deployment is gone)."""

    # -- checks (Events: a check's measurement verdict changed) --------------------------------
    CHECK_SUCCESSFUL = "CheckSuccessful"
    """A check's measurement succeeded."""
    CHECK_PASSED = "CheckPassed"
    """A check passed: enough successful measurements (a Job check: its Job succeeded)."""
    CHECK_FAILED = "CheckFailed"
    """Warning Event: a check's measurement failed, or the check failed (over its limits)."""
    CHECK_INCONCLUSIVE = "CheckInconclusive"
    """A check's measurement, or the check, was inconclusive; as a condition reason: the
    pre-promotion checks ended inconclusive and the release waits for a promote --skip-checks
    or an abort."""
    CHECK_ERROR = "CheckError"
    """Warning Event: a check's measurement could not be taken (connection, query, Job)."""

    # -- why a release is where it is (the Progressing condition; some end in history) ---------
    RELEASE_COMPLETE = "ReleaseComplete"
    """The live revision serves with every pod available; nothing in flight."""
    CANDIDATE_PROGRESSING = "CandidateProgressing"
    """The new revision's pods are coming up."""
    CHECKS = "Checks"
    """Promotion-gate (or rolling analysis) checks are running."""
    PROMOTE_AFTER = "PromoteAfter"
    """The candidate is ready; it flips when promoteAfterSeconds has passed."""
    WAITING_FOR_PROMOTION = "WaitingForPromotion"
    """The candidate is ready and waits for a promote command (autoPromote: false)."""
    GROUP_WAITING = "GroupWaiting"
    """The candidate is ready and waits for its ReleaseGroup to flip the members together."""
    HANDING_OVER = "HandingOver"
    """A worker's handover (policy handover): the live revision is draining; the candidate
    becomes live once it has drained (the handover checks, or timeoutSeconds)."""
    HANDOVER_FAILED = "HandoverFailed"
    """History: a handover check failed (and no timeoutSeconds): the candidate was aborted,
    the old revision is live again."""
    PAUSED = "Paused"
    """spec.paused holds the release: no new slot, batch or flip."""
    PAUSE_STEP = "PauseStep"
    """A rolling release waits at a pause step."""
    ROLL_BACK = "RollBack"
    """The spec went back to the live revision mid-rolling: pods move back to it."""
    CONFIG_MISSING = "ConfigMissing"
    """The spec's revision references a ConfigMap or Secret that does not exist (not
    optional): nothing is created for it until it exists; what serves keeps serving."""
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    """No progress for progressDeadlineSeconds: the release was aborted (also history)."""
    PRE_PROMOTION_CHECK_FAILED = "PrePromotionCheckFailed"
    """A pre-promotion check failed: the candidate was aborted (also history)."""
    POST_PROMOTION_CHECK_FAILED = "PostPromotionCheckFailed"
    """A post-promotion check failed: flipped back to the warm revision (also history)."""
    ANALYSIS_FAILED = "AnalysisFailed"
    """A rolling step's analysis failed: the release was aborted (also history)."""
    ABORTED_BY_USER = "AbortedByUser"
    """An abort command stopped the release (also history)."""
    LIVE_REVISION_AVAILABLE = "LiveRevisionAvailable"
    """The Available condition: the live revision has every pod available."""
    LIVE_REVISION_PROGRESSING = "LiveRevisionProgressing"
    """The live revision is short of pods, within progressDeadlineSeconds."""
    LIVE_REVISION_UNAVAILABLE = "LiveRevisionUnavailable"
    """The live revision has been short of pods for longer than progressDeadlineSeconds."""
    RESTARTING = "Restarting"
    """The live revision's pods are being replaced for spec.restartAt (none unavailable)."""
    RESTART_STALLED = "RestartStalled"
    """The live revision's restart made no progress for progressDeadlineSeconds: its new pods
    do not become available; the old ones keep serving (Degraded)."""

    # -- refusals and errors -------------------------------------------------------------------
    SERVICE_CONFLICT = "ServiceConflict"
    """A Service the spec names belongs to someone else: refused, nothing touched."""
    ROUTE_PENDING = "RoutePending"
    """Everything else is done, but the gateway has not accepted the route as written yet (or
    refuses it: the message says why)."""
    ROUTE_CONFLICT = "RouteConflict"
    """The HTTPRoute the spec names belongs to someone else (no adopt): refused, nothing
    touched."""
    ROUTE_HANDED_OVER = "RouteHandedOver"
    """spec.traffic was removed: the route sends every request to the live Service and is no
    longer written."""
    INVALID_SPEC = "InvalidSpec"
    """The spec cannot be acted on (the message names the field): nothing touched."""
    APPLY_FAILED = "ApplyFailed"
    """A write to the API server failed; retried with backoff (the message says which)."""

    # -- a deleted Release that adopted its Service (engine/finalize.py) -----------------------
    ADOPTED_SERVICE_WAITING = "AdoptedServiceWaiting"
    """Deleted: the adopted Service keeps this Release's pods until one its original selector
    selects is Ready."""
    SELECTOR_RESTORED = "SelectorRestored"
    """Deleted: the adopted Service selects what it did before adoption, with a ready endpoint."""
    SELECTOR_NOT_RESTORED = "SelectorNotRestored"
    """Warning Event: deleted, but the adopted Service could not be left serving (no recorded
    selector, or no ready endpoint within progressDeadlineSeconds)."""

    # -- spec.workloadRef: a Deployment adopted (engine/workload.py, engine/finalize.py) -------
    WORKLOAD_ADOPTED = "WorkloadAdopted"
    """spec.workloadRef's Deployment was adopted: labelled, its replicas recorded; its pod
    template is released, its pods keep serving until a Greenlight revision is live."""
    WORKLOAD_SCALED_DOWN = "WorkloadScaledDown"
    """The adopted Deployment was scaled down (spec.workloadRef.scaleDown)."""
    WORKLOAD_TARGETED = "WorkloadTargeted"
    """Warning Event at adoption: an HPA or a PDB still points at the original Deployment."""
    WORKLOAD_RESCALED = "WorkloadRescaled"
    """Warning Event: someone (the field manager named) scaled the adopted Deployment back up;
    Greenlight scaled it down again."""
    WORKLOAD_INVALID = "WorkloadInvalid"
    """spec.workloadRef cannot be released (missing, another Release's, an unusable pod
    template): nothing touched."""
    WORKLOAD_RESTORING = "WorkloadRestoring"
    """Deleted or detached: the adopted Deployment gets its replicas back; the Service keeps
    this Release's pods until they are all available."""
    WORKLOAD_NOT_RESTORED = "WorkloadNotRestored"
    """Warning Event: deleted, but the adopted Deployment's pods did not all become available
    within progressDeadlineSeconds."""
    DETACHED = "Detached"
    """greenlight.dev/detach: the workload and the Service were handed back; the Release holds
    (it changes nothing) and can be deleted without touching traffic."""

    # -- release groups ------------------------------------------------------------------------
    GROUP_FLIPPED = "GroupFlipped"
    """Every member went live on the group's entry (with the first-to-last flip spread)."""
    GROUP_ABORTED = "GroupAborted"
    """Warning Event: a member failed; the group's other candidates are aborted (AbortAll)."""
    GROUP_INVALID = "GroupInvalid"
    """Warning Event: the group cannot be acted on (a member missing, in two groups, rolling)."""
    INVALID_GROUP = "InvalidGroup"
    """The group's Ready condition reason while it cannot be acted on."""


_BY_VALUE = {r.value: r for r in Reason}


def known(value: str | None) -> Reason | None:
    """The Reason spelled `value` (None: not one of ours, e.g. written by an older version)."""
    return _BY_VALUE.get(value or "")


CHECK_VERDICT = {
    "Successful": Reason.CHECK_SUCCESSFUL,
    "Failed": Reason.CHECK_FAILED,
    "Inconclusive": Reason.CHECK_INCONCLUSIVE,
    "Error": Reason.CHECK_ERROR,
}
"""The Event reason of a measurement's verdict."""

CHECK_PHASE = {
    "Passed": Reason.CHECK_PASSED,
    "Failed": Reason.CHECK_FAILED,
    "Inconclusive": Reason.CHECK_INCONCLUSIVE,
}
"""The Event reason of a check that finished."""
