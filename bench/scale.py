"""Many Releases: convergence, responsiveness and the operator's memory and CPU.

On a real cluster, with the operator as a subprocess:

  1. create   N one-replica Releases at once (and the probes); time until every one is Healthy
              (its first revision live), and each Release's own create -> Healthy time
  2. idle     with N Releases present and every one Healthy, once the operator has reconciled
              nothing for 10 s: its resident memory now (VmRSS, the idle RSS); then release a
              new image of one probe R times (--probes; 0: none): apply -> Healthy on the new
              revision, each time
  3. storm    release a new image of all N at once; meanwhile release each of P probes, and
              undo each of U Releases whose previous revision is warm (the probes and undos
              live in another namespace, --probe-namespace: another team's). Per probe: its
              candidate Deployment fully available -> live Service flipped; per undo:
              undo annotation applied -> live Service back on the previous revision (both from
              an outside watch of the probes' Deployments and Services); and until all N
              are live on their second revision
  4. restart  once all is quiet, restart the operator and release a probe at once: how soon
              it is Healthy, how long until every Release was reconciled once, and how many
              of the others that rewrote (a level-triggered restart should rewrite none)
  5. soak     (--soak S) then sit idle S seconds: the operator's RSS every 10 s (flat?), its CPU

Figures: medians and p95/p99 of the per-Release times, the operator's peak RSS (VmHWM) and CPU
seconds (utime + stime) in each phase, per reconcile too (its reconciles from its /metrics), and
the local control plane's CPU in the same phase (where the machine's cores went).

    hack/cluster up && eval "$(hack/cluster env)"
    .venv/bin/python bench/scale.py --releases 1000

At 10,000 the fake nodes' pod IPs run out (a /24 each, 3 nodes): `hack/cluster down` then
`GREENLIGHT_NODES=100 hack/cluster up` gives room for both slots of every Release mid-storm.
Spread them too (`--spread 100`): kube-controller-manager's Deployment controller lists every
ReplicaSet of a Deployment's namespace on each sync, so 10,000 in one namespace make the control
plane quadratic, and real clusters split their apps across namespaces. `--profile FILE` records
one phase (`--profile-phase`, the restart by default) with py-spy (`pip install -e '.[bench]'`).
"""

from __future__ import annotations

import argparse
import collections
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

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
    settled,
)

LABEL_RELEASE, LABEL_HASH = "greenlight.dev/release", "greenlight.dev/template-hash"
# collapsed stacks (flamegraph.pl's input), 100 samples/s, without pausing the operator
PY_SPY = [f"{sys.prefix}/bin/py-spy", "record", "--format", "raw", "--rate", "100", "--nonblocking"]


class Probes:
    """An outside watch of some Releases' Deployments and Services: when each template hash
    was first fully available, and each live Service's selector changes."""

    def __init__(self, ns: str, names: list[str]) -> None:
        self.ns, self.selector = ns, f"{LABEL_RELEASE} in ({','.join(names)})"
        self.created: dict[str, float] = {}
        self.available: dict[str, float] = {}
        self.flips: dict[str, list[tuple[float, str]]] = collections.defaultdict(list)
        for target in (self._deployments, self._services):
            threading.Thread(target=target, daemon=True).start()

    def _stream(self, fn: Any) -> Any:
        while True:
            try:
                yield from watch.Watch().stream(fn, self.ns, label_selector=self.selector)
            except client.ApiException as e:
                if e.status != 410:
                    raise  # 410: too old after a long quiet spell; list again

    def _deployments(self) -> None:
        for e in self._stream(client.AppsV1Api().list_namespaced_deployment):
            d = e["object"]
            full = settled(d)
            h = d.metadata.labels.get(LABEL_HASH)
            self.created.setdefault(h, time.perf_counter())
            if full and h not in self.available:
                self.available[h] = time.perf_counter()

    def _services(self) -> None:
        for e in self._stream(client.CoreV1Api().list_namespaced_service):
            svc = e["object"]
            h = (svc.spec.selector or {}).get(LABEL_HASH)
            seen = self.flips[svc.metadata.name]
            if h and (not seen or seen[-1][1] != h):
                seen.append((time.perf_counter(), h))

    def live(self, service: str) -> str | None:
        seen = self.flips.get(service)
        return seen[-1][1] if seen else None

    def selected_after(self, service: str, h: str, after: float) -> float | None:
        return next((t for t, x in self.flips.get(service, []) if x == h and t >= after), None)


