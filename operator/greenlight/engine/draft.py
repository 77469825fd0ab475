"""The plan being built: a typed draft of the next status, the actions, the wake-up times.

Every step of `plan.plan` works on one `Work`; nothing here decides anything except how a
revision's Deployment is made to exist (`ensure_deployment`).
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Literal

from greenlight.api import checks as api_checks
from greenlight.api import release as api
from greenlight.api import traffic as api_routing
from greenlight.engine import actions as act
from greenlight.engine import config, history, naming, snapshot
from greenlight.engine.reasons import Reason

StrategyName = Literal["blueGreen", "rolling"]


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one reconcile asks the shell to do, by kind, and the next status."""

    writes: tuple[act.Write, ...]
    """Object writes, in a safe order (grow, move the Services, shrink, delete)."""
    events: tuple[act.RecordEvent, ...]
    """Posted alongside the status write, once every write succeeded."""
    jobs: tuple[act.CreateJob, ...]
    measurements: tuple[act.Measure, ...]
    """Check measurements to take now, off the workers; results come back in a snapshot."""
    notifications: tuple[act.Notify, ...]
    """Sent in the background, retried; never holding a reconcile."""
    status: api.ReleaseStatus
    requeue_after: float | None
    """Seconds until a timed decision is due (promotion, deadline, scale-down); None: none."""


@dataclasses.dataclass
class Candidate:
    """The revision in flight toward live."""

    hash: str
    revision: int
    color: api.Color
    since: datetime.datetime | None
    """The progress deadline's origin; None while the release is held (the clock stops)."""
    available_since: datetime.datetime | None = None
    """Blue-green: when every candidate pod became available (promoteAfterSeconds counts
    from here)."""
    handover_since: datetime.datetime | None = None
    """A worker's handover (blueGreen.handover policy handover): when the live revision
    started draining; the candidate becomes live once it has drained."""


@dataclasses.dataclass
class RollingProgress:
    """Where a rolling release is in its steps and batches."""

    step: int | None = None
    weight: int | None = None
    step_started_at: datetime.datetime | None = None
    progress_at: datetime.datetime | None = None
    """The rolling progress deadline runs from the last batch or pause."""
    last_batch_at: datetime.datetime | None = None
    rolling_back: bool = False
    """An abort (or a spec back to the live revision) is moving replicas back to live."""


@dataclasses.dataclass
class Draft:
    """The status being decided, typed. `status.ReleaseStatus` is its wire form."""

    live_hash: str | None = None
    live_revision: int | None = None
    live_color: api.Color | None = None
    candidate: Candidate | None = None
    promote_requested: str | None = None
    """Template hash a promote command was given for."""
    aborted_hash: str | None = None
    """Template hash not retried until the spec changes or a retry is asked for."""
    rolled_back_to: str | None = None
    """An undo holds: the revision it went back to (`lifecycle.undo_hold`)."""
    strategy: StrategyName | None = None
    """Strategy of the release in flight: a switch in the spec waits for the next release."""
    rolling: RollingProgress = dataclasses.field(default_factory=RollingProgress)
    restarted_at: datetime.datetime | None = None
    """The spec.restartAt carried out last (engine/restart.py)."""

    @classmethod
    def of(cls, s: api.ReleaseStatus) -> Draft:
        candidate = None
        if s.candidate_hash is not None:
            candidate = Candidate(
                hash=s.candidate_hash,
                revision=s.candidate_revision or 0,
                color=s.candidate_color or "blue",
                since=s.candidate_since,
                available_since=s.candidate_available_since,
                handover_since=s.candidate_handover_since,
            )
        return cls(
            live_hash=s.live_hash,
            live_revision=s.live_revision,
            live_color=s.live_color,
            candidate=candidate,
            promote_requested=s.promote_requested,
            aborted_hash=s.aborted_hash,
            rolled_back_to=s.rolled_back_to,
            strategy=s.strategy,
            rolling=RollingProgress(
                step=s.current_step,
                weight=s.weight,
                step_started_at=s.step_started_at,
                progress_at=s.progress_at,
                last_batch_at=s.last_batch_at,
                rolling_back=s.rolling_back,
            ),
            restarted_at=s.restarted_at,
        )

    def fields(self) -> dict[str, Any]:
        """The ReleaseStatus fields this draft stands for."""
        c, r = self.candidate, self.rolling
        return {
            "live_hash": self.live_hash,
            "live_revision": self.live_revision,
            "live_color": self.live_color,
            "candidate_hash": c.hash if c else None,
            "candidate_revision": c.revision if c else None,
            "candidate_color": c.color if c else None,
            "candidate_since": c.since if c else None,
            "candidate_available_since": c.available_since if c else None,
            "candidate_handover_since": c.handover_since if c else None,
            "promote_requested": self.promote_requested,
            "aborted_hash": self.aborted_hash,
            "rolled_back_to": self.rolled_back_to,
            "strategy": self.strategy,
            "current_step": r.step,
            "weight": r.weight,
            "step_started_at": r.step_started_at,
            "progress_at": r.progress_at,
            "last_batch_at": r.last_batch_at,
            "rolling_back": r.rolling_back,
            "restarted_at": self.restarted_at,
        }

    @property
    def candidate_hash(self) -> str | None:
        return self.candidate.hash if self.candidate else None

    @property
    def in_flight(self) -> bool:
        return self.candidate is not None or self.rolling.rolling_back


