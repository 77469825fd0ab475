"""`kubectl greenlight dashboard`: what the page is sent (`cli.view`'s JSON), and who may talk
to the server."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from greenlight.cli import view
from greenlight.cli.commands import dashboard

from .test_status import body, live
from .world import spec


def test_a_release_as_the_page_shows_it() -> None:
    w = live()
    w.set_spec(spec("app:2"))
    w.reconcile()
    v = view.release(body(w)).json()
    assert v["name"] == "web" and v["phase"] == "Progressing" and v["state"] == "running"
    assert v["live"] == {"revision": 1, "color": "blue", "ready": 3, "replicas": 3}
    assert v["candidate"] == {"revision": 2, "color": "green", "ready": 0, "replicas": 3}
    assert [(h["revision"], h["live"], h["candidate"]) for h in v["history"]] == [
        (2, False, True),
        (1, True, False),
    ]
    assert v["history"][1]["undo"] == "live"
    assert json.loads(json.dumps(v)) == v, "plain JSON"


def test_disabled_buttons_carry_the_plugins_own_refusals() -> None:
    w = live()
    w.set_spec(spec("app:2"))
    for _ in range(2):
        w.reconcile()
        w.settle()
    release = body(w)
    v = view.release(release).json()
    for command in ("promote", "abort", "retry", "undo"):
        assert v["commands"][command] == view.release(release).refusal(command), command
    assert v["commands"]["promote"] == "nothing to promote: no release in progress (phase Healthy)"
    assert v["commands"]["undo"] is None
    assert v["commands"]["pause"] is None and v["commands"]["resume"] is not None
    [current, previous] = v["history"]
    assert previous["undo"] is None
    assert current["undo"] == "live"

    w.set_spec(spec("app:2", paused=True))
    paused = view.release(body(w)).json()
    assert paused["paused"] and paused["commands"]["pause"] and paused["commands"]["resume"] is None


def test_a_group_as_the_page_shows_it() -> None:
    group = {
        "metadata": {"name": "shop", "namespace": "ns"},
        "spec": {"members": ["django", "fastapi"]},
        "status": {
            "phase": "Progressing",
            "waitingFor": ["fastapi"],
            "members": [{"name": "django", "liveRevision": 1, "candidateRevision": 2}],
            "history": [{"at": "2026-01-01T00:00:00Z", "revisions": {"django": 1}}],
        },
    }
    v = view.group(group).json()
    assert v["waitingFor"] == ["fastapi"]
    assert v["members"][0]["candidateRevision"] == 2
    assert v["commands"]["undo"] == "group ns/shop: no earlier group entry to undo to"


def test_server_sent_events_are_one_event_each() -> None:
    assert dashboard.sse("release", {"name": "web"}) == b'event: release\ndata: {"name":"web"}\n\n'


def board() -> dashboard.Dashboard:
    releases: Any = SimpleNamespace(ns="ns", plural="releases")
    groups: Any = SimpleNamespace(ns="ns", plural="releasegroups")
    dash = dashboard.Dashboard(releases, groups, port=0)
    dash.objects[("releases", "web")] = body(live())
    return dash


async def test_only_loopback_hosts_and_same_origin_json_posts_are_served() -> None:
    dash = board()
    async with TestClient(TestServer(dash.app())) as client:
        dash.port = client.port
        host = {"Host": f"127.0.0.1:{client.port}"}
        page = await client.get("/", headers=host)
        assert page.status == 200 and "EventSource" in await page.text()
        state = await client.get("/api/state", headers=host)
        assert [r["name"] for r in (await state.json())["releases"]] == ["web"]
        rebound = await client.get("/api/state", headers={"Host": f"evil.test:{client.port}"})
        assert rebound.status == 403
        url = "/api/releases/web/pause"
        form = await client.post(url, data="x=1", headers=host)
        assert form.status == 415, "a cross-site form cannot send JSON"
        foreign = {**host, "Origin": "http://evil.test", "Content-Type": "application/json"}
        assert (await client.post(url, data="{}", headers=foreign)).status == 403
        unknown = await client.post(
            "/api/releases/web/explode",
            data="{}",
            headers={**host, "Content-Type": "application/json"},
        )
        assert unknown.status == 404


def test_rolling_steps_are_labelled_by_what_they_do() -> None:
    steps = [{"setWeight": 20}, {"pause": {"duration": "60s"}}, {"pause": {}}]
    w = live(rolling={"steps": steps})
    v = view.release(body(w)).json()
    assert v["strategy"] == "rolling"
    assert v["steps"] == ["20%", "pause 60s", "pause"]
