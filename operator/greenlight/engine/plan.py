"""The next safe step for one Release: `plan(snapshot) -> Plan`. Pure: no I/O, no clock."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import history, naming, snapshot


@dataclasses.dataclass(frozen=True)
class Plan:
    actions: tuple[act.Action, ...]
    status: api.ReleaseStatus
    requeue_after: float | None
    """Seconds until a timed decision is due (promotion, deadline, scale-down); None: none."""


NO_CANDIDATE: dict[str, Any] = dict.fromkeys(
    (
        "candidate_hash",
        "candidate_revision",
        "candidate_color",
        "candidate_since",
        "candidate_available_since",
        "promote_requested",
    )
)
"""The status fields of a candidate in flight, cleared when it goes live, aborts or is replaced."""


class Work:
    """The plan being built: actions, the next status, and the times to wake up at."""

    def __init__(self, snap: snapshot.Snapshot) -> None:
        self.snap = snap
        self.spec = snap.release.spec
        self.now = snap.now
        self.name = snap.release.name
        self.st: dict[str, Any] = {
            f: getattr(snap.release.status, f) for f in api.ReleaseStatus.model_fields
        }
        self.history: list[api.HistoryEntry] = list(snap.release.status.history)
        self.actions: list[act.Action] = []
        self.events: list[act.RecordEvent] = []
        self.due: list[datetime.datetime] = []
        self.draining: set[str] = set()
        """Revisions a rolling move scales down in batches: housekeeping leaves them alone."""
        self.phase: api.Phase = "Progressing"
        self.message = ""
        self.reason = ""

    # -- recording ---------------------------------------------------------------------------
    def do(self, action: act.Action) -> None:
        self.actions.append(action)

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(act.RecordEvent(reason, message, "Warning" if warning else "Normal"))

    def wake_at(self, when: datetime.datetime) -> None:
        self.due.append(when)

    def outcome(self, phase: api.Phase, message: str, reason: str = "") -> None:
        self.phase, self.message, self.reason = phase, message, reason

    # -- history -----------------------------------------------------------------------------
    def entry(self, template_hash: str | None) -> api.HistoryEntry | None:
        return history.find(self.history, template_hash)

    def update_entry(self, template_hash: str, **changes: Any) -> None:
        entry = self.entry(template_hash)
        if entry is not None:
            history.put(self.history, entry.model_copy(update=changes))

    def revision_of(self, template_hash: str | None) -> int | None:
        entry = self.entry(template_hash)
        return entry.revision if entry else None

    # -- deployments -------------------------------------------------------------------------
    def ensure_deployment(
        self, template_hash: str, template: dict[str, Any], color: api.Color, replicas: int
    ) -> api.HistoryEntry:
        """Make the revision's Deployment exist with `replicas`; return its history entry."""
        d = self.snap.deployment(template_hash)
        entry = self.entry(template_hash)
        if entry is None and d is not None and d.revision:
            # Its Deployment exists but the status that recorded it was lost (a failed write,
            # a refused later action): the Deployment's revision label is the truth.
            entry = api.HistoryEntry(
                revision=d.revision,
                template_hash=template_hash,
                images=naming.images(template),
                color=color,
                outcome="Progressing",
                created_at=self.now,
            )
        elif entry is None or entry.outcome in ("Retired", "Superseded"):
            # A new revision, or an old template released again (undo): a new number.
            entry = api.HistoryEntry(
                revision=history.next_revision(self.history, self.snap.deployments),
                template_hash=template_hash,
                images=naming.images(template),
                color=color,
                outcome="Progressing",
                created_at=self.now,
            )
        elif entry.color != color:
            entry = entry.model_copy(update={"color": color})
        history.put(self.history, entry)
        revision = entry.revision
        if d is None:
            labelled = _with_pod_labels(template, naming.pod_labels(self.name, template_hash))
            self.do(
                act.CreateDeployment(
                    name=naming.deployment_name(self.name, template_hash),
                    template_hash=template_hash,
                    revision=revision,
                    color=color,
                    replicas=replicas,
                    template=labelled,
                    user_template=naming.user_template(self.spec),
                )
            )
            return entry
        if d.spec_replicas != replicas:
            self.do(act.ScaleDeployment(d.name, replicas))
        if d.color != color or d.revision != revision:
            self.do(act.LabelDeployment(d.name, color, revision))
        return entry


