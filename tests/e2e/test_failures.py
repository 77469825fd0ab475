"""The operator cut off from the API server mid-release, without touching the shared API server:
the in-process operator talks to it through a TCP proxy (TLS passes through it end to end) that
the test cuts (every connection closed, new ones refused) and restores."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes import watch

from greenlight.api import release as api
from greenlight.engine import naming
from tests.e2e.helpers import wait_for
from tests.e2e.support import Operator, Releases, release_manifest, with_image

OUTAGE = 5.0
"""Seconds the proxy stays cut."""


class Proxy:
    """A plain TCP proxy to `upstream` on 127.0.0.1 (its own asyncio loop in a thread).

    `cut_at_next_request(seconds)`: the next bytes a client sends (a new request: watches send
    nothing once open) cut the proxy: those bytes are dropped, every connection is closed and
    the port refuses connections, as a dead API server's would, until `seconds` have passed."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.port = 0
        self.cut_at: float | None = None
        self.restored_at: float | None = None
        self._armed: float | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="proxy")

    def __enter__(self) -> Proxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def __exit__(self, *exc: object) -> None:
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def cut_at_next_request(self, seconds: float) -> None:
        self._loop.call_soon_threadsafe(setattr, self, "_armed", seconds)

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._connections):
            writer.transport.abort()
        self._connections.clear()

    async def _cut(self, seconds: float) -> None:
        self.cut_at = time.monotonic()
        await self._close()
        await asyncio.sleep(seconds)
        await self._listen()
        self.restored_at = time.monotonic()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._connections |= {writer, up_writer}
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, upstream=True),
                self._pipe(up_reader, writer, upstream=False),
            )
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (writer, up_writer):
                self._connections.discard(w)
                w.transport.abort()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: bool
    ) -> None:
        while data := await reader.read(65536):
            if upstream and self._armed is not None:
                seconds, self._armed = self._armed, None
                asyncio.get_running_loop().create_task(self._cut(seconds))
                return
            writer.write(data)
            await writer.drain()
        writer.transport.abort()


