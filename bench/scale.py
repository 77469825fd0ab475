"""Many Releases: convergence, responsiveness and the operator's memory and CPU.

On a real cluster, with the operator as a subprocess:

  1. create   N one-replica Releases at once; time until every one is Healthy (its first
              revision live), and each Release's own create -> Healthy time
  2. idle     with N Releases present, release a new image of one "probe" Release R times;
              apply -> Healthy on the new revision, each time
  3. storm    release a new image of all N at once, and of the probe just after; how long the
              probe waits behind the storm, and until all N are live on their second revision
  4. restart  once all is quiet, restart the operator and release the probe at once: how soon
              it is Healthy, how long until every Release was reconciled once, and how many
              of the others that rewrote (a level-triggered restart should rewrite none)

Figures: medians and p95 of the per-Release times, the operator's peak RSS (VmHWM) and CPU
seconds (utime + stime) in each phase, and its reconciles (from its /metrics).

    hack/cluster up && eval "$(hack/cluster env)"
    .venv/bin/python bench/scale.py --releases 1000
"""

from __future__ import annotations

import argparse
import collections
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from prometheus_client import parser

ROOT = Path(__file__).resolve().parents[1]
GROUP, VERSION, PLURAL = "greenlight.dev", "v1alpha1", "releases"


def kubectl(*args: str) -> str:
    kubectl_bin = Path(sys.executable).parent / "kubectl"
    return subprocess.run(
        [str(kubectl_bin), *args], capture_output=True, text=True, check=True
    ).stdout


