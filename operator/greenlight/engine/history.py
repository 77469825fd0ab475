"""Revision history: numbering, outcomes, undo targets, trimming."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from greenlight.api import release as api
from greenlight.engine import snapshot


def find(history: Sequence[api.HistoryEntry], template_hash: str | None) -> api.HistoryEntry | None:
    for entry in history:
        if entry.template_hash == template_hash:
            return entry
    return None


def put(history: list[api.HistoryEntry], entry: api.HistoryEntry) -> None:
    """Insert or replace the entry of the same template hash."""
    for i, old in enumerate(history):
        if old.template_hash == entry.template_hash:
            history[i] = entry
            return
    history.append(entry)


def next_revision(
    history: Iterable[api.HistoryEntry], deployments: Iterable[snapshot.DeploymentView]
) -> int:
    seen = [e.revision for e in history] + [d.revision or 0 for d in deployments]
    return max(seen, default=0) + 1


def undo_target(
    history: Sequence[api.HistoryEntry], live_hash: str | None, argument: str
) -> api.HistoryEntry | str:
    """The entry `greenlight.dev/undo: <argument>` points at, or an error message.

    An empty argument means the revision that was live before the current one.
    """
    argument = argument.strip()
    if not argument:
        retired = [e for e in history if e.outcome == "Retired" and e.template_hash != live_hash]
        if not retired:
            return "no earlier live revision to undo to"
        return max(retired, key=lambda e: (e.retired_at or e.created_at, e.revision))
    if not argument.isdigit():
        return f"annotation greenlight.dev/undo: {argument!r} is not a revision number"
    wanted = int(argument)
    for entry in history:
        if entry.revision == wanted:
            return entry
    known = ", ".join(str(e.revision) for e in sorted(history, key=lambda e: e.revision))
    return f"revision {wanted} is not in the history (known: {known or 'none'})"


def trim(history: list[api.HistoryEntry], limit: int, keep: set[str]) -> list[api.HistoryEntry]:
    """Keep the entries in `keep` and the `limit` newest others, ordered by revision."""
    others = sorted(
        (e for e in history if e.template_hash not in keep), key=lambda e: e.revision, reverse=True
    )
    kept = {e.template_hash for e in others[:limit]} | keep
    return sorted((e for e in history if e.template_hash in kept), key=lambda e: e.revision)
