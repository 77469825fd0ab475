"""A traffic probe: real HTTP requests from the host to a Service's ClusterIP, all the time.

Each request opens a new TCP connection (so every request goes through kube-proxy's rules as they
are at that moment, as a new client would) and asks GET /version. The probe records every
request: when it started, how long it took, which version answered, or why it failed. Requests
are sent open-loop at a fixed rate (a slow answer does not slow the probe down).

    with TrafficProbe("10.96.0.10", 80, rate=50) as probe:
        ...                          # release, flip, undo
        probe.wait_for_version("v2")
    assert probe.failures() == []

Runs its own asyncio loop in a thread, so synchronous tests can use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self


@dataclass(frozen=True)
class Result:
    started: float  # time.monotonic()
    seconds: float
    version: str | None  # the body of a 200 answer
    error: str | None  # connection error, timeout, or "HTTP 500 ..."

    @property
    def ok(self) -> bool:
        return self.error is None


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


class TrafficProbe:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        path: str = "/version",
        rate: float = 50.0,
        timeout: float = 3.0,
        max_in_flight: int = 200,
    ) -> None:
        self.host, self.port, self.path = host, port, path
        self.rate, self.timeout, self.max_in_flight = rate, timeout, max_in_flight
        self.results: list[Result] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="traffic-probe")
        self._on_result: list[Callable[[Result], None]] = []

    # -- lifecycle --
    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 5)

    def on_result(self, fn: Callable[[Result], None]) -> None:
        """Call fn(result) for every finished request (from the probe's thread)."""
        self._on_result.append(fn)

    # -- what was seen --
    def snapshot(self, since: float = 0.0) -> list[Result]:
        with self._lock:
            return [r for r in self.results if r.started >= since]

    def failures(self, since: float = 0.0) -> list[Result]:
        return [r for r in self.snapshot(since) if not r.ok]

    def versions(self, since: float = 0.0) -> dict[str, int]:
        seen: dict[str, int] = {}
        for r in self.snapshot(since):
            if r.version is not None:
                seen[r.version] = seen.get(r.version, 0) + 1
        return seen

    def latencies(self, since: float = 0.0, until: float = float("inf")) -> list[float]:
        return [r.seconds for r in self.snapshot(since) if r.ok and r.started < until]

    def wait_for(
        self, predicate: Callable[[list[Result]], bool], timeout: float, what: str
    ) -> None:
        """Wait until predicate(all results so far) holds, re-checked as each answer arrives."""
        changed = threading.Condition()

        def notify(_: Result) -> None:
            with changed:
                changed.notify_all()

        self.on_result(notify)
        deadline = time.monotonic() + timeout
        try:
            with changed:
                while not predicate(self.snapshot()):
                    left = deadline - time.monotonic()
                    if left <= 0 or self._stop.is_set():
                        raise TimeoutError(f"traffic probe: timed out after {timeout}s: {what}")
                    changed.wait(min(left, 1.0))
        finally:
            self._on_result.remove(notify)

    def wait_until_served(self, timeout: float = 60) -> None:
        """Wait for the first good answer, then forget everything before it: a new Service is
        refused (no endpoints yet, to kube-proxy) until its rules are in place."""
        self.wait_for(lambda rs: any(r.ok for r in rs), timeout, "the Service to answer")
        with self._lock:
            first = next(r for r in self.results if r.ok)
            self.results = [r for r in self.results if r.started >= first.started + first.seconds]

    def wait_for_version(self, version: str, timeout: float = 60, since: float = 0.0) -> float:
        """Wait for an answer from `version` to a request started at or after `since`; returns
        the time that request completed."""
        found: list[float] = []

        def seen(results: list[Result]) -> bool:
            for r in results:
                if r.started >= since and r.version == version:
                    found.append(r.started + r.seconds)
                    return True
            return False

        self.wait_for(seen, timeout, f"an answer from {version}")
        return found[0]

    def wait_for_requests(self, count: int, since: float, timeout: float = 60) -> None:
        """Wait until `count` requests started at or after `since` have finished."""

        def enough(results: list[Result]) -> bool:
            return sum(1 for r in results if r.started >= since) >= count

        self.wait_for(enough, timeout, f"{count} requests after t={since:.1f}")

    def summary(self, since: float = 0.0) -> str:
        rs = self.snapshot(since)
        lat = [r.seconds for r in rs if r.ok]
        return (
            f"{len(rs)} requests, {sum(not r.ok for r in rs)} failed,"
            f" versions {self.versions(since)}"
            f", p50 {percentile(lat, 50) * 1000:.1f} ms, p99 {percentile(lat, 99) * 1000:.1f} ms"
        )

    # -- the loop --
    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        interval = 1.0 / self.rate
        in_flight: set[asyncio.Task[None]] = set()
        next_at = time.monotonic()
        while not self._stop.is_set():
            if len(in_flight) < self.max_in_flight:
                task = asyncio.create_task(self._one())
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        if in_flight:
            await asyncio.wait(in_flight, timeout=self.timeout + 1)

    async def _one(self) -> None:
        started = time.monotonic()
        version: str | None = None
        error: str | None = None
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(self.host, self.port)
                request = f"GET {self.path} HTTP/1.0\r\nHost: {self.host}\r\n\r\n"
                writer.write(request.encode())
                await writer.drain()
                raw = await reader.read()
            head, _, body = raw.partition(b"\r\n\r\n")
            status = head.split(b"\r\n", 1)[0].decode(errors="replace")
            if " 200 " in f"{status} ":
                version = body.decode(errors="replace").strip()
            else:
                error = f"{status or 'empty answer'}: {body[:80].decode(errors='replace')}"
        except TimeoutError:
            error = f"timeout after {self.timeout}s"
        except OSError as e:
            error = f"{type(e).__name__}: {e}"
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        result = Result(started, time.monotonic() - started, version, error)
        with self._lock:
            self.results.append(result)
        for fn in list(self._on_result):
            fn(result)


class KeepAliveProbe(TrafficProbe):
    """Like TrafficProbe, but as a pooled client sends them: `connections` persistent HTTP/1.1
    connections, each sending its share of `rate` requests one after another on the same
    connection (reopened only after an error, recorded as a failure, or a `Connection: close`).
    `rate=0`: each connection sends its next request as soon as the answer is in (back to back).
    `headers` go with every request (a Host for a route's hostname, x-canary for a preview).
    Results, failures(), versions(), wait_for_version() and summary() as TrafficProbe's.

        with KeepAliveProbe("127.0.0.1", 18480, headers={"Host": "web.local.test"}) as probe:
            ...
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connections: int = 4,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(host, port, **kw)
        self.connections = connections
        given = headers or {}
        self.headers = {
            **({} if any(k.lower() == "host" for k in given) else {"Host": host}),
            **given,
        }
        self.opened = 0
        """Connections opened so far (a pooled client opens few: `connections`, plus one per
        error)."""

    async def _main(self) -> None:
        await asyncio.gather(*(self._connection(i) for i in range(self.connections)))

    async def _connection(self, i: int) -> None:
        interval = self.connections / self.rate if self.rate > 0 else 0.0
        next_at = time.monotonic() + i * interval / self.connections
        head = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
        request = f"GET {self.path} HTTP/1.1\r\n{head}\r\n".encode()
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while not self._stop.is_set():
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at = max(next_at + interval, time.monotonic())
            started = time.monotonic()
            version: str | None = None
            error: str | None = None
            close = False
            try:
                async with asyncio.timeout(self.timeout):
                    if writer is None:
                        reader, writer = await asyncio.open_connection(self.host, self.port)
                        self.opened += 1
                    assert reader is not None
                    writer.write(request)
                    await writer.drain()
                    raw = await reader.readuntil(b"\r\n\r\n")
                    lines = raw.decode(errors="replace").split("\r\n")
                    fields = {
                        k.strip().lower(): v.strip()
                        for k, _, v in (line.partition(":") for line in lines[1:] if line)
                    }
                    body = await _read_body(reader, fields)
                    close = fields.get("connection", "").lower() == "close"
                if " 200 " in f"{lines[0]} ":
                    version = body.decode(errors="replace").strip()
                else:
                    error = f"{lines[0]}: {body[:80].decode(errors='replace')}"
            except TimeoutError:
                error, close = f"timeout after {self.timeout}s", True
            except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                error, close = f"{type(e).__name__}: {e}", True
            if close and writer is not None:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                reader = writer = None
            result = Result(started, time.monotonic() - started, version, error)
            with self._lock:
                self.results.append(result)
            for fn in list(self._on_result):
                fn(result)
        if writer is not None:
            writer.close()


async def _read_body(reader: asyncio.StreamReader, fields: dict[str, str]) -> bytes:
    """An HTTP/1.1 answer's body: Content-Length bytes, or chunked (then its trailers)."""
    if "chunked" not in fields.get("transfer-encoding", "").lower():
        return await reader.readexactly(int(fields.get("content-length", "0")))
    body = b""
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16):
        body += await reader.readexactly(size)
        await reader.readexactly(2)  # the chunk's CRLF
    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the last CRLF
        pass
    return body


