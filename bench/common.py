"""What the bench scripts share: kubectl, a fresh namespace, a blue-green Release, and the
operator as a subprocess (its peak RSS, CPU and /metrics). The scripts run as files
(`python bench/x.py`), so this is imported as `common` from their own directory; it must not
import tests/ (the benches measure, the tests assert)."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client import parser

ROOT = Path(__file__).resolve().parents[1]
GROUP, VERSION, PLURAL = "greenlight.dev", "v1alpha1", "releases"
BIN = Path(sys.executable).parent


def kubectl(*args: str, input: str | None = None) -> str:
    out = subprocess.run(
        [str(BIN / "kubectl"), *args], input=input, capture_output=True, text=True, check=True
    )
    return out.stdout


def fresh_namespace(*names: str) -> None:
    """The CRD applied and established; the namespaces deleted (waiting for them to go) and
    created anew."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    subprocess.run([str(ROOT / "hack" / "wait-crds")], check=True)
    kubectl("delete", "namespace", *names, "--ignore-not-found", "--wait=true", "--timeout=600s")
    docs = [f"{{apiVersion: v1, kind: Namespace, metadata: {{name: {n}}}}}" for n in names]
    kubectl("create", "-f", "-", input="\n---\n".join(docs))


def blue_green_release(name: str, image: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
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


def settled(obj: Any) -> bool:
    """A Deployment (or ReplicaSet) whose controller has seen its spec and whose every wanted
    pod is up to date and available, none more."""
    want, st = obj.spec.replicas, obj.status
    updated = getattr(st, "updated_replicas", want)  # a ReplicaSet's pods are all up to date
    return bool(
        want > 0
        and (st.observed_generation or 0) >= obj.metadata.generation
        and updated == want == st.available_replicas == st.replicas
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def process_figures(pid: int) -> tuple[float, float]:
    """Peak RSS (MiB) and CPU seconds (user + system) of a process so far."""
    rss = next(
        int(line.split()[1]) / 1024
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    )
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return rss, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _control_plane() -> list[tuple[int, list[str]]]:
    """The local kwok cluster's processes (GREENLIGHT_CLUSTER_NAME, else greenlight): pid and
    command line; none for another cluster (kind, remote): they are not ours to see."""
    where = f"/clusters/{os.environ.get('GREENLIGHT_CLUSTER_NAME', 'greenlight')}/bin/"
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = [a.decode() for a in (proc / "cmdline").read_bytes().split(b"\0")]
        except OSError:
            continue
        if where in argv[0]:
            found.append((int(proc.name), argv))
    return found


def control_plane_cpu() -> dict[str, float]:
    """CPU seconds so far of the local cluster's processes, by binary."""
    found: dict[str, float] = {}
    for pid, argv in _control_plane():
        name = argv[0].rsplit("/", 1)[1]
        try:
            found[name] = found.get(name, 0.0) + process_figures(pid)[1]
        except (OSError, StopIteration):
            continue
    return found


class DeploymentQueue:
    """kube-controller-manager's Deployment work queue (the local cluster's), its depth read
    from its /metrics every 5 s: Deployments it has not yet synced. `peak()`: the deepest
    since the last call; None on another cluster."""

    def __init__(self) -> None:
        self._peak: float | None = None
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        tls = ssl._create_unverified_context()  # its serving certificate is self-signed
        while True:
            for _, argv in _control_plane():
                port = next((a.split("=")[1] for a in argv if a.startswith("--secure-port=")), None)
                if not argv[0].endswith("/kube-controller-manager") or port is None:
                    continue
                try:
                    url = f"https://127.0.0.1:{port}/metrics"
                    text = urllib.request.urlopen(url, context=tls, timeout=5).read().decode()
                except OSError:
                    continue
                for family in parser.text_string_to_metric_families(text):
                    for sample in family.samples:
                        if sample.name == "workqueue_depth" and sample.labels.get("name") == (
                            "deployment"
                        ):
                            self._peak = max(self._peak or 0.0, sample.value)
            time.sleep(5)

    def peak(self) -> float | None:
        found, self._peak = self._peak, None
        return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Operator:
    """`greenlight run -n NS` as a subprocess (log: $BENCH_LOG), with its metrics endpoint."""

    def __init__(
        self, ns: str | list[str], workers: int | None = None, name: str | None = None
    ) -> None:
        """`ns`: the namespaces watched (an empty list: all, as a cluster-wide install).
        `workers`: GREENLIGHT_WORKERS (None: the operator's default). `name`: a replica's
        Lease identity (POD_ID) and Events' instance (HOSTNAME); its log is then $BENCH_LOG
        with the name appended."""
        self.port = _free_port()
        self.log = os.environ.get("BENCH_LOG", "/tmp/greenlight-bench-operator.log")
        namespaces = [ns] if isinstance(ns, str) else ns
        command = [str(BIN / "greenlight"), "run", "--metrics-port", str(self.port)]
        command += [f"--namespace={n}" for n in namespaces]
        env = dict(os.environ)
        if workers is not None:
            env["GREENLIGHT_WORKERS"] = str(workers)
        if name is not None:
            env.update(POD_ID=name, HOSTNAME=name)
            self.log = f"{self.log}.{name}"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        # a bench stopped with SIGTERM unwinds (its `finally` stops this operator) instead of
        # leaving it running
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        self.seen: dict[str, float] = {}
        self.cpu = 0.0
        self.phase_cpu = 0.0
        """CPU seconds between the last two `figures` calls."""
        self.control_plane = control_plane_cpu()
        self.deployment_queue = DeploymentQueue()

    def metrics(self) -> dict[str, float]:
        """Reconciles by result ("planned", ...), the reconcile-time histogram's samples
        ("seconds_sum", "seconds_count", ...) and the queue wait's buckets ("wait LANE LE")."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics").read().decode()
        found: dict[str, float] = {}
        for family in parser.text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "greenlight_reconciles_total":
                    found[sample.labels["result"]] = sample.value
                elif sample.name.startswith("greenlight_reconcile_seconds_"):
                    found[sample.name.removeprefix("greenlight_reconcile_")] = sample.value
                elif sample.name == "greenlight_writes_total":
                    found[f"writes {sample.labels['kind']}"] = sample.value
                elif sample.name == "greenlight_watch_events_total":
                    found[f"events {sample.labels['informer']}"] = sample.value
                elif sample.name == "greenlight_queue_wait_seconds_bucket":
                    found[f"wait {sample.labels['lane']} {sample.labels['le']}"] = sample.value
        return found

    def wait_up(self, timeout: float = 60) -> None:
        """Until its metrics answer and its informers have listed (its log says so)."""

        def up() -> bool:
            try:
                self.metrics()
            except OSError:
                return False
            return "caches filled" in Path(self.log).read_text(errors="replace")

        wait(up, "the operator up, its caches filled", timeout)

    def reconciled(self) -> float:
        """Reconciles so far, whatever their result (0 until the metrics endpoint is up)."""
        try:
            found = self.metrics()
        except OSError:
            return 0
        return _reconciles(found)

    def figures(self) -> str:
        """Since the last call: reconciles by result, mean reconcile time, CPU; peak RSS; the
        control plane's CPU and kube-controller-manager's deepest Deployment queue."""
        now = self.metrics()
        delta = {k: v - self.seen.get(k, 0) for k, v in now.items()}
        self.seen = now
        counts = ", ".join(
            f"{k} {delta[k]:.0f}" for k in ("planned", "stale", "expecting", "error") if k in delta
        )
        mean = 1000 * delta.get("seconds_sum", 0) / max(delta.get("seconds_count", 0), 1)
        rss, cpu = process_figures(self.process.pid)
        self.cpu, phase_cpu = cpu, cpu - self.cpu
        self.phase_cpu = phase_cpu
        reconciles = _reconciles(delta)
        plane, before, q = control_plane_cpu(), self.control_plane, self.deployment_queue.peak()
        self.control_plane = plane
        others = ", ".join(
            f"{name} {plane[name] - before.get(name, 0.0):.1f} s"
            for name in sorted(plane, key=lambda n: -(plane[n] - before.get(n, 0.0)))
        )
        return (
            f"reconciles: {counts}; mean planned reconcile {mean:.1f} ms; operator CPU in this "
            f"phase {phase_cpu:.1f} s ({1000 * phase_cpu / max(reconciles, 1):.1f} ms per "
            f"reconcile), peak RSS {rss:.0f} MiB{_waits(delta)}"
            + _events(delta)
            + (f"; control plane CPU: {others}" if others else "")
            + (f"; kube-controller-manager's Deployment queue at most {q:.0f} deep" if q else "")
        )

    def peak_rss(self) -> float:
        return process_figures(self.process.pid)[0]

    def quiet(self, seconds: float, timeout: float) -> None:
        """Until the operator has started no reconcile for `seconds` (its /metrics)."""
        deadline = time.monotonic() + timeout
        before, since = self.reconciled(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(1.0)
            now = self.reconciled()
            if now != before:
                before, since = now, time.monotonic()
            elif time.monotonic() - since >= seconds:
                return
        raise SystemExit(f"the operator still reconciling after {timeout} s")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def _reconciles(found: dict[str, float]) -> float:
    """Reconciles of every result, from `Operator.metrics()` (or a difference of two)."""
    return sum(
        v for k, v in found.items() if not k.startswith(("seconds_", "wait ", "events ", "writes "))
    )


def _events(delta: dict[str, float]) -> str:
    """The objects each informer received in the phase, and the writes by kind, most first."""
    out = ""
    for prefix, title in (("events ", "watch events"), ("writes ", "writes")):
        found = {k.removeprefix(prefix): v for k, v in delta.items() if k.startswith(prefix)}
        ranked = ", ".join(
            f"{k} {v:.0f}" for k, v in sorted(found.items(), key=lambda kv: -kv[1]) if v
        )
        out += f"; {title}: {ranked}" if ranked else ""
    return out


def _waits(delta: dict[str, float]) -> str:
    """The work queue's wait p99 per lane, as the histogram bucket that holds it."""
    lanes: dict[str, dict[float, float]] = {}
    for k, v in delta.items():
        if k.startswith("wait "):
            _, lane, le = k.split()
            lanes.setdefault(lane, {})[float(le)] = v
    shown = []
    for lane in ("traffic", "urgent", "bulk"):
        buckets = sorted(lanes.get(lane, {}).items())
        if buckets and buckets[-1][1]:
            p99 = next(le for le, n in buckets if n >= 0.99 * buckets[-1][1])
            shown.append(f"{lane} <= {p99:g} s ({buckets[-1][1]:.0f})")
    return f"; queue wait p99 {', '.join(shown)}" if shown else ""


def wait(predicate: Any, what: str, timeout: float = 120, interval: float = 0.05) -> None:
    """Poll `predicate` until it is true; exit the bench naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(interval)
