"""The gateway test bed itself, without the operator: Traefik (hack/gateway) routing to two
plain Deployments of the sample app on the real node by an HTTPRoute these tests write, seen by
the clients the operator's gateway tests use (KeepAliveProbe, and nginx_front: seed 004's nginx
with `keepalive 32`), and by Gateway.applied_weights (Traefik's API).

Shares are asserted with a tolerance a gateway picking backends at random would also meet
(Traefik's weighted round robin is exact). Timings are reported, not asserted tightly."""

from __future__ import annotations

import copy
import secrets
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.e2e.gateway import Gateway, nginx_front
from tests.e2e.helpers import wait_for
from tests.e2e.realnode import APP_IMAGE, PLACEMENT
from tests.e2e.traffic import KeepAliveProbe, percentile

pytestmark = pytest.mark.realnode

GROUP, VERSION, PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"
V1, V2 = "app-v1", "app-v2"  # a Deployment and a Service each


def report(text: str) -> None:
    print(f"\n[gateway testbed] {text}", file=sys.__stdout__, flush=True)


def app(name: str, version: str) -> list[dict[str, Any]]:
    """The sample app's image `version` on the real node (2 replicas), and a Service to it."""
    labels = {"app": "sample", "version": version}
    pod = {
        **copy.deepcopy(PLACEMENT),
        "terminationGracePeriodSeconds": 5,
        "containers": [
            {
                "name": "app",
                "image": f"{APP_IMAGE}:{version}",
                "imagePullPolicy": "Never",
                "ports": [{"containerPort": 8080}],
                "readinessProbe": {
                    "httpGet": {"path": "/healthz", "port": 8080},
                    "periodSeconds": 1,
                },
            }
        ],
    }
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": pod},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    ]


@pytest.fixture(scope="module")
def apps(kube: Any, gateway: Gateway) -> Iterator[str]:
    """A namespace with app-v1 and app-v2 ready on the real node, for the module; deleted after."""
    ns = f"t-gateway-testbed-{secrets.token_hex(2)}"
    kube.core.create_namespace({"metadata": {"name": ns, "labels": {"greenlight.dev/e2e": "true"}}})
    try:
        wait_for(lambda: kube.core.read_namespaced_service_account("default", ns), 30, "default SA")
        kube.apply(app(V1, "v1") + app(V2, "v2"), namespace=ns)
        for name in (V1, V2):

            def ready(name: str = name) -> bool:
                return bool(
                    kube.apps.read_namespaced_deployment(name, ns).status.ready_replicas == 2
                )

            wait_for(ready, 120, f"{ns}/{name} ready")
        yield ns
    finally:
        try:
            kube.core.delete_namespace(ns, propagation_policy="Background")
        except ApiException as e:
            if e.status != 404:
                raise


