"""Flip latency: from "candidate fully available" to "live Service selector changed".

Both instants are seen by watches in this process (outside the operator), on a real cluster.
The operator runs as a subprocess so its peak RSS (VmHWM) can be read.

    hack/cluster up && eval "$(hack/cluster env)"
    .venv/bin/python bench/flip_latency.py --releases 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config, watch

ROOT = Path(__file__).resolve().parents[1]
LABEL_RELEASE = "greenlight.dev/release"
LABEL_HASH = "greenlight.dev/template-hash"


def kubectl(*args: str, input: str | None = None) -> str:
    kubectl_bin = Path(sys.executable).parent / "kubectl"
    out = subprocess.run(
        [str(kubectl_bin), *args], input=input, capture_output=True, text=True, check=True
    )
    return out.stdout


def manifest(name: str, image: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "greenlight.dev/v1alpha1",
        "kind": "Release",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            "healthCheck": {"httpGet": {"path": "/healthz", "port": 8080}},
            "service": {"name": name, "ports": [{"port": 80, "targetPort": 8080}]},
            "strategy": {"blueGreen": {"scaleDownDelaySeconds": 0}},
            "revisionHistoryLimit": 2,
        },
    }


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
                want, st = d.spec.replicas, d.status
                full = (
                    want > 0
                    and (st.observed_generation or 0) >= d.metadata.generation
                    and st.updated_replicas == want == st.available_replicas == st.replicas
                )
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


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--namespace", default="bench-flip")
    args = parser.parse_args()
    config.load_kube_config()
    ns, name = args.namespace, "flip"
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kubectl("wait", "--for=condition=Established", "crd/releases.greenlight.dev")
    kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true")
    kubectl("create", "namespace", ns)
    log = open(os.environ.get("BENCH_LOG", "/tmp/greenlight-bench-operator.log"), "w")  # noqa: SIM115
    operator = subprocess.Popen(
        [str(Path(sys.executable).parent / "greenlight"), "run", "-n", ns], stdout=log, stderr=log
    )
    observer = Observer(ns, name)
    observer.start()
    latencies: list[float] = []
    try:
        for i in range(args.releases + 1):
            body = yaml.safe_dump(manifest(name, f"example/app:{i}", args.replicas))
            kubectl("apply", "-n", ns, "-f", "-", input=body)
            deadline = time.monotonic() + 120
            while len(observer.selected) < i + 1:
                if time.monotonic() > deadline or operator.poll() is not None:
                    raise SystemExit(f"release {i} did not flip; operator log: {log.name}")
                time.sleep(0.01)
            if i == 0:
                continue  # the first release fills the Service directly: no flip to time
            h = max(observer.selected, key=observer.selected.__getitem__)
            while h not in observer.available and time.monotonic() < deadline:
                time.sleep(0.01)  # the two watches may deliver in either order
            latencies.append((observer.selected[h] - observer.available[h]) * 1000)
            print(f"release {i:3d}: flip {latencies[-1]:7.1f} ms after available", flush=True)
        rss = peak_rss_mib(operator.pid)
    finally:
        observer.stop.set()
        operator.terminate()
        operator.wait(timeout=30)
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
