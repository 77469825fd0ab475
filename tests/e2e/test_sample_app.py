"""The sample app (hack/images/sample-app) as a host process, no cluster: what the e2e tests of pod
roles rely on. Its worker mode consumes a real Redis list (hack/redis) only while its role file
says live, and two workers hand the queue over without losing or repeating a message; its
draining switch ends keep-alive and closes its WebSockets with 1001.

The role file is written as the kubelet writes a Downward API labels file (`key="value"` lines)
and replaced by an atomic rename, as the kubelet's symlink swap replaces it.
"""

from __future__ import annotations

import asyncio
import collections
import http.client
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e import sample_app
from tests.e2e.helpers import wait_for
from tests.e2e.queue import Redis
from tests.e2e.sample_app import build_sample_app


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample app, built with hack/realnode's flags (so its build cache serves this one)."""
    return build_sample_app(tmp_path_factory.mktemp("sample-app"))


class App(sample_app.App):
    """A sample app with a Downward API role file (ROLE_FILE) it reads its role from."""

    def __init__(
        self, binary: Path, workdir: Path, name: str, version: str, role: str, env: dict[str, str]
    ) -> None:
        self.role_file = workdir / f"{name}.labels"
        self.set_role(role)
        super().__init__(
            binary, workdir, name, {"APP_VERSION": version, "ROLE_FILE": str(self.role_file), **env}
        )

    def set_role(self, role: str) -> None:
        """The pod's labels as the kubelet writes them (sorted), swapped in atomically."""
        labels = f'app="worker"\ngreenlight.dev/role="{role}"\npod-template-hash="7c9f8d6b5"'
        tmp = self.role_file.with_name(self.role_file.name + ".tmp")
        tmp.write_text(labels)
        os.replace(tmp, self.role_file)

    def switch(self, role: str) -> None:
        """set_role, then wait until the app answers it (it polls its file every 200 ms, and
        answers a new role once its effects are in place)."""
        self.set_role(role)
        wait_for(lambda: self.get("/role") == role, timeout=5, what=f"{self.name}: /role {role}")

    def consumed(self) -> int:
        return int(self.get("/consumed"))


@pytest.fixture
def start_app(binary: Path, tmp_path: Path) -> Iterator[Callable[..., App]]:
    """start_app(name, version, role, **env): a ready App; every one is stopped after the test."""
    started: list[App] = []

    def start(name: str, version: str, role: str, **env: str) -> App:
        app = App(binary, tmp_path, name, version, role, env)
        started.append(app)
        app.wait_ready()
        return app

    yield start
    for app in started:
        app.stop()


class Pusher:
    """Pushes s000, s001, ... to a queue from a thread, about every 5 ms, until `finish()` and
    then `tail` more. `pushed` lists each message before it is pushed: a message at an index
    >= len(pushed) read at some moment was pushed after that moment."""

    def __init__(self, redis: Redis, queue: str, tail: int = 30) -> None:
        self.pushed: list[str] = []
        self._finish = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(redis, queue, tail), daemon=True)
        self._thread.start()

    def _run(self, redis: Redis, queue: str, tail: int) -> None:
        stop_at = 2000  # bounded: about 10 s
        while len(self.pushed) < stop_at:
            if self._finish.is_set():
                stop_at = min(stop_at, len(self.pushed) + tail)
                if len(self.pushed) >= stop_at:
                    break
            message = f"s{len(self.pushed):03}"
            self.pushed.append(message)
            redis.client.rpush(queue, message)
            time.sleep(0.005)

    def finish(self) -> list[str]:
        self._finish.set()
        self._thread.join(timeout=20)
        assert not self._thread.is_alive()
        return self.pushed


