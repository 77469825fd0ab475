"""`kubectl greenlight status NAME`: wait for a Release (or a ReleaseGroup) to finish, for CI.

It watches the object (and a group's member Releases) and exits as soon as the release has
ended: 0 when it is Healthy on the desired revision, a distinct code when it failed or the time
ran out (`EXIT_*` below, documented in the README). One line per change, fit for CI logs: rich
prints no ANSI codes when stdout is not a terminal, and the lines are never wrapped.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, cast

import pydantic
import typer
import urllib3
from kubernetes import watch
from kubernetes.client.exceptions import ApiException
from rich.console import Console
from rich.text import Text

from greenlight.api import group as api_group
from greenlight.api import release as api
from greenlight.cli import plugin
from greenlight.engine import naming

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

State = Literal["done", "running", "degraded", "aborted"]
EXIT_CODES: dict[State, int] = {
    "done": EXIT_HEALTHY,
    "degraded": EXIT_DEGRADED,
    "aborted": EXIT_ABORTED,
}


@dataclass(frozen=True)
class Verdict:
    state: State
    phase: str
    """The word to colour (a phase, or "Waiting" before the operator has seen the spec)."""
    line: str
    """One line saying where the release is; printed when it changes."""


# --- pure: where a release is ------------------------------------------------------------------


def release_verdict(release: dict[str, Any]) -> Verdict:
    """Done when Healthy on the spec's revision (its template hash is live), nothing in
    flight, and the status written for the current generation; failed when Degraded or
    Aborted for the current generation; running otherwise (Progressing, Paused, not yet seen)."""
    meta = release.get("metadata") or {}
    name = meta.get("name", "?")
    st = plugin.status_of(release)
    generation = meta.get("generation")
    if st.observed_generation is None or (generation and st.observed_generation < generation):
        return Verdict(
            "running",
            "Waiting",
            f"{name}: Waiting: the operator has not yet acted on generation {generation}",
        )
    try:
        spec = api.ReleaseSpec.model_validate(release.get("spec") or {})
        desired: str | None = naming.template_hash(naming.effective_template(spec))
    except pydantic.ValidationError:
        desired = None  # the operator says why (Degraded, naming the field)
    phase = st.phase or "Unknown"
    line = f"{name}: {phase}: {_where(st, release)}"
    if st.message:
        line += f" - {st.message}"
    if phase == "Degraded":
        return Verdict("degraded", phase, line)
    if phase == "Aborted":
        return Verdict("aborted", phase, line)
    if phase == "Healthy" and st.live_hash == desired and st.candidate_hash is None:
        return Verdict("done", phase, line)
    return Verdict("running", phase, line)


def _where(st: api.ReleaseStatus, release: dict[str, Any]) -> str:
    replicas = (release.get("spec") or {}).get("replicas", "?")
    parts = [f"live {_slot(st.live_revision, st.live_color)} {st.available_replicas}/{replicas}"]
    if st.candidate_revision is not None:
        candidate = _slot(st.candidate_revision, st.candidate_color)
        parts.append(f"candidate {candidate} {st.candidate_ready_replicas}/{replicas} ready")
    if st.current_step is not None or st.weight is not None:
        parts.append(f"step {st.current_step} weight {st.weight}%")
    running = [c.name for c in st.checks if c.phase == "Running"]
    if running:
        parts.append(f"checks running: {', '.join(running)}")
    return ", ".join(parts)


def _slot(revision: int | None, color: str | None) -> str:
    return "-" if revision is None else f"revision {revision} ({color})"


def group_verdict(group: dict[str, Any], members: dict[str, dict[str, Any] | None]) -> Verdict:
    """A group is done when its status (for the current generation) is Healthy and every member
    Release is done; it failed when a member did (Degraded before Aborted: with AbortAll one
    member's missed deadline aborts the others) or the group is Degraded."""
    meta = group.get("metadata") or {}
    name = meta.get("name", "?")
    st = api_group.GroupStatus.model_validate(group.get("status") or {})
    generation = meta.get("generation")
    names = list((group.get("spec") or {}).get("members") or [])
    verdicts = {
        m: release_verdict(body) if body is not None else None
        for m, body in ((m, members.get(m)) for m in names)
    }
    each = "; ".join(
        f"{m}: not found" if v is None else v.line.split(" - ")[0] for m, v in verdicts.items()
    )
    if st.observed_generation is None or (generation and st.observed_generation < generation):
        line = f"group {name}: Waiting: the operator has not yet acted on generation {generation}"
        return Verdict("running", "Waiting", f"{line} | {each}")
    phase = st.phase or "Unknown"
    line = f"group {name}: {phase}"
    if st.message:
        line += f" - {st.message}"
    line += f" | {each}"
    states = {v.state for v in verdicts.values() if v is not None}
    if "degraded" in states:
        return Verdict("degraded", "Degraded", line)
    if "aborted" in states:
        return Verdict("aborted", "Aborted", line)
    if phase == "Degraded":
        return Verdict("degraded", phase, line)
    if phase == "Healthy" and None not in verdicts.values() and states <= {"done"}:
        return Verdict("done", phase, line)
    return Verdict("running", phase, line)


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
    text.highlight_words([f": {verdict.phase}"], plugin.PHASE_STYLE.get(verdict.phase, ""))
    return text


# --- the watch ---------------------------------------------------------------------------------


Event = tuple[str, str, dict[str, Any]]
"""(plural, watch event type, object); ("error", message, {}) when a watch gives up."""


class Watches:
    """Watches of custom objects, each in a thread handing every change to `sink`, reopened
    as they end (server timeout; 410 Gone: then from the current state) until `close()`."""

    def __init__(
        self, releases: plugin.Releases, sink: Callable[[Event], None] | None = None
    ) -> None:
        self.releases = releases
        self.events: queue.Queue[Event] = queue.Queue()
        self._put = sink or self.events.put
        """Where changes go (called in the watch's thread); default: the `events` queue."""
        self._closed = threading.Event()
        self._open: set[watch.Watch] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self, plural: str, **selector: str) -> None:
        thread = threading.Thread(target=self._follow, args=(plural,), kwargs=selector)
        thread.daemon = True
        thread.start()
        self._threads.append(thread)

    def close(self) -> None:
        """Stop every watch (its socket is shut, so a blocked read returns) and wait for it:
        a thread left reading TLS while the interpreter exits can abort the process."""
        self._closed.set()
        with self._lock:
            for stream in self._open:
                stream.stop()
        for thread in self._threads:
            thread.join(timeout=5)

    def _follow(self, plural: str, **selector: str) -> None:
        version: str | None = None
        while not self._closed.is_set():
            stream = watch.Watch()
            with self._lock:
                if self._closed.is_set():
                    return
                self._open.add(stream)
            try:
                for event in stream.stream(
                    self.releases.custom.list_namespaced_custom_object,
                    api.GROUP,
                    api.VERSION,
                    self.releases.ns,
                    plural,
                    resource_version=version,
                    timeout_seconds=300,
                    allow_watch_bookmarks=True,
                    **selector,
                ):
                    if event is None:  # the client yields None for a blank or broken line
                        continue
                    obj = event.get("raw_object") or event.get("object") or {}
                    version = obj.get("metadata", {}).get("resourceVersion", version)
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        self._put((plural, event["type"], obj))
            except ApiException as e:
                if e.status == 410:
                    version = None
                    continue
                if not self._closed.is_set():
                    self._put(("error", f"watch {plural}: {e.status} {e.reason}", {}))
                return
            except (urllib3.exceptions.HTTPError, OSError, ValueError):
                # The API server went away, or close() shut the socket: reconnect, or stop.
                self._closed.wait(1)
            finally:
                with self._lock:
                    self._open.discard(stream)


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
    name: plugin.Name,
    namespace: plugin.Namespace = None,
    context: plugin.Context = None,
    timeout: Annotated[
        str, typer.Option("--timeout", help="Give up after this long (10m, 90s, 1h30m).")
    ] = "10m",
) -> None:
    """Wait for a release to end, for CI: exit 0 when Healthy on the spec's revision, 3 when
    Degraded, 4 when Aborted, 5 when --timeout passes first (1: not found or deleted).
    group/NAME waits for a ReleaseGroup and all its members."""
    seconds = parse_duration(timeout)
    group_name = plugin._group(name)
    plural = api.PLURAL if group_name is None else api_group.PLURAL
    target = group_name or name
    client = plugin.Releases(namespace, context, plural)
    objects: dict[tuple[str, str], dict[str, Any] | None] = {(plural, target): client.get(target)}
    wanted = [(plural, {"field_selector": f"metadata.name={target}"})]
    if group_name is not None:
        members = plugin.Releases(namespace, context)
        for m in (objects[(plural, target)] or {}).get("spec", {}).get("members") or []:
            objects[(api.PLURAL, m)] = _get_or_none(members, m)
        wanted.append((api.PLURAL, {}))  # members may change: every Release of the namespace

    def fetch() -> Verdict:
        body = objects[(plural, target)]
        assert body is not None
        if group_name is None:
            return release_verdict(body)
        names = (body.get("spec") or {}).get("members") or []
        return group_verdict(body, {m: objects.get((api.PLURAL, m)) for m in names})

    def apply(event: Event) -> str | None:
        kind, change, obj = event
        if kind == "error":
            return change
        key = (kind, obj["metadata"]["name"])
        objects[key] = None if change == "DELETED" else obj
        if key == (plural, target) and change == "DELETED":
            return f"{'group ' if group_name else ''}{client.ns}/{target} was deleted"
        return None

    watches = Watches(client)
    for kind, selector in wanted:
        watches.start(kind, **selector)
    try:
        code = wait(fetch, apply, watches.events, seconds, plugin.console)
    finally:
        watches.close()
    raise typer.Exit(code)


def _get_or_none(releases: plugin.Releases, name: str) -> dict[str, Any] | None:
    try:
        found = releases.custom.get_namespaced_custom_object(
            api.GROUP, api.VERSION, releases.ns, api.PLURAL, name
        )
    except ApiException as e:
        if e.status == 404:
            return None
        plugin.fail(f"release {releases.ns}/{name}: {e.status} {e.reason}")
    return cast(dict[str, Any], found)


plugin.app.command("status")(status)