def proxied_kubeconfig(kubeconfig: str, directory: Path) -> tuple[str, str, int]:
    """A copy of the kubeconfig (its current context only) whose server is 127.0.0.1 on another
    port: (path, API server host, port). Skips unless the API server is on 127.0.0.1, the
    address its certificate names and the proxy listens on."""
    config = yaml.safe_load(Path(kubeconfig.split(":")[0]).read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    cluster = next(c for c in config["clusters"] if c["name"] == context["context"]["cluster"])
    server = urlsplit(cluster["cluster"]["server"])
    if server.hostname != "127.0.0.1":
        pytest.skip(f"the proxy needs an API server on 127.0.0.1, not {server.hostname}")
    path = directory / "kubeconfig"
    return str(path), server.hostname, server.port or 443


@pytest.fixture
def proxy(kube: Any, tmp_path: Path) -> Iterator[tuple[Proxy, str]]:
    path, host, port = proxied_kubeconfig(kube.kubeconfig, tmp_path)
    with Proxy(host, port) as p:
        config = yaml.safe_load(Path(kube.kubeconfig.split(":")[0]).read_text())
        for c in config["clusters"]:
            c["cluster"]["server"] = f"https://127.0.0.1:{p.port}"
        Path(path).write_text(yaml.safe_dump(config))
        yield p, path


class Timeline:
    """When the candidate's Deployment (any but `live`) appeared and became available, and when
    the live Service selected it: polled from outside the operator (not through the proxy)."""

    def __init__(self, releases: Releases, live: str) -> None:
        self.releases, self.live = releases, live
        self.candidate: str | None = None
        self.created: float | None = None
        self.available: float | None = None
        self.flipped: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> Timeline:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _poll(self) -> None:
        while not self._stop.is_set() and (self.flipped is None or self.available is None):
            now = time.monotonic()
            with contextlib.suppress(Exception):
                found = {
                    h: d for h, d in self.releases.deployments("web").items() if h != self.live
                }
                for h, d in found.items():
                    self.candidate = h
                    self.created = self.created or now
                    if self.available is None and _available(d):
                        self.available = now
                selected = self.releases.selector("web").get(naming.LABEL_HASH)
                if self.flipped is None and selected is not None and selected == self.candidate:
                    self.flipped = now
            self._stop.wait(0.05)


def _available(d: Any) -> bool:
    s = d.status
    want = d.spec.replicas
    return bool(
        s.observed_generation == d.metadata.generation
        and (s.updated_replicas or 0) == (s.available_replicas or 0) == (s.replicas or 0) == want
    )


class Statuses:
    """Every version of the Release's status, from a watch (not through the proxy)."""

    def __init__(self, releases: Releases, name: str) -> None:
        self.releases, self.name = releases, name
        self.seen: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self._watch = watch.Watch()
        self._version = releases.get(name)["metadata"]["resourceVersion"]
        self._thread = threading.Thread(target=self._follow, daemon=True)

    def __enter__(self) -> Statuses:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._watch.stop()
        self._thread.join(10)

    def _follow(self) -> None:
        kube = self.releases.kube
        try:
            for event in self._watch.stream(
                kube.custom.list_namespaced_custom_object, api.GROUP, api.VERSION,
                self.releases.ns, api.PLURAL, field_selector=f"metadata.name={self.name}",
                resource_version=self._version, timeout_seconds=120,
            ):  # fmt: skip
                self.seen.append(dict(event["object"].get("status") or {}))
        except BaseException as e:
            self.error = e

    def reconcile_errors(self) -> list[str]:
        return [
            c.get("message", "")
            for st in self.seen
            for c in st.get("conditions") or []
            if c.get("type") == "ReconcileError"
        ]


def test_a_write_cut_by_a_network_outage_is_retried_when_the_api_server_returns(
    crd: None, namespace: str, releases: Releases, proxy: tuple[Proxy, str], zero_downtime: Any
) -> None:
    """The operator's first write of a release (the candidate's Deployment, under a second
    after the new spec) is cut off with every connection, and the API server stays unreachable
    for 5 s. Once it is back, the write is retried within a second or so (it left no
    expectation behind: waiting for it held the release for the 15 s expectation timeout), the
    failure is reported in status and cleared, and the flip follows the candidate's readiness.
    The goal itself (the next decision within a second of the return) is not asserted: the
    bounds here only tell it from the 15 s wait."""
    cut, kubeconfig = proxy
    op = Operator(namespace, kubeconfig)
    op.start()
    try:
        manifest = release_manifest("web", "example/web:1")
        releases.apply(manifest)
        blue = releases.wait_phase("web", "Healthy", liveRevision=1)["liveHash"]
        watcher = zero_downtime("web")
        wait_for(lambda: watcher.max_ready == 3, 30, "the watcher sees 3 ready endpoints")
        time.sleep(1)  # the operator has seen its last writes' events: it sends nothing now

        cut.cut_at_next_request(OUTAGE)
        with Statuses(releases, "web") as statuses, Timeline(releases, blue) as timeline:
            applied = time.monotonic()
            releases.apply(with_image(manifest, "example/web:2"))
            st = releases.wait_phase("web", "Healthy", liveRevision=2, timeout=60)
            wait_for(lambda: timeline.available, 10, "the candidate Deployment available")
            wait_for(lambda: timeline.flipped, 10, "the live Service seen on the candidate")
        assert cut.cut_at is not None and cut.restored_at is not None, "the proxy was cut"
        assert timeline.created and timeline.available and timeline.flipped
        times = (
            f"cut {cut.cut_at - applied:.2f} s after the new spec, restored at "
            f"{cut.restored_at - applied:.2f}; the candidate created at "
            f"{timeline.created - applied:.2f}, available at {timeline.available - applied:.2f}"
            f", live at {timeline.flipped - applied:.2f}"
        )
        print(f"\n{times}")
        assert st["liveHash"] == timeline.candidate and watcher.flips == [timeline.candidate]
        assert timeline.created - cut.restored_at < 3, f"the cut write waited: {times}"
        flip = timeline.flipped - max(timeline.available, cut.restored_at)
        assert flip < 3, f"the flip waited: {times}"

        errors = statuses.reconcile_errors()
        assert errors and errors[0].startswith(f"create Deployment web-{timeline.candidate}"), (
            statuses.seen
        )
        assert not [c for c in st.get("conditions") or [] if c["type"] == "ReconcileError"]
        assert "ApplyFailed" in releases.events("web")
    finally:
        op.stop()
