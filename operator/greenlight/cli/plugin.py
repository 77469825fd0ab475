"""`kubectl greenlight`: show a Release and give it commands.

Every command is the documented kubectl one-liner (an annotation the operator consumes, or a
`spec.paused` patch), checked first against the Release's status so that a command that cannot
apply fails here, naming why, instead of as an Event later.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import metadata
from typing import Annotated, Any, NoReturn, cast

import pydantic
import typer
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from greenlight.api import group as api_group
from greenlight.api import release as api
from greenlight.engine import commands, history, naming

app: typer.Typer = typer.Typer(
    help="kubectl greenlight: show Releases, promote, abort, retry, undo, pause and resume them.",
    no_args_is_help=True,
)
console = Console()
errors = Console(stderr=True)

Name = Annotated[str, typer.Argument(help="The Release's name.")]
Namespace = Annotated[
    str | None,
    typer.Option("--namespace", "-n", help="Default: the kubeconfig context's namespace."),
]
Context = Annotated[str | None, typer.Option("--context", help="kubeconfig context to use.")]

PHASE_STYLE = {
    "Healthy": "green",
    "Progressing": "yellow",
    "Paused": "cyan",
    "Degraded": "red",
    "Aborted": "red",
}


class Releases:
    """Releases in one namespace of the current kubeconfig (synchronous: this is a CLI)."""

    def __init__(
        self, namespace: str | None, context: str | None, plural: str = api.PLURAL
    ) -> None:
        self.plural = plural
        try:
            config.load_kube_config(context=context)
            contexts, current = config.list_kube_config_contexts()
        except (config.ConfigException, OSError) as e:
            fail(f"no usable kubeconfig: {e}")
        chosen = next((c for c in contexts if c["name"] == context), current)
        self.ns = namespace or chosen["context"].get("namespace") or "default"
        self.custom = client.CustomObjectsApi()
        self.apps = client.AppsV1Api()

    def get(self, name: str) -> dict[str, Any]:
        try:
            obj = self.custom.get_namespaced_custom_object(
                api.GROUP, api.VERSION, self.ns, self.plural, name
            )
        except ApiException as e:
            fail(_api_error(e, name, self.ns))
        return cast(dict[str, Any], obj)

    def patch(self, name: str, body: dict[str, Any]) -> None:
        try:
            self.custom.patch_namespaced_custom_object(
                api.GROUP, api.VERSION, self.ns, self.plural, name, body
            )
        except ApiException as e:
            fail(_api_error(e, name, self.ns))


def _api_error(e: ApiException, name: str, ns: str) -> str:
    if e.status == 404:
        return f'release "{name}" not found in namespace "{ns}"'
    return f"release {ns}/{name}: {e.status} {e.reason}"


class Refused(typer.Exit):
    """A command refused, or an API error, with its message: the CLI exits 1 once it has
    printed it; the dashboard answers the click with it."""

    def __init__(self, message: str) -> None:
        super().__init__(1)
        self.message = message


def fail(message: str) -> NoReturn:
    errors.print(f"[red]error:[/red] {message}", highlight=False)
    raise Refused(message)


def status_of(release: dict[str, Any]) -> api.ReleaseStatus:
    return api.ReleaseStatus.model_validate(release.get("status") or {})


# --- pure: what a command may do, and how a Release is shown -----------------------------------


def command_error(command: str, release: dict[str, Any], undo_to: int | None = None) -> str | None:
    """Why `command` cannot apply to this Release now (None: it can): the engine's own rule."""
    try:
        spec = api.ReleaseSpec.model_validate(release.get("spec") or {})
    except pydantic.ValidationError as e:
        return f"its spec is invalid: {e.errors()[0]['msg']}"
    desired = naming.template_hash(naming.effective_template(spec))
    return commands.refusal(command, status_of(release), desired, str(undo_to or ""))


