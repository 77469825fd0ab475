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
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from kubernetes import client, config, watch

from common import (
    GROUP,
    PLURAL,
    VERSION,
    Operator,
    blue_green_release,
    fresh_namespace,
    kubectl,
    percentile,
)


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


def stats(seconds: list[float]) -> str:
    return (
        f"median {sorted(seconds)[len(seconds) // 2]:.2f} s, p95 {percentile(seconds, 95):.2f} s, "
        f"max {max(seconds):.2f} s"
    )


def main() -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--releases", type=int, default=1000)
    cli.add_argument("--probes", type=int, default=10, help="idle-phase releases of the probe")
    cli.add_argument("--namespace", default="bench-scale")
    cli.add_argument("--clients", type=int, default=8, help="parallel API writers")
    cli.add_argument("--workers", type=int, default=4, help="the operator's GREENLIGHT_WORKERS")
    cli.add_argument("--skip-restart", action="store_true", help="stop after the storm phase")
    args = cli.parse_args()
    config.load_kube_config()
    ns, n = args.namespace, args.releases
    fresh_namespace(ns)
    custom = client.CustomObjectsApi()
    pool = ThreadPoolExecutor(args.clients)
    names = [f"app-{i:05d}" for i in range(n)]
    started: dict[tuple[str, int], float] = {}

    def create(name: str) -> None:
        started[(name, 1)] = time.perf_counter()
        custom.create_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, blue_green_release(name, "example/app:1", 1)
        )

    def set_image(name: str, revision: int) -> None:
        started[(name, revision)] = time.perf_counter()
        new = blue_green_release(name, f"example/app:{revision}", 1)
        body = {"spec": {"template": new["spec"]["template"]}}
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

        if args.skip_restart:
            return 0
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
