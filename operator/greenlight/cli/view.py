"""What a Release (or a ReleaseGroup) looks like to people: one typed view, built from the
object's body, that every surface renders: `kubectl greenlight get` (rich tables),
`kubectl greenlight status` (one line per change, the exit code), the dashboard (its JSON), and
Argo CD's health (manifests/argocd's Lua is checked against `ReleaseView.argocd_health`).

Pure: no client, no console, no clock. The body's status already carries what was observed
(pods per revision, checks, history); the spec says what is wanted (its revision's hash, the
replicas, the rolling steps, paused). Derivations live here once: the slots, the history and
check rows, which command may apply and why not (the engine's own `commands.refusal`), whether
the release has ended (`state`), and the Argo CD health.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pydantic

from greenlight.api import checks as api_checks
from greenlight.api import group as api_group
from greenlight.api import release as api
from greenlight.api import traffic as routing
from greenlight.engine import commands, config, naming

State = Literal["done", "running", "degraded", "aborted"]
"""Where a release is: ended Healthy on the spec's revision, still going, or failed."""

COMMANDS = ("promote", "abort", "retry", "undo", "pause", "resume")
ANNOTATION_COMMANDS = ("promote", "abort", "retry", "undo")

ARGOCD_HEALTH = {
    "Healthy": "Healthy",
    "Progressing": "Progressing",
    "Paused": "Suspended",
    "Degraded": "Degraded",
    "Aborted": "Degraded",
}
"""A phase as Argo CD's health (manifests/argocd/*/health.lua; the README's table)."""


@dataclass(frozen=True)
class Slot:
    """The live or the candidate revision: which one, and how many of its pods are ready."""

    revision: int
    color: str
    ready: int
    replicas: int | None

    @property
    def text(self) -> str:
        return f"revision {self.revision} ({self.color})"

    def json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"replicas": self.replicas or 0}


def slot_text(slot: Slot | None) -> str:
    return "-" if slot is None else slot.text


@dataclass(frozen=True)
class HistoryRow:
    revision: int
    color: str
    outcome: str
    pods: str
    """"available/replicas" of its Deployment, "0" when it has none."""
    images: tuple[str, ...]
    reason: str
    live: bool
    candidate: bool
    undo: str | None
    """Why `undo --to-revision` this one cannot apply ("live" for the live one); None: it can."""

    @property
    def marks(self) -> str:
        return (" (live)" if self.live else "") + (" (candidate)" if self.candidate else "")

    def json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"images": list(self.images)}


@dataclass(frozen=True)
class MetricRow:
    """One metric of a compare check's newest judgement."""

    name: str
    verdict: str
    weight: float
    samples: str
    """Candidate / baseline samples (or trials): "120 / 118"."""
    shift: str
    """The estimate and its interval, relative where the baseline's level is not 0."""
    p_value: float
    message: str
    candidate: dict[str, float] | None
    """Its box (min, q1, median, q3, max) for a chart."""
    baseline: dict[str, float] | None


@dataclass(frozen=True)
class CheckRow:
    name: str
    stage: str
    revision: int | None
    phase: str
    passed: int
    failed: int
    errors: int
    last: str
    """The last measurement ("Failed: 500"), else the check's message."""
    score: float | None = None
    """compare: the newest judgement's score."""
    metrics: tuple[MetricRow, ...] = ()

    def json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _metric_row(m: api_checks.MetricJudgement) -> MetricRow:
    if m.relative is not None and m.estimate:
        scale = m.relative / m.estimate  # 1 / the baseline's level
        shift = f"{m.relative:+.1%} ({m.lower * scale:+.1%}..{m.upper * scale:+.1%})"
    else:
        shift = f"{m.estimate:+.4g} ({m.lower:+.4g}..{m.upper:+.4g})"
    return MetricRow(
        name=m.name,
        verdict=m.verdict,
        weight=m.weight,
        samples=f"{m.candidate_n} / {m.baseline_n}",
        shift=shift,
        p_value=m.p_value,
        message=m.message,
        candidate=m.candidate.model_dump() if m.candidate else None,
        baseline=m.baseline.model_dump() if m.baseline else None,
    )


