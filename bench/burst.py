"""A burst: N Releases released at once. Two figures per Release, from outside watches:

- last candidate pod Ready -> live Service flipped (what a user waits for), and
- the operator's own trigger -> live Service flipped: the candidate's ReplicaSet (or, if it says
  so first, its Deployment) shows every pod available.

Before it, the same N Releases created at once (their first release): create -> every app live
(its Release Healthy: the live Service selects revision 1 and its pods are all available), with
the median of each stage on the way: created -> Deployment created -> ReplicaSet created -> last
pod Ready -> Release Healthy.

    hack/cluster up && eval "$(hack/cluster env)"
    .venv/bin/python bench/burst.py --releases 20 100 500
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor
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
        self.created: dict[tuple[str, str], float] = {}
        """(kind, template hash) -> first seen: Deployment, ReplicaSet."""
        self.healthy: dict[str, float] = {}
        """Release name -> first seen Healthy on revision 1."""
        self.first_hash: dict[str, str] = {}
        """Release name -> its first Deployment's template hash."""
        self.seen: dict[str, float] = {}
        """Release name -> first seen (created)."""
        self.stop = threading.Event()

    def start(self) -> None:
        targets = (self._pods, self._deployments, self._replicasets, self._services, self._releases)
        for target in targets:
            threading.Thread(target=target, daemon=True).start()

    def _releases(self) -> None:
        custom = client.CustomObjectsApi()

        def listing(ns: str, **kw: Any) -> Any:
            return custom.list_namespaced_custom_object(
                "greenlight.dev", "v1alpha1", ns, "releases", **kw
            )

        for e in self._stream(listing):
            r = e["object"]
            st, name = r.get("status") or {}, r["metadata"]["name"]
            self.seen.setdefault(name, time.time())
            if st.get("phase") == "Healthy" and st.get("liveRevision") == 1:
                self.healthy.setdefault(name, time.time())

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
            self.created.setdefault(("Deployment", h), time.time())
            self.first_hash.setdefault(d.metadata.labels.get(LABEL_RELEASE), h)
            full = settled(d)
            if full and h not in self.available:
                self.available[h] = time.time()

    def _replicasets(self) -> None:
        apps = client.AppsV1Api()
        for e in self._stream(apps.list_namespaced_replica_set, label_selector=LABEL_RELEASE):
            r = e["object"]
            h = r.metadata.labels.get(LABEL_HASH)
            self.created.setdefault(("ReplicaSet", h), time.time())
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
        operator.wait_up()
        operator.figures()
        create_all(ns, docs)  # at once, as a GitOps sync of a whole environment does
        wait(lambda: len(watches.healthy) >= n, "the first releases live", 600)
        first = set(watches.selected)
        print(first_releases(watches, n), flush=True)
        print(f"  {operator.figures()}", flush=True)
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


def create_all(ns: str, docs: list[dict[str, Any]], clients: int = 20) -> None:
    """Create the Releases from `clients` threads (kubectl apply would send them one by one:
    10 s for 100 on this machine, longer than the releases take)."""
    custom = client.CustomObjectsApi()

    def create(body: dict[str, Any]) -> None:
        custom.create_namespaced_custom_object("greenlight.dev", "v1alpha1", ns, "releases", body)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(create, docs))


def first_releases(w: Watches, n: int) -> str:
    """Created -> every app live, and each stage's median (ms), per app from its creation as
    a watch saw it."""
    stages: dict[str, list[float]] = {k: [] for k in ("Deployment", "ReplicaSet", "pods", "live")}
    live = []
    for name, h in w.first_hash.items():
        created = w.seen.get(name)
        deployment, rs = w.created.get(("Deployment", h)), w.created.get(("ReplicaSet", h))
        ready, healthy = w.pod_ready.get(h), w.healthy.get(name)
        if None in (created, deployment, rs, ready, healthy):
            continue
        assert created and deployment and rs and ready and healthy
        stages["Deployment"].append((deployment - created) * 1000)
        stages["ReplicaSet"].append((rs - deployment) * 1000)
        stages["pods"].append((ready - rs) * 1000)
        stages["live"].append((healthy - ready) * 1000)
        live.append((healthy - created) * 1000)
    everyone = (max(w.healthy.values()) - min(w.seen.values())) * 1000
    return (
        f"{n} first releases at once: first created -> every app live {everyone:.0f} ms;"
        f" per app created -> live p50 {percentile(live, 50):.0f} ms, p99"
        f" {percentile(live, 99):.0f} ms ({len(live)} apps); stage medians: created ->"
        f" Deployment {percentile(stages['Deployment'], 50):.0f} ms -> ReplicaSet"
        f" {percentile(stages['ReplicaSet'], 50):.0f} ms -> last pod Ready"
        f" {percentile(stages['pods'], 50):.0f} ms -> Release Healthy"
        f" {percentile(stages['live'], 50):.0f} ms (p99 {percentile(stages['live'], 99):.0f} ms)"
    )


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
