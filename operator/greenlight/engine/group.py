"""Release groups: when the members' candidates flip, together. Pure: `plan_group(snapshot)`.

Members are ordinary Releases. A member in a group flips only when its group says so: when
its candidate is ready (available, gates passed, promoted if it waits for that) it says so
(phase Progressing, reason `GroupWaiting`). Once every member with a candidate is ready and the
settle window has passed, the group records one history entry naming each member's candidate
revision; each member, woken by that status write, flips itself to the revision its group's
last entry names (`bluegreen`), through the same path as a Release on its own (`services`
moves the selector; checks, notifications, history and Events follow). The group decides
*when*; it never moves a selector. A member that fails aborts the others (policy AbortAll).
Group commands become the members' own command annotations.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence

from greenlight.api import group as api_group
from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import lifecycle, naming, snapshot
from greenlight.engine import status as status_
from greenlight.engine.reasons import Reason

WAITING = Reason.GROUP_WAITING
COMMANDS = (naming.COMMAND_PROMOTE, naming.COMMAND_ABORT, naming.COMMAND_RETRY, naming.COMMAND_UNDO)


@dataclasses.dataclass(frozen=True)
class Member:
    name: str
    release: snapshot.ReleaseView | None
    """None: no such Release in the group's namespace."""
    deployments: tuple[snapshot.DeploymentView, ...] = ()
    live_service: snapshot.ServiceView | None = None
    other_groups: tuple[str, ...] = ()
    """Other groups that name this Release too."""
    config: tuple[snapshot.ConfigView, ...] = ()
    """The ConfigMaps and Secrets its pod template references (part of its revision)."""


@dataclasses.dataclass(frozen=True)
class GroupView:
    name: str
    namespace: str
    uid: str
    generation: int
    spec: api_group.GroupSpec
    status: api_group.GroupStatus
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    resource_version: int = 0


@dataclasses.dataclass(frozen=True)
class GroupSnapshot:
    group: GroupView
    members: tuple[Member, ...]
    now: datetime.datetime


@dataclasses.dataclass(frozen=True)
class GroupPlan:
    member_commands: tuple[act.AnnotateRelease, ...]
    """The group's commands and failures, as its members' own command annotations."""
    cleared: tuple[str, ...]
    """The group's own command annotations, consumed."""
    events: tuple[act.RecordEvent, ...]
    status: api_group.GroupStatus
    requeue_after: float | None


@dataclasses.dataclass(frozen=True)
class _State:
    member: Member
    desired: str
    live: str | None
    candidate: str | None
    ready: bool
    """Its candidate is what its spec says now, fully available, and waiting for the group."""
    failed: bool
    live_entry: api.HistoryEntry | None
    """Its live revision's history entry (when it went live: `promoted_at`)."""


def _state(m: Member) -> _State:
    assert m.release is not None
    r = m.release
    st = r.status
    desired = lifecycle.wanted(r.name, r.spec, st, m.config)
    deployment = next((d for d in m.deployments if d.template_hash == st.candidate_hash), None)
    live = next((d for d in m.deployments if d.template_hash == st.live_hash), None)
    size = lifecycle.candidate_size(r.spec.replicas, live)
    available = lifecycle.ready_to_flip(deployment, size, live)
    waiting = (
        any(c.type == "Progressing" and c.reason == WAITING for c in st.conditions)
        and st.phase == "Progressing"
    )
    return _State(
        member=m,
        desired=desired,
        live=st.live_hash,
        candidate=st.candidate_hash,
        # (a candidate its spec has replaced is never ready: the member supersedes it)
        ready=waiting and available and st.candidate_hash == desired,
        failed=st.aborted_hash is not None and st.aborted_hash == desired,
        live_entry=next((e for e in st.history if e.template_hash == st.live_hash), None),
    )