def summary(name: str, release: dict[str, Any]) -> Group:
    st = status_of(release)
    spec = release.get("spec") or {}
    strategy = "rolling" if "rolling" in (spec.get("strategy") or {}) else "blueGreen"
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    phase = st.phase or "Unknown"
    head.add_row("Name", f"{release['metadata']['namespace']}/{name}")
    head.add_row("Phase", Text(phase, style=PHASE_STYLE.get(phase, "")))
    head.add_row("Message", st.message)
    head.add_row(
        "Strategy", (st.strategy or strategy) + (" (paused)" if spec.get("paused") else "")
    )
    head.add_row("Live", _slot(st.live_revision, st.live_color))
    head.add_row("Candidate", _slot(st.candidate_revision, st.candidate_color))
    if st.current_step is not None or st.weight is not None:
        head.add_row("Step / weight", f"{st.current_step} / {st.weight}%")
    head.add_row("Pods", f"{st.available_replicas} available of {spec.get('replicas', '?')}")
    revisions = {r.template_hash: r for r in st.revisions}
    table = Table(title="History", title_justify="left", expand=False)
    for column in ("Revision", "Colour", "Outcome", "Pods", "Images", "Reason"):
        table.add_column(column)
    for entry in sorted(st.history, key=lambda e: e.revision, reverse=True):
        r = revisions.get(entry.template_hash)
        marks = " (live)" if entry.template_hash == st.live_hash else ""
        marks += " (candidate)" if entry.template_hash == st.candidate_hash else ""
        table.add_row(
            f"{entry.revision}{marks}",
            entry.color,
            entry.outcome,
            f"{r.available_replicas}/{r.replicas}" if r else "0",
            ", ".join(entry.images),
            entry.reason or "",
        )
    if not st.checks:
        return Group(head, table)
    gates = Table(title="Checks", title_justify="left", expand=False)
    for column in ("Check", "Stage", "Revision", "Phase", "Passed", "Failed", "Errors", "Last"):
        gates.add_column(column)
    numbers = {e.template_hash: e.revision for e in st.history}
    for c in st.checks:
        last = c.measurements[-1] if c.measurements else None
        gates.add_row(
            c.name,
            c.stage,
            str(numbers.get(c.template_hash, "?")),
            Text(c.phase, style=CHECK_STYLE.get(c.phase, "")),
            str(c.successes),
            str(c.failures),
            str(c.errors),
            f"{last.verdict}: {last.value}" if last else c.message,
        )
    return Group(head, table, gates)


def group_summary(name: str, body: dict[str, Any]) -> Group:
    st = api_group.GroupStatus.model_validate(body.get("status") or {})
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    phase = st.phase or "Unknown"
    head.add_row("Group", f"{body['metadata']['namespace']}/{name}")
    head.add_row("Phase", Text(phase, style=PHASE_STYLE.get(phase, "")))
    head.add_row("Message", st.message)
    head.add_row("Waiting for", ", ".join(st.waiting_for) or "-")
    if st.last_flip_spread_ms is not None:
        head.add_row("Last flip spread", f"{st.last_flip_spread_ms:.1f} ms")
    members = Table(title="Members", title_justify="left", expand=False)
    for column in ("Release", "Phase", "Live", "Candidate", "Ready"):
        members.add_column(column)
    for m in st.members:
        members.add_row(
            m.name,
            m.phase or "-",
            str(m.live_revision or "-"),
            str(m.candidate_revision or "-"),
            "yes" if m.ready else "no",
        )
    entries = Table(title="Group history", title_justify="left", expand=False)
    for column in ("At", "Revisions live together"):
        entries.add_column(column)
    for e in reversed(st.history):
        revisions = ", ".join(f"{n} {r}" for n, r in sorted(e.revisions.items()))
        entries.add_row(e.at.strftime("%Y-%m-%d %H:%M:%S"), revisions)
    return Group(head, members, entries)


CHECK_STYLE = {"Passed": "green", "Running": "yellow", "Failed": "red", "Inconclusive": "red"}


def _slot(revision: int | None, color: str | None) -> str:
    return "-" if revision is None else f"revision {revision} ({color})"


# --- commands ----------------------------------------------------------------------------------


@app.command()
def get(
    name: Name,
    namespace: Namespace = None,
    context: Context = None,
    watch_: Annotated[bool, typer.Option("--watch", "-w", help="Follow changes.")] = False,
) -> None:
    """Show a Release (or group/NAME: a ReleaseGroup with its members): phase, live and
    candidate revisions, steps, pods and history."""
    if (group_name := _group(name)) is not None:
        groups = Releases(namespace, context, api_group.PLURAL)
        console.print(group_summary(group_name, groups.get(group_name)))
        return
    releases = Releases(namespace, context)
    release = releases.get(name)
    if not watch_:
        console.print(summary(name, release))
        return
    if not console.is_terminal:  # piped: one view per change, as `kubectl get -w` prints lines
        for changed in _changes(releases, name):
            console.print(summary(name, changed))
        return
    with Live(summary(name, release), console=console, auto_refresh=False) as live:
        for changed in _changes(releases, name):
            live.update(summary(name, changed), refresh=True)


def _changes(releases: Releases, name: str) -> Iterator[dict[str, Any]]:
    """The Release as it is now, then after every change, until it is deleted."""
    # No resourceVersion: the watch opens with the current object (a GET's version may already
    # be too old for the server's watch cache: 410 Expired).
    for event in watch.Watch().stream(
        releases.custom.list_namespaced_custom_object,
        api.GROUP,
        api.VERSION,
        releases.ns,
        api.PLURAL,
        field_selector=f"metadata.name={name}",
    ):
        if event is None:  # the client yields None for a blank or broken line
            continue
        if event["type"] == "DELETED":
            console.print(f"release {releases.ns}/{name} was deleted")
            return
        yield event["object"]


