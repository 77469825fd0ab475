"""kubectl greenlight: which commands a Release's view allows, and what `get` shows."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from rich.console import Console

from greenlight.api import release as api
from greenlight.cli import view
from greenlight.cli.commands import control, get
from greenlight.cli.console import Refused
from greenlight.engine import actions as act
from greenlight.engine import commands, naming
from greenlight.kube import observe

from .world import T0, World, spec


def body(w: World) -> dict[str, Any]:
    return {
        "spec": w.spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
        "status": w.status.model_dump(by_alias=True, mode="json"),
    }


def refusal(command: str, w: World, undo_to: int | None = None) -> str | None:
    return view.release(body(w)).refusal(command, undo_to)


def two_revisions() -> World:
    """Revision 1 retired, revision 2 live."""
    w = World(spec("app:1"))
    for image in ("app:1", "app:2"):
        w.set_spec(spec(image))
        for _ in range(3):
            w.reconcile()
            w.settle()
    assert w.status.live_revision == 2 and w.status.phase == "Healthy"
    return w


def test_promote_and_abort_need_a_release_in_progress() -> None:
    w = two_revisions()
    assert refusal("promote", w) == ("nothing to promote: no release in progress (phase Healthy)")
    assert refusal("abort", w) is not None
    w.set_spec(spec("app:3", auto_promote=False))
    w.reconcile()
    assert w.status.candidate_revision == 3
    assert refusal("promote", w) is None
    assert refusal("abort", w) is None


def test_retry_needs_an_aborted_revision() -> None:
    w = two_revisions()
    assert refusal("retry", w) == "nothing to retry: no aborted revision"


def test_undo_names_the_revisions_it_knows() -> None:
    w = two_revisions()
    assert refusal("undo", w) is None  # to revision 1
    assert refusal("undo", w, 9) == ("revision 9 is not in the history (known: 1, 2)")
    assert refusal("undo", w, 2) == "revision 2 is already the spec"
    first = World(spec("app:1"))
    first.reconcile()
    assert refusal("undo", first) == "no earlier live revision to undo to"


IGNORED = {"AbortIgnored", "PromoteIgnored", "RetryIgnored", "UndoFailed", "UndoIgnored"}


@pytest.mark.parametrize("command", ["promote", "abort", "retry", "undo"])
@pytest.mark.parametrize(
    "state", ["healthy", "in flight", "paused before its Deployment", "aborted", "first release"]
)
def test_the_plugin_refuses_exactly_what_the_engine_ignores(command: str, state: str) -> None:
    w = World(spec("app:1")) if state == "first release" else two_revisions()
    if state == "first release":
        w.reconcile()
    if state == "in flight":
        w.set_spec(spec("app:3"))
        w.reconcile()
    if state == "paused before its Deployment":
        w.set_spec(spec("app:3", paused=True))
        w.reconcile()
        assert w.status.candidate_hash is None
    if state == "aborted":
        w.set_spec(spec("app:3"))
        w.reconcile()
        w.annotations[naming.COMMAND_ABORT] = "true"
        w.reconcile()
        assert w.status.aborted_hash is not None
    refused = refusal(command, w)
    w.annotations[commands.BY_NAME[command]] = "" if command == "undo" else "true"
    p = w.reconcile()
    ignored = [a.reason for a in p.events if isinstance(a, act.RecordEvent) and a.reason in IGNORED]
    assert bool(ignored) == (refused is not None), (refused, ignored)


def test_get_shows_phase_revisions_and_history() -> None:
    w = two_revisions()
    release = {
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": 3},
        "status": w.status.model_dump(by_alias=True, mode="json"),
    }
    console = Console(record=True, width=160)
    console.print(get.summary(view.release(release)))
    text = console.export_text()
    assert "shop/web" in text and "Healthy" in text
    assert "revision 2 (green)" in text
    rows = [line for line in text.splitlines() if "Retired" in line or "(live)" in line]
    assert len(rows) == 2, text
    assert "app:2" in rows[0] and "(live)" in rows[0] and "3/3" in rows[0]
    assert "app:1" in rows[1] and "Retired" in rows[1]


def test_get_shows_each_check_with_its_last_measurement() -> None:
    from .test_checks import BAD, candidate_ready, smoke

    w = candidate_ready(pre=[smoke(count=3, failureLimit=1, interval="1s")])
    w.reconcile()
    w.answer(BAD)
    w.reconcile()
    release = {
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": 3},
        "status": w.status.model_dump(by_alias=True, mode="json"),
    }
    console = Console(record=True, width=200)
    console.print(get.summary(view.release(release)))
    [row] = [line for line in console.export_text().splitlines() if "prePromotion" in line]
    assert "smoke" in row and "Running" in row and "Failed: " in row and "500" in row


class FakeReleases:
    """The part of `cli.client.Releases` a restart uses: the Release as a World has it, and
    the patches sent."""

    def __init__(self, w: World, plural: str = "releases") -> None:
        self.w, self.plural, self.ns = w, plural, "ns"
        self.patches: list[dict[str, Any]] = []

    def get(self, name: str) -> dict[str, Any]:
        return body(self.w)

    def patch(self, name: str, patch: dict[str, Any]) -> None:
        self.patches.append(patch)


def test_restart_patches_spec_restart_at_and_the_engine_restarts_the_live_revision() -> None:
    w = two_revisions()
    releases = FakeReleases(w)
    now = w.now + datetime.timedelta(seconds=5, microseconds=300)
    line = control.request_restart(releases, "web", now)  # type: ignore[arg-type]
    assert line == (
        "release ns/web: restart of revision 2 requested (spec.restartAt=2026-01-01T00:00:05Z):"
        " its pods are replaced, none unavailable meanwhile"
    )
    assert releases.patches == [{"spec": {"restartAt": "2026-01-01T00:00:05Z"}}]
    patched = w.spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    w.set_spec(api.ReleaseSpec.model_validate(patched | releases.patches[0]["spec"]))
    w.tick(5)
    w.reconcile()
    live = w.by_hash(w.live_hash() or "").name
    assert w.last is not None
    assert w.last.writes == (act.RestartDeployment(live, "2026-01-01T00:00:05Z"),)


def test_restart_is_refused_without_a_live_revision_or_for_a_group() -> None:
    first = World(spec("app:1"))
    for releases, why in [
        (FakeReleases(first), "release ns/web: no live revision to restart yet"),
        (FakeReleases(two_revisions(), "releasegroups"), "group ns/web: restart applies to a"
         " Release; restart its members"),
    ]:  # fmt: skip
        with pytest.raises(Refused) as refused:
            control.request_restart(releases, "web", T0)  # type: ignore[arg-type]
        assert refused.value.message == why and releases.patches == []


def test_detach_sets_the_annotation_the_operator_reads_and_cancel_takes_it_off() -> None:
    releases = FakeReleases(two_revisions())
    line = control.request_detach(releases, "web")  # type: ignore[arg-type]
    assert "detach requested" in line and "deleted without touching traffic" in line
    assert releases.patches == [{"metadata": {"annotations": {naming.ANNOTATION_DETACH: "true"}}}]
    meta = {"name": "web", "namespace": "ns", "annotations": {naming.ANNOTATION_DETACH: "true"}}
    kept = observe.release_view({**body(releases.w), "metadata": meta})
    assert not isinstance(kept, str) and naming.ANNOTATION_DETACH in kept.annotations
    control.request_detach(releases, "web", detach=False)  # type: ignore[arg-type]
    assert releases.patches[-1] == {"metadata": {"annotations": {naming.ANNOTATION_DETACH: None}}}
    with pytest.raises(Refused):
        control.request_detach(FakeReleases(two_revisions(), "releasegroups"), "web")  # type: ignore[arg-type]
