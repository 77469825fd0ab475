"""Rolling release vs plain Deployment: end-to-end time of the same rollout, as a ratio.

A 10-replica rolling Release and a plain Deployment with the same pod template, the same
maxSurge / maxUnavailable (RollingUpdate) and the same kwok readiness delay are each moved to a new
image, one after the other (the order alternates each round so neither always goes first), in one
run against a real cluster. A rollout's time runs from just before `kubectl apply` to the watch
event that shows it finished:

  Deployment  observedGeneration caught up, and replicas == updated == available == spec.replicas
              (no old pod left)
  Release     phase Healthy on the new revision, with all its replicas available and no pod left
              on any other revision (status.revisions)

The operator runs as a subprocess, as it would in a cluster; kube-controller-manager runs the
Deployment.

    hack/cluster up && eval "$(hack/cluster env)"
    .venv/bin/python bench/rolling_vs_deployment.py --rounds 5
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import yaml
from kubernetes import client, config, watch

from common import GROUP, PLURAL, VERSION, Operator, fresh_namespace, kubectl

READY_AFTER = "greenlight.dev/test-ready-after"  # hack/kwok-stages.yaml: Ready once this has passed
PROBE = {"httpGet": {"path": "/healthz", "port": 8080}}


def template(app: str, image: str, delay: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": app}, "annotations": {READY_AFTER: delay}},
        "spec": {"containers": [{"name": "app", "image": image, "readinessProbe": PROBE}]},
    }


Shape = tuple[int, str, str, str]  # replicas, maxSurge, maxUnavailable, readiness delay


def release(name: str, image: str, shape: Shape) -> dict[str, Any]:
    replicas, surge, unavailable, delay = shape
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Release",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "template": template(name, image, delay),
            "service": {"name": name, "ports": [{"port": 80, "targetPort": 8080}]},
            "strategy": {"rolling": bounds(surge, unavailable)},
            "revisionHistoryLimit": 2,
        },
    }


def deployment(name: str, image: str, shape: Shape) -> dict[str, Any]:
    replicas, surge, unavailable, delay = shape
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": template(name, image, delay),
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": bounds(surge, unavailable),
            },
            "revisionHistoryLimit": 2,
        },
    }


def bounds(surge: str, unavailable: str) -> dict[str, int | str]:
    """maxSurge / maxUnavailable, the same shape in `strategy.rolling` and `rollingUpdate`."""
    return {
        "maxSurge": surge if surge.endswith("%") else int(surge),
        "maxUnavailable": unavailable if unavailable.endswith("%") else int(unavailable),
    }


def deployment_done(d: dict[str, Any], replicas: int) -> bool:
    st, meta = d.get("status") or {}, d["metadata"]
    return (
        st.get("observedGeneration", 0) >= meta["generation"]
        and st.get("replicas") == st.get("updatedReplicas") == replicas
        and st.get("availableReplicas") == replicas
    )


def release_done(r: dict[str, Any], replicas: int, revision: int) -> bool:
    st = r.get("status") or {}
    pods = {x["revision"]: x["replicas"] for x in st.get("revisions", []) if x["replicas"]}
    return (
        st.get("phase") == "Healthy"
        and st.get("liveRevision") == revision
        and st.get("availableReplicas") == replicas
        and pods == {revision: replicas}
    )


def image(obj: dict[str, Any]) -> str:
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


def timed_apply(
    body: dict[str, Any], ns: str, lister: Callable[..., Any], done: Callable[[Any], bool]
) -> float:
    """Seconds from just before `kubectl apply` to the first watch event where `done` holds."""
    name = body["metadata"]["name"]
    selector = f"metadata.name={name}"
    listed = lister(field_selector=selector, _preload_content=False)
    rv = json.loads(listed.data)["metadata"]["resourceVersion"]
    start = time.perf_counter()
    kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(body))
    deadline = start + 300
    while time.perf_counter() < deadline:
        stream = watch.Watch().stream(
            lister, field_selector=selector, resource_version=rv, timeout_seconds=30
        )
        for event in stream:
            obj = event["raw_object"]
            rv = obj["metadata"]["resourceVersion"]
            # A status write of the previous rollout may land between the list and the apply:
            # only an object that carries the applied image counts.
            if image(obj) == image(body) and done(obj):
                return time.perf_counter() - start
    raise SystemExit(f"{body['kind']} {name} did not finish within 300 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--max-surge", default="25%")
    parser.add_argument("--max-unavailable", default="0")
    parser.add_argument("--ready-after", default="2s", help="kwok readiness delay of every new pod")
    parser.add_argument("--namespace", default="bench-rolling")
    args = parser.parse_args()
    config.load_kube_config()
    ns, n = args.namespace, args.replicas
    shape: Shape = (n, args.max_surge, args.max_unavailable, args.ready_after)
    fresh_namespace(ns)
    apps, custom = client.AppsV1Api(), client.CustomObjectsApi()

    # partials: the watch hands back raw objects (event["raw_object"]), one shape for both kinds
    list_deployments = functools.partial(apps.list_namespaced_deployment, ns)
    list_releases = functools.partial(
        custom.list_namespaced_custom_object, GROUP, VERSION, ns, PLURAL
    )
    operator = Operator(ns)

    def roll_release(v: int) -> float:
        body = release("rel", f"example/app:{v}", shape)
        return timed_apply(body, ns, list_releases, lambda r: release_done(r, n, v))

    def roll_deployment(v: int) -> float:
        body = deployment("dep", f"example/app:{v}", shape)
        return timed_apply(body, ns, list_deployments, lambda d: deployment_done(d, n))

    times: dict[str, list[float]] = {"Release": [], "Deployment": []}
    try:
        roll_release(1), roll_deployment(1)  # the first versions: not timed
        for v in range(2, args.rounds + 2):
            order = [("Release", roll_release), ("Deployment", roll_deployment)]
            for kind, roll in order if v % 2 else reversed(order):
                times[kind].append(roll(v))
            rel, dep = times["Release"][-1], times["Deployment"][-1]
            print(
                f"round {v - 1}: Release {rel:6.2f} s, Deployment {dep:6.2f} s, "
                f"ratio {rel / dep:.2f}",
                flush=True,
            )
        rss = operator.peak_rss()
    finally:
        operator.stop()
        kubectl("delete", "namespace", ns, "--wait=false")
    rel, dep = statistics.median(times["Release"]), statistics.median(times["Deployment"])
    print(
        f"\n{n} replicas, maxSurge {args.max_surge}, maxUnavailable {args.max_unavailable}, "
        f"readiness delay {args.ready_after}, {args.rounds} rounds: median rolling Release "
        f"{rel:.2f} s, median Deployment RollingUpdate {dep:.2f} s, ratio {rel / dep:.2f}; "
        f"operator peak RSS {rss:.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
