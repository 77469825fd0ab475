"""A burst: N Releases released at once. Two figures per Release, from outside watches:

- last candidate pod Ready -> live Service flipped (what a user waits for), and
- the operator's own trigger -> live Service flipped: the candidate's ReplicaSet (or, if it says
  so first, its Deployment) shows every pod available.

Before it, the same N Releases created at once (their first release): create -> every app live
(its Release Healthy: the live Service selects revision 1 and its pods are all available), with
the median of each stage on the way: created -> Deployment created -> ReplicaSet created -> last
pod Ready -> Release Healthy. `--bare`: the control plane's floor for the same apps, with no
operator (the Deployments and Services made directly).

    hack/cluster up && eval "$(hack/cluster env)"
    .venv/bin/python bench/burst.py --releases 20 100 500
    .venv/bin/python bench/burst.py --releases 100 --replicas 3 --first-only [--bare]
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import yaml
from kubernetes import client, config, watch

from common import (
    Operator,
    blue_green_release,
    control_plane_cpu,
    fresh_namespace,
    kubectl,
    percentile,
    settled,
    wait,
)

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


def burst(n: int, replicas: int, first_only: bool = False) -> tuple[list[float], list[float]]:
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
        if first_only:
            return [], []
        for d in docs:
            d["spec"]["template"]["spec"]["containers"][0]["image"] = "example/app:2"
        operator.figures()
        kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(docs))
        wait(lambda: len(watches.selected) >= 2 * n, "every Release flipped", 900)
        flipped = {h: t for h, t in watches.selected.items() if h not in first}
        user = [(t - watches.pod_ready[h]) * 1000 for h, t in flipped.items()]
        trigger = [(t - watches.available[h]) * 1000 for h, t in flipped.items()]
        hop = [(watches.available[h] - watches.pod_ready[h]) * 1000 for h in flipped]
        print(f"{n} Releases at once: {operator.figures()}", flush=True)
        print(
            f"  last pod Ready -> ReplicaSet available (kube-controller-manager's hop): p50"
            f" {percentile(hop, 50):.0f} ms, p99 {percentile(hop, 99):.0f} ms",
            flush=True,
        )
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


def bare(n: int, replicas: int) -> str:
    """The control plane's floor for the first releases, with no operator: the Deployments and
    Services Greenlight would create for N new apps (the same pod template, probe and labels),
    made at once from 20 threads; created -> every Deployment fully available."""
    ns = f"bench-bare-{n}"
    fresh_namespace(ns)
    watches = Watches(ns)
    watches.start()
    apps, core = client.AppsV1Api(), client.CoreV1Api()

    def create(i: int) -> None:
        name, h = f"b{i}", f"bare{i}"
        labels = {LABEL_RELEASE: name, LABEL_HASH: h}
        release = blue_green_release(name, "example/app:1", replicas)["spec"]
        container = {
            **release["template"]["spec"]["containers"][0],
            "readinessProbe": {"httpGet": release["healthCheck"]["httpGet"]},
        }
        template = {"metadata": {"labels": labels}, "spec": {"containers": [container]}}
        meta = {"name": f"{name}-{h}", "labels": labels}
        apps.create_namespaced_deployment(
            ns,
            {"metadata": meta, "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                                        "template": template}},
        )  # fmt: skip
        core.create_namespaced_service(
            ns, {"metadata": {"name": name}, "spec": {"selector": labels, "ports": [{"port": 80}]}}
        )

    try:
        before = control_plane_cpu()
        with ThreadPoolExecutor(20) as pool:
            list(pool.map(create, range(n)))
        wait(lambda: len(watches.available) >= n, "every Deployment available", 600)
        cpu = ", ".join(
            f"{k} {v - before.get(k, 0.0):.1f} s" for k, v in sorted(control_plane_cpu().items())
        )
        stages: dict[str, list[float]] = {"ReplicaSet": [], "pods": [], "available": []}
        for (kind, h), created in watches.created.items():
            rs, ready = watches.created.get(("ReplicaSet", h)), watches.pod_ready.get(h)
            available = watches.available.get(h)
            if kind != "Deployment" or None in (rs, ready, available):
                continue
            assert rs and ready and available
            stages["ReplicaSet"].append((rs - created) * 1000)
            stages["pods"].append((ready - rs) * 1000)
            stages["available"].append((available - created) * 1000)
        first = min(t for (kind, _), t in watches.created.items() if kind == "Deployment")
        return (
            f"{n} bare Deployments at once (no operator): first created -> every one available"
            f" {(max(watches.available.values()) - first) * 1000:.0f} ms; per app created ->"
            f" available p50 {percentile(stages['available'], 50):.0f} ms, p99"
            f" {percentile(stages['available'], 99):.0f} ms; stage medians: created ->"
            f" ReplicaSet {percentile(stages['ReplicaSet'], 50):.0f} ms -> last pod Ready"
            f" {percentile(stages['pods'], 50):.0f} ms; control plane CPU: {cpu}"
        )
    finally:
        watches.stop.set()
        kubectl("delete", "namespace", ns, "--wait=true", "--timeout=600s")


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
    parser.add_argument(
        "--bare",
        action="store_true",
        help="the control plane's floor: the same Deployments and Services, no operator",
    )
    parser.add_argument(
        "--first-only", action="store_true", help="only the first releases, not the burst"
    )
    args = parser.parse_args()
    config.load_kube_config()
    lines = []
    for n in args.releases:
        if args.bare:
            print(bare(n, args.replicas), flush=True)
            continue
        user, trigger = burst(n, args.replicas, args.first_only)
        if args.first_only:
            continue
        lines.append(
            f"{n:4d} at once: last pod Ready -> flipped p50 {percentile(user, 50):.0f} ms,"
            f" p99 {percentile(user, 99):.0f} ms; ReplicaSet available -> flipped p50"
            f" {percentile(trigger, 50):.0f} ms, p99 {percentile(trigger, 99):.0f} ms"
        )
    print("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