@dataclass(frozen=True)
class ReleaseView:
    name: str
    namespace: str
    generation: int | None
    phase: str
    """The status' phase; "Unknown" before the operator wrote one."""
    message: str
    observed: bool
    """The status was written for the current spec (observedGeneration = generation)."""
    state: State
    strategy: str
    paused: bool
    replicas: int | None
    """spec.replicas (None: an invalid spec without one)."""
    available: int
    """Available pods of the live revision."""
    live: Slot | None
    candidate: Slot | None
    step: int | None
    weight: int | None
    steps: tuple[str, ...]
    """The rolling steps, labelled by what they do ("20%", "pause 60s", "analysis")."""
    traffic: str | None
    """spec.traffic: the route's weights per revision, preview and whether the gateway took
    them ("HTTPRoute web: rev 2 25%, rev 1 75%; preview rev 2; accepted")."""
    checks: tuple[CheckRow, ...]
    history: tuple[HistoryRow, ...]
    """Newest first."""
    commands: Mapping[str, str | None]
    """Why each command cannot apply now (None: it can), in `kubectl greenlight`'s words."""
    status: api.ReleaseStatus = dataclasses.field(repr=False, compare=False)
    desired: str | None = dataclasses.field(repr=False, compare=False)
    """The spec's revision (its template hash); None when the spec is invalid."""
    spec_error: str | None = dataclasses.field(repr=False, compare=False)

    @property
    def replicas_text(self) -> str:
        return "?" if self.replicas is None else str(self.replicas)

    @property
    def running_checks(self) -> list[str]:
        return [c.name for c in self.checks if c.phase == "Running"]

    def refusal(self, command: str, undo_to: int | None = None) -> str | None:
        """Why `command` cannot apply (None: it can); `undo_to`: undo to that revision."""
        if command in ("pause", "resume"):
            return self.commands[command]
        return _refusal(command, self.status, self.desired, self.spec_error, undo_to)

    def argocd_health(self) -> dict[str, str]:
        """What manifests/argocd/release/health.lua answers for this Release."""
        return _argocd_health(
            "Release", self.status.phase, self.generation, self.observed, self.message
        )

    def json(self) -> dict[str, Any]:
        """The dashboard's JSON of this Release (static/dashboard.html renders it)."""
        return {
            "name": self.name,
            "phase": self.phase,
            "message": self.message,
            "state": self.state,
            "strategy": self.strategy,
            "paused": self.paused,
            "live": self.live.json() if self.live else None,
            "candidate": self.candidate.json() if self.candidate else None,
            "step": self.step,
            "steps": list(self.steps),
            "weight": self.weight,
            "traffic": self.traffic,
            "checks": [c.json() for c in self.checks],
            "history": [h.json() for h in self.history],
            "commands": dict(self.commands),
        }


def status_of(body: Mapping[str, Any]) -> api.ReleaseStatus:
    return api.ReleaseStatus.model_validate(body.get("status") or {})


def release(body: Mapping[str, Any]) -> ReleaseView:
    """The view of a Release body (as the API server returns it)."""
    meta = body.get("metadata") or {}
    raw_spec = body.get("spec") or {}
    st = status_of(body)
    desired, spec_error, replicas = _spec(raw_spec, st)
    if desired is None and spec_error is None:  # spec.workloadRef: as the operator resolved it
        desired = st.candidate_hash or st.live_hash
    generation = meta.get("generation")
    observed = _observed(generation, st.observed_generation)
    paused = bool(raw_spec.get("paused"))
    rolling = (raw_spec.get("strategy") or {}).get("rolling")
    pods = {r.template_hash: r for r in st.revisions}
    numbers = {e.template_hash: e.revision for e in st.history}

    def slot(revision: int | None, color: str | None, ready: int) -> Slot | None:
        if revision is None:
            return None
        return Slot(revision, color or "?", ready, replicas)

    history = []
    for e in sorted(st.history, key=lambda e: e.revision, reverse=True):
        r = pods.get(e.template_hash)
        live = e.template_hash == st.live_hash
        history.append(
            HistoryRow(
                revision=e.revision,
                color=e.color,
                outcome=e.outcome,
                pods=f"{r.available_replicas}/{r.replicas}" if r else "0",
                images=tuple(e.images),
                reason=f"{e.reason}: {e.message}" if e.reason and e.message else e.reason or "",
                live=live,
                candidate=e.template_hash == st.candidate_hash,
                undo="live" if live else _refusal("undo", st, desired, spec_error, e.revision),
            )
        )
    checks = []
    for c in st.checks:
        last = c.measurements[-1] if c.measurements else None
        checks.append(
            CheckRow(
                name=c.name,
                stage=c.stage,
                revision=numbers.get(c.template_hash),
                phase=c.phase,
                passed=c.successes,
                failed=c.failures,
                errors=c.errors,
                last=f"{last.verdict}: {last.value}" if last else c.message,
                score=c.judgement.score if c.judgement else None,
                metrics=tuple(_metric_row(m) for m in c.judgement.metrics) if c.judgement else (),
            )
        )
    refusals: dict[str, str | None] = {
        c: _refusal(c, st, desired, spec_error, None) for c in ANNOTATION_COMMANDS
    }
    refusals["pause"] = "spec.paused is already true" if paused else None
    refusals["resume"] = None if paused else "spec.paused is not set"
    in_flight = st.candidate_hash is not None or bool(st.rolling_back)
    return ReleaseView(
        name=str(meta.get("name", "?")),
        namespace=str(meta.get("namespace", "")),
        generation=generation,
        phase=st.phase or "Unknown",
        message=st.message,
        observed=observed,
        state=_state(st, observed, desired),
        strategy=st.strategy or ("rolling" if rolling is not None else "blueGreen"),
        paused=paused,
        replicas=replicas,
        available=st.available_replicas,
        live=slot(st.live_revision, st.live_color, st.available_replicas),
        candidate=slot(st.candidate_revision, st.candidate_color, st.candidate_ready_replicas),
        step=st.current_step if in_flight else None,  # (a finished or rolled-back release's
        weight=st.weight if in_flight else None,  # last step says nothing about now)
        steps=tuple(step_label(s) for s in (rolling or {}).get("steps") or []),
        traffic=traffic_text(st.traffic),
        checks=tuple(checks),
        history=tuple(history),
        commands=refusals,
        status=st,
        desired=desired,
        spec_error=spec_error,
    )


