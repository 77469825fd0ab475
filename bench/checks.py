"""Promotion gates: how fast a failed post-promotion check flips live traffic back, and what a
waiting check costs the operator.

flip-back: a Release whose post-promotion check calls an HTTP server in this process that
answers 500; the time runs from the moment that server answered (the failing measurement)
to the watch event showing the live Service back on the previous revision.

idle: N Releases, each held at a pre-promotion check that has taken its first measurement
and waits `--interval` for the next; the operator's CPU over a window with no measurement due,
against the same window for N Releases without checks.

judging: N rolling Releases held at an analysis step whose compare check (`--metrics` metrics)
judges every `--interval` for the whole window; each range query is answered by a Prometheus
stand-in in this process with `--samples` values (one series, the same distribution on both
sides: every judgement passes and the check goes on). The operator's CPU over the window, per
judgement.

    hack/cluster up && eval "$(hack/cluster env)"
    .venv/bin/python bench/checks.py flip-back --rounds 20
    .venv/bin/python bench/checks.py idle --releases 1000
    .venv/bin/python bench/checks.py judging --releases 200
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import yaml
from kubernetes import client, config, watch

from common import Operator, blue_green_release, fresh_namespace, kubectl, percentile, wait

LABEL_HASH = "greenlight.dev/template-hash"


class Failing:
    """An HTTP server on 127.0.0.1 that answers 500 and stamps when it answered."""

    def __init__(self) -> None:
        self.answered: list[float] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()
                outer.answered.append(time.time())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/post"


def selector_changes(
    ns: str, name: str, into: list[tuple[float, str]], stop: threading.Event
) -> None:
    core = client.CoreV1Api()
    while not stop.is_set():
        for event in watch.Watch().stream(
            core.list_namespaced_service, ns, field_selector=f"metadata.name={name}",
            timeout_seconds=5,
        ):  # fmt: skip
            selected = (event["object"].spec.selector or {}).get(LABEL_HASH)
            if selected and (not into or into[-1][1] != selected):
                into.append((time.time(), selected))
            if stop.is_set():
                return


def flip_back(rounds: int, ns: str) -> None:
    fresh_namespace(ns)
    server = Failing()
    operator = Operator(ns)
    changes: list[tuple[float, str]] = []
    stop = threading.Event()
    threading.Thread(target=selector_changes, args=(ns, "fb", changes, stop), daemon=True).start()
    latencies = []
    try:
        base = blue_green_release("fb", "example/app:0", 2)
        kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(base))
        wait(lambda: len(changes) >= 1, "the first release")
        for i in range(1, rounds + 1):
            body = copy.deepcopy(base)
            body["spec"]["template"]["spec"]["containers"][0]["image"] = f"example/app:{i}"
            body["spec"]["strategy"]["blueGreen"]["postPromotion"] = [
                {"name": "fail", "http": {"url": server.url}}
            ]
            seen, answered = len(changes), len(server.answered)
            kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(body))
            wait(lambda s=seen: len(changes) >= s + 2, f"round {i}: the flip and the flip back")
            assert changes[-1][1] == changes[-3][1], "back on the previous revision"
            failed_at = server.answered[answered]
            latencies.append((changes[-1][0] - failed_at) * 1000)
            print(f"round {i:3d}: live back {latencies[-1]:6.1f} ms after the failing answer")
            base = body  # the next round releases on top of the rolled-back spec
            del base["spec"]["strategy"]["blueGreen"]["postPromotion"]
        print(
            f"\nflip back over {rounds} rounds: p50 {percentile(latencies, 50):.1f} ms, "
            f"p99 {percentile(latencies, 99):.1f} ms, max {max(latencies):.1f} ms; "
            f"{operator.figures()}"
        )
    finally:
        stop.set()
        operator.stop()
        kubectl("delete", "namespace", ns, "--wait=false")


def idle(releases: int, ns: str, interval: str, window: float, with_checks: bool) -> None:
    fresh_namespace(ns)
    server = Failing()  # never called during the window: the checks wait for their interval
    operator = Operator(ns)
    try:
        docs = [blue_green_release(f"r{i}", "example/app:1", 1) for i in range(releases)]
        kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(docs))
        wait(lambda: count_phase(ns, "Healthy") == releases, "all Healthy", 900)
        for d in docs:
            d["spec"]["template"]["spec"]["containers"][0]["image"] = "example/app:2"
            if with_checks:
                d["spec"]["strategy"]["blueGreen"]["prePromotion"] = [{
                    "name": "soak", "http": {"url": server.url.replace("/post", "/ok")},
                    "count": 1000, "failureLimit": 1000, "interval": interval,
                }]  # fmt: skip
        kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(docs))
        if with_checks:
            wait(lambda: measured(ns) == releases, "every check measured once", 900)
        else:
            wait(lambda: count_phase(ns, "Healthy", revision=2) == releases, "all on 2", 900)
        operator.figures()
        time.sleep(window)  # the measured window: nothing is due in it
        print(f"{releases} Releases, checks {'waiting' if with_checks else 'none'}, "
              f"{window:.0f} s window: {operator.figures()}")  # fmt: skip
    finally:
        operator.stop()
        kubectl("delete", "namespace", ns, "--wait=false")


class RangeAnswers:
    """Answers /api/v1/query_range with one series of `samples` values (N(40, 4) ms), the
    same body every time; counts the queries."""

    def __init__(self, samples: int) -> None:
        rng = random.Random(1)
        values = [[1_700_000_000 + i, f"{rng.gauss(0.040, 0.004):.6f}"] for i in range(samples)]
        body = {"status": "success", "data": {"resultType": "matrix",
                "result": [{"metric": {}, "values": values}]}}  # fmt: skip
        payload = json.dumps(body).encode()
        self.queries = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.queries += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def judging(
    releases: int, ns: str, metrics: int, samples: int, interval: str, window: float
) -> None:
    fresh_namespace(ns)
    prometheus = RangeAnswers(samples)
    operator = Operator(ns)
    check = {
        "name": "judge", "interval": interval, "count": 1000, "timeoutSeconds": 30,
        "compare": {"address": prometheus.url, "range": "5m", "step": "1s", "metrics": [
            {"name": f"m{i}", "query": f'm{i}{{hash="$(TEMPLATE_HASH)"}}',
             "baselineQuery": f'm{i}{{hash="$(BASELINE_HASH)"}}'} for i in range(metrics)]},
    }  # fmt: skip
    rolling = {"maxSurge": 1, "maxUnavailable": 0,
               "steps": [{"setWeight": 50}, {"analysis": {"checks": [check]}}]}  # fmt: skip
    try:
        docs = [blue_green_release(f"r{i}", "example/app:1", 2) for i in range(releases)]
        for d in docs:
            d["spec"]["strategy"] = {"rolling": rolling}
        kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(docs))
        wait(lambda: count_phase(ns, "Healthy") == releases, "all Healthy", 900)
        for d in docs:
            d["spec"]["template"]["spec"]["containers"][0]["image"] = "example/app:2"
        kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(docs))
        wait(lambda: measured(ns) == releases, "every Release judged once", 900)
        operator.figures()
        before = prometheus.queries
        started = time.monotonic()
        time.sleep(window)
        judgements = (prometheus.queries - before) / (2 * metrics)
        figures = operator.figures()
        seconds = time.monotonic() - started
        print(
            f"{releases} Releases judging ({metrics} metrics x 2 x {samples} samples, every"
            f" {interval}), {seconds:.0f} s window: {judgements:.0f} judgements; {figures}"
        )
        print(f"operator CPU per judgement: {1000 * operator.phase_cpu / max(judgements, 1):.1f}"
              " ms")  # fmt: skip
    finally:
        operator.stop()
        kubectl("delete", "namespace", ns, "--wait=false")


def releases_in(ns: str) -> list[dict[str, Any]]:
    return json.loads(kubectl("get", "releases", "-n", ns, "-o", "json"))["items"]


def count_phase(ns: str, phase: str, revision: int | None = None) -> int:
    return sum(
        1
        for r in releases_in(ns)
        if (r.get("status") or {}).get("phase") == phase
        and (revision is None or r["status"].get("liveRevision") == revision)
    )


def measured(ns: str) -> int:
    return sum(
        1
        for r in releases_in(ns)
        if any(c.get("measurements") for c in (r.get("status") or {}).get("checks", []))
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="bench", required=True)
    fb = sub.add_parser("flip-back")
    fb.add_argument("--rounds", type=int, default=20)
    fb.add_argument("--namespace", default="bench-flip-back")
    idl = sub.add_parser("idle")
    idl.add_argument("--releases", type=int, default=1000)
    idl.add_argument("--interval", default="10m")
    idl.add_argument("--window", type=float, default=60)
    idl.add_argument("--namespace", default="bench-checks-idle")
    jdg = sub.add_parser("judging")
    jdg.add_argument("--releases", type=int, default=200)
    jdg.add_argument("--metrics", type=int, default=5)
    jdg.add_argument("--samples", type=int, default=1000)
    jdg.add_argument("--interval", default="10s")
    jdg.add_argument("--window", type=float, default=60)
    jdg.add_argument("--namespace", default="bench-checks-judging")
    args = parser.parse_args()
    config.load_kube_config()
    if args.bench == "flip-back":
        flip_back(args.rounds, args.namespace)
    elif args.bench == "judging":
        judging(args.releases, args.namespace, args.metrics, args.samples, args.interval,
                args.window)  # fmt: skip
    else:
        idle(args.releases, args.namespace + "-base", args.interval, args.window, False)
        idle(args.releases, args.namespace, args.interval, args.window, True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
