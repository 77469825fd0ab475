"""A route flip vs a selector flip, as keep-alive clients see it; and a canary step's time.

On the local cluster with the real node and the test bed's Traefik (`hack/gateway up`), the
operator as a subprocess, and two Releases of the sample app on the real node at their defaults
(blue-green, scaleDownDelaySeconds 30): `gw` behind the Gateway (spec.traffic), `sel` moved by
its Service's selector. Clients keep 4 HTTP/1.1 connections open to each (to Traefik on
127.0.0.1, and to `sel`'s ClusterIP through kube-proxy) and send requests back to back.

Per flip: from the candidate fully available (an outside watch of its Deployment) to the first
request after which every request is answered by the new version. Then, for `can` (rolling
steps 10% -> 50% behind the Gateway): from the operator's route write (an outside watch of the
HTTPRoute) to the data plane applying the new weights (Traefik's API, polled every 10 ms).

    hack/cluster up && hack/gateway up && eval "$(hack/cluster env)"
    .venv/bin/python bench/gateway.py --flips 20 --selector-flips 5
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import threading
import time
import urllib.request
from typing import Any

from kubernetes import client, config, watch

from common import ROOT, Operator, fresh_namespace, kubectl, percentile, settled

NS = "bench-gateway"
LABEL_RELEASE, LABEL_HASH = "greenlight.dev/release", "greenlight.dev/template-hash"
GATEWAY = {"name": "greenlight", "namespace": "greenlight-gateway"}
TRAEFIK, TRAEFIK_API = ("127.0.0.1", 18480), "http://127.0.0.1:18481"
PLACEMENT = {
    "nodeSelector": {"greenlight.dev/real-node": "true"},
    "tolerations": [
        {"key": "greenlight.dev/real-node", "operator": "Exists", "effect": "NoSchedule"}
    ],
}


def release(
    name: str, version: str, gateway: bool, rolling: list[Any] | None = None
) -> dict[str, Any]:
    container = {
        "name": "app",
        "image": "local.test/sample-app:v1",
        "imagePullPolicy": "Never",
        "env": [
            {"name": "APP_VERSION", "value": version},
            {"name": "SHUTDOWN_DELAY", "value": "2s"},
        ],
    }
    spec: dict[str, Any] = {
        "replicas": 2,
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {**PLACEMENT, "terminationGracePeriodSeconds": 10, "containers": [container]},
        },
        "healthCheck": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1},
        "service": {"name": name, "ports": [{"port": 80, "targetPort": 8080}]},
        "strategy": {"rolling": {"steps": rolling}} if rolling else {"blueGreen": {}},
    }
    if gateway:
        spec["traffic"] = {
            "gatewayAPI": {"parentRefs": [GATEWAY], "hostnames": [f"{name}.bench.test"]}
        }
    return {
        "apiVersion": "greenlight.dev/v1alpha1",
        "kind": "Release",
        "metadata": {"name": name},
        "spec": spec,
    }


class Clients:
    """`n` keep-alive connections sending GET /version back to back: (start, version) each."""

    def __init__(self, host: str, port: int, host_header: str, n: int = 4) -> None:
        self.answers: list[tuple[float, str | None]] = []
        self.failed = 0
        self.last_error = ""
        self.errors: dict[str, int] = {}
        """Each failure's kind (status and body, or the exception), counted."""
        self.stop = threading.Event()
        self.lock = threading.Lock()
        for _ in range(n):
            threading.Thread(target=self._run, args=(host, port, host_header), daemon=True).start()

    def _run(self, host: str, port: int, host_header: str) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=3)
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                conn.request("GET", "/version", headers={"Host": host_header})
                response = conn.getresponse()
                body = response.read().decode().strip()
                answer = body if response.status == 200 else None
                if answer is None:
                    self.last_error = f"HTTP {response.status}: {body[:80]}"
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                answer = None
                self.last_error = repr(e)
            with self.lock:
                self.answers.append((started, answer))
                self.failed += answer is None
                if answer is None:
                    self.errors[self.last_error] = self.errors.get(self.last_error, 0) + 1
            time.sleep(0.005)

    def all_new_from(self, version: str, since: float, until: float) -> float | None:
        """The start of the first request after `since` from which every request up to `until`
        was answered by `version` (None: not yet)."""
        with self.lock:
            window = [(t, v) for t, v in self.answers if since <= t <= until]
        switch = None
        for t, v in window:
            switch = (switch if switch is not None else t) if v == version else None
        return switch


class Ready:
    """When each revision's Deployment became fully available (an outside watch)."""

    def __init__(self, apps: client.AppsV1Api) -> None:
        self.at: dict[str, float] = {}
        threading.Thread(target=self._run, args=(apps,), daemon=True).start()

    def _run(self, apps: client.AppsV1Api) -> None:
        while True:
            for ev in watch.Watch().stream(apps.list_namespaced_deployment, NS, timeout_seconds=30):
                d = ev["object"]
                h = d.metadata.labels.get(LABEL_HASH)
                if h and settled(d) and (d.spec.replicas or 0) > 0 and h not in self.at:
                    self.at[h] = time.perf_counter()


