"""Real servers for the e2e tests of promotion gates: HTTP, metrics, Prometheus.

- `http_server` (per test): an HTTP server on 127.0.0.1 that the test drives path by path (status,
  JSON or raw body, headers, delay) and that records every request (for webhook checks).
- `metrics_target` (session): a Prometheus text-format endpoint on 127.0.0.1 whose gauges and
  counters the test sets, exposed by prometheus-client's own registry and exposition.
- `prometheus` (session): the real Prometheus of hack/prometheus (built on first use), scraping
  `metrics_target` every second; `wait_value` tells a test when Prometheus has seen a new value.
  It also scrapes the targets of a file the test writes (`set_targets`, job `pods`), each with
  its labels (`pod_targets`: a Release's Ready pods, with their template hash and role).

Nothing here sleeps and hopes: waits poll the real server until it answers what is expected.
"""

from __future__ import annotations

import ctypes
import json as jsonlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric

from greenlight.engine import naming
from tests.e2e.helpers import stop_process, wait_for

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_SCRIPT = ROOT / "hack" / "prometheus"
SCRAPE_JOB = "greenlight-e2e"
PODS_JOB = "pods"
APP_PORT = 8080  # the sample app's (hack/images/sample-app: PORT)

_NO_JSON = object()


# ── HTTP server ──────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Request:
    """One request the server received. Header names are lower-cased."""

    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when it arrived

    @property
    def json(self) -> Any:
        """The body parsed as JSON (raises ValueError when it is not JSON)."""
        return jsonlib.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