class Live:
    """Every Release in the namespaces (names unique across them): when each was first seen
    Healthy on each revision."""

    def __init__(self, custom: client.CustomObjectsApi, namespaces: list[str]) -> None:
        self.custom = custom
        self.healthy: dict[tuple[str, int], float] = {}
        self.modified: collections.Counter[str] = collections.Counter()
        self.changed = threading.Condition()
        threading.Thread(target=self._follow, args=(set(namespaces),), daemon=True).start()

    def _follow(self, namespaces: set[str]) -> None:
        """One watch of all namespaces (a hundred namespaces, one connection), keeping ours."""
        rv = None
        while True:
            stream = watch.Watch().stream(
                self.custom.list_cluster_custom_object,
                GROUP,
                VERSION,
                PLURAL,
                resource_version=rv,
                timeout_seconds=60,
            )
            try:
                for event in stream:
                    obj = event["raw_object"]
                    rv = obj["metadata"]["resourceVersion"]
                    if obj["metadata"]["namespace"] not in namespaces:
                        continue
                    st = obj.get("status") or {}
                    self.modified[obj["metadata"]["name"]] += event["type"] == "MODIFIED"
                    key = (obj["metadata"]["name"], st.get("liveRevision") or 0)
                    if st.get("phase") == "Healthy" and key not in self.healthy:
                        with self.changed:
                            self.healthy[key] = time.perf_counter()
                            self.changed.notify_all()
            except client.ApiException as e:
                if e.status != 410:
                    raise
                rv = None  # too old (a long quiet spell): list again

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