def test_workers_consume_only_while_live_and_hand_over_exactly_once(
    redis: Redis, start_app: Callable[..., App]
) -> None:
    queue = redis.new_queue()
    env = {"WORKER_QUEUE": queue, "REDIS_ADDR": redis.local_addr}
    a = start_app("worker-a", "v1", "candidate", **env)
    b = start_app("worker-b", "v2", "candidate", **env)
    first = [f"m{i:02}" for i in range(10)]
    redis.client.rpush(queue, *first)

    # candidates pop nothing (held 0.5 s: their role files were read 2+ times meanwhile)
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        assert redis.client.llen(queue) == 10, redis.done(queue)
        time.sleep(0.05)

    a.switch("live")  # a consumes all; b, a candidate, none
    wait_for(lambda: len(redis.done(queue)) == 10, timeout=5, what="10 messages consumed")
    done = redis.done(queue)
    assert [d.message for d in done] == first
    assert {(d.version, d.pod, d.role) for d in done} == {("v1", "worker-a", "live")}
    assert (a.consumed(), b.consumed()) == (10, 0)
    assert "role candidate -> live" in a.log_text()

    # under a steady stream, b goes live, then a draining: each message consumed exactly once
    pusher = Pusher(redis, queue)
    wait_for(lambda: len(pusher.pushed) >= 30, timeout=5, what="30 messages pushed")
    b.switch("live")
    a.switch("draining")
    mark = len(pusher.pushed)  # from here on, pushed after a said it is draining
    stream = pusher.finish()
    total = len(first) + len(stream)
    wait_for(
        lambda: len(redis.done(queue)) == total and redis.client.llen(queue) == 0,
        timeout=10,
        what=f"all {total} messages consumed",
    )
    done = redis.done(queue)
    counts = collections.Counter(d.message for d in done)
    assert sorted(counts) == sorted(first + stream), "lost or unknown messages"
    assert [m for m, n in counts.items() if n > 1] == [], "consumed twice"
    assert {(d.version, d.role) for d in done if d.pod == "worker-b"} == {("v2", "live")}
    by_a = [d for d in done[len(first) :] if d.pod == "worker-a"]
    assert {d.role for d in by_a} <= {"live", "draining"}
    # after a answered "draining" it pops no more; the one pop it had in flight then (<= 0.2 s)
    # may still bring a message, recorded as consumed while draining
    late = [d for d in by_a if stream.index(d.message) >= mark]
    assert len(late) <= 1 and all(d.role == "draining" for d in late), late
    assert sum(d.role == "draining" for d in by_a) <= 1, by_a
    assert a.consumed() + b.consumed() == total
    assert "role live -> draining" in a.log_text()

    # SIGTERM while b consumes a stream: the message in hand is recorded, none is lost
    redis.client.delete(f"{queue}:done")
    pusher = Pusher(redis, queue, tail=0)
    wait_for(lambda: len(redis.done(queue)) >= 20, timeout=5, what="b consuming the stream")
    assert b.stop() == 0, b.log_text()
    stream = pusher.finish()
    done_after = [d.message for d in redis.done(queue)]
    left = redis.client.lrange(queue, 0, -1)
    assert sorted(done_after + left) == sorted(stream), "lost or repeated at SIGTERM"
    assert "worker: stopped after" in b.log_text()


def _request(sock: socket.socket, path: str = "/version") -> http.client.HTTPResponse:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: app\r\n\r\n".encode())
    return _response(sock)


def _response(sock: socket.socket) -> http.client.HTTPResponse:
    response = http.client.HTTPResponse(sock)
    response.begin()
    response.read()
    return response


def _closed(sock: socket.socket) -> bool:
    """The server closed this idle connection (EOF), without consuming anything."""
    timeout = sock.gettimeout()
    sock.settimeout(0)  # a peek that does not wait
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.settimeout(timeout)


def test_draining_ends_keep_alive(start_app: Callable[..., App]) -> None:
    app = start_app("web", "v1", "live", DRAIN_ON_DRAINING="true")
    connect = lambda: socket.create_connection(("127.0.0.1", app.port), timeout=5)  # noqa: E731
    with connect() as idle, connect() as pending, connect() as fresh, connect() as again:
        first = _request(idle)
        assert (first.status, first.getheader("Connection"), first.will_close) == (200, None, False)
        pending.sendall(b"GET /version HTTP/1.1\r\nHost: app\r\n")  # a request on its way

        app.switch("draining")
        wait_for(lambda: "draining: keep-alive off" in app.log_text(), 5, "the switch seen")
        assert not _closed(idle), "an idle connection is not cut (a request may be on its way)"
        last = _request(idle)
        assert (last.status, last.getheader("Connection")) == (200, "close")
        wait_for(lambda: _closed(idle), timeout=5, what="the idle one closed after its answer")
        pending.sendall(b"\r\n")
        late = _response(pending)
        assert (late.status, late.getheader("Connection")) == (200, "close")
        wait_for(lambda: _closed(pending), timeout=5, what="the connection closed after it")
        new = _request(fresh)
        assert (new.status, new.getheader("Connection")) == (200, "close")

        app.switch("live")
        for _ in range(2):  # keep-alive again: two requests on one connection
            response = _request(again)
            assert (response.status, response.getheader("Connection")) == (200, None)
        assert not _closed(again)
    assert "draining: keep-alive off" in app.log_text()


async def test_websocket_echoes_and_is_closed_with_1001_when_draining(
    start_app: Callable[..., App],
) -> None:
    app = start_app("ws", "v2", "live", DRAIN_ON_DRAINING="true")
    url = app.url("/ws/", scheme="ws")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as ws:
            await ws.send_str("hello there")
            echo = await ws.receive(timeout=5)
            assert (echo.type, echo.data) == (aiohttp.WSMsgType.TEXT, "v2 hello there")

            await asyncio.to_thread(app.switch, "draining")
            closing = await ws.receive(timeout=5)
            assert (closing.type, closing.data, closing.extra) == (
                aiohttp.WSMsgType.CLOSE,
                1001,
                "draining",
            )
            assert ws.closed and ws.close_code == 1001

        async with session.ws_connect(url) as ws:  # a new one while draining: closed at once
            closing = await ws.receive(timeout=5)
            assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1001)

        await asyncio.to_thread(app.switch, "live")
        async with session.ws_connect(url) as ws:
            await ws.send_str("back")
            assert (await ws.receive(timeout=5)).data == "v2 back"