@dataclass(frozen=True)
class Response:
    """What a route answers. `json` (any JSON value) wins over `body` when given."""

    status: int = 200
    json: Any = _NO_JSON
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the answer (a slow backend)

    def encode(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if self.json is not _NO_JSON:
            data = jsonlib.dumps(self.json).encode()
            headers.setdefault("Content-Type", "application/json")
        else:
            data = self.body.encode() if isinstance(self.body, str) else self.body
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        return data, headers


Handler = Callable[[Request], Response]


class HttpServer:
    """A real HTTP server on 127.0.0.1 (ephemeral port) that a test drives per path.

    Any method on any path is answered by its route (an unknown path: 404) and recorded.
    Changing a route takes effect for the next request: `route("/hook", status=403)`, later
    `route("/hook", status=200)` is an approval that arrives late.
    """

    def __init__(self) -> None:
        self._routes: dict[str, Response | Handler] = {}
        self._requests: list[Request] = []
        self._lock = threading.Condition()
        self._closing = threading.Event()
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                outer._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the test reads `requests()` instead

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    # the test's side

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(
        self,
        path: str,
        status: int = 200,
        *,
        json: Any = _NO_JSON,
        body: bytes | str = b"",
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        handler: Handler | None = None,
    ) -> None:
        """Answer `path` (any method, any query string) with this from now on.

        `handler`, when given, is called with each `Request` and returns the `Response`
        (e.g. to answer by the request's body); the other arguments are then ignored.
        """
        answer: Response | Handler = handler or Response(
            status=status, json=json, body=body, headers=dict(headers or {}), delay=delay
        )
        with self._lock:
            self._routes[path] = answer

    def requests(self, path: str | None = None) -> list[Request]:
        """Every request received so far (on `path`, when given), oldest first."""
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    def wait_requests(self, path: str, count: int = 1, timeout: float = 30) -> list[Request]:
        """Block until `path` has received at least `count` requests; returns them."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                got = [r for r in self._requests if r.path == path]
                if len(got) >= count:
                    return got
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {count} requests on {path}; "
                        f"got {len(got)}; all paths seen: {[r.path for r in self._requests]}"
                    )
                self._lock.wait(remaining)

    def close(self) -> None:
        self._closing.set()  # cuts every delay short
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    # the server's side

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        parts = urllib.parse.urlsplit(h.path)
        req = Request(
            method=h.command,
            path=parts.path,
            query=urllib.parse.parse_qs(parts.query),
            headers={k.lower(): v for k, v in h.headers.items()},
            body=body,
            at=time.time(),
        )
        with self._lock:
            self._requests.append(req)
            answer = self._routes.get(req.path)
            self._lock.notify_all()
        if answer is None:
            resp = Response(status=404, body=f"no route for {req.path}")
        elif isinstance(answer, Response):
            resp = answer
        else:
            resp = answer(req)
        if resp.delay > 0 and self._closing.wait(resp.delay):
            return  # shutting down
        data, headers = resp.encode()
        try:
            h.send_response(resp.status)
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its own timeout): that is what a slow route is for


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    srv = HttpServer()
    try:
        yield srv
    finally:
        srv.close()


# ── metrics target ───────────────────────────────────────────────────────────────────────────


class MetricsTarget:
    """A Prometheus text-format endpoint (`/metrics` on 127.0.0.1) with values the test sets.

    The series live in a prometheus-client `CollectorRegistry` (one custom collector) and are
    exposed with prometheus-client's `generate_latest`. The target is shared by the session: give
    each test's series its own label values (e.g. `release=<namespace>`) so tests do not meet.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # name -> (kind, help, {sorted label items: value})
        self._families: dict[str, tuple[str, str, dict[tuple[tuple[str, str], ...], float]]] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)  # a collector: it has collect()
        registry = self.registry

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                data = generate_latest(registry)
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"  # what Prometheus scrapes
        self.url = f"http://{self.address}/metrics"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    def set(
        self,
        name: str,
        value: float,
        labels: dict[str, str] | None = None,
        *,
        kind: str = "gauge",
        help: str = "set by an e2e test",
    ) -> None:
        """Set one series of a gauge (or `kind="counter"`; its samples are `<name>_total`)."""
        if kind not in ("gauge", "counter"):
            raise ValueError(f"kind must be gauge or counter, not {kind!r}")
        family = name.removesuffix("_total") if kind == "counter" else name
        key = tuple(sorted((labels or {}).items()))
        with self._lock:
            known = self._families.get(family)
            if known is not None and known[0] != kind:
                raise ValueError(f"{family} is a {known[0]}, not a {kind}")
            series = known[2] if known else {}
            series[key] = float(value)
            self._families[family] = (kind, help, series)

    def inc(self, name: str, amount: float = 1, labels: dict[str, str] | None = None) -> float:
        """Add to a counter series (created at 0); returns its new value."""
        family = name.removesuffix("_total")
        key = tuple(sorted((labels or {}).items()))
        with self._lock:
            known = self._families.get(family)
            value = (known[2].get(key, 0.0) if known else 0.0) + amount
        self.set(family, value, labels, kind="counter")
        return value

    def remove(self, name: str, labels: dict[str, str] | None = None) -> None:
        """Stop exposing one series (or, without labels, the whole metric): a query gets no data."""
        family = name.removesuffix("_total")
        with self._lock:
            if family not in self._families:
                return
            if labels is None:
                del self._families[family]
            else:
                self._families[family][2].pop(tuple(sorted(labels.items())), None)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            snapshot = [(n, k, h, dict(s)) for n, (k, h, s) in self._families.items()]
        for name, kind, help, series in snapshot:
            metric = Metric(name, help, kind)
            sample = f"{name}_total" if kind == "counter" else name
            for key, value in series.items():
                metric.add_sample(sample, dict(key), value)
            yield metric

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@pytest.fixture(scope="session")
def metrics_target() -> Iterator[MetricsTarget]:
    target = MetricsTarget()
    try:
        yield target
    finally:
        target.close()


# ── Prometheus ───────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels and its (unix time, value) points, oldest first."""

    labels: dict[str, str]
    points: list[tuple[float, float]]

    @property
    def values(self) -> list[float]:
        return [v for _, v in self.points]


class PrometheusError(RuntimeError):
    pass


Target = tuple[str, dict[str, str]]
"""A scrape target: "host:port" and the labels Prometheus adds to every series scraped from it."""

_OWN_LABELS = {"__name__", "job", "instance"}


