"""`kubectl greenlight dashboard`: a local web UI for the Releases of a namespace.

One aiohttp server on 127.0.0.1 serves one static page (`static/dashboard.html`, plain JS, no
build step, nothing from the network) and a stream of server-sent events fed by the server's own
Kubernetes watch of the namespace's Releases and ReleaseGroups: every change reaches every open
page at once. The buttons POST to `/api/{releases|groups}/NAME/COMMAND`, which runs the plugin's
own `request` / `set_paused`: the same preconditions, the same refusal messages, the same
annotations as `kubectl greenlight promote|abort|retry|undo|pause|resume`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Callable
from importlib import resources
from typing import Annotated, Any, cast

import typer
from aiohttp import web
from kubernetes.client.exceptions import ApiException

from greenlight.api import group as api_group
from greenlight.api import release as api
from greenlight.cli import plugin, status
from greenlight.engine import commands

PAGE = resources.files("greenlight.cli") / "static" / "dashboard.html"
COMMANDS = ("promote", "abort", "retry", "undo", "pause", "resume")
KINDS = {"releases": api.PLURAL, "groups": api_group.PLURAL}


# --- pure: what the page shows -----------------------------------------------------------------


def release_view(release: dict[str, Any]) -> dict[str, Any]:
    """One Release as the page renders it, with the reason each button is disabled (None: it
    may be clicked): the plugin's own `command_error`, so a disabled button's tooltip is the
    message `kubectl greenlight` would print."""
    meta = release.get("metadata") or {}
    spec = release.get("spec") or {}
    st = plugin.status_of(release)
    replicas = spec.get("replicas", 0)
    paused = bool(spec.get("paused"))
    rolling = (spec.get("strategy") or {}).get("rolling")
    pods = {r.template_hash: r for r in st.revisions}
    refusals: dict[str, str | None] = {
        c: plugin.command_error(c, release) for c in ("promote", "abort", "retry", "undo")
    }
    refusals["pause"] = "spec.paused is already true" if paused else None
    refusals["resume"] = None if paused else "spec.paused is not set"

    def slot(revision: int | None, color: str | None, ready: int) -> dict[str, Any] | None:
        if revision is None:
            return None
        return {"revision": revision, "color": color, "ready": ready, "replicas": replicas}

    history = []
    for e in sorted(st.history, key=lambda e: e.revision, reverse=True):
        r = pods.get(e.template_hash)
        live = e.template_hash == st.live_hash
        history.append(
            {
                "revision": e.revision,
                "color": e.color,
                "outcome": e.outcome,
                "pods": f"{r.available_replicas}/{r.replicas}" if r else "0",
                "images": e.images,
                "reason": e.reason or "",
                "live": live,
                "candidate": e.template_hash == st.candidate_hash,
                "undo": "live" if live else plugin.command_error("undo", release, e.revision),
            }
        )
    numbers = {e.template_hash: e.revision for e in st.history}
    checks = []
    for c in st.checks:
        last = c.measurements[-1] if c.measurements else None
        checks.append(
            {
                "name": c.name,
                "stage": c.stage,
                "revision": numbers.get(c.template_hash),
                "phase": c.phase,
                "passed": c.successes,
                "failed": c.failures,
                "errors": c.errors,
                "last": f"{last.verdict}: {last.value}" if last else c.message,
            }
        )
    return {
        "name": meta.get("name"),
        "phase": st.phase or "Unknown",
        "message": st.message,
        "state": status.release_verdict(release).state,
        "strategy": st.strategy or ("rolling" if rolling is not None else "blueGreen"),
        "paused": paused,
        "live": slot(st.live_revision, st.live_color, st.available_replicas),
        "candidate": slot(st.candidate_revision, st.candidate_color, st.candidate_ready_replicas),
        "step": st.current_step,
        "steps": [_step_label(step) for step in (rolling or {}).get("steps") or []],
        "weight": st.weight,
        "checks": checks,
        "history": history,
        "commands": refusals,
    }


def _step_label(step: dict[str, Any]) -> str:
    if step.get("setWeight") is not None:
        return f"{step['setWeight']}%"
    if "pause" in step:
        duration = (step.get("pause") or {}).get("duration")
        return f"pause {duration}" if duration else "pause"
    return "analysis" if "analysis" in step else "?"


def group_view(group: dict[str, Any]) -> dict[str, Any]:
    meta = group.get("metadata") or {}
    st = api_group.GroupStatus.model_validate(group.get("status") or {})
    paused = bool((group.get("spec") or {}).get("paused"))
    no_undo = f"group {meta.get('namespace')}/{meta.get('name')}: no earlier group entry to undo to"
    return {
        "name": meta.get("name"),
        "phase": st.phase or "Unknown",
        "message": st.message,
        "paused": paused,
        "waitingFor": st.waiting_for,
        "members": [m.model_dump(by_alias=True) for m in st.members],
        "history": [
            {"at": e.at.strftime("%Y-%m-%d %H:%M:%S"), "revisions": e.revisions}
            for e in reversed(st.history)
        ],
        "commands": {
            "promote": None,
            "abort": None,
            "retry": None,
            "undo": no_undo if len(st.history) < 2 else None,
            "pause": "spec.paused is already true" if paused else None,
            "resume": None if paused else "spec.paused is not set",
        },
    }


def sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


# --- the server --------------------------------------------------------------------------------


class Dashboard:
    """The namespace's Releases and groups as last seen by the watch, and the open pages."""

    def __init__(self, releases: plugin.Releases, groups: plugin.Releases, port: int) -> None:
        self.releases, self.groups, self.port = releases, groups, port
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.pages: set[asyncio.Queue[bytes | None]] = set()
        self.has_groups = True
        """False when the cluster has no ReleaseGroup CRD: nothing to list or watch."""

    def seed(self) -> None:
        """The current objects, before the watch's first events (a page may come first)."""
        for client in (self.releases, self.groups):
            try:
                found = client.custom.list_namespaced_custom_object(
                    api.GROUP, api.VERSION, client.ns, client.plural
                )
            except ApiException as e:
                if e.status == 404 and client.plural == api_group.PLURAL:
                    self.has_groups = False
                    continue
                plugin.fail(f"list {client.plural} in {client.ns}: {e.status} {e.reason}")
            for obj in cast(dict[str, Any], found).get("items", []):
                self.objects[(client.plural, obj["metadata"]["name"])] = obj

    def snapshot(self) -> dict[str, Any]:
        def of(plural: str, view: Callable[[dict[str, Any]], dict[str, Any]]) -> list[Any]:
            return [view(o) for (p, _), o in sorted(self.objects.items()) if p == plural]

        return {
            "namespace": self.releases.ns,
            "releases": of(api.PLURAL, release_view),
            "groups": of(api_group.PLURAL, group_view),
        }

    def changed(self, event: status.Event) -> None:
        """A watch event (called in the event loop): remember it and tell every page."""
        plural, change, obj = event
        if plural == "error":
            plugin.errors.print(f"dashboard: {change}", markup=False, highlight=False)
            message = sse("problem", {"message": change})
        else:
            name = obj["metadata"]["name"]
            kind = "release" if plural == api.PLURAL else "group"
            if change == "DELETED":
                self.objects.pop((plural, name), None)
                message = sse("deleted", {"kind": kind, "name": name})
            else:
                self.objects[(plural, name)] = obj
                view = release_view(obj) if plural == api.PLURAL else group_view(obj)
                message = sse(kind, view)
        for page in self.pages:
            page.put_nowait(message)

    def close_pages(self) -> None:
        for page in self.pages:
            page.put_nowait(None)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._same_origin])
        app.router.add_get("/", self._page)
        app.router.add_get("/api/state", self._state)
        app.router.add_get("/api/events", self._events)
        app.router.add_post("/api/{kind}/{name}/{command}", self._command)
        return app

    @web.middleware
    async def _same_origin(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        """Only pages served from here, by a loopback name: no other site's page can send a
        command (it cannot set a JSON body without a preflight we never answer, and its Origin
        differs), and no rebound DNS name can reach the server."""
        hosts = {f"{h}:{self.port}" for h in ("127.0.0.1", "localhost", "[::1]")}
        if request.host not in hosts:
            return web.json_response({"error": f"unexpected Host {request.host!r}"}, status=403)
        if request.method == "POST":
            origin = request.headers.get("Origin")
            if origin is not None and origin != f"http://{request.host}":
                return web.json_response({"error": "cross-origin request"}, status=403)
            if request.content_type != "application/json":
                return web.json_response({"error": "expected application/json"}, status=415)
        response: web.StreamResponse = await handler(request)
        return response

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(
            text=PAGE.read_text(encoding="utf-8"),
            content_type="text/html",
            headers={"Cache-Control": "no-store"},
        )

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(self.snapshot())

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        page: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.pages.add(page)
        try:
            message: bytes | None = sse("snapshot", self.snapshot())
            while message is not None:
                await response.write(message)
                try:
                    async with asyncio.timeout(15):  # (not wait_for: kube/leader.py)
                        message = await page.get()
                except TimeoutError:
                    message = b": keep-alive\n\n"
        except ConnectionError:
            pass  # the page went away
        finally:
            self.pages.discard(page)
        return response

    async def _command(self, request: web.Request) -> web.Response:
        kind, name, command = (request.match_info[k] for k in ("kind", "name", "command"))
        if kind not in KINDS or command not in COMMANDS:
            return web.json_response({"error": f"unknown {kind}/{command}"}, status=404)
        try:
            body = await request.json() if request.can_read_body else {}
        except json.JSONDecodeError:
            return web.json_response({"error": "the body is not JSON"}, status=400)
        client = self.releases if kind == "releases" else self.groups
        value = "true"
        if command == "undo":
            value = str(body.get("toRevision") or "")
        if command == "promote" and body.get("skipChecks"):
            value = commands.SKIP_CHECKS

        def run() -> str:
            if command in ("pause", "resume"):
                return plugin.set_paused(client, name, command == "pause")
            return plugin.request(client, name, command, value)

        try:
            done = await asyncio.to_thread(run)
        except plugin.Refused as e:
            return web.json_response({"error": e.message}, status=409)
        plugin.console.print(f"dashboard: {done}", markup=False, highlight=False)
        return web.json_response({"message": done})


async def serve(dash: Dashboard) -> None:
    runner = web.AppRunner(dash.app(), access_log=None, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", dash.port)
    await site.start()
    dash.port = runner.addresses[0][1]  # --port 0: the one the system chose
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watches = status.Watches(
        dash.releases, sink=lambda event: loop.call_soon_threadsafe(dash.changed, event)
    )
    watches.start(api.PLURAL)
    if dash.has_groups:
        watches.start(api_group.PLURAL)
    plugin.console.print(
        f"Greenlight dashboard for namespace {dash.releases.ns}: http://127.0.0.1:{dash.port}/"
        "  (Ctrl-C stops it)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await asyncio.to_thread(watches.close)
        dash.close_pages()
        with contextlib.suppress(Exception):
            await runner.cleanup()


def dashboard(
    namespace: plugin.Namespace = None,
    context: plugin.Context = None,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Local port (0: any free one).")
    ] = 3100,
) -> None:
    """Serve a web UI of the namespace's Releases on 127.0.0.1 (live revisions, candidates,
    pods, steps, checks, history; promote, abort, retry, undo, pause and resume buttons)."""
    releases = plugin.Releases(namespace, context)
    groups = plugin.Releases(releases.ns, context, api_group.PLURAL)
    dash = Dashboard(releases, groups, port)
    dash.seed()
    asyncio.run(serve(dash))


plugin.app.command("dashboard")(dashboard)