def traffic_text(t: routing.TrafficStatus | None) -> str | None:
    if t is None:
        return None
    shares = ", ".join(f"rev {x.revision or '?'} {x.weight}%" for x in t.weights) or "no weights"
    text = f"HTTPRoute {t.route}: {shares}"
    if t.preview_revision is not None:
        text += f"; preview rev {t.preview_revision}"
    return text + ("; accepted" if t.accepted else f"; {t.message or 'not accepted yet'}")


def _spec(
    raw: Mapping[str, Any], st: api.ReleaseStatus
) -> tuple[str | None, str | None, int | None]:
    """(the spec's revision hash, why the spec is invalid, spec.replicas). A template that
    references ConfigMaps or Secrets: their data is part of the revision and not read here,
    so the hash is the one the operator recorded at its last reconcile (status.desiredHash)."""
    try:
        spec = api.ReleaseSpec.model_validate(raw)
    except pydantic.ValidationError as e:
        replicas = raw.get("replicas")
        return None, e.errors()[0]["msg"], replicas if isinstance(replicas, int) else None
    if spec.template is None:  # spec.workloadRef: the operator resolves it (see build)
        return None, None, spec.replicas
    own = naming.template_hash(naming.effective_template(spec))
    if config.spec_references(spec):  # (not recorded yet: a hash no revision has)
        return st.desired_hash or own, None, spec.replicas
    return own, None, spec.replicas


def _refusal(
    command: str,
    st: api.ReleaseStatus,
    desired: str | None,
    spec_error: str | None,
    undo_to: int | None,
) -> str | None:
    if desired is None:
        return f"its spec is invalid: {spec_error}"
    return commands.refusal(command, st, desired, str(undo_to or ""))


def _observed(generation: int | None, observed_generation: int | None) -> bool:
    if observed_generation is None:
        return False
    return not generation or observed_generation >= generation


def _state(st: api.ReleaseStatus, observed: bool, desired: str | None) -> State:
    """Done when Healthy on the spec's revision (its template hash is live), nothing in
    flight, and the status written for the current generation; failed when Degraded or
    Aborted for the current generation; running otherwise (Progressing, Paused, not yet seen).
    An invalid spec is never done: the operator says why (Degraded, naming the field)."""
    if not observed:
        return "running"
    if st.phase == "Degraded":
        return "degraded"
    if st.phase == "Aborted":
        return "aborted"
    if st.phase == "Healthy" and st.live_hash == desired and st.candidate_hash is None:
        return "done"
    return "running"


def step_label(step: Mapping[str, Any]) -> str:
    if step.get("setWeight") is not None:
        return f"{step['setWeight']}%"
    if "pause" in step:
        duration = (step.get("pause") or {}).get("duration")
        return f"pause {duration}" if duration else "pause"
    return "analysis" if "analysis" in step else "?"


