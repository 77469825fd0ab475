"""`kubectl greenlight status`: when a release has ended, and how, from the status alone."""

from __future__ import annotations

import io
import queue
from typing import Any

import pytest
import typer
from rich.console import Console

from greenlight.cli import view
from greenlight.cli.commands import status
from greenlight.engine import naming

from .test_checks import BAD, candidate_ready, smoke
from .world import World, released, spec


def body(w: World, name: str = "web") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "generation": w.generation},
        "spec": w.spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
        "status": w.status.model_dump(by_alias=True, mode="json"),
    }


def verdict(release: dict[str, Any]) -> status.Verdict:
    return status.release_verdict(view.release(release))


def group_verdict(g: dict[str, Any], members: dict[str, dict[str, Any] | None]) -> status.Verdict:
    views = {m: view.release(b) if b is not None else None for m, b in members.items()}
    return status.group_verdict(view.group(g), views)


live = released  # the name test_dashboard.py imports from here


def test_healthy_on_the_desired_revision_is_done() -> None:
    w = released()
    v = verdict(body(w))
    assert v.state == "done" and v.phase == "Healthy"
    assert v.line.startswith("web: Healthy: live revision 1 (blue) 3/3")


def test_a_spec_the_operator_has_not_seen_yet_is_running_even_when_healthy() -> None:
    w = released()
    w.set_spec(spec("app:2"))  # the status still says Healthy, for the previous generation
    v = verdict(body(w))
    assert v.state == "running" and v.phase == "Waiting"
    assert "generation 2" in v.line
    no_status = body(World(spec("app:1")))
    assert verdict(no_status).state == "running"


def test_a_flip_is_running_until_the_new_revision_is_live() -> None:
    w = released()
    w.set_spec(spec("app:2"))
    w.reconcile()
    v = verdict(body(w))
    assert v.state == "running" and v.phase == "Progressing"
    assert "candidate revision 2 (green) 0/3 ready" in v.line
    w.settle()
    w.reconcile()
    v = verdict(body(w))
    assert w.status.live_revision == 2 and v.state == "done", v


def test_paused_awaiting_promotion_is_running() -> None:
    w = released(auto_promote=False)
    w.set_spec(spec("app:2", auto_promote=False))
    for _ in range(2):
        w.reconcile()
        w.settle()
    assert w.status.phase == "Paused"
    assert verdict(body(w)).state == "running"


def test_a_missed_deadline_is_degraded() -> None:
    w = released(deadline=60)
    w.set_spec(spec("app:2", deadline=60))
    w.reconcile()
    w.tick(61)
    w.reconcile()
    assert w.status.phase == "Degraded"
    v = verdict(body(w))
    assert v.state == "degraded" and status.EXIT_CODES[v.state] == status.EXIT_DEGRADED


def test_a_user_abort_is_aborted() -> None:
    w = released()
    w.set_spec(spec("app:2"))
    w.reconcile()
    w.annotations[naming.COMMAND_ABORT] = "true"
    w.reconcile()
    v = verdict(body(w))
    assert v.state == "aborted" and status.EXIT_CODES[v.state] == status.EXIT_ABORTED
    assert "live revision 1 (blue)" in v.line


def test_a_rollback_after_a_failed_post_promotion_check_is_degraded() -> None:
    w = candidate_ready(post=[smoke()])
    w.reconcile()  # flips, starts the post-promotion check
    assert w.status.live_revision == 2
    assert verdict(body(w)).state == "running", "checks still running"
    w.answer(BAD)
    for _ in range(2):
        w.reconcile()
    assert w.status.live_revision == 1
    assert verdict(body(w)).state == "degraded"


def group(phase: str | None, generation: int = 1, observed: int | None = 1) -> dict[str, Any]:
    return {
        "metadata": {"name": "shop", "namespace": "ns", "generation": generation},
        "spec": {"members": ["django", "fastapi"]},
        "status": {"phase": phase, "observedGeneration": observed, "message": "m"},
    }


def member(w: World, name: str) -> dict[str, Any]:
    return body(w, name)