class Stages:
    """Per backend Service (a revision's, named like its Deployment), from outside watches:
    when its EndpointSlices first listed `pods` ready endpoints, and when the HTTPRoute first
    gave it weight 100 on the live rule (the flip's route write)."""

    def __init__(self, pods: int) -> None:
        self.pods, self.listed, self.routed = pods, {}, {}  # type: ignore[var-annotated]
        self.ready: dict[str, dict[str, int]] = {}
        self.breakdown: list[tuple[float, float, float]] = []
        threading.Thread(target=self._slices, daemon=True).start()
        threading.Thread(target=self._routes, daemon=True).start()

    def _slices(self) -> None:
        discovery = client.DiscoveryV1Api()
        while True:
            for ev in watch.Watch().stream(
                discovery.list_namespaced_endpoint_slice, NS, timeout_seconds=30
            ):
                s = ev["object"]
                svc = (s.metadata.labels or {}).get("kubernetes.io/service-name")
                ready = sum(
                    1 for e in s.endpoints or [] if e.conditions is None or e.conditions.ready
                )
                per = self.ready.setdefault(svc, {})
                per[s.metadata.name] = 0 if ev["type"] == "DELETED" else ready
                if sum(per.values()) >= self.pods and svc not in self.listed:
                    self.listed[svc] = time.perf_counter()

    def _routes(self) -> None:
        custom = client.CustomObjectsApi()
        while True:
            for ev in watch.Watch().stream(
                custom.list_namespaced_custom_object,
                "gateway.networking.k8s.io", "v1", NS, "httproutes", timeout_seconds=30,
            ):  # fmt: skip
                for rule in ev["object"]["spec"].get("rules") or []:
                    for b in rule.get("backendRefs") or [] if rule.get("name") == "live" else []:
                        if b.get("weight") == 100 and b["name"] not in self.routed:
                            self.routed[b["name"]] = time.perf_counter()