def _with_pod_labels(template: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    metadata = dict(template.get("metadata") or {})
    metadata["labels"] = {**(metadata.get("labels") or {}), **labels}
    return {**template, "metadata": metadata}


def plan(snap: snapshot.Snapshot) -> Plan:
    """Read the snapshot, decide every safe step that is due now, and the next status."""
    from greenlight.engine import bluegreen, rolling

    w = Work(snap)
    if not _services_are_ours(w):
        return finish(w)
    template = naming.effective_template(w.spec)
    desired = naming.template_hash(template)
    _adopt_live_from_service(w)
    if _commands(w, desired):
        return finish(w)
    live = w.st["live_hash"]
    in_flight = w.st["candidate_hash"] == desired or w.st["rolling_back"]
    # A strategy switch takes effect at the next release, never mid-release.
    strategy = w.st["strategy"] if in_flight and w.st["strategy"] else _strategy(w.spec)
    if live is None and _service_is_empty(w):
        _first_release(w, desired, template)
    elif live == desired:
        _cancel_candidate(w, "the spec went back to the live revision")
        if w.st["strategy"] == "rolling" and not _rolled_back(w, live):
            w.outcome("Progressing", f"returning to revision {w.st['live_revision']}", "RollBack")
        else:
            _steady(w, desired, template)
    else:
        if w.st["candidate_hash"] not in (None, desired):
            _cancel_candidate(w, "a newer spec replaced it")
        module = rolling if strategy == "rolling" else bluegreen
        module.release_candidate(w, live, desired, template)
    _housekeeping(w)
    return finish(w)


def _strategy(spec: api.ReleaseSpec) -> str:
    return "rolling" if spec.strategy.rolling is not None else "blueGreen"


def _rolled_back(w: Work, live: str) -> bool:
    """A rolling release was undone mid-way: move back within the same bounds first."""
    from greenlight.engine import rolling

    surge, unavailable = rolling.bounds(w.spec.strategy.rolling or api.Rolling(), w.spec.replicas)
    return rolling.roll_back(w, live, surge, unavailable)


def _services_are_ours(w: Work) -> bool:
    """Never take over a Service we did not create, unless the Release asks to (adopt)."""
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
    return False


def _service_is_empty(w: Work) -> bool:
    """No live traffic to protect: the Service is ours (or absent) and selects no revision."""
    svc = w.snap.live_service
    return svc is None or svc.owned


def _adopt_live_from_service(w: Work) -> None:
    """The live Service's selector is the truth: finish a flip whose status write was lost."""
    svc = w.snap.live_service
    selected = svc.selector.get(naming.LABEL_HASH) if svc else None
    if selected is None or selected == w.st["live_hash"] or w.entry(selected) is None:
        return
    promote(w, selected, event=False)


def promote(w: Work, template_hash: str, event: bool = True) -> None:
    """Record that `template_hash` is live now (the Service is pointed in `finish`)."""
    old = w.st["live_hash"]
    entry = w.entry(template_hash)
    assert entry is not None
    if old is not None and old != template_hash:
        w.update_entry(old, outcome="Retired", retired_at=w.now)
    w.update_entry(template_hash, outcome="Live", promoted_at=w.now, reason=None)
    w.st.update(
        NO_CANDIDATE,
        live_hash=template_hash,
        live_revision=entry.revision,
        live_color=entry.color,
        strategy=None,
        current_step=None,
        weight=None,
        rolling_back=False,
    )
    if event:
        delay = w.spec.strategy.effective_blue_green.scale_down_delay_seconds
        old_rev = w.revision_of(old)
        warm = f"; revision {old_rev} stays warm for {delay}s" if old_rev else ""
        w.event("Promoted", f"revision {entry.revision} ({entry.color}) is live{warm}")


def _commands(w: Work, desired: str) -> bool:
    """Consume command annotations. True when this reconcile should stop here (undo)."""
    given = {k: v for k, v in w.snap.release.annotations.items() if k in naming.COMMANDS}
    if not given:
        return False
    w.do(act.ClearCommands(tuple(sorted(given))))
    live = w.st["live_hash"]
    if naming.COMMAND_RETRY in given and w.st["aborted_hash"] is not None:
        w.st.update(aborted_hash=None, candidate_since=None)
        w.event("Retry", "retrying the aborted revision")
    if naming.COMMAND_ABORT in given:
        if live is not None and desired != live and w.st["aborted_hash"] != desired:
            abort(w, desired, "AbortedByUser", "aborted by a user command")
        else:
            w.event("AbortIgnored", "nothing to abort: no release in progress")
    if naming.COMMAND_PROMOTE in given:
        if live is not None and desired != live:
            w.st["promote_requested"] = desired
            w.event("PromoteRequested", "promotion requested: flip as soon as it is available")
        else:
            w.event("PromoteIgnored", "nothing to promote: no release in progress")
    if naming.COMMAND_UNDO in given:
        target = history.undo_target(w.history, live, given[naming.COMMAND_UNDO])
        if isinstance(target, str):
            w.event("UndoFailed", target, warning=True)
        elif target.template_hash == desired:
            w.event("UndoIgnored", f"revision {target.revision} is already the spec")
        elif w.snap.deployment(target.template_hash) is None:
            w.event(
                "UndoFailed",
                f"revision {target.revision}: its Deployment is gone (beyond revisionHistoryLimit)",
                warning=True,
            )
        else:
            name = naming.deployment_name(w.name, target.template_hash)
            w.do(act.RestoreTemplate(deployment=name, revision=target.revision))
            w.event("Undo", f"spec.template set back to revision {target.revision}")
            w.outcome(w.snap.release.status.phase or "Progressing", w.snap.release.status.message)
            return True
    return False


def abort(w: Work, template_hash: str, reason: str, message: str) -> None:
    """Stop a candidate for good (until the spec changes or a retry): it never goes live."""
    if w.entry(template_hash) is None:  # aborted before its first reconcile
        template = naming.effective_template(w.spec)
        color: api.Color = naming.other_color(w.st["live_color"])
        history.put(
            w.history,
            api.HistoryEntry(
                revision=history.next_revision(w.history, w.snap.deployments),
                template_hash=template_hash,
                images=naming.images(template),
                color=color,
                outcome="Aborted",
                created_at=w.now,
            ),
        )
    revision = w.revision_of(template_hash)
    w.update_entry(template_hash, outcome="Aborted", reason=f"{reason}: {message}")
    w.st.update(NO_CANDIDATE, aborted_hash=template_hash)
    w.event("Aborted", f"revision {revision}: {message}; live revision unchanged", warning=True)
    aborted_outcome(w, template_hash)


def aborted_outcome(w: Work, template_hash: str) -> None:
    entry = w.entry(template_hash)
    reason = (entry.reason if entry else None) or "Aborted"
    phase: api.Phase = "Aborted" if reason.startswith("AbortedByUser") else "Degraded"
    revision = entry.revision if entry else "?"
    w.outcome(
        phase,
        f"revision {revision} aborted ({reason}); live revision {w.st['live_revision']} serves."
        " Change the spec, or annotate greenlight.dev/retry=true to try again",
        reason.split(":")[0],
    )


def _cancel_candidate(w: Work, why: str) -> None:
    old = w.st["candidate_hash"]
    if old is not None and old != w.st["live_hash"]:
        w.update_entry(old, outcome="Superseded", reason=why)
        w.event("Superseded", f"revision {w.revision_of(old)} superseded: {why}")
    w.st.update(NO_CANDIDATE)


def start_candidate(
    w: Work, strategy: str, live: str | None, desired: str, template: dict[str, Any], replicas: int
) -> tuple[int, api.Color, bool]:
    """Ensure the candidate Deployment at `replicas`; record it as the `strategy` release in flight.

    Returns its revision, its colour, and whether the release started in this step."""
    color = naming.other_color(w.st["live_color"]) if live else "blue"
    entry = w.ensure_deployment(desired, template, color, replicas)
    w.update_entry(desired, outcome="Progressing", reason=None)
    started = w.st["candidate_since"] is None
    w.st.update(
        strategy=strategy,
        candidate_hash=desired,
        candidate_revision=entry.revision,
        candidate_color=color,
        candidate_since=w.st["candidate_since"] or w.now,
    )
    return entry.revision, color, started


def _first_release(w: Work, desired: str, template: dict[str, Any]) -> None:
    """No traffic yet: the first revision fills the live Service directly."""
    w.st.update(live_hash=desired, live_color="blue")
    _steady(w, desired, template)
    w.event("FirstRelease", f"revision {w.st['live_revision']} (blue) fills the live Service")


def _steady(w: Work, live: str, template: dict[str, Any]) -> None:
    """No candidate: the live revision follows spec.replicas."""
    color: api.Color = w.st["live_color"] or "blue"
    w.ensure_deployment(live, template, color, w.spec.replicas)
    w.update_entry(live, outcome="Live")
    entry = w.entry(live)
    assert entry is not None
    w.st["live_revision"] = entry.revision
    d = w.snap.deployment(live)
    if d is not None and d.fully_available(w.spec.replicas):
        if entry.promoted_at is None:
            w.update_entry(live, promoted_at=w.now)
        w.outcome("Healthy", f"revision {entry.revision} ({color}) is live", "ReleaseComplete")
        return
    ready = d.available_replicas if d else 0
    if entry.promoted_at is None:
        deadline = entry.created_at + datetime.timedelta(seconds=w.spec.progress_deadline_seconds)
        if w.now >= deadline:
            w.outcome(
                "Degraded",
                f"revision {entry.revision}: {ready}/{w.spec.replicas} available after"
                f" progressDeadlineSeconds={w.spec.progress_deadline_seconds}",
                "ProgressDeadlineExceeded",
            )
            return
        w.wake_at(deadline)
    w.outcome(
        "Progressing",
        f"revision {entry.revision} ({color}): {ready}/{w.spec.replicas} available",
        "LiveRevisionProgressing",
    )


def _housekeeping(w: Work) -> None:
    """Scale down what is neither live, candidate nor warm; delete beyond the history limit."""
    keep = {h for h in (w.st["live_hash"], w.st["candidate_hash"]) if h is not None}
    bluegreen = w.spec.strategy.effective_blue_green
    delay = datetime.timedelta(seconds=bluegreen.scale_down_delay_seconds)
    warm = set()
    for entry in w.history:
        if entry.outcome == "Retired" and entry.retired_at and entry.retired_at + delay > w.now:
            warm.add(entry.template_hash)
            w.wake_at(entry.retired_at + delay)
    old = sorted(
        (d for d in w.snap.deployments if d.template_hash not in keep),
        key=lambda d: w.revision_of(d.template_hash) or d.revision or 0,
        reverse=True,
    )
    for i, d in enumerate(old):
        if d.template_hash in w.draining:
            continue
        if i >= w.spec.revision_history_limit:
            w.do(act.DeleteDeployment(d.name))
        elif d.template_hash not in warm and d.spec_replicas > 0:
            w.do(act.ScaleDeployment(d.name, 0))
            w.event("ScaledDown", f"revision {w.revision_of(d.template_hash)} scaled to 0")
    w.history = history.trim(w.history, w.spec.revision_history_limit, keep)


def _services(w: Work) -> list[act.Action]:
    """Point the live and preview Services where the status says; only when they differ."""
    out: list[act.Action] = []
    live = w.st["live_hash"]
    spec = w.spec
    if live is not None:
        selector = naming.pod_labels(w.name, live)
        if w.st["strategy"] == "rolling" and (w.st["candidate_hash"] or w.st["rolling_back"]):
            selector = {naming.LABEL_RELEASE: w.name}  # rolling: pods of every revision serve
        out += _service("live", w.snap.live_service, spec.service.name, selector, w)
    if spec.preview_service is not None and (target := w.st["candidate_hash"] or live):
        out += _service(
            "preview",
            w.snap.preview_service,
            spec.preview_service.name,
            naming.pod_labels(w.name, target),
            w,
        )
    return out


def _service(
    role: str,
    seen: snapshot.ServiceView | None,
    name: str,
    selector: dict[str, str],
    w: Work,
) -> list[act.Action]:
    spec = w.spec
    ports = tuple(spec.service.ports)
    if role == "preview" and spec.preview_service is not None and spec.preview_service.ports:
        ports = tuple(spec.preview_service.ports)
    if seen is not None and seen.selector == selector:
        return []
    return [
        act.ApplyService(
            role="live" if role == "live" else "preview",
            name=name,
            selector=selector,
            ports=ports,
            type=spec.service.type if role == "live" else "ClusterIP",
            create=seen is None,
        )
    ]


def _order(a: act.Action, draining: set[str]) -> int:
    """Grow before the Service moves; shrink and delete only after it has moved. The sort is
    stable: a rolling batch keeps the order it was planned in (olds shrink, then new grows)."""
    if isinstance(a, act.CreateDeployment | act.LabelDeployment):
        return 1
    if isinstance(a, act.ScaleDeployment):
        return 3 if a.replicas == 0 and a.name not in draining else 1
    if isinstance(a, act.ApplyService):
        return 2
    if isinstance(a, act.DeleteDeployment):
        return 4
    return 5


def finish(w: Work) -> Plan:
    draining = {naming.deployment_name(w.name, h) for h in w.draining}
    actions = sorted([*w.actions, *_services(w)], key=lambda a: _order(a, draining))
    actions += w.events
    live = w.snap.deployment(w.st["live_hash"])
    candidate = w.snap.deployment(w.st["candidate_hash"])
    old = w.snap.release.status
    fields = dict(w.st)
    fields.update(
        phase=w.phase,
        message=w.message,
        observed_generation=w.snap.release.generation,
        replicas=w.spec.replicas,
        ready_replicas=live.ready_replicas if live else 0,
        available_replicas=live.available_replicas if live else 0,
        candidate_ready_replicas=candidate.ready_replicas if candidate else 0,
        revisions=[
            api.RevisionReplicas(
                revision=w.revision_of(d.template_hash) or d.revision,
                template_hash=d.template_hash,
                replicas=d.spec_replicas,
                available_replicas=d.available_replicas,
            )
            for d in w.snap.deployments
            if d.spec_replicas or d.replicas
        ],
        history=w.history,
        conditions=_conditions(w, live, old.conditions),
    )
    status = api.ReleaseStatus(**fields)
    due = [t for t in w.due if t > w.now]
    requeue = min((t - w.now).total_seconds() for t in due) if due else None
    return Plan(actions=tuple(actions), status=status, requeue_after=requeue)


def _conditions(
    w: Work, live: snapshot.DeploymentView | None, old: list[api.Condition]
) -> list[api.Condition]:
    available = live is not None and live.fully_available(w.spec.replicas)
    progressing = w.phase in ("Progressing", "Paused")
    wanted = [
        (
            "Available",
            available,
            "LiveRevisionAvailable" if available else "LiveRevisionUnavailable",
            f"{live.available_replicas if live else 0}/{w.spec.replicas} live pods available",
        ),
        ("Progressing", progressing, w.reason or w.phase, w.message),
    ]
    out = []
    for type_, ok, reason, message in wanted:
        status: Any = "True" if ok else "False"
        before = next((c for c in old if c.type == type_), None)
        since = before.last_transition_time if before and before.status == status else w.now
        out.append(
            api.Condition(
                type=type_,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=since,
                observed_generation=w.snap.release.generation,
            )
        )
    return out


def apply_failed(
    status: api.ReleaseStatus, error: str, now: datetime.datetime, generation: int | None
) -> api.ReleaseStatus | None:
    """The status that reports an action the API server refused (None: it already does).

    Everything else is kept as observed: the failed step did not happen, so nothing it would
    have changed (live revision, history) may be claimed. The next successful reconcile writes
    its own conditions, which drops this one."""
    before = next((c for c in status.conditions if c.type == "ReconcileError"), None)
    if before is not None and before.message == error:
        return None
    condition = api.Condition(
        type="ReconcileError",
        status="True",
        reason="ApplyFailed",
        message=error,
        last_transition_time=before.last_transition_time if before else now,
        observed_generation=generation,
    )
    others = [c for c in status.conditions if c.type != "ReconcileError"]
    return status.model_copy(
        update={"message": f"cannot apply: {error}", "conditions": [*others, condition]}
    )
