"""Flip latency: from "candidate fully available" to "live Service selector changed".

Both instants are seen by watches in this process (outside the operator), on a real cluster.
The operator runs as a subprocess so its peak RSS (VmHWM) can be read.

    hack/cluster up && eval "$(hack/cluster env)"
    .venv/bin/python bench/flip_latency.py --releases 20
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import yaml
from kubernetes import client, config, watch

from common import Operator, blue_green_release, fresh_namespace, kubectl, percentile, settled

LABEL_RELEASE = "greenlight.dev/release"
LABEL_HASH = "greenlight.dev/template-hash"


class Observer:
    """Watches Deployments and the Service; stamps when each hash is available / selected."""

    def __init__(self, ns: str, name: str) -> None:
        self.ns, self.name = ns, name
        self.available: dict[str, float] = {}
        self.selected: dict[str, float] = {}
        self.stop = threading.Event()
        self.apps, self.core = client.AppsV1Api(), client.CoreV1Api()

    def start(self) -> None:
        threading.Thread(target=self._deployments, daemon=True).start()
        threading.Thread(target=self._service, daemon=True).start()

    def _deployments(self) -> None:
        while not self.stop.is_set():
            for ev in watch.Watch().stream(
                self.apps.list_namespaced_deployment,
                self.ns,
                label_selector=f"{LABEL_RELEASE}={self.name}",
                timeout_seconds=5,
            ):
                now = time.perf_counter()
                d = ev["object"]
                full = settled(d)
                h = d.metadata.labels[LABEL_HASH]
                if full and h not in self.available:
                    self.available[h] = now

    def _service(self) -> None:
        while not self.stop.is_set():
            for ev in watch.Watch().stream(
                self.core.list_namespaced_service,
                self.ns,
                field_selector=f"metadata.name={self.name}",
                timeout_seconds=5,
            ):
                now = time.perf_counter()
                h = (ev["object"].spec.selector or {}).get(LABEL_HASH)
                if h and h not in self.selected:
                    self.selected[h] = now


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--namespace", default="bench-flip")
    args = parser.parse_args()
    config.load_kube_config()
    ns, name = args.namespace, "flip"
    fresh_namespace(ns)
    operator = Operator(ns)
    observer = Observer(ns, name)
    observer.start()
    latencies: list[float] = []
    try:
        for i in range(args.releases + 1):
            body = yaml.safe_dump(blue_green_release(name, f"example/app:{i}", args.replicas))
            kubectl("apply", "-n", ns, "-f", "-", input=body)
            deadline = time.monotonic() + 120
            while len(observer.selected) < i + 1:
                if time.monotonic() > deadline or operator.process.poll() is not None:
                    raise SystemExit(f"release {i} did not flip; operator log: {operator.log}")
                time.sleep(0.01)
            if i == 0:
                continue  # the first release fills the Service directly: no flip to time
            h = max(observer.selected, key=observer.selected.__getitem__)
            while h not in observer.available and time.monotonic() < deadline:
                time.sleep(0.01)  # the two watches may deliver in either order
            latencies.append((observer.selected[h] - observer.available[h]) * 1000)
            print(f"release {i:3d}: flip {latencies[-1]:7.1f} ms after available", flush=True)
        rss = operator.peak_rss()
    finally:
        observer.stop.set()
        operator.stop()
        kubectl("delete", "namespace", ns, "--wait=false")
    print(
        f"\nflip latency over {len(latencies)} releases ({args.replicas} replicas): "
        f"p50 {percentile(latencies, 50):.1f} ms, p95 {percentile(latencies, 95):.1f} ms, "
        f"p99 {percentile(latencies, 99):.1f} ms, max {max(latencies):.1f} ms, "
        f"mean {statistics.mean(latencies):.1f} ms; operator peak RSS {rss:.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