def rss_now(pid: int) -> float:
    """The process's resident memory now (VmRSS), MiB."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


def stats(seconds: list[float], unit: str = "s", scale: float = 1.0) -> str:
    v = [x * scale for x in seconds]
    f = ".0f" if unit == "ms" else ".2f"
    return (
        f"median {sorted(v)[len(v) // 2]:{f}} {unit}, p95 {percentile(v, 95):{f}} {unit}, "
        f"p99 {percentile(v, 99):{f}} {unit}, max {max(v):{f}} {unit}"
    )


def main() -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--releases", type=int, default=1000)
    cli.add_argument("--probes", type=int, default=10, help="idle-phase releases of the probe")
    cli.add_argument("--storm-probes", type=int, default=10, help="Releases released mid-storm")
    cli.add_argument("--undos", type=int, default=10, help="Releases undone mid-storm")
    cli.add_argument("--namespace", default="bench-scale")
    cli.add_argument(
        "--spread",
        type=int,
        default=1,
        help="put the N Releases in this many namespaces, NAMESPACE-0..K-1 (above 1, the "
        "operator watches all namespaces, as a cluster-wide install does)",
    )
    cli.add_argument(
        "--probe-namespace",
        default="bench-scale-probes",
        help="the probes' and undos' (give --namespace's to put them behind the storm's keys)",
    )
    cli.add_argument("--clients", type=int, default=8, help="parallel API writers")
    cli.add_argument("--workers", type=int, help="GREENLIGHT_WORKERS (default: the operator's)")
    cli.add_argument(
        "--phases", default="idle,storm,restart", help="of idle,storm,restart (create: always)"
    )
    cli.add_argument("--soak", type=float, default=0, help="idle seconds at the end, RSS sampled")
    cli.add_argument("--profile", help="record one phase with py-spy to this file (raw)")
    cli.add_argument(
        "--profile-phase",
        default="restart",
        choices=["storm", "restart"],
        help="the phase --profile records",
    )
    cli.add_argument(
        "--gateway",
        metavar="NAMESPACE/NAME",
        help="every Release behind this Gateway (spec.traffic; hack/gateway up: "
        "greenlight-gateway/greenlight), to compare the operator's memory and CPU",
    )
    args = cli.parse_args()
    phases = set(args.phases.split(","))
    config.load_kube_config()
    ns, n, probe_ns = args.namespace, args.releases, args.probe_namespace
    names = [f"app-{i:05d}" for i in range(n)]
    probes = [f"probe-{i}" for i in range(max(args.storm_probes, 1))]
    undos = [f"undo-{i}" for i in range(args.undos)]
    spread = [ns] if args.spread == 1 else [f"{ns}-{k}" for k in range(args.spread)]
    home = {x: spread[i % len(spread)] for i, x in enumerate(names)}
    home |= {x: probe_ns for x in probes + undos}
    namespaces = list(dict.fromkeys([*spread, probe_ns]))  # (one when they are the same)
    watched = namespaces if args.spread == 1 else []  # []: all namespaces
    fresh_namespace(*namespaces)
    custom = client.CustomObjectsApi()
    pool = ThreadPoolExecutor(args.clients)
    started: dict[tuple[str, int], float] = {}
    settle = 300 + n / 10  # seconds for trailing writes to stop (10,000 slots scaling down)

    def create(name: str) -> None:
        started[(name, 1)] = time.perf_counter()
        body = blue_green_release(name, "example/app:1", 1)
        if name.startswith("undo-"):  # the previous revision stays warm for the undo
            body["spec"]["strategy"]["blueGreen"]["scaleDownDelaySeconds"] = 3600
        if args.gateway:
            gw_ns, gw_name = args.gateway.split("/")
            parent = {"name": gw_name, "namespace": gw_ns}
            body["spec"]["traffic"] = {"gatewayAPI": {"parentRefs": [parent]}}
        custom.create_namespaced_custom_object(GROUP, VERSION, home[name], PLURAL, body)

    def set_image(name: str, revision: int) -> None:
        started[(name, revision)] = time.perf_counter()
        new = blue_green_release(name, f"example/app:{revision}", 1)
        body = {"spec": {"template": new["spec"]["template"]}}
        custom.patch_namespaced_custom_object(GROUP, VERSION, home[name], PLURAL, name, body)

    def elapsed(keys: list[tuple[str, int]]) -> list[float]:
        return [live.healthy[k] - started[k] for k in keys]

    def hash_of(name: str) -> str:
        got = custom.get_namespaced_custom_object(GROUP, VERSION, home[name], PLURAL, name)
        return str(got["status"]["liveHash"])

    def profile(operator: Operator, phase: str) -> subprocess.Popen[bytes] | None:
        if not args.profile or args.profile_phase != phase:
            return None
        return subprocess.Popen([*PY_SPY, "--pid", str(operator.process.pid), "-o", args.profile])

    def stop(profiler: subprocess.Popen[bytes] | None) -> None:
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its file and exits
            profiler.wait(timeout=60)

    operator = Operator(watched, args.workers)
    live = Live(custom, namespaces)
    outside = Probes(probe_ns, probes + undos)
    try:
        begin = time.perf_counter()
        everyone = [*names, *probes, *undos]
        list(pool.map(create, everyone))
        first = [(x, 1) for x in everyone]
        live.wait(first, timeout=60 + len(everyone))
        total = max(live.healthy[k] for k in first) - begin
        print(f"create: {len(everyone)} Releases Healthy in {total:.1f} s", end=" ")
        print(f"({len(everyone) / total:.1f}/s);")
        print(f"  per Release create -> Healthy {stats(elapsed(first))};", end=" ")
        print(operator.figures(), flush=True)
        revision = {x: 1 for x in everyone}

        def release(name: str) -> tuple[str, int]:
            revision[name] += 1
            set_image(name, revision[name])
            return name, revision[name]

        if "idle" in phases:
            live.quiet(seconds=3, timeout=settle)
            operator.quiet(seconds=10, timeout=settle)  # no reconcile for 10 s
            rss = rss_now(operator.process.pid)
            print(f"idle: RSS at {len(everyone)} Releases {rss:.1f} MiB", end="")
            print(f" (peak so far {operator.peak_rss():.1f} MiB);", flush=True)
            idle = []
            for _ in range(args.probes):
                idle.append(release(probes[0]))
                live.wait([idle[-1]], timeout=60)
            if idle:
                print(f"  probe apply -> Healthy on the new revision, {len(idle)} releases: ")
                print(f"  {stats(elapsed(idle))}; {operator.figures()}", flush=True)

        if "storm" in phases:
            first_hash = {x: hash_of(x) for x in undos}
            undone = [release(x) for x in undos]
            live.wait(undone, timeout=120)
            live.quiet(seconds=3, timeout=settle)
            operator.figures()
            profiler = profile(operator, "storm")
            begin = time.perf_counter()
            storm = pool.map(release, names)  # lazily: the probes go in while it runs
            time.sleep(0.5)
            commands: dict[str, float] = {}
            candidates: dict[str, tuple[str, int]] = {}
            for probe, undo in zip(probes, [*undos, *[None] * len(probes)], strict=False):
                candidates[probe] = release(probe)
                if undo is not None:  # (the API call, not a kubectl process's start-up under load)
                    commands[undo] = time.perf_counter()
                    command = {"metadata": {"annotations": {"greenlight.dev/undo": ""}}}
                    custom.patch_namespaced_custom_object(
                        GROUP, VERSION, probe_ns, PLURAL, undo, command
                    )
                time.sleep(1.0)
            second = list(storm)
            live.wait([*second, *candidates.values()], timeout=60 + 2 * n)
            total = max(live.healthy[k] for k in second) - begin
            stop(profiler)
            flips, undo_times, queued, rollout = [], [], [], []
            for probe, key in candidates.items():
                h = hash_of(probe)
                at = outside.selected_after(probe, h, started[key])
                assert at is not None and h in outside.available, (probe, h)
                flips.append(at - outside.available[h])
                queued.append(outside.created[h] - started[key])
                rollout.append(outside.available[h] - outside.created[h])
            deadline = time.monotonic() + 120
            while len(undo_times) < len(commands) and time.monotonic() < deadline:
                undo_times = [
                    at - t
                    for x, t in commands.items()
                    if (at := outside.selected_after(x, first_hash[x], t)) is not None
                ]
                time.sleep(0.2)
            print(f"storm: {n} Releases live on revision 2 in {total:.1f} s ({n / total:.1f}/s);")
            print(f"  per Release apply -> Healthy {stats(elapsed(second))};")
            print(
                f"  {len(flips)} probes released mid-storm: candidate available -> flipped ", end=""
            )
            print(stats(flips, "ms", 1000) + ";")
            print(f"  {len(undo_times)} of {len(commands)} undos mid-storm: annotated -> ", end="")
            print(f"live Service back {stats(undo_times, 'ms', 1000) if undo_times else '-'};")
            print(f"  apply -> Healthy of the probes {stats(elapsed(list(candidates.values())))}:")
            print(f"    apply -> candidate Deployment created {stats(queued)},")
            print(f"    created -> all its pods available {stats(rollout)};")
            print(f"  {operator.figures()}", flush=True)

        if "restart" not in phases:
            return 0
        live.quiet(seconds=5, timeout=settle)
        operator.stop()
        others = live.modified.total() - live.modified[probes[0]]
        begin = time.perf_counter()
        operator = Operator(watched, args.workers)
        profiler = profile(operator, "restart")
        probe = release(probes[0])
        live.wait([probe], timeout=60 + n)
        while operator.reconciled() < len(everyone):
            time.sleep(0.1)
        caught_up = time.perf_counter() - begin
        stop(profiler)
        writes = live.modified.total() - live.modified[probes[0]] - others
        print("restart: a probe applied as the operator starts is Healthy in ", end="")
        print(f"{elapsed([probe])[0]:.2f} s; all {len(everyone)} reconciled once in ", end="")
        print(f"{caught_up:.1f} s, rewriting {writes} of the other Releases;", end=" ")
        print(operator.figures(), flush=True)
        if args.soak:
            live.quiet(seconds=5, timeout=settle)
            operator.figures()
            samples = []
            end = time.monotonic() + args.soak
            while time.monotonic() < end:
                samples.append(rss_now(operator.process.pid))
                time.sleep(10)
            print(f"soak: {args.soak:.0f} s idle with {len(everyone)} Releases: RSS first ", end="")
            print(
                f"{samples[0]:.0f} MiB, min {min(samples):.0f}, max {max(samples):.0f}, last ",
                end="",
            )
            print(
                f"{samples[-1]:.0f} MiB ({len(samples)} samples); {operator.figures()}", flush=True
            )
    finally:
        operator.stop()
        kubectl("delete", "namespace", *namespaces, "--wait=false")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