def release(name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Release",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
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


class Live:
    """Every Release in the namespace: when each was first seen Healthy on each revision."""

    def __init__(self, custom: client.CustomObjectsApi, ns: str) -> None:
        self.custom, self.ns = custom, ns
        self.healthy: dict[tuple[str, int], float] = {}
        self.modified: collections.Counter[str] = collections.Counter()
        self.changed = threading.Condition()
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self) -> None:
        rv = None
        while True:
            stream = watch.Watch().stream(
                self.custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                self.ns,
                PLURAL,
                resource_version=rv,
                timeout_seconds=60,
            )
            for event in stream:
                obj = event["raw_object"]
                rv = obj["metadata"]["resourceVersion"]
                st = obj.get("status") or {}
                self.modified[obj["metadata"]["name"]] += event["type"] == "MODIFIED"
                key = (obj["metadata"]["name"], st.get("liveRevision") or 0)
                if st.get("phase") == "Healthy" and key not in self.healthy:
                    with self.changed:
                        self.healthy[key] = time.perf_counter()
                        self.changed.notify_all()

    def quiet(self, seconds: float, timeout: float) -> None:
        """Until no Release has changed for `seconds` (trailing scale-downs, history trims)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = self.modified.total()
            time.sleep(seconds)
            if self.modified.total() == before:
                return
        raise SystemExit(f"Releases still changing after {timeout} s")

    def wait(self, keys: list[tuple[str, int]], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not all(k in self.healthy for k in keys):
                left = deadline - time.monotonic()
                missing = [k for k in keys if k not in self.healthy]
                if left <= 0:
                    raise SystemExit(f"{len(missing)} Releases not Healthy, e.g. {missing[:3]}")
                self.changed.wait(min(left, 1.0))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Operator:
    """`greenlight run` as a subprocess, with its metrics endpoint."""

    def __init__(self, ns: str, workers: int) -> None:
        self.port = free_port()
        log = open(os.environ.get("BENCH_LOG", "/tmp/greenlight-bench-operator.log"), "w")  # noqa: SIM115
        command = [str(Path(sys.executable).parent / "greenlight"), "run", "-n", ns]
        env = {**os.environ, "GREENLIGHT_WORKERS": str(workers)}
        command += ["--metrics-port", str(self.port)]
        self.process = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        self.seen: dict[str, float] = {}
        self.cpu = 0.0

    def figures(self) -> str:
        """Since the last call: reconciles by result, mean reconcile time; RSS and CPU so far."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics").read().decode()
        now: dict[str, float] = {}
        for family in parser.text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "greenlight_reconciles_total":
                    now[sample.labels["result"]] = sample.value
                elif sample.name.startswith("greenlight_reconcile_seconds_"):
                    now[sample.name.rsplit("_", 1)[1]] = sample.value
        delta = {k: v - self.seen.get(k, 0) for k, v in now.items()}
        self.seen = now
        counts = ", ".join(
            f"{k} {delta[k]:.0f}" for k in ("planned", "stale", "expecting", "error") if k in delta
        )
        mean = 1000 * delta.get("sum", 0) / max(delta.get("count", 0), 1)
        rss, cpu = process_figures(self.process.pid)
        self.cpu, phase_cpu = cpu, cpu - self.cpu
        return (
            f"reconciles: {counts}; mean planned reconcile {mean:.1f} ms; operator CPU in this "
            f"phase {phase_cpu:.1f} s, peak RSS {rss:.0f} MiB"
        )

    def reconciled(self) -> float:
        """Reconciles so far, whatever their result (0 until the metrics endpoint is up)."""
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics").read().decode()
        except OSError:
            return 0
        return sum(
            s.value
            for family in parser.text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "greenlight_reconciles_total"
        )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def process_figures(pid: int) -> tuple[float, float]:
    """Peak RSS (MiB) and CPU seconds (user + system) of a process so far."""
    rss = next(
        int(line.split()[1]) / 1024
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    )
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return rss, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stats(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p50 = ordered[len(ordered) // 2]
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {p50:.2f} s, p95 {p95:.2f} s, max {ordered[-1]:.2f} s"


def main() -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--releases", type=int, default=1000)
    cli.add_argument("--probes", type=int, default=10, help="idle-phase releases of the probe")
    cli.add_argument("--namespace", default="bench-scale")
    cli.add_argument("--clients", type=int, default=8, help="parallel API writers")
    cli.add_argument("--workers", type=int, default=4, help="the operator's GREENLIGHT_WORKERS")
    args = cli.parse_args()
    config.load_kube_config()
    ns, n = args.namespace, args.releases
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kubectl("wait", "--for=condition=Established", "crd/releases.greenlight.dev")
    kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=300s")
    kubectl("create", "namespace", ns)
    custom = client.CustomObjectsApi()
    pool = ThreadPoolExecutor(args.clients)
    names = [f"app-{i:05d}" for i in range(n)]
    started: dict[tuple[str, int], float] = {}

    def create(name: str) -> None:
        started[(name, 1)] = time.perf_counter()
        custom.create_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, release(name, "example/app:1")
        )

    def set_image(name: str, revision: int) -> None:
        started[(name, revision)] = time.perf_counter()
        body = {"spec": {"template": release(name, f"example/app:{revision}")["spec"]["template"]}}
        custom.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name, body)

    def elapsed(keys: list[tuple[str, int]]) -> list[float]:
        return [live.healthy[k] - started[k] for k in keys]

    operator = Operator(ns, args.workers)
    live = Live(custom, ns)
    try:
        begin = time.perf_counter()
        list(pool.map(create, [*names, "probe"]))
        first = [(x, 1) for x in [*names, "probe"]]
        live.wait(first, timeout=60 + n)
        total = max(live.healthy[k] for k in first) - begin
        print(f"create: {n + 1} Releases Healthy in {total:.1f} s ({(n + 1) / total:.1f}/s);")
        print(f"  per Release create -> Healthy {stats(elapsed(first))};", end=" ")
        print(operator.figures())

        probes = []
        for revision in range(2, args.probes + 2):
            set_image("probe", revision)
            live.wait([("probe", revision)], timeout=60)
            probes.append(("probe", revision))
        print(f"idle: probe apply -> Healthy on the new revision, {len(probes)} releases: ", end="")
        print(f"{stats(elapsed(probes))}; {operator.figures()}")

        begin = time.perf_counter()
        list(pool.map(lambda x: set_image(x, 2), names))
        probe = ("probe", args.probes + 2)
        set_image(*probe)
        second = [(x, 2) for x in names]
        live.wait([probe, *second], timeout=60 + 2 * n)
        total = max(live.healthy[k] for k in second) - begin
        print(f"storm: {n} Releases live on revision 2 in {total:.1f} s ({n / total:.1f}/s);")
        print(f"  per Release apply -> Healthy {stats(elapsed(second))};")
        print(f"  probe applied after the storm: Healthy in {elapsed([probe])[0]:.2f} s; ", end="")
        print(operator.figures())

        live.quiet(seconds=5, timeout=300)
        operator.stop()
        others = live.modified.total() - live.modified["probe"]
        begin = time.perf_counter()
        operator = Operator(ns, args.workers)
        probe = ("probe", args.probes + 3)
        set_image(*probe)
        live.wait([probe], timeout=60 + n)
        while operator.reconciled() < n + 1:
            time.sleep(0.1)
        caught_up = time.perf_counter() - begin
        writes = live.modified.total() - live.modified["probe"] - others
        print("restart: a probe applied as the operator starts is Healthy in ", end="")
        print(
            f"{elapsed([probe])[0]:.2f} s; all {n + 1} reconciled once in {caught_up:.1f} s, ",
            end="",
        )
        print(f"rewriting {writes} of the other Releases; {operator.figures()}")
    finally:
        operator.stop()
        kubectl("delete", "namespace", ns, "--wait=false")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