class Work:
    """The plan being built: actions, the next status, and the times to wake up at."""

    def __init__(self, snap: snapshot.Snapshot) -> None:
        self.snap = snap
        self.spec = snap.release.spec
        self.revision = config.revision(snap.release.name, self.spec, snap.config)
        """The revision released: the spec's with the config observed now (or, while an undo
        holds, the one it went back to, with the config its Deployment recorded)."""
        self.spec_hash = self.revision.hash
        """The spec's revision with the config observed now (status.desiredHash)."""
        self.now = snap.now
        self.name = snap.release.name
        self.d = Draft.of(snap.release.status)
        self.history: list[api.HistoryEntry] = list(snap.release.status.history)
        self.writes: list[act.Write] = []
        self.events: list[act.RecordEvent] = []
        self.jobs: list[act.CreateJob] = []
        self.measurements: list[act.Measure] = []
        self.notifications: list[act.Notify] = []
        self.due: list[datetime.datetime] = []
        self.shrinking: set[str] = set()
        """Revisions a rolling move scales down in batches: housekeeping leaves them alone."""
        self.checks: list[api_checks.CheckStatus] = list(snap.release.status.checks)
        """Promotion gates, as they will be written (engine/checks.py records into it)."""
        self.checks_skipped = snap.release.status.checks_skipped
        self.traffic: api_routing.TrafficStatus | None = snap.release.status.traffic
        """spec.traffic: the route and its weights, as they will be written (engine/traffic.py)."""
        self.refused = False
        """A guard refused the Release: it may change nothing but its own status."""
        self.phase: api.Phase = "Progressing"
        self.message = ""
        self.reason: Reason | None = None
        self.restarting = False
        """The live revision's pods are being replaced for spec.restartAt (engine/restart.py):
        it counts as available while none of them is missing."""

    # -- recording ---------------------------------------------------------------------------
    def do(self, write: act.Write) -> None:
        self.writes.append(write)

    def event(self, reason: Reason, message: str, warning: bool = False) -> None:
        self.events.append(act.RecordEvent(reason, message, "Warning" if warning else "Normal"))

    def wake_at(self, when: datetime.datetime) -> None:
        self.due.append(when)

    def outcome(self, phase: api.Phase, message: str, reason: Reason | None = None) -> None:
        self.phase, self.message, self.reason = phase, message, reason

    def past(self, since: datetime.datetime, seconds: float) -> bool:
        """Whether `seconds` have passed since `since`; if not, wake up when they have."""
        due = since + datetime.timedelta(seconds=seconds)
        if self.now >= due:
            return True
        self.wake_at(due)
        return False

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

    def new_entry(
        self, template_hash: str, color: api.Color, images: list[str], revision: int | None = None
    ) -> api.HistoryEntry:
        """A history entry for a revision first seen now (not yet stored)."""
        return api.HistoryEntry(
            revision=revision or history.next_revision(self.history, self.snap.deployments),
            template_hash=template_hash,
            images=images,
            color=color,
            outcome="Progressing",
            created_at=self.now,
        )

    # -- deployments -------------------------------------------------------------------------
    def ensure_deployment(
        self, template_hash: str, template: dict[str, Any], color: api.Color, replicas: int
    ) -> api.HistoryEntry:
        """Make the revision's Deployment exist with `replicas`; return its history entry."""
        d = self.snap.deployment(template_hash)
        entry = self.entry(template_hash)
        if entry is None and d is not None and d.revision:
            # Its Deployment exists but the status that recorded it was lost (a failed write,
            # a restore from backup): the Deployment's revision label is the truth.
            entry = self.new_entry(template_hash, color, naming.images(template), d.revision)
        elif entry is None or entry.outcome in ("Retired", "Superseded"):
            # A new revision, or an old template released again (undo): a new number.
            entry = self.new_entry(template_hash, color, naming.images(template))
        elif entry.color != color:
            entry = entry.model_copy(update={"color": color})
        history.put(self.history, entry)
        revision = entry.revision
        ours = self.revision if self.revision.hash == template_hash else None
        if d is None:
            # (every pod is born a candidate, the role that acts on nothing: engine/roles.py)
            born = {**naming.pod_labels(self.name, template_hash), naming.LABEL_ROLE: "candidate"}
            labelled = _with_pod_labels(template, born)
            self.do(
                act.CreateDeployment(
                    name=naming.deployment_name(self.name, template_hash),
                    template_hash=template_hash,
                    revision=revision,
                    color=color,
                    replicas=replicas,
                    template=labelled,
                    user_template=naming.user_template(self.spec),
                    config=ours.config if ours else None,
                )
            )
        for c in ours.copies if ours else ():  # (after its Deployment: their owner)
            if (c.kind, c.name) not in self.snap.copies:
                self.do(c)
        if d is None:
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
