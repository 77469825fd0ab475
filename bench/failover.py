"""Leader failover: two operator replicas, the leader killed with SIGKILL (or stopped with
SIGTERM), and how long until the new leader acts.

With N Releases Healthy under two `greenlight run` replicas (default Lease settings), each
round: SIGKILL the Lease holder and at the same moment release a new image of a "probe" Release;
from an outside watch, time from the kill to
  takeover      the Lease naming the other replica,
  first action  the probe's new Deployment created (the new leader's first write for it),
  Healthy       the probe live on its new revision.
The killed replica is then started again (a fresh standby) for the next round. What sets the
figure: the standby watches the Lease, times the leader's last renewal by its own clock when the
watch delivers it, and takes the Lease `--lease-duration` (15 s) after that, to the moment.
Renewals come every `--retry-period` (2 s), so the last one landed 0 to 2 s before the kill:
expect lease-duration - retry-period .. lease-duration (13-15 s, 14 s on average), plus one
Lease read and write, then one reconcile of the probe (queued while standing by, URGENT).

`--signal TERM` stops the leader as a rolling update or a drain does: it stops its workers and
releases the Lease, and the standby's watch sees the release: expect well under a second plus
the old leader's shutdown.

    hack/cluster up && eval "$(hack/cluster env)"
    .venv/bin/python bench/failover.py --releases 20 --rounds 3 [--signal TERM]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import threading
import time
from typing import Any

from kubernetes import client, config, watch

from common import GROUP, PLURAL, VERSION, Operator, blue_green_release, fresh_namespace, kubectl


class Watcher:
    """The Lease's holder and the probe's Deployments, with the time each change was seen."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.holder: tuple[float, str] = (0.0, "")
        self.deployments: dict[str, float] = {}
        self.changed = threading.Condition()
        threading.Thread(target=self._follow, args=("lease",), daemon=True).start()
        threading.Thread(target=self._follow, args=("deployments",), daemon=True).start()

    def _follow(self, what: str) -> None:
        if what == "lease":
            fn: Any = client.CoordinationV1Api().list_namespaced_lease
            kw = {"field_selector": "metadata.name=greenlight"}
        else:
            fn = client.AppsV1Api().list_namespaced_deployment
            kw = {"label_selector": "greenlight.dev/release=probe"}
        while True:
            for event in watch.Watch().stream(fn, self.ns, timeout_seconds=60, **kw):
                obj, now = event["object"], time.perf_counter()
                with self.changed:
                    if what == "lease":
                        holder = obj.spec.holder_identity or ""
                        if holder and holder != self.holder[1]:
                            self.holder = (now, holder)
                    elif event["type"] == "ADDED":
                        self.deployments.setdefault(obj.metadata.name, now)
                    self.changed.notify_all()

    def until(self, predicate: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not (found := predicate()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SystemExit(f"timed out waiting for {what}")
                self.changed.wait(min(left, 1.0))
            return found


def main() -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--releases", type=int, default=20)
    cli.add_argument("--rounds", type=int, default=3)
    cli.add_argument("--namespace", default="bench-failover")
    cli.add_argument("--signal", choices=("KILL", "TERM"), default="KILL")
    args = cli.parse_args()
    config.load_kube_config()
    ns = args.namespace
    fresh_namespace(ns)
    custom = client.CustomObjectsApi()
    watcher = Watcher(ns)
    replicas = {name: Operator(ns, name=name) for name in ("replica-0", "replica-1")}
    figures: dict[str, list[float]] = {"takeover": [], "first action": [], "Healthy": []}
    try:
        for i in range(args.releases):
            body = blue_green_release(f"app-{i:03d}", "example/app:1", 1)
            custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)
        custom.create_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, blue_green_release("probe", "example/app:1", 1)
        )

        def healthy(name: str, revision: int) -> bool:
            st = (
                custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name).get("status")
                or {}
            )
            return st.get("phase") == "Healthy" and st.get("liveRevision") == revision

        def wait_healthy(name: str, revision: int, timeout: float) -> float:
            deadline = time.monotonic() + timeout
            while not healthy(name, revision):
                if time.monotonic() > deadline:
                    raise SystemExit(f"{name} not Healthy on revision {revision}")
                time.sleep(0.05)
            return time.perf_counter()

        for i in range(args.releases):
            wait_healthy(f"app-{i:03d}", 1, 60 + args.releases)
        wait_healthy("probe", 1, 60)
        for n in range(1, args.rounds + 1):
            _, leader = watcher.until(lambda: watcher.holder[1] in replicas and watcher.holder,
                                      30, "a leader")  # fmt: skip
            for r in replicas.values():  # every replica up (its /metrics answers) ...
                while True:
                    try:
                        r.metrics()
                        break
                    except OSError:
                        time.sleep(0.2)
            time.sleep(4)  # ... and has seen the leader renew (two retry periods) before the kill
            before = set(watcher.deployments)
            replicas[leader].process.send_signal(getattr(signal, f"SIG{args.signal}"))
            killed = time.perf_counter()
            revision = n + 1
            new = blue_green_release("probe", f"example/app:{revision}", 1)
            custom.patch_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, "probe", {"spec": {"template": new["spec"]["template"]}}
            )
            took, holder = watcher.until(
                lambda gone=leader: watcher.holder[1] not in ("", gone) and watcher.holder, 120,
                "a new leader",
            )  # fmt: skip
            acted = watcher.until(
                lambda b=before: min((t for d, t in watcher.deployments.items() if d not in b),
                                     default=None), 120, "the probe's new Deployment",
            )  # fmt: skip
            live = wait_healthy("probe", revision, 120)
            row = {"takeover": took, "first action": acted, "Healthy": live}
            for k, t in row.items():
                figures[k].append(t - killed)
            print(f"round {n}: {leader} sent SIG{args.signal}; {holder} took the Lease after "
                  f"{took - killed:.2f} s, created the probe's Deployment after "
                  f"{acted - killed:.2f} s, probe Healthy after {live - killed:.2f} s")  # fmt: skip
            replicas[leader].process.wait()
            del replicas[leader]
            fresh = f"replica-{n + 1}"
            replicas[fresh] = Operator(ns, name=fresh)
        print(
            f"failover (SIG{args.signal} to the leader, default Lease settings unless given):"
            " median "
            + ", ".join(f"{k} {statistics.median(v):.2f} s" for k, v in figures.items())
            + f" over {args.rounds} rounds"
        )
    finally:
        for r in replicas.values():
            r.stop()
        kubectl("delete", "namespace", ns, "--wait=false")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
