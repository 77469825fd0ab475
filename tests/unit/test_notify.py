"""Notifications: which transitions a Release tells its webhooks about (pure)."""

from __future__ import annotations

from typing import Any

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import naming

from .world import World, spec


def notified(image: str, on: list[str] | None = None, **kw: Any) -> api.ReleaseSpec:
    body = spec(image, **kw).model_dump(by_alias=True, exclude_none=True)
    hook: dict[str, Any] = {"name": "team", "webhook": {"url": "http://hooks.example/x"}}
    if on is not None:
        hook["on"] = on
    body["notifications"] = [hook]
    return api.ReleaseSpec.model_validate(body)


def sent(w: World) -> list[str]:
    return [a.event for a in w.log if isinstance(a, act.Notify)]


def test_a_release_tells_started_awaiting_promotion_promoted_once_each() -> None:
    w = World(notified("app:1")).go_live()
    w.set_spec(notified("app:2", auto_promote=False))
    for _ in range(3):
        w.reconcile()
        w.settle()
    assert sent(w) == ["Started", "AwaitingPromotion"], "once each, not per reconcile"
    w.annotations[naming.COMMAND_PROMOTE] = "true"
    w.reconcile()
    assert sent(w) == ["Started", "AwaitingPromotion", "Promoted"]
    [promoted] = [a for a in w.log if isinstance(a, act.Notify) and a.event == "Promoted"]
    assert promoted.payload["liveRevision"] == 2 and promoted.payload["release"] == "web"


def test_aborted_and_degraded_and_only_what_was_asked_for() -> None:
    w = World(notified("app:1", on=["Aborted", "Degraded"], deadline=60)).go_live()
    w.set_spec(notified("app:2", on=["Aborted", "Degraded"], deadline=60))
    w.reconcile()
    w.tick(61)
    w.reconcile()
    w.reconcile()
    assert sent(w) == ["Aborted", "Degraded"]
