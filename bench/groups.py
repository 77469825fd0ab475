"""Release groups: the spread of a group flip, and the time from the last member ready to the
whole group live.

An outside watch of the namespace's Deployments and Services stamps when each member's
candidate became fully available and when each member's live Service selector moved. Spread:
first to last member Service moved. Ready->live: last candidate available to last Service
moved (settleSeconds 0, so no settle window is in it).

    hack/cluster up && eval "$(hack/cluster env)"
    .venv/bin/python bench/groups.py --sizes 2 5 20 --rounds 10
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

import yaml
from kubernetes import client, config, watch

from common import Operator, blue_green_release, fresh_namespace, kubectl, percentile, wait

LABEL_HASH = "greenlight.dev/template-hash"
LABEL_RELEASE = "greenlight.dev/release"


class Watcher:
    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.available: dict[str, float] = {}  # template hash -> first seen fully available
        self.selected: dict[str, tuple[float, str]] = {}  # service -> (time, hash) last change
        self.stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._deployments, daemon=True).start()
        threading.Thread(target=self._services, daemon=True).start()

    def _deployments(self) -> None:
        apps = client.AppsV1Api()
        while not self.stop.is_set():
            for e in watch.Watch().stream(
                apps.list_namespaced_deployment, self.ns, label_selector=LABEL_RELEASE,
                timeout_seconds=5,
            ):  # fmt: skip
                d = e["object"]
                want, st = d.spec.replicas, d.status
                h = d.metadata.labels.get(LABEL_HASH)
                if (
                    h not in self.available
                    and (st.observed_generation or 0) >= d.metadata.generation
                    and st.available_replicas == want == st.updated_replicas
                ):
                    self.available[h] = time.time()

    def _services(self) -> None:
        core = client.CoreV1Api()
        while not self.stop.is_set():
            for e in watch.Watch().stream(core.list_namespaced_service, self.ns, timeout_seconds=5):
                s = e["object"]
                h = (s.spec.selector or {}).get(LABEL_HASH)
                name = s.metadata.name
                if h and (name not in self.selected or self.selected[name][1] != h):
                    self.selected[name] = (time.time(), h)


def run(size: int, rounds: int) -> tuple[list[float], list[float]]:
    ns = f"bench-group-{size}"
    fresh_namespace(ns)
    watcher = Watcher(ns)
    watcher.start()
    operator = Operator(ns)
    names = [f"m{i}" for i in range(size)]
    group = {
        "apiVersion": "greenlight.dev/v1alpha1",
        "kind": "ReleaseGroup",
        "metadata": {"name": "g"},
        "spec": {"members": names, "settleSeconds": 0},
    }
    spreads, ready_to_live = [], []
    try:
        docs: list[dict[str, Any]] = [group] + [
            blue_green_release(n, "example/app:0", 1) for n in names
        ]
        kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(docs))
        wait(lambda: len(watcher.selected) == size, "the first releases", 300, interval=0.02)
        for r in range(1, rounds + 1):
            before = dict(watcher.selected)
            for d in docs[1:]:
                d["spec"]["template"]["spec"]["containers"][0]["image"] = f"example/app:{r}"
            kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(docs[1:]))
            wait(
                lambda b=before: all(watcher.selected[n] != b[n] for n in names),
                f"round {r}: every member flipped",
                300,
                interval=0.02,  # the spread is timed by the watch; this only ends the round
            )
            moved = [watcher.selected[n] for n in names]
            times = [t for t, _ in moved]
            ready = max(watcher.available.get(h, float("nan")) for _, h in moved)
            spreads.append((max(times) - min(times)) * 1000)
            ready_to_live.append((max(times) - ready) * 1000)
            print(
                f"{size:3d} members, round {r:2d}: spread {spreads[-1]:6.1f} ms, "
                f"last ready -> all live {ready_to_live[-1]:7.1f} ms",
                flush=True,
            )
    finally:
        watcher.stop.set()
        operator.stop()
        kubectl("delete", "namespace", ns, "--wait=false")
    return spreads, ready_to_live


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 5, 20])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    config.load_kube_config()
    summary = []
    for size in args.sizes:
        spreads, ready = run(size, args.rounds)
        summary.append(
            f"{size:3d} members over {args.rounds} rounds: spread p50 "
            f"{percentile(spreads, 50):.1f} ms, p99 {percentile(spreads, 99):.1f} ms; last ready"
            f" -> all live p50 {percentile(ready, 50):.0f} ms, p99 {percentile(ready, 99):.0f} ms"
        )
    print("\n" + "\n".join(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