def _group(name: str) -> str | None:
    """`group/shop` names a ReleaseGroup; anything else a Release."""
    for prefix in ("group/", "releasegroup/", "releasegroups/"):
        if name.startswith(prefix):
            return name.removeprefix(prefix)
    return None


def _annotate(
    name: str, namespace: str | None, context: str | None, command: str, value: str
) -> None:
    group_name = _group(name)
    plural = api.PLURAL if group_name is None else api_group.PLURAL
    console.print(request(Releases(namespace, context, plural), group_name or name, command, value))


def request(releases: Releases, name: str, command: str, value: str) -> str:
    """Annotate a Release (or, with a ReleaseGroups client, a group) with `command` once its
    preconditions hold, else fail() naming why; the line saying what was requested. The CLI and
    the dashboard both send commands through here."""
    if releases.plural == api_group.PLURAL:
        gst = api_group.GroupStatus.model_validate(releases.get(name).get("status") or {})
        if command == "undo" and len(gst.history) < 2:
            fail(f"group {releases.ns}/{name}: no earlier group entry to undo to")
        key = commands.BY_NAME[command]
        releases.patch(name, {"metadata": {"annotations": {key: value}}})
        return f"group {releases.ns}/{name}: {command} requested ({key}={value!r})"
    release = releases.get(name)
    st = status_of(release)
    undo_to = int(value) if command == "undo" and value else None
    problem = command_error(command, release, undo_to)
    if problem is None and command == "undo":
        problem = _undo_target_gone(releases, name, st, undo_to)
    if problem:
        fail(f"release {releases.ns}/{name}: {problem}")
    key = commands.BY_NAME[command]
    releases.patch(name, {"metadata": {"annotations": {key: value}}})
    return f"release {releases.ns}/{name}: {command} requested ({key}={value!r})"


def _undo_target_gone(
    releases: Releases, name: str, st: api.ReleaseStatus, undo_to: int | None
) -> str | None:
    """Undo needs the revision's Deployment (it holds the template): is it still there?"""
    target = history.undo_target(st.history, st.live_hash, str(undo_to or ""))
    assert not isinstance(target, str)
    selector = f"{naming.LABEL_RELEASE}={name},{naming.LABEL_HASH}={target.template_hash}"
    found = releases.apps.list_namespaced_deployment(releases.ns, label_selector=selector)
    if found.items:
        return None
    return commands.deployment_gone(
        target.revision, naming.deployment_name(name, target.template_hash)
    )


@app.command()
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


@app.command()
def abort(name: Name, namespace: Namespace = None, context: Context = None) -> None:
    """Stop the release in progress; the live revision keeps serving."""
    _annotate(name, namespace, context, "abort", "true")


@app.command()
def retry(name: Name, namespace: Namespace = None, context: Context = None) -> None:
    """Try the aborted revision again."""
    _annotate(name, namespace, context, "retry", "true")


@app.command()
def undo(
    name: Name,
    namespace: Namespace = None,
    context: Context = None,
    to_revision: Annotated[
        int | None, typer.Option(min=1, help="Default: the previous live revision.")
    ] = None,
) -> None:
    """Go back to an earlier revision (its template is written back into the spec)."""
    _annotate(name, namespace, context, "undo", str(to_revision or ""))


def _set_paused(name: str, namespace: str | None, context: str | None, paused: bool) -> None:
    group_name = _group(name)
    plural = api.PLURAL if group_name is None else api_group.PLURAL
    console.print(set_paused(Releases(namespace, context, plural), group_name or name, paused))


def set_paused(releases: Releases, name: str, paused: bool) -> str:
    """spec.paused of a Release (or a group); the line saying so."""
    releases.get(name)
    releases.patch(name, {"spec": {"paused": paused}})
    return f"release {releases.ns}/{name}: {'paused' if paused else 'resumed'}"


@app.command()
def pause(name: Name, namespace: Namespace = None, context: Context = None) -> None:
    """Hold the Release where it is (spec.paused: true)."""
    _set_paused(name, namespace, context, True)


@app.command()
def resume(name: Name, namespace: Namespace = None, context: Context = None) -> None:
    """Let a paused Release go on (spec.paused: false)."""
    _set_paused(name, namespace, context, False)


@app.command()
def version() -> None:
    """Print the version."""
    console.print(f"kubectl-greenlight {metadata.version('greenlight')}")


# Commands that live in their own modules register themselves on `app` when imported.
from greenlight.cli import dashboard, status  # noqa: E402, F401
