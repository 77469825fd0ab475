"""A burst: N Releases released at once. Two figures per Release, from outside watches:

- last candidate pod Ready -> live Service flipped (what a user waits for), and
- the operator's own trigger -> live Service flipped: the candidate's ReplicaSet (or, if it says
  so first, its Deployment) shows every pod available.

    hack/cluster up && eval "$(hack/cluster env)"
    .venv/bin/python bench/burst.py --releases 20 100 500
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

import yaml
from kubernetes import client, config, watch

from common import Operator, blue_green_release, fresh_namespace, kubectl, percentile, settled, wait

LABEL_HASH = "greenlight.dev/template-hash"
LABEL_RELEASE = "greenlight.dev/release"


class Watches:
    """Stamps, by template hash: last pod Ready, ReplicaSet or Deployment fully available
    (whichever first); by Service: the time each selected hash was first selected."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.pod_ready: dict[str, float] = {}
        """Template hash -> when its last pod became Ready."""
        self._ready_pods: set[str] = set()
        self.available: dict[str, float] = {}
        self.selected: dict[str, float] = {}
        self.stop = threading.Event()

    def start(self) -> None:
        for target in (self._pods, self._deployments, self._replicasets, self._services):
            threading.Thread(target=target, daemon=True).start()

    def _stream(self, fn: Any, **kw: Any) -> Any:
        while not self.stop.is_set():
            yield from watch.Watch().stream(fn, self.ns, timeout_seconds=5, **kw)

    def _pods(self) -> None:
        core = client.CoreV1Api()
        for e in self._stream(core.list_namespaced_pod, label_selector=LABEL_RELEASE):
            p = e["object"]
            h = (p.metadata.labels or {}).get(LABEL_HASH)
            ready = any(
                c.type == "Ready" and c.status == "True" for c in (p.status.conditions or [])
            )
            name = p.metadata.name
            if h and ready and name not in self._ready_pods:  # the moment it became Ready
                self._ready_pods.add(name)
                self.pod_ready[h] = max(self.pod_ready.get(h, 0.0), time.time())

    def _deployments(self) -> None:
        apps = client.AppsV1Api()
        for e in self._stream(apps.list_namespaced_deployment, label_selector=LABEL_RELEASE):
            d = e["object"]
            h = d.metadata.labels.get(LABEL_HASH)
            full = settled(d)
            if full and h not in self.available:
                self.available[h] = time.time()

    def _replicasets(self) -> None:
        apps = client.AppsV1Api()
        for e in self._stream(apps.list_namespaced_replica_set, label_selector=LABEL_RELEASE):
            r = e["object"]
            h = r.metadata.labels.get(LABEL_HASH)
            full = settled(r)
            if full and h not in self.available:
                self.available[h] = time.time()

    def _services(self) -> None:
        core = client.CoreV1Api()
        for e in self._stream(core.list_namespaced_service):
            h = (e["object"].spec.selector or {}).get(LABEL_HASH)
            if h and h not in self.selected:
                self.selected[h] = time.time()


def burst(n: int, replicas: int) -> tuple[list[float], list[float]]:
    ns = f"bench-burst-{n}"
    fresh_namespace(ns)
    watches = Watches(ns)
    watches.start()
    operator = Operator(ns)
    try:
        docs = [blue_green_release(f"b{i}", "example/app:1", replicas) for i in range(n)]
        kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(docs))
        wait(lambda: len(watches.selected) >= n, "the first releases", 600)
        first = set(watches.selected)
        for d in docs:
            d["spec"]["template"]["spec"]["containers"][0]["image"] = "example/app:2"
        operator.figures()
        kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(docs))
        wait(lambda: len(watches.selected) >= 2 * n, "every Release flipped", 900)
        flipped = {h: t for h, t in watches.selected.items() if h not in first}
        user = [(t - watches.pod_ready[h]) * 1000 for h, t in flipped.items()]
        trigger = [(t - watches.available[h]) * 1000 for h, t in flipped.items()]
        print(f"{n} Releases at once: {operator.figures()}", flush=True)
        return user, trigger
    finally:
        watches.stop.set()
        operator.stop()
        # waited for: its garbage (pods, ReplicaSets) collected during the next N's burst
        # would load the controllers that burst is timed through
        kubectl("delete", "namespace", ns, "--wait=true", "--timeout=600s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args()
    config.load_kube_config()
    lines = []
    for n in args.releases:
        user, trigger = burst(n, args.replicas)
        lines.append(
            f"{n:4d} at once: last pod Ready -> flipped p50 {percentile(user, 50):.0f} ms,"
            f" p99 {percentile(user, 99):.0f} ms; ReplicaSet available -> flipped p50"
            f" {percentile(trigger, 50):.0f} ms, p99 {percentile(trigger, 99):.0f} ms"
        )
    print("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
