"""`kubectl greenlight promote|abort|retry|undo|pause|resume|restart|detach NAME`: give a
Release (or group/NAME: a ReleaseGroup; restart, detach: a Release only) a command.

Every command is the documented kubectl one-liner (an annotation the operator consumes, or a
`spec.paused` or `spec.restartAt` patch), checked first against the object's view (`cli.view`:
the engine's own `commands.refusal`) so that a command that cannot apply fails here, naming why,
instead of as an Event later. The dashboard's buttons send their commands through `request` and
`set_paused` too.
"""

from __future__ import annotations

import datetime
from typing import Annotated

import typer

from greenlight.api import release as api
from greenlight.cli import view
from greenlight.cli.client import Releases, target
from greenlight.cli.console import console, fail
from greenlight.cli.options import Context, Name, Namespace
from greenlight.engine import commands, history, naming


def request(releases: Releases, name: str, command: str, value: str) -> str:
    """Annotate a Release (or, with a ReleaseGroups client, a group) with `command` once its
    preconditions hold, else fail() naming why; the line saying what was requested."""
    body = releases.get(name)
    kind = "release" if releases.plural == api.PLURAL else "group"
    if kind == "group":
        problem = view.group(body).commands[command]
        if problem:
            fail(problem)
    else:
        release = view.release(body)
        undo_to = int(value) if command == "undo" and value else None
        problem = release.refusal(command, undo_to)
        if problem is None and command == "undo":
            problem = _undo_target_gone(releases, name, release.status, undo_to)
        if problem:
            fail(f"release {releases.ns}/{name}: {problem}")
    key = commands.BY_NAME[command]
    releases.patch(name, {"metadata": {"annotations": {key: value}}})
    return f"{kind} {releases.ns}/{name}: {command} requested ({key}={value!r})"


def _undo_target_gone(
    releases: Releases, name: str, st: api.ReleaseStatus, undo_to: int | None
) -> str | None:
    """Undo needs the revision's Deployment (it holds the template): is it still there?"""
    found = history.undo_target(st.history, st.live_hash, str(undo_to or ""))
    assert not isinstance(found, str)
    selector = f"{naming.LABEL_RELEASE}={name},{naming.LABEL_HASH}={found.template_hash}"
    deployments = releases.apps.list_namespaced_deployment(releases.ns, label_selector=selector)
    if deployments.items:
        return None
    return commands.deployment_gone(
        found.revision, naming.deployment_name(name, found.template_hash)
    )


def set_paused(releases: Releases, name: str, paused: bool) -> str:
    """spec.paused of a Release (or a group); the line saying so."""
    releases.get(name)
    releases.patch(name, {"spec": {"paused": paused}})
    return f"release {releases.ns}/{name}: {'paused' if paused else 'resumed'}"


def request_restart(releases: Releases, name: str, now: datetime.datetime) -> str:
    """spec.restartAt of a Release set to `now` (a merge patch) once it has a live revision,
    else fail() naming why; the line saying what was requested."""
    if releases.plural != api.PLURAL:
        fail(f"group {releases.ns}/{name}: restart applies to a Release; restart its members")
    live = view.release(releases.get(name)).status.live_revision
    if live is None:
        fail(f"release {releases.ns}/{name}: no live revision to restart yet")
    at = naming.restart_stamp(now.replace(microsecond=0))
    releases.patch(name, {"spec": {"restartAt": at}})
    return (
        f"release {releases.ns}/{name}: restart of revision {live} requested"
        f" (spec.restartAt={at}): its pods are replaced, none unavailable meanwhile"
    )


def request_detach(releases: Releases, name: str, detach: bool = True) -> str:
    """The annotation greenlight.dev/detach on a Release (a merge patch; --cancel: off); the
    line saying what happens next."""
    if releases.plural != api.PLURAL:
        fail(f"group {releases.ns}/{name}: detach applies to a Release; detach its members")
    releases.get(name)  # (fails naming it when there is none)
    value = "true" if detach else None
    releases.patch(name, {"metadata": {"annotations": {naming.ANNOTATION_DETACH: value}}})
    if not detach:
        return (
            f"release {releases.ns}/{name}: detach cancelled: the workload and the Service are"
            " adopted again"
        )
    return (
        f"release {releases.ns}/{name}: detach requested ({naming.ANNOTATION_DETACH}=true):"
        " the workload's replicas and the Service's selector go back once its pods are ready;"
        " then the Release holds (phase Paused, reason Detached) and can be deleted without"
        " touching traffic"
    )


def _annotate(
    name: str, namespace: str | None, context: str | None, command: str, value: str
) -> None:
    console.print(request(*target(name, namespace, context), command, value))


def _pause(name: str, namespace: str | None, context: str | None, paused: bool) -> None:
    console.print(set_paused(*target(name, namespace, context), paused))


def promote(
    name: Name,
    namespace: Namespace = None,
    context: Context = None,
    skip_checks: Annotated[
        bool, typer.Option("--skip-checks", help="Also skip the promotion checks left.")
    ] = False,
) -> None:
    """Flip to the candidate as soon as it is available and its checks passed (rolling: skip
    the remaining pauses and weights); --skip-checks skips the checks too."""
    value = commands.SKIP_CHECKS if skip_checks else "true"
    _annotate(name, namespace, context, "promote", value)


def abort(name: Name, namespace: Namespace = None, context: Context = None) -> None:
    """Stop the release in progress; the live revision keeps serving."""
    _annotate(name, namespace, context, "abort", "true")


def retry(name: Name, namespace: Namespace = None, context: Context = None) -> None:
    """Try the aborted revision again."""
    _annotate(name, namespace, context, "retry", "true")


def undo(
    name: Name,
    namespace: Namespace = None,
    context: Context = None,
    to_revision: Annotated[
        int | None, typer.Option(min=1, help="Default: the previous live revision.")
    ] = None,
) -> None:
    """Go back to an earlier revision, and hold there until the spec changes (the spec is not
    written; spec.undoWritesSpec: true writes it back instead)."""
    _annotate(name, namespace, context, "undo", str(to_revision or ""))


def pause(name: Name, namespace: Namespace = None, context: Context = None) -> None:
    """Hold the Release where it is (spec.paused: true)."""
    _pause(name, namespace, context, True)


def resume(name: Name, namespace: Namespace = None, context: Context = None) -> None:
    """Let a paused Release go on (spec.paused: false)."""
    _pause(name, namespace, context, False)


def restart(name: Name, namespace: Namespace = None, context: Context = None) -> None:
    """Replace the live revision's pods, none unavailable meanwhile (spec.restartAt: now)."""
    now = datetime.datetime.now(datetime.UTC)
    console.print(request_restart(*target(name, namespace, context), now))


def detach(
    name: Name,
    namespace: Namespace = None,
    context: Context = None,
    cancel: Annotated[
        bool, typer.Option("--cancel", help="Adopt the workload and the Service again.")
    ] = False,
) -> None:
    """Hand the workload back (spec.workloadRef's replicas, the adopted Service's selector),
    then hold: the Release can then be deleted without touching traffic."""
    console.print(request_detach(*target(name, namespace, context), not cancel))


COMMANDS = (promote, abort, retry, undo, pause, resume, restart, detach)