def main() -> None:
    """`python -m tests.e2e.traffic HOST PORT [RATE] [--keep-alive] [--header K:V]... [--label L]`:
    the demos' live request loop, one line a second (which versions answered, failures so far)
    until interrupted. --keep-alive: 4 persistent connections, as a pooled client."""
    import argparse
    import signal

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # the demo stops it with kill
    cli = argparse.ArgumentParser(prog="python -m tests.e2e.traffic")
    cli.add_argument("host")
    cli.add_argument("port", type=int)
    cli.add_argument("rate", type=float, nargs="?", default=20.0)
    cli.add_argument("--keep-alive", action="store_true")
    cli.add_argument("--header", action="append", default=[], help="K:V, sent with each request")
    cli.add_argument("--label", default="", help="what the lines say this loop is")
    args = cli.parse_args()
    headers = dict(h.split(":", 1) for h in args.header)
    probe: TrafficProbe
    if args.keep_alive:
        probe = KeepAliveProbe(args.host, args.port, rate=args.rate, headers=headers)
    else:
        probe = TrafficProbe(args.host, args.port, rate=args.rate)
    probe.__enter__()
    label = args.label or f"GET http://{args.host}:{args.port}/version"
    shown = 0.0
    try:
        while True:
            time.sleep(1)
            now = time.monotonic()
            second = [r for r in probe.snapshot(shown) if r.started < now]
            shown = now
            answers = " ".join(f"{v} x{n}" for v, n in sorted(_count(second).items()))
            failed = len(probe.failures())
            print(
                f"{time.strftime('%H:%M:%S')}  {label} -> {answers or '-':<16}"
                f" failed so far: {failed}",
                flush=True,
            )
    except KeyboardInterrupt:
        pass
    finally:
        probe.stop()
        print(f"traffic ({label}): {probe.summary()}", flush=True)


def _count(results: list[Result]) -> dict[str, int]:
    seen: dict[str, int] = {}
    for r in results:
        key = r.version if r.ok and r.version is not None else "FAILED"
        seen[key] = seen.get(key, 0) + 1
    return seen


if __name__ == "__main__":
    main()