class Prometheus:
    """A real Prometheus (hack/prometheus) on 127.0.0.1, scraping every second.

    Two jobs: `target` ("host:port", job `greenlight-e2e`; none without it) and the targets of
    `pods.json` in `workdir` (job `pods`, file_sd_configs), which `set_targets` writes. Prometheus
    reads that file again at once (a file watch, and every second) and applies a change within
    about a second (`--scrape.discovery-reload-interval=1s`; its default is 5 s).
    """

    def __init__(self, binary: str, target: str | None, workdir: Path) -> None:
        self.binary, self.target, self.dir = binary, target, workdir
        self.job = SCRAPE_JOB
        self.pods_job = PODS_JOB
        self.config = workdir / "prometheus.yml"
        self.log = workdir / "prometheus.log"
        self.targets_file = workdir / "pods.json"
        self._targets: list[Target] = []
        self.set_targets([])
        jobs: list[dict[str, Any]] = []
        if target is not None:
            jobs.append({"job_name": self.job, "static_configs": [{"targets": [target]}]})
        jobs.append(
            {
                "job_name": self.pods_job,
                "file_sd_configs": [{"files": [str(self.targets_file)], "refresh_interval": "1s"}],
            }
        )
        self.config.write_text(
            yaml.safe_dump(
                {
                    "global": {
                        "scrape_interval": "1s",
                        "scrape_timeout": "1s",
                        "evaluation_interval": "1s",
                    },
                    "scrape_configs": jobs,
                }
            )
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.url = ""

    def start(self, timeout: float = 60) -> None:
        for _attempt in range(3):  # a free port can be taken between probing and binding it
            self.port = _free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            with self.log.open("ab") as log:
                self.proc = subprocess.Popen(
                    [
                        self.binary,
                        f"--config.file={self.config}",
                        f"--storage.tsdb.path={self.dir / 'data'}",
                        f"--web.listen-address=127.0.0.1:{self.port}",
                        "--storage.tsdb.retention.time=1d",
                        # a hidden flag: apply a change of targets within 1 s, not 5 s
                        "--scrape.discovery-reload-interval=1s",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    preexec_fn=_die_with_parent,
                )
            wait_for(self._ready_or_exited, timeout, f"Prometheus ready on {self.url}")
            if self.proc.poll() is None:
                break
        else:
            raise PrometheusError(f"Prometheus did not start; log:\n{self._log_tail()}")
        if self.target is not None:
            self.wait_value(f'up{{job="{self.job}"}}', lambda v: v == 1, timeout=timeout)

    def _ready_or_exited(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            return True  # exited (e.g. its port was taken): start() tries another port
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def set_targets(self, targets: Sequence[Target]) -> None:
        """Scrape these targets (job `pods`) from now on, each with its labels, e.g.
        `[("10.244.0.7:8080", {"pod": "web-5d8f-x", "hash": "5d8f", "role": "live"})]`.

        The file is replaced atomically (Prometheus never reads half of it); a target left out is
        no longer scraped and its series go stale. Call it again when labels change (a pod's role).
        """
        self._targets = [(address, dict(labels)) for address, labels in targets]
        groups = [{"targets": [address], "labels": labels} for address, labels in self._targets]
        tmp = self.targets_file.with_name(self.targets_file.name + ".tmp")
        tmp.write_text(jsonlib.dumps(groups, indent=1))
        os.replace(tmp, self.targets_file)

    def wait_targets_up(self, n: int, timeout: float = 30) -> None:
        """Wait until `count(up{job="pods"} == 1) == n`, every one of them a target of the last
        `set_targets` with its labels as given there (so after a change of labels, the old
        labels' series are gone: Prometheus scrapes with the new ones)."""
        expected = {address: labels for address, labels in self._targets}

        def check() -> bool:
            up = self.query(f'up{{job="{self.pods_job}"}} == 1')
            seen = {
                s.labels.get("instance", ""): {
                    k: v for k, v in s.labels.items() if k not in _OWN_LABELS
                }
                for s in up
            }
            assert len(up) == n, f"{len(up)} of the pods targets up, not {n}: {sorted(seen)}"
            stale = {i: ls for i, ls in seen.items() if expected.get(i) != ls}
            assert not stale, f"scraped with labels not (or no longer) set: {stale}"
            return True

        wait_for(check, timeout, f"Prometheus: {n} {self.pods_job} target(s) up")

    def query(self, promql: str) -> list[Sample]:
        """An instant query; a vector's samples, or a scalar as one sample without labels."""
        data = self._api("query", promql, {"query": promql})
        if data["resultType"] == "vector":
            return [Sample(s["metric"], float(s["value"][1])) for s in data["result"]]
        if data["resultType"] == "scalar":
            return [Sample({}, float(data["result"][1]))]
        raise PrometheusError(f"{promql}: a {data['resultType']}, not a vector or scalar")

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        """A range query (unix times, step in seconds): each series with its points; a step with
        no value is left out of its series (NaN, e.g. 0/0, is kept as NaN)."""
        params = {"query": promql, "start": str(start), "end": str(end), "step": str(step)}
        data = self._api("query_range", promql, params)
        if data["resultType"] != "matrix":
            raise PrometheusError(f"{promql}: a {data['resultType']}, not a matrix")
        return [
            Series(s["metric"], [(float(t), float(v)) for t, v in s["values"]])
            for s in data["result"]
        ]

    def _api(self, endpoint: str, promql: str, params: dict[str, str]) -> dict[str, Any]:
        qs = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{endpoint}?{qs}", timeout=10) as r:
                answer = jsonlib.load(r)
        except urllib.error.HTTPError as e:  # 400/422: bad PromQL; the body says why
            raise PrometheusError(f"{promql}: {e.code} {e.read().decode(errors='replace')}") from e
        data: dict[str, Any] = answer["data"]
        return data

    def value(self, promql: str) -> float | None:
        """The query's one value; None when it returns no data. More than one series: an error."""
        samples = self.query(promql)
        if len(samples) > 1:
            raise PrometheusError(f"{promql}: {len(samples)} series, expected one: {samples}")
        return samples[0].value if samples else None

    def wait_value(
        self, promql: str, predicate: Callable[[float], bool], timeout: float = 30
    ) -> float:
        """Poll until the query returns one value satisfying `predicate`; return it.

        Use it after changing `metrics_target`, so the test goes on only once Prometheus has
        scraped the new value (to wait for no data, query `absent(...)`).
        """

        def check() -> tuple[float]:
            v = self.value(promql)
            assert v is not None, f"{promql}: no data"
            assert predicate(v), f"{promql} = {v}"
            return (v,)

        return wait_for(check, timeout, f"Prometheus: {promql}")[0]

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=15)
        self.proc = None

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def pod_targets(core: Any, namespace: str, release: str, port: int = APP_PORT) -> list[Target]:
    """The Ready pods of a Release (a kubernetes CoreV1Api lists them), as `set_targets` takes
    them: "<pod IP>:<port>" with labels `pod` (its name), `hash` (its template hash) and `role`
    (its greenlight.dev/role label, "" without one). Roles change during a release: list again
    and `set_targets` again."""
    pods = core.list_namespaced_pod(
        namespace, label_selector=f"{naming.LABEL_RELEASE}={release}"
    ).items
    targets: list[Target] = []
    for pod in sorted(pods, key=lambda p: p.metadata.name):
        conditions = (pod.status and pod.status.conditions) or []
        ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
        if not ready or not pod.status.pod_ip:
            continue
        labels = pod.metadata.labels or {}
        targets.append(
            (
                f"{pod.status.pod_ip}:{port}",
                {
                    "pod": pod.metadata.name,
                    "hash": labels.get(naming.LABEL_HASH, ""),
                    "role": labels.get(naming.LABEL_ROLE, ""),
                },
            )
        )
    return targets


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when pytest dies, even by SIGKILL (no daemon is left)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prometheus_binary() -> str:
    """hack/prometheus: builds Prometheus on first use (minutes), then prints its path at once."""
    out = subprocess.run(
        [str(PROMETHEUS_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True, timeout=1800
    )
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def prometheus(metrics_target: MetricsTarget) -> Iterator[Prometheus]:
    workdir = Path(tempfile.mkdtemp(prefix="greenlight-prometheus-"))
    prom = Prometheus(prometheus_binary(), metrics_target.address, workdir)
    try:
        prom.start()
        yield prom
    finally:
        prom.stop()
        shutil.rmtree(workdir, ignore_errors=True)