def test_a_group_is_done_when_it_and_every_member_are() -> None:
    django, fastapi = released(), released()
    members = {"django": member(django, "django"), "fastapi": member(fastapi, "fastapi")}
    v = group_verdict(group("Healthy"), members)
    assert v.state == "done", v
    assert "django: Healthy" in v.line and "fastapi: Healthy" in v.line
    assert group_verdict(group("Healthy", generation=2), members).state == "running"
    assert group_verdict(group("Progressing"), members).state == "running"
    fastapi.set_spec(spec("app:2"))
    fastapi.reconcile()
    members["fastapi"] = member(fastapi, "fastapi")
    assert group_verdict(group("Healthy"), members).state == "running"
    assert group_verdict(group("Healthy"), {**members, "fastapi": None}).state == "running"


def test_a_group_fails_as_its_worst_member() -> None:
    degraded = released(deadline=60)
    degraded.set_spec(spec("app:2", deadline=60))
    degraded.reconcile()
    degraded.tick(61)
    degraded.reconcile()
    aborted = released()
    aborted.set_spec(spec("app:2"))
    aborted.reconcile()
    aborted.annotations[naming.COMMAND_ABORT] = "true"
    aborted.reconcile()
    both = {"django": member(degraded, "django"), "fastapi": member(aborted, "fastapi")}
    assert group_verdict(group("Degraded"), both).state == "degraded"
    one = {"django": member(released(), "django"), "fastapi": member(aborted, "fastapi")}
    assert group_verdict(group("Degraded"), one).state == "aborted"
    healthy = {"django": member(released(), "django"), "fastapi": member(released(), "fastapi")}
    assert group_verdict(group("Degraded"), healthy).state == "degraded"


@pytest.mark.parametrize(
    ("text", "seconds"), [("10m", 600), ("90s", 90), ("1h30m", 5400), ("2.5m", 150), ("45", 45)]
)
def test_durations(text: str, seconds: float) -> None:
    assert status.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10x", "m10", "10m junk", "-5s"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        status.parse_duration(text)


def printed(terminal: bool, verdict: status.Verdict) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=40)
    console.print(status.styled(verdict, "12:00:00"), soft_wrap=True)
    return out.getvalue()


def test_lines_have_no_ansi_codes_off_a_terminal_and_are_not_wrapped() -> None:
    v = verdict(body(released()))
    assert len(v.line) > 40
    assert printed(True, v).count("\x1b[") >= 2, "a terminal gets the phase in colour"
    plain = printed(False, v)
    assert "\x1b" not in plain
    assert plain == f"12:00:00 {v.line}\n", "one line, not wrapped at the console's width"


def test_wait_prints_each_change_once_and_returns_the_code() -> None:
    w = released()
    w.set_spec(spec("app:2"))
    w.reconcile()
    current = {"body": body(w)}
    events: queue.Queue[status.Event] = queue.Queue()
    out = io.StringIO()

    def apply(event: status.Event) -> str | None:
        current["body"] = event[2]
        return None

    events.put(("releases", "MODIFIED", body(w)))  # no change: no line
    w.settle()
    w.reconcile()
    events.put(("releases", "MODIFIED", body(w)))
    code = status.wait(lambda: verdict(current["body"]), apply, events, 60, Console(file=out))
    lines = out.getvalue().splitlines()
    assert code == status.EXIT_HEALTHY
    assert len(lines) == 2 and "Progressing" in lines[0] and "Healthy" in lines[1], lines


def test_wait_times_out_with_its_own_code() -> None:
    w = released()
    w.set_spec(spec("app:2"))
    w.reconcile()
    out = io.StringIO()
    code = status.wait(
        lambda: verdict(body(w)),
        lambda e: None,
        queue.Queue(),
        0,
        Console(file=out),
    )
    assert code == status.EXIT_TIMEOUT
    assert "timed out after 0s: still Progressing" in out.getvalue()


def test_exit_codes_are_distinct() -> None:
    codes = [
        status.EXIT_HEALTHY,
        status.EXIT_ERROR,
        2,  # typer's usage error
        status.EXIT_DEGRADED,
        status.EXIT_ABORTED,
        status.EXIT_TIMEOUT,
    ]
    assert len(set(codes)) == len(codes)