def _argocd_health(
    kind: str, phase: str | None, generation: int | None, observed: bool, message: str
) -> dict[str, str]:
    if phase is None:
        return {
            "status": "Progressing",
            "message": f"Waiting for the Greenlight operator to reconcile the {kind}",
        }
    if generation is not None and not observed:
        return {
            "status": "Progressing",
            "message": f"Waiting for the Greenlight operator to observe generation {generation}",
        }
    return {"status": ARGOCD_HEALTH.get(phase, "Unknown"), "message": message or f"phase {phase}"}


# --- a ReleaseGroup ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberRow:
    name: str
    phase: str | None
    live_revision: int | None
    candidate_revision: int | None
    ready: bool


@dataclass(frozen=True)
class GroupEntryRow:
    at: str
    """UTC, "2026-01-01 00:00:00"."""
    revisions: Mapping[str, int]


@dataclass(frozen=True)
class GroupView:
    name: str
    namespace: str
    generation: int | None
    phase: str
    message: str
    observed: bool
    paused: bool
    spec_members: tuple[str, ...]
    """The Releases the spec names (the status' `members` are those it has seen)."""
    waiting_for: tuple[str, ...]
    last_flip_spread_ms: float | None
    members: tuple[MemberRow, ...]
    history: tuple[GroupEntryRow, ...]
    """Newest first."""
    commands: Mapping[str, str | None]
    status: api_group.GroupStatus = dataclasses.field(repr=False, compare=False)

    def argocd_health(self) -> dict[str, str]:
        """What manifests/argocd/releasegroup/health.lua answers for this group."""
        return _argocd_health(
            "ReleaseGroup", self.status.phase, self.generation, self.observed, self.message
        )

    def json(self) -> dict[str, Any]:
        """The dashboard's JSON of this group."""
        return {
            "name": self.name,
            "phase": self.phase,
            "message": self.message,
            "paused": self.paused,
            "waitingFor": list(self.waiting_for),
            "members": [m.model_dump(by_alias=True) for m in self.status.members],
            "history": [{"at": e.at, "revisions": dict(e.revisions)} for e in self.history],
            "commands": dict(self.commands),
        }


def group(body: Mapping[str, Any]) -> GroupView:
    """The view of a ReleaseGroup body."""
    meta = body.get("metadata") or {}
    raw_spec = body.get("spec") or {}
    st = api_group.GroupStatus.model_validate(body.get("status") or {})
    name, namespace = str(meta.get("name", "?")), str(meta.get("namespace", ""))
    paused = bool(raw_spec.get("paused"))
    refusals: dict[str, str | None] = dict.fromkeys(ANNOTATION_COMMANDS)
    if len(st.history) < 2:
        refusals["undo"] = f"group {namespace}/{name}: no earlier group entry to undo to"
    refusals["pause"] = "spec.paused is already true" if paused else None
    refusals["resume"] = None if paused else "spec.paused is not set"
    return GroupView(
        name=name,
        namespace=namespace,
        generation=meta.get("generation"),
        phase=st.phase or "Unknown",
        message=st.message,
        observed=_observed(meta.get("generation"), st.observed_generation),
        paused=paused,
        spec_members=tuple(raw_spec.get("members") or ()),
        waiting_for=tuple(st.waiting_for),
        last_flip_spread_ms=st.last_flip_spread_ms,
        members=tuple(
            MemberRow(m.name, m.phase, m.live_revision, m.candidate_revision, m.ready)
            for m in st.members
        ),
        history=tuple(
            GroupEntryRow(e.at.strftime("%Y-%m-%d %H:%M:%S"), dict(e.revisions))
            for e in reversed(st.history)
        ),
        commands=refusals,
        status=st,
    )


def group_state(g: GroupView, members: Mapping[str, ReleaseView | None]) -> State:
    """A group is done when its status (for the current generation) is Healthy and every member
    Release its spec names is done; it failed when a member did (Degraded before Aborted: with
    AbortAll one member's missed deadline aborts the others) or the group is Degraded."""
    if not g.observed:
        return "running"
    states = {v.state for m in g.spec_members if (v := members.get(m)) is not None}
    if "degraded" in states:
        return "degraded"
    if "aborted" in states:
        return "aborted"
    if g.phase == "Degraded":
        return "degraded"
    found = all(members.get(m) is not None for m in g.spec_members)
    if g.phase == "Healthy" and found and states <= {"done"}:
        return "done"
    return "running"
