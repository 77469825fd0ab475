"""kubectl greenlight: which commands a Release's status allows, and what `get` shows."""

from __future__ import annotations

from rich.console import Console

from greenlight.cli import plugin

from .world import World, spec


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
    assert plugin.command_error("promote", w.status) == (
        "nothing to promote: no release in progress (phase Healthy)"
    )
    assert plugin.command_error("abort", w.status) is not None
    w.set_spec(spec("app:3", auto_promote=False))
    w.reconcile()
    assert w.status.candidate_revision == 3
    assert plugin.command_error("promote", w.status) is None
    assert plugin.command_error("abort", w.status) is None


def test_retry_needs_an_aborted_revision() -> None:
    w = two_revisions()
    assert plugin.command_error("retry", w.status) == "nothing to retry: no aborted revision"


def test_undo_names_the_revisions_it_knows() -> None:
    w = two_revisions()
    assert plugin.command_error("undo", w.status) is None  # to revision 1
    assert plugin.command_error("undo", w.status, 9) == (
        "revision 9 is not in the history (known: 1, 2)"
    )
    assert plugin.command_error("undo", w.status, 2) == "revision 2 is already live"
    first = World(spec("app:1"))
    first.reconcile()
    assert plugin.command_error("undo", first.status) == "no earlier live revision to undo to"


def test_get_shows_phase_revisions_and_history() -> None:
    w = two_revisions()
    release = {
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": 3},
        "status": w.status.model_dump(by_alias=True, mode="json"),
    }
    console = Console(record=True, width=160)
    console.print(plugin.summary("web", release))
    text = console.export_text()
    assert "shop/web" in text and "Healthy" in text
    assert "revision 2 (green)" in text
    rows = [line for line in text.splitlines() if "Retired" in line or "(live)" in line]
    assert len(rows) == 2, text
    assert "app:2" in rows[0] and "(live)" in rows[0] and "3/3" in rows[0]
    assert "app:1" in rows[1] and "Retired" in rows[1]
