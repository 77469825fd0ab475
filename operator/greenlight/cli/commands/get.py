"""`kubectl greenlight get NAME [-w]`: a Release (or group/NAME: a ReleaseGroup) as tables."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from greenlight.api import release as api
from greenlight.cli import view
from greenlight.cli.client import Releases, new_watch, target
from greenlight.cli.console import CHECK_STYLE, METRIC_STYLE, PHASE_STYLE, console
from greenlight.cli.options import Context, Name, Namespace


def get(
    name: Name,
    namespace: Namespace = None,
    context: Context = None,
    watch_: Annotated[bool, typer.Option("--watch", "-w", help="Follow changes.")] = False,
) -> None:
    """Show a Release (or group/NAME: a ReleaseGroup with its members): phase, live and
    candidate revisions, steps, pods and history."""
    releases, target_name = target(name, namespace, context)
    if releases.plural != api.PLURAL:
        console.print(group_summary(view.group(releases.get(target_name))))
        return
    release = releases.get(name)
    if not watch_:
        console.print(summary(view.release(release)))
        return
    if not console.is_terminal:  # piped: one view per change, as `kubectl get -w` prints lines
        for changed in _changes(releases, name):
            console.print(summary(view.release(changed)))
        return
    with Live(summary(view.release(release)), console=console, auto_refresh=False) as live:
        for changed in _changes(releases, name):
            live.update(summary(view.release(changed)), refresh=True)


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)


def summary(v: view.ReleaseView) -> Group:
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("Name", f"{v.namespace}/{v.name}")
    head.add_row("Phase", Text(v.phase, style=PHASE_STYLE.get(v.phase, "")))
    head.add_row("Message", v.message)
    head.add_row("Strategy", v.strategy + (" (paused)" if v.paused else ""))
    head.add_row("Live", view.slot_text(v.live))
    head.add_row("Candidate", view.slot_text(v.candidate))
    if v.step is not None or v.weight is not None:
        head.add_row("Step / weight", f"{_or_dash(v.step)} / {_or_dash(v.weight)}%")
    if v.traffic is not None:
        head.add_row("Traffic", v.traffic)
    head.add_row("Pods", f"{v.available} available of {v.replicas_text}")
    table = Table(title="History", title_justify="left", expand=False)
    for column in ("Revision", "Colour", "Outcome", "Pods", "Images", "Reason"):
        table.add_column(column)
    for h in v.history:
        table.add_row(
            f"{h.revision}{h.marks}", h.color, h.outcome, h.pods, ", ".join(h.images), h.reason
        )
    if not v.checks:
        return Group(head, table)
    gates = Table(title="Checks", title_justify="left", expand=False)
    for column in ("Check", "Stage", "Revision", "Phase", "Passed", "Failed", "Errors", "Last"):
        gates.add_column(column)
    for c in v.checks:
        gates.add_row(
            c.name,
            c.stage,
            "?" if c.revision is None else str(c.revision),
            Text(c.phase, style=CHECK_STYLE.get(c.phase, "")),
            str(c.passed),
            str(c.failed),
            str(c.errors),
            c.last,
        )
    judged = [c for c in v.checks if c.metrics]
    if not judged:
        return Group(head, table, gates)
    metrics = Table(title="Judgements", title_justify="left", expand=False)
    for column in ("Check", "Score", "Metric", "Verdict", "Samples", "Shift (CI)", "p", "Weight"):
        metrics.add_column(column)
    for c in judged:
        for i, m in enumerate(c.metrics):
            metrics.add_row(
                c.name if i == 0 else "",
                f"{c.score:g}" if i == 0 and c.score is not None else "",
                m.name,
                Text(m.verdict, style=METRIC_STYLE.get(m.verdict, "")),
                m.samples,
                m.shift,
                f"{m.p_value:.2g}",
                f"{m.weight:g}",
            )
    return Group(head, table, gates, metrics)


def group_summary(g: view.GroupView) -> Group:
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("Group", f"{g.namespace}/{g.name}")
    head.add_row("Phase", Text(g.phase, style=PHASE_STYLE.get(g.phase, "")))
    head.add_row("Message", g.message)
    head.add_row("Waiting for", ", ".join(g.waiting_for) or "-")
    if g.last_flip_spread_ms is not None:
        head.add_row("Last flip spread", f"{g.last_flip_spread_ms:.1f} ms")
    members = Table(title="Members", title_justify="left", expand=False)
    for column in ("Release", "Phase", "Live", "Candidate", "Ready"):
        members.add_column(column)
    for m in g.members:
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
    for e in g.history:
        entries.add_row(e.at, ", ".join(f"{n} {r}" for n, r in sorted(e.revisions.items())))
    return Group(head, members, entries)


def _changes(releases: Releases, name: str) -> Iterator[dict[str, Any]]:
    """The Release as it is now, then after every change, until it is deleted."""
    # No resourceVersion: the watch opens with the current object (a GET's version may already
    # be too old for the server's watch cache: 410 Expired).
    for event in new_watch().stream(
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