def wait(predicate: Any, what: str, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := predicate():
            return found
        time.sleep(0.02)
    raise TimeoutError(what)


def flips(
    custom: Any,
    name: str,
    clients: Clients,
    ready: Ready,
    count: int,
    gateway: bool,
    stages: Stages | None = None,
) -> list[float]:
    times = []
    for i in range(count):
        took, h = _flip(custom, name, clients, ready, f"{name}-{i + 2}", i + 2, gateway)
        times.append(took)
        line = f"  {name} flip {i + 1}: {took * 1000:.0f} ms"
        backend = f"{name}-{h}"
        if stages is not None and backend in stages.listed and backend in stages.routed:
            listed, routed = stages.listed[backend], stages.routed[backend]
            line += (
                f" (available -> endpoints listed {(listed - ready.at[h]) * 1000:.0f} ms"
                f" -> route written {(routed - listed) * 1000:.0f} ms"
                f" -> every answer new {(ready.at[h] + took - routed) * 1000:.0f} ms)"
            )
            stages.breakdown.append(
                (listed - ready.at[h], routed - listed, ready.at[h] + took - routed)
            )
        print(line, flush=True)
        time.sleep(1)
    return times


def _flip(
    custom: Any, name: str, clients: Clients, ready: Ready, version: str, revision: int, gw: bool
) -> tuple[float, str]:
    """Release `version` as revision `revision`: its candidate available -> all requests on it
    (and its template hash)."""
    since = time.perf_counter()
    template = release(name, version, gw)["spec"]["template"]
    custom.patch_namespaced_custom_object(
        "greenlight.dev", "v1alpha1", NS, "releases", name, {"spec": {"template": template}}
    )

    def live() -> str | None:
        st = _status(custom, name)
        healthy = st.get("phase") == "Healthy" and st.get("liveRevision", 0) >= revision
        return st.get("liveHash") if healthy else None

    h = wait(live, f"{name} live on {version}")
    try:
        done = wait(
            lambda: clients.all_new_from(version, since, time.perf_counter() - 1.0),
            f"every request to {name} answered by {version}",
            timeout=120,
        )
    except TimeoutError:
        with clients.lock:
            print("last answers:", clients.answers[-3:], clients.failed, clients.last_error)
        raise
    return float(done - ready.at[h]), h


def applied_weights(route_ns: str, route: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{TRAEFIK_API}/api/http/services", timeout=2) as r:
        services = json.load(r)
    out: dict[str, int] = {}
    for s in services:
        if "weighted" in s and f"{route_ns}-{route}" in s["name"]:
            for b in s["weighted"].get("services") or []:
                out[b["name"]] = b.get("weight", 1)
    return out


def canary_steps(custom: Any, steps: int) -> list[float]:
    """Route write (watched) -> Traefik's data plane shows new weights, for each step change."""
    rolling = [
        {"setWeight": 10},
        {"pause": {"duration": "3s"}},
        {"setWeight": 50},
        {"pause": {"duration": "3s"}},
    ]
    custom.create_namespaced_custom_object(
        "greenlight.dev", "v1alpha1", NS, "releases", release("can", "c1", True, rolling)
    )
    wait(lambda: _phase(custom, "can") == "Healthy", "can live")
    times: list[float] = []
    for i in range(steps):
        before = applied_weights(NS, "can")
        writes: list[float] = []
        stop = threading.Event()
        threading.Thread(target=_follow_route, args=(writes, stop), daemon=True).start()
        time.sleep(0.5)
        body = release("can", f"c{i + 2}", True, rolling)
        custom.patch_namespaced_custom_object(
            "greenlight.dev",
            "v1alpha1",
            NS,
            "releases",
            "can",
            {"spec": {"template": body["spec"]["template"]}},
        )
        seen = before
        for _ in range(6000):  # each change of the applied weights, until the release ends
            now = applied_weights(NS, "can")
            if now != seen:
                t = time.perf_counter()
                last = max((w for w in writes if w <= t), default=None)
                if last is not None:
                    times.append(t - last)
                seen = now
            if _phase(custom, "can") == "Healthy" and len(writes) >= 3:
                break
            time.sleep(0.01)
        stop.set()
    return times


def _follow_route(writes: list[float], stop: threading.Event) -> None:
    """Stamp each write of the HTTPRoutes in the namespace."""
    for ev in watch.Watch().stream(
        client.CustomObjectsApi().list_namespaced_custom_object,
        "gateway.networking.k8s.io", "v1", NS, "httproutes", timeout_seconds=60,
    ):  # fmt: skip
        if ev["type"] == "MODIFIED":
            writes.append(time.perf_counter())
        if stop.is_set():
            return


def _status(custom: Any, name: str) -> dict[str, Any]:
    body = custom.get_namespaced_custom_object("greenlight.dev", "v1alpha1", NS, "releases", name)
    return dict(body.get("status") or {})


def _phase(custom: Any, name: str) -> str | None:
    return _status(custom, name).get("phase")


def main() -> None:
    cli = argparse.ArgumentParser()
    cli.add_argument("--flips", type=int, default=20)
    cli.add_argument(
        "--selector-flips", type=int, default=5, help="each waits for scale-down (30 s)"
    )
    cli.add_argument("--canary-releases", type=int, default=3)
    args = cli.parse_args()
    subprocess.run([str(ROOT / "hack" / "gateway"), "up"], check=True)
    config.load_kube_config()
    fresh_namespace(NS)
    custom, core = client.CustomObjectsApi(), client.CoreV1Api()
    ready = Ready(client.AppsV1Api())
    operator = Operator(NS)
    try:
        for name, gw in (("gw", True), ("sel", False)):
            custom.create_namespaced_custom_object(
                "greenlight.dev", "v1alpha1", NS, "releases", release(name, f"{name}-1", gw)
            )
        for name in ("gw", "sel"):
            wait(lambda n=name: _phase(custom, n) == "Healthy", f"{name} Healthy")
        ip = core.read_namespaced_service("sel", NS).spec.cluster_ip
        gw_clients = Clients(*TRAEFIK, "gw.bench.test")
        wait(
            lambda: gw_clients.all_new_from("gw-1", time.perf_counter() - 2, time.perf_counter()),
            "gw served",
        )
        stages = Stages(2)
        route = flips(custom, "gw", gw_clients, ready, args.flips, True, stages)
        gw_clients.stop.set()
        sel_clients = Clients(ip, 80, "sel")
        selector = flips(custom, "sel", sel_clients, ready, args.selector_flips, False)
        sel_clients.stop.set()
        steps = canary_steps(custom, args.canary_releases)
        for what, xs in (
            ("route flip", route),
            ("selector flip", selector),
            ("canary step applied", steps),
        ):
            print(
                f"{what}: n={len(xs)} p50 {percentile(xs, 50) * 1000:.0f} ms"
                f" p99 {percentile(xs, 99) * 1000:.0f} ms"
            )
        for i, stage in enumerate(
            ("available -> endpoints listed", "-> route written", "-> every answer new")
        ):
            xs = [b[i] for b in stages.breakdown]
            print(
                f"  route flip, {stage}: p50 {percentile(xs, 50) * 1000:.0f} ms"
                f" p99 {percentile(xs, 99) * 1000:.0f} ms"
            )
        print(f"failed requests: gateway {gw_clients.failed}, selector {sel_clients.failed}")
        for side, c in (("gateway", gw_clients), ("selector", sel_clients)):
            for error, n in sorted(c.errors.items(), key=lambda e: -e[1]):
                print(f"  {side}: {n} x {error}")
    finally:
        operator.stop()
        kubectl("delete", "namespace", NS, "--wait=false")


if __name__ == "__main__":
    main()
