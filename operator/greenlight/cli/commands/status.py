"""`kubectl greenlight status NAME`: wait for a Release (or a ReleaseGroup) to finish, for CI.

It watches the object (and a group's member Releases) and exits as soon as the release has
ended (`view.ReleaseView.state`, `view.group_state`): 0 when it is Healthy on the desired
revision, a distinct code when it failed or the time ran out (`EXIT_*` below, documented in the
README). One line per change, fit for CI logs: rich prints no ANSI codes when stdout is not a
terminal, and the lines are never wrapped.
"""

from __future__ import annotations

import queue
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from greenlight.api import release as api
from greenlight.cli import view
from greenlight.cli.client import Event, Releases, Watches, target
from greenlight.cli.console import PHASE_STYLE, console
from greenlight.cli.options import Context, Name, Namespace

EXIT_HEALTHY = 0
"""Healthy on the desired revision (every member, for a group)."""
EXIT_ERROR = 1
"""Not found, deleted while waiting, no usable kubeconfig (as every plugin command)."""
EXIT_DEGRADED = 3
"""Degraded: a missed progress deadline, a failed check, a rollback, an unusable spec."""
EXIT_ABORTED = 4
"""Aborted by a user (`kubectl greenlight abort`) and not retried."""
EXIT_TIMEOUT = 5
"""--timeout passed while the release was still going on."""

EXIT_CODES: dict[view.State, int] = {
    "done": EXIT_HEALTHY,
    "degraded": EXIT_DEGRADED,
    "aborted": EXIT_ABORTED,
}


@dataclass(frozen=True)
class Verdict:
    state: view.State
    phase: str
    """The word to colour (a phase, or "Waiting" before the operator has seen the spec)."""
    line: str
    """One line saying where the release is; printed when it changes."""


# --- pure: the line of a view ------------------------------------------------------------------


def release_verdict(v: view.ReleaseView) -> Verdict:
    """The Release's state, and its line: phase, live and candidate pods, step, checks."""
    if not v.observed:
        line = f"{v.name}: Waiting: the operator has not yet acted on generation {v.generation}"
        return Verdict(v.state, "Waiting", line)
    line = f"{v.name}: {v.phase}: {where(v)}"
    if v.message:
        line += f" - {v.message}"
    return Verdict(v.state, v.phase, line)


def where(v: view.ReleaseView) -> str:
    replicas = v.replicas_text
    parts = [f"live {view.slot_text(v.live)} {v.available}/{replicas}"]
    if v.candidate is not None:
        parts.append(f"candidate {v.candidate.text} {v.candidate.ready}/{replicas} ready")
    if v.step is not None or v.weight is not None:
        step = "-" if v.step is None else v.step
        weight = "-" if v.weight is None else v.weight
        parts.append(f"step {step} weight {weight}%")
    if v.traffic is not None:
        parts.append(v.traffic)
    if running := v.running_checks:
        parts.append(f"checks running: {', '.join(running)}")
    return ", ".join(parts)


def group_verdict(g: view.GroupView, members: Mapping[str, view.ReleaseView | None]) -> Verdict:
    """The group's state (`view.group_state`), and its line: the group's phase, then each
    member the spec names, as its own line says (or "not found")."""
    each = "; ".join(
        f"{m}: not found" if v is None else release_verdict(v).line.split(" - ")[0]
        for m, v in ((m, members.get(m)) for m in g.spec_members)
    )
    state = view.group_state(g, members)
    if not g.observed:
        line = (
            f"group {g.name}: Waiting: the operator has not yet acted on generation {g.generation}"
        )
        return Verdict(state, "Waiting", f"{line} | {each}")
    line = f"group {g.name}: {g.phase}"
    if g.message:
        line += f" - {g.message}"
    line += f" | {each}"
    phase = {"degraded": "Degraded", "aborted": "Aborted"}.get(state, g.phase)
    return Verdict(state, phase, line)


DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """`10m`, `90s`, `1h30m`, `2.5m` (Go's and kubectl's form; a bare number is seconds)."""
    text = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    parts = DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise typer.BadParameter(f"{text!r} is not a duration such as 10m, 90s or 1h30m")
    return sum(float(n) * UNITS[u] for n, u in parts)


def styled(verdict: Verdict, at: str) -> Text:
    """The line as printed: the time, then the line with its phase word coloured (the colour
    only reaches a terminal; rich drops it when stdout is a pipe or a file)."""
    text = Text(f"{at} {verdict.line}")
    text.highlight_words([f": {verdict.phase}"], PHASE_STYLE.get(verdict.phase, ""))
    return text


# --- the wait ----------------------------------------------------------------------------------


def wait(
    fetch: Callable[[], Verdict],
    apply: Callable[[Event], str | None],
    events: queue.Queue[Event],
    timeout: float,
    out: Console,
) -> int:
    """Print a line whenever the verdict changes; the exit code once the release has ended."""
    deadline = time.monotonic() + timeout
    printed = None
    while True:
        verdict = fetch()
        if verdict.line != printed:
            out.print(styled(verdict, time.strftime("%H:%M:%S")), soft_wrap=True)
            printed = verdict.line
        if verdict.state != "running":
            return EXIT_CODES[verdict.state]
        left = deadline - time.monotonic()
        try:
            event = events.get(timeout=max(left, 0)) if left > 0 else None
        except queue.Empty:
            event = None
        if event is None:
            out.print(
                f"{time.strftime('%H:%M:%S')} timed out after {timeout:g}s: still {verdict.phase}",
                soft_wrap=True,
                highlight=False,
            )
            return EXIT_TIMEOUT
        gone = apply(event)
        if gone is not None:
            out.print(f"{time.strftime('%H:%M:%S')} {gone}", soft_wrap=True, highlight=False)
            return EXIT_ERROR


def status(
    name: Name,
    namespace: Namespace = None,
    context: Context = None,
    timeout: Annotated[
        str, typer.Option("--timeout", help="Give up after this long (10m, 90s, 1h30m).")
    ] = "10m",
) -> None:
    """Wait for a release to end, for CI: exit 0 when Healthy on the spec's revision, 3 when
    Degraded, 4 when Aborted, 5 when --timeout passes first (1: not found or deleted).
    group/NAME waits for a ReleaseGroup and all its members."""
    seconds = parse_duration(timeout)
    client, name = target(name, namespace, context)
    plural = client.plural
    is_group = plural != api.PLURAL
    objects: dict[tuple[str, str], dict[str, Any] | None] = {(plural, name): client.get(name)}
    wanted = [(plural, {"field_selector": f"metadata.name={name}"})]
    if is_group:
        members = Releases(client.ns, context)
        for m in (objects[(plural, name)] or {}).get("spec", {}).get("members") or []:
            objects[(api.PLURAL, m)] = members.get_or_none(m)
        wanted.append((api.PLURAL, {}))  # members may change: every Release of the namespace

    def fetch() -> Verdict:
        body = objects[(plural, name)]
        assert body is not None
        if not is_group:
            return release_verdict(view.release(body))
        g = view.group(body)
        found = {m: objects.get((api.PLURAL, m)) for m in g.spec_members}
        return group_verdict(g, {m: view.release(b) if b else None for m, b in found.items()})

    def apply(event: Event) -> str | None:
        kind, change, obj = event
        if kind == "error":
            return change
        key = (kind, obj["metadata"]["name"])
        objects[key] = None if change == "DELETED" else obj
        if key == (plural, name) and change == "DELETED":
            return f"{'group ' if is_group else ''}{client.ns}/{name} was deleted"
        return None

    watches = Watches(client)
    for kind, selector in wanted:
        watches.start(kind, **selector)
    try:
        code = wait(fetch, apply, watches.events, seconds, console)
    finally:
        watches.close()
    raise typer.Exit(code)