def plan_group(gs: GroupSnapshot) -> GroupPlan:
    g, now = gs.group, gs.now
    actions: list[act.AnnotateRelease] = []
    events: list[act.RecordEvent] = []
    cleared: tuple[str, ...] = ()
    status = g.status
    problem = _problem(gs)
    if problem is not None:
        if status.message != problem:
            events.append(act.RecordEvent(Reason.GROUP_INVALID, problem, "Warning"))
        stalled = status_.conditions(
            status_.kstatus("Degraded", Reason.INVALID_GROUP, problem), status.conditions, now,
            g.generation,
        )  # fmt: skip
        update = {"phase": "Degraded", "message": problem, "observed_generation": g.generation}
        invalid = status.model_copy(update={**update, "conditions": stalled})
        return GroupPlan((), (), tuple(events), invalid, None)
    states = [_state(m) for m in gs.members]
    history = list(status.history)
    if not history and all(s.candidate is None and s.live for s in states):
        history = [_entry(states, now, {})]  # the group's starting point: what undo goes back to
    commands = {k: v for k, v in g.annotations.items() if k in COMMANDS}
    if commands:
        cleared = tuple(sorted(commands))
        actions += _commands(g.name, states, history, commands, events)

    # A member whose spec moved on but whose own reconcile has not started the candidate yet
    # is in flight too (one `kubectl apply -f dir/` can reach the members a moment apart).
    in_flight = [
        s for s in states if (s.candidate is not None or s.desired != s.live) and not s.failed
    ]
    failed = [s for s in states if s.failed]
    waiting_for = sorted(s.member.name for s in in_flight if not s.ready)
    requeue = None
    spread = status.last_flip_spread_ms
    if failed and in_flight and g.spec.failure_policy == "AbortAll":
        names = ", ".join(s.member.name for s in failed)
        for s in in_flight:
            if naming.COMMAND_ABORT not in (
                s.member.release.annotations if s.member.release else {}
            ):
                actions.append(act.AnnotateRelease(s.member.name, naming.COMMAND_ABORT, "true"))
        events.append(
            act.RecordEvent(
                Reason.GROUP_ABORTED,
                f"{names} failed: aborting {', '.join(s.member.name for s in in_flight)}",
                "Warning",
            )
        )
        phase, message = "Degraded", f"{names} failed; the group's other candidates are aborted"
    elif failed and not in_flight:
        names = ", ".join(s.member.name for s in failed)
        phase, message = "Degraded", f"{names} aborted; every member's live revision serves"
    elif not in_flight:
        phase, message = "Healthy", "every member is live on the group's revisions"
        if history and _revisions(states) != history[-1].revisions and not failed:
            history.append(_entry(states, now, {}))
        flipped = _flipped(states, history)
        if flipped and status.phase != "Healthy":
            spread = round(_spread_ms(flipped), 2)
            events.append(
                act.RecordEvent(
                    Reason.GROUP_FLIPPED,
                    "live together: "
                    + ", ".join(f"{s.member.name} revision {_rev(s)}" for s in flipped)
                    + f" (first to last flip {spread:.0f} ms)",
                )
            )
    elif g.spec.paused:
        phase, message = "Paused", "paused (spec.paused): no group flip"
    elif waiting_for:
        phase = "Progressing"
        message = f"waiting for {', '.join(waiting_for)} before the group flips"
    else:
        settle = max(
            (s.member.release.status.candidate_since for s in in_flight if s.member.release
             and s.member.release.status.candidate_since), default=now,
        ) + datetime.timedelta(seconds=g.spec.settle_seconds)  # fmt: skip
        if now < settle:
            phase = "Progressing"
            message = f"every candidate is ready; settling until {settle.isoformat()}"
            requeue = (settle - now).total_seconds()
        elif (
            not history  # (no starting point: first revisions gated by firstReleaseChecks)
            or history[-1].revisions != _entry(states, now, _by_name(in_flight)).revisions
        ):
            # Record the entry first; flip in the next reconcile (woken by this status write):
            # a flip never happens that the group's history does not already hold.
            history.append(_entry(states, now, _by_name(in_flight)))
            phase, message = "Progressing", "every candidate is ready: flipping together"
            requeue = 0.0
        else:  # recorded: each member flips itself to the entry's revision
            phase, message = "Progressing", "flipping: each member goes live on the group's entry"
    members = [
        api_group.MemberStatus(
            name=s.member.name,
            live_revision=s.member.release.status.live_revision if s.member.release else None,
            candidate_revision=(
                s.member.release.status.candidate_revision if s.member.release else None
            ),
            ready=s.ready,
            phase=s.member.release.status.phase if s.member.release else None,
        )
        for s in states
    ]
    wanted = status_.kstatus(phase, phase, message)
    new = status.model_copy(
        update={
            "conditions": status_.conditions(wanted, status.conditions, now, g.generation),
            "phase": phase,
            "message": message,
            "observed_generation": g.generation,
            "members": members,
            "waiting_for": waiting_for,
            "history": history[-api_group.MAX_HISTORY :],
            "last_flip_spread_ms": spread,
        }
    )
    return GroupPlan(tuple(actions), cleared, tuple(events), new, requeue)