def backend(name: str, weight: int | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": name, "port": 80}
    if weight is not None:
        ref["weight"] = weight
    return ref


def write_route(
    kube: Any, gateway: Gateway, ns: str, name: str, rules: list[dict[str, Any]]
) -> float:
    """Create or replace HTTPRoute `name` (hostname <name>.<ns>.test) with these rules; returns
    time.monotonic() when the API server answered the write."""
    body: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "parentRefs": [gateway.parent_ref],
            "hostnames": [hostname(ns, name)],
            "rules": rules,
        },
    }
    try:
        old = kube.custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
    except ApiException as e:
        if e.status != 404:
            raise
        kube.custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)
    else:
        body["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        kube.custom.replace_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name, body)
    return time.monotonic()


def hostname(ns: str, route: str) -> str:
    return f"{route}.{ns}.test"


def wait_accepted(kube: Any, ns: str, name: str) -> None:
    def accepted() -> bool:
        r = kube.custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
        parents = r.get("status", {}).get("parents") or []
        conditions = {c["type"]: c["status"] for p in parents for c in p.get("conditions", [])}
        return conditions.get("Accepted") == "True" and conditions.get("ResolvedRefs") == "True"

    wait_for(accepted, 30, f"HTTPRoute {ns}/{name} Accepted and ResolvedRefs")


def wait_applied(
    gateway: Gateway, ns: str, name: str, weights: dict[str, int], header: str | None = None
) -> float:
    """Wait until Traefik's data plane has these weights (a weight 0 may be left out) and
    servers for every backend given weight; returns when it was seen."""
    wanted = {k: v for k, v in weights.items() if v}

    def applied() -> bool:
        rule = gateway.applied_rule(ns, name, header)
        if rule is None or {k: v for k, v in rule.weights.items() if v} != wanted:
            return False
        return all(rule.servers.get(k, 0) > 0 for k in wanted)

    wait_for(applied, 60, f"Traefik applying {weights} to {ns}/{name}", interval=0.02)
    return time.monotonic()


def test_weights_90_10_give_their_shares_to_keep_alive_clients_direct_and_through_nginx(
    kube: Any, gateway: Gateway, apps: str
) -> None:
    write_route(kube, gateway, apps, "split",
                [{"name": "live", "backendRefs": [backend(V1, 90), backend(V2, 10)]}])  # fmt: skip
    wait_accepted(kube, apps, "split")
    wait_applied(gateway, apps, "split", {V1: 90, V2: 10})
    assert gateway.applied_weights(apps, "split") == {V1: 90, V2: 10}
    assert gateway.applied_weights(apps, "split", header="x-canary") == {}
    headers = {"Host": hostname(apps, "split")}
    with (
        nginx_front(gateway.host, gateway.port) as port,
        KeepAliveProbe(gateway.host, gateway.port, rate=0, headers=headers) as pool,
        KeepAliveProbe("127.0.0.1", port, rate=0, headers=headers) as front,
    ):
        for name, probe in (("keep-alive pool", pool), ("nginx keepalive 32", front)):
            probe.wait_for_version("v1", timeout=30)
            since = time.monotonic()
            probe.wait_for_requests(200, since, timeout=30)
            seen = probe.snapshot(since)[:200]
            v2 = sum(r.version == "v2" for r in seen)
            # a random picker: 10% +- 6% of 200 is 2.8 standard deviations
            assert 8 <= v2 <= 32, f"{name}: {v2} of 200 on v2 (90/10)"
            assert all(r.ok for r in seen), [r for r in seen if not r.ok][:3]
            report(f"90/10 via {name}: {v2} of 200 on v2; {probe.summary()}")
        assert pool.opened == 4 and front.opened == 4, (pool.opened, front.opened)


def test_a_header_match_sends_only_to_its_backend(kube: Any, gateway: Gateway, apps: str) -> None:
    write_route(kube, gateway, apps, "preview", [
        {"name": "preview", "matches": [{"headers": [{"name": "x-canary", "value": "1"}]}],
         "backendRefs": [backend(V2)]},
        {"name": "live", "backendRefs": [backend(V1)]},
    ])  # fmt: skip
    wait_accepted(kube, apps, "preview")
    wait_applied(gateway, apps, "preview", {V2: 1}, header="x-canary")
    wait_applied(gateway, apps, "preview", {V1: 1})
    plain = {"Host": hostname(apps, "preview")}
    tester = {**plain, "x-canary": "1"}
    with nginx_front(gateway.host, gateway.port) as port:
        for where, (host, at) in {
            "direct": (gateway.host, gateway.port),
            "through nginx": ("127.0.0.1", port),
        }.items():
            with (
                KeepAliveProbe(host, at, rate=0, headers=plain) as a,
                KeepAliveProbe(host, at, rate=0, headers=tester) as b,
            ):
                a.wait_for_requests(100, 0)
                b.wait_for_requests(100, 0)
            assert a.failures() == [] and b.failures() == [], (a.failures()[:3], b.failures()[:3])
            assert a.versions() == {"v1": len(a.snapshot())}, f"{where}: {a.summary()}"
            assert b.versions() == {"v2": len(b.snapshot())}, f"{where}: {b.summary()}"
            report(f"x-canary: 1 {where}: {b.summary()}; without it: {a.summary()}")


def test_a_weight_flip_moves_every_keep_alive_client_at_once_without_a_failure(
    kube: Any, gateway: Gateway, apps: str
) -> None:
    """100/0 -> 0/100 and back, 6 flips, each one route write, with a keep-alive pool to the
    gateway and one to nginx in front of it sending requests all the time: 0 failed, no answer
    from the old version to a request sent after the first answer from the new one; reported:
    write -> Traefik's API shows it, write -> the last answer from the old version."""

    def rules(v1: int, v2: int) -> list[dict[str, Any]]:
        return [{"name": "live", "backendRefs": [backend(V1, v1), backend(V2, v2)]}]

    write_route(kube, gateway, apps, "flip", rules(100, 0))
    wait_accepted(kube, apps, "flip")
    wait_applied(gateway, apps, "flip", {V1: 100})
    headers = {"Host": hostname(apps, "flip")}
    applied: list[float] = []
    lags: list[float] = []
    with (
        nginx_front(gateway.host, gateway.port) as port,
        KeepAliveProbe(gateway.host, gateway.port, rate=200, headers=headers) as pool,
        KeepAliveProbe("127.0.0.1", port, rate=200, headers=headers) as front,
    ):
        clients = {"keep-alive pool": pool, "nginx keepalive 32": front}
        for probe in clients.values():
            probe.wait_for_version("v1", timeout=30)
        old, new = "v1", "v2"
        for _ in range(6):
            time.sleep(0.5)
            since = time.monotonic()
            weights = {V1: 100, V2: 0} if new == "v1" else {V1: 0, V2: 100}
            written = write_route(kube, gateway, apps, "flip", rules(weights[V1], weights[V2]))
            applied.append(wait_applied(gateway, apps, "flip", weights) - written)
            for probe in clients.values():
                probe.wait_for_version(new, timeout=30, since=since)
            time.sleep(1)  # a second of answers after the flip
            for name, probe in clients.items():
                results = probe.snapshot(since)
                switched = min(r.started + r.seconds for r in results if r.version == new)
                late = [r for r in results if r.started > switched and r.version == old]
                assert late == [], f"{name}: {old} answered after the switch to {new}: {late[:3]}"
                last_old = max((r.started + r.seconds for r in results if r.version == old),
                               default=written)  # fmt: skip
                lags.append(last_old - written)
            old, new = new, old
    for name, probe in clients.items():
        assert probe.failures() == [], f"{name}: {probe.failures()[:5]}"
        assert probe.opened == 4, f"{name}: connections were reopened ({probe.opened})"
        report(f"{name}: {probe.summary()}")
    report(
        f"6 flips: route write -> Traefik's API shows it: p50 {percentile(applied, 50) * 1000:.0f}"
        f" ms, max {max(applied) * 1000:.0f} ms; route write -> last answer from the old version"
        f" (both clients): p50 {percentile(lags, 50) * 1000:.0f} ms,"
        f" max {max(lags) * 1000:.0f} ms"
    )
    assert max(lags) < 5, f"the old version answered up to {max(lags):.1f} s after the write"
