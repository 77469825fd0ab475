"""`kubectl greenlight dashboard`: a local web UI for the Releases of a namespace.

One aiohttp server on 127.0.0.1 serves one static page (`static/dashboard.html`, plain JS, no
build step, nothing from the network) and a stream of server-sent events fed by the server's own
Kubernetes watch of the namespace's Releases and ReleaseGroups: every change reaches every open
page at once; what a page is sent is `cli.view`'s JSON of each object, the view `get` and
`status` render. The buttons POST to `/api/{releases|groups}/NAME/COMMAND`, which runs the
plugin's own `control.request` / `control.set_paused`: the same preconditions, the same refusal
messages, the same annotations as `kubectl greenlight promote|abort|retry|undo|pause|resume`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Annotated, Any, cast

import typer
from aiohttp import web
from kubernetes.client.exceptions import ApiException

from greenlight.api import group as api_group
from greenlight.api import release as api
from greenlight.cli import view
from greenlight.cli.client import Event, Releases, Watches
from greenlight.cli.commands import control
from greenlight.cli.console import Refused, console, errors, fail
from greenlight.cli.options import Context, Namespace
from greenlight.engine import commands

PAGE = resources.files("greenlight.cli") / "static" / "dashboard.html"
KINDS = {"releases": api.PLURAL, "groups": api_group.PLURAL}


# --- pure: what the page is sent -------------------------------------------------------------


def snapshot(
    namespace: str, objects: Mapping[tuple[str, str], Mapping[str, Any]]
) -> dict[str, Any]:
    """Every Release and group of the namespace, as `cli.view` renders them to JSON."""
    found = sorted(objects.items())
    return {
        "namespace": namespace,
        "releases": [view.release(o).json() for (p, _), o in found if p == api.PLURAL],
        "groups": [view.group(o).json() for (p, _), o in found if p == api_group.PLURAL],
    }


def sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


# --- the server --------------------------------------------------------------------------------


class Dashboard:
    """The namespace's Releases and groups as last seen by the watch, and the open pages."""

    def __init__(self, releases: Releases, groups: Releases, port: int) -> None:
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
                fail(f"list {client.plural} in {client.ns}: {e.status} {e.reason}")
            for obj in cast(dict[str, Any], found).get("items", []):
                self.objects[(client.plural, obj["metadata"]["name"])] = obj

    def snapshot(self) -> dict[str, Any]:
        return snapshot(self.releases.ns, self.objects)

    def changed(self, event: Event) -> None:
        """A watch event (called in the event loop): remember it and tell every page."""
        plural, change, obj = event
        if plural == "error":
            errors.print(f"dashboard: {change}", markup=False, highlight=False)
            message = sse("problem", {"message": change})
        else:
            name = obj["metadata"]["name"]
            kind = "release" if plural == api.PLURAL else "group"
            if change == "DELETED":
                self.objects.pop((plural, name), None)
                message = sse("deleted", {"kind": kind, "name": name})
            else:
                self.objects[(plural, name)] = obj
                shown = view.release(obj) if plural == api.PLURAL else view.group(obj)
                message = sse(kind, shown.json())
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
        if kind not in KINDS or command not in view.COMMANDS:
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
                return control.set_paused(client, name, command == "pause")
            return control.request(client, name, command, value)

        try:
            done = await asyncio.to_thread(run)
        except Refused as e:
            return web.json_response({"error": e.message}, status=409)
        console.print(f"dashboard: {done}", markup=False, highlight=False)
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
    watches = Watches(
        dash.releases, sink=lambda event: loop.call_soon_threadsafe(dash.changed, event)
    )
    watches.start(api.PLURAL)
    if dash.has_groups:
        watches.start(api_group.PLURAL)
    console.print(
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
    namespace: Namespace = None,
    context: Context = None,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Local port (0: any free one).")
    ] = 3100,
) -> None:
    """Serve a web UI of the namespace's Releases on 127.0.0.1 (live revisions, candidates,
    pods, steps, checks, history; promote, abort, retry, undo, pause and resume buttons)."""
    releases = Releases(namespace, context)
    groups = Releases(releases.ns, context, api_group.PLURAL)
    dash = Dashboard(releases, groups, port)
    dash.seed()
    asyncio.run(serve(dash))