def _problem(gs: GroupSnapshot) -> str | None:
    for i, m in enumerate(gs.members):
        where = f"spec.members[{i}]"
        if m.release is None:
            return f"{where}: Release {m.name} not found in namespace {gs.group.namespace}"
        if m.other_groups:
            return f"{where}: Release {m.name} is also in group {', '.join(m.other_groups)}"
        if m.release.spec.strategy.rolling is not None:
            return (
                f"{where}: Release {m.name} uses the rolling strategy; a group flips"
                " blue-green members together"
            )
    return None


def _flipped(states: Sequence[_State], history: list[api_group.GroupEntry]) -> list[_State]:
    """Members whose live revision went live at or after the group's last entry: the ones
    that flipped to it (their promotion times are in their own history)."""
    if not history:
        return []
    since = history[-1].at
    out = []
    for s in states:
        entry = s.live_entry
        if entry is not None and entry.promoted_at is not None and entry.promoted_at >= since:
            out.append(s)
    return out


def _spread_ms(flipped: Sequence[_State]) -> float:
    """First to last member flip, as each member recorded it."""
    times = [s.live_entry.promoted_at for s in flipped if s.live_entry and s.live_entry.promoted_at]
    return (max(times) - min(times)).total_seconds() * 1000 if times else 0.0


def _by_name(states: Sequence[_State]) -> dict[str, _State]:
    return {s.member.name: s for s in states}


def _rev(s: _State) -> int | None:
    r = s.member.release
    return (
        r.status.candidate_revision if r and s.candidate else r.status.live_revision if r else None
    )


def _revisions(states: Sequence[_State]) -> dict[str, int]:
    out = {}
    for s in states:
        r = s.member.release
        if r is not None and r.status.live_revision is not None:
            out[s.member.name] = r.status.live_revision
    return out


def _entry(
    states: Sequence[_State], now: datetime.datetime, flipped: dict[str, _State]
) -> api_group.GroupEntry:
    revisions = _revisions(states)
    for name, s in flipped.items():
        rev = _rev(s)
        if rev is not None:
            revisions[name] = rev
    return api_group.GroupEntry(at=now, revisions=revisions)


def _commands(
    name: str,
    states: Sequence[_State],
    history: list[api_group.GroupEntry],
    commands: dict[str, str],
    events: list[act.RecordEvent],
) -> list[act.AnnotateRelease]:
    out: list[act.AnnotateRelease] = []
    in_flight = [s for s in states if s.candidate is not None]
    for key in (naming.COMMAND_PROMOTE, naming.COMMAND_ABORT):
        if key in commands:
            for s in in_flight:
                out.append(act.AnnotateRelease(s.member.name, key, commands[key] or "true"))
    if naming.COMMAND_RETRY in commands:
        for s in states:
            if s.failed:
                out.append(act.AnnotateRelease(s.member.name, naming.COMMAND_RETRY, "true"))
    if naming.COMMAND_UNDO in commands:
        if len(history) < 2:
            events.append(
                act.RecordEvent(
                    Reason.UNDO_FAILED, f"group {name}: no earlier group entry", "Warning"
                )
            )
        else:
            target = history[-2].revisions
            for s in states:
                r = s.member.release
                want = target.get(s.member.name)
                if r is not None and want is not None and want != r.status.live_revision:
                    out.append(act.AnnotateRelease(s.member.name, naming.COMMAND_UNDO, str(want)))
            events.append(
                act.RecordEvent(
                    Reason.UNDO,
                    "group back to "
                    + ", ".join(f"{n} revision {v}" for n, v in sorted(target.items())),
                )
            )
    return out
