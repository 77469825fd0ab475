"""Traffic through a real gateway (spec.traffic.gatewayAPI): Traefik (hack/gateway) in front of
the sample app on the real node, the operator in-process, and clients that keep their
connections open (a pool of keep-alive connections, and seed 004's nginx with `keepalive 32`)
sending requests all the time. Every request is counted, and which version answered it.

Shares are asserted with a tolerance that a gateway picking backends at random would also meet
(Traefik's weighted round robin is exact), so the tests do not depend on one implementation."""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import watch

from greenlight.engine import naming
from tests.e2e.gateway import Gateway, nginx_front
from tests.e2e.helpers import wait_for
from tests.e2e.realnode import sample_release
from tests.e2e.servers import HttpServer
from tests.e2e.support import Releases
from tests.e2e.traffic import KeepAliveProbe, Result, percentile

pytestmark = [pytest.mark.realnode, pytest.mark.usefixtures("gateway", "operator")]

GROUP, VERSION, PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"
RATE = 100.0  # requests per second, per client
APPLIED = 3.0
"""Seconds after a route write by which the gateway sends no request by the old weights: a
liveness bound (the write took effect at all), far above Traefik's apply (p99 0.2-0.4 s quiet,
more under a loaded CI machine); the time itself is reported, and timed in bench/gateway.py."""


def report(text: str) -> None:
    print(f"\n[gateway] {text}", file=sys.__stdout__, flush=True)


def host(namespace: str) -> str:
    return f"web.{namespace}.test"


def behind(gateway: Gateway, namespace: str, version: str = "v1", **kw: Any) -> dict[str, Any]:
    """The sample app on the real node, its traffic behind the test bed's Gateway."""
    body = sample_release("web", version, replicas=3, **kw)
    body["spec"]["traffic"] = {
        "gatewayAPI": {
            "parentRefs": [gateway.parent_ref],
            "hostnames": [host(namespace)],
            "previewMatches": [{"headers": [{"name": "x-canary", "value": "1"}]}],
            "drainSeconds": 2,
        }
    }
    return body


def with_version(body: dict[str, Any], version: str) -> dict[str, Any]:
    env = body["spec"]["template"]["spec"]["containers"][0]["env"]
    for e in env:
        if e["name"] == "APP_VERSION":
            e["value"] = version
    return body


def route(kube: Any, namespace: str, name: str = "web") -> dict[str, Any]:
    return dict(kube.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))


def live_weights(r: dict[str, Any]) -> dict[str, int]:
    live = next(x for x in r["spec"]["rules"] if x.get("name") == "live")
    return {b["name"]: b.get("weight", 1) for b in live["backendRefs"]}


class RouteWatch:
    """Stamps (time.monotonic) each change of the route's live weights, seen from outside."""

    def __init__(self, kube: Any, namespace: str) -> None:
        self.kube, self.ns = kube, namespace
        self.changes: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RouteWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        assert self.error is None, f"the route watch stopped: {self.error!r}"

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for ev in watch.Watch().stream(
                    self.kube.custom.list_namespaced_custom_object,
                    GROUP, VERSION, self.ns, PLURAL, timeout_seconds=2,
                ):  # fmt: skip
                    now = time.monotonic()
                    weights = live_weights(ev["object"])
                    if not self.changes or self.changes[-1][1] != weights:
                        self.changes.append((now, weights))
        except BaseException as e:  # a watch that stopped watching fails the test (__exit__)
            self.error = e

    def written(self, backend: str, weight: int, since: float) -> float:
        """When the route first gave `backend` this weight after `since`."""
        return wait_for(
            lambda: next(
                (t for t, w in self.changes if t >= since and w.get(backend) == weight), None
            ),
            60,
            f"the route giving {backend} {weight}",
        )


@pytest.fixture
def clients(gateway: Gateway, namespace: str) -> Iterator[tuple[KeepAliveProbe, KeepAliveProbe]]:
    """A pool of 4 keep-alive connections to the gateway, and 4 to an nginx (`keepalive 32`)
    in front of it: both sending requests all the time."""
    with nginx_front(gateway.port, host_header=host(namespace)) as port:
        pool = KeepAliveProbe(
            gateway.host, gateway.port, rate=RATE, headers={"Host": host(namespace)}
        )
        front = KeepAliveProbe("127.0.0.1", port, rate=RATE)
        with pool, front:
            yield pool, front


def first_answer_after(results: list[Result], version: str, since: float) -> float:
    return min(
        r.started + r.seconds for r in results if r.started >= since and r.version == version
    )


def old_after_switch(results: list[Result], old: str, new: str, since: float) -> list[Result]:
    """Answers from `old` to requests sent after the first answer from `new` (after `since`):
    a request sent then was routed by the new weights, so none may come from `old`."""
    switched = first_answer_after(results, new, since)
    return [r for r in results if r.started > switched and r.version == old]


def test_blue_green_flips_move_every_keep_alive_client_at_once(
    kube: Any, namespace: str, releases: Releases, gateway: Gateway,
    clients: tuple[KeepAliveProbe, KeepAliveProbe],
) -> None:  # fmt: skip
    """10 flips (new versions and undos), each one route write: 0 failed requests, and no
    answer from the old version to a request sent once the new weights are in effect."""
    body = behind(gateway, namespace)
    releases.apply(body)
    releases.wait_phase("web", "Healthy", liveRevision=1, timeout=120)
    pool, front = clients
    for probe in clients:
        probe.wait_until_served(timeout=60)  # (a new route: 404 until the gateway has it)
        probe.wait_for_version("v1", timeout=60)
    lags: list[float] = []
    versions = ["v1"]
    with RouteWatch(kube, namespace) as routes:
        for i in range(10):
            since = time.monotonic()
            if i % 2 == 0:
                new = f"v{len(versions) + 1}"
                releases.apply(with_version(body, new))
            else:
                new = versions[-2]
                releases.annotate("web", naming.COMMAND_UNDO, "")
            old = versions[-1]
            versions.append(new)
            for probe in clients:
                probe.wait_for_version(new, timeout=120, since=since)
            deployments = releases.deployments("web")
            backend = next(d.metadata.name for d in deployments.values()
                           if d.spec.template.metadata.labels.get("app") and
                           _env(d).get("APP_VERSION") == new)  # fmt: skip
            written = routes.written(backend, 100, since)
            time.sleep(1)  # a second of answers after the switch
            for probe in clients:
                bad = old_after_switch(probe.snapshot(since), old, new, since)
                assert bad == [], f"flip {i}: {old} answered after the switch to {new}: {bad[:3]}"
                last_old = max(
                    (r.started + r.seconds for r in probe.snapshot(since) if r.version == old),
                    default=written,
                )
                lags.append(last_old - written)
            releases.wait_phase("web", "Degraded" if i % 2 else "Healthy", timeout=60)  # undo: held
    for name, probe in (("keep-alive pool", pool), ("nginx keepalive 32", front)):
        assert probe.failures() == [], f"{name}: {probe.failures()[:5]}"
        assert probe.opened <= 4, f"{name}: connections were reopened ({probe.opened})"
        report(f"{name}: {probe.summary()}")
    report(
        "route write (seen by a watch) -> last answer from the old version, over 10 flips and"
        f" both clients: p50 {percentile(lags, 50) * 1000:.0f} ms,"
        f" p99 {percentile(lags, 99) * 1000:.0f} ms"
    )


def _env(d: Any) -> dict[str, str]:
    return {e.name: e.value for e in d.spec.template.spec.containers[0].env or []}


def test_the_header_preview_reaches_only_the_candidate_until_the_flip(
    kube: Any, namespace: str, releases: Releases, gateway: Gateway
) -> None:
    body = behind(gateway, namespace, strategy={"blueGreen": {"autoPromote": False}})
    releases.apply(body)
    releases.wait_phase("web", "Healthy", liveRevision=1, timeout=120)
    releases.apply(with_version(body, "v2"))
    releases.wait_phase("web", "Paused", candidateRevision=2, timeout=120)
    wait_for(lambda: "preview" in [x["name"] for x in route(kube, namespace)["spec"]["rules"]],
             30, "the preview rule")  # fmt: skip
    headers = {"Host": host(namespace)}
    with KeepAliveProbe(gateway.host, gateway.port, rate=50, headers=headers) as plain, \
            KeepAliveProbe(gateway.host, gateway.port, rate=50,
                           headers={**headers, "x-canary": "1"}) as tester:  # fmt: skip
        tester.wait_for_version("v2", timeout=30)
        since = time.monotonic()
        plain.wait_for_requests(100, since)
        tester.wait_for_requests(100, since)
        assert plain.versions(since) == {"v1": len(plain.snapshot(since))}
        assert tester.versions(since) == {"v2": len(tester.snapshot(since))}
        releases.annotate("web", naming.COMMAND_PROMOTE)
        releases.wait_phase("web", "Healthy", liveRevision=2, timeout=60)
        wait_for(lambda: [x["name"] for x in route(kube, namespace)["spec"]["rules"]] == ["live"],
                 30, "the preview rule gone after the flip")  # fmt: skip
        # (the gateway accepted the route; its data plane takes it a moment later: Traefik's
        # providersThrottleDuration, 100 ms here)
        since = time.monotonic() + 0.5
        plain.wait_for_requests(100, since)
        assert plain.versions(since) == {"v2": len(plain.snapshot(since))}
        assert plain.failures() == [] and tester.failures() == []


STEPS = [5, 25, 50]


def test_a_canary_sends_its_share_of_requests_and_replicas_follow(
    kube: Any, namespace: str, releases: Releases, gateway: Gateway
) -> None:
    steps: list[dict[str, Any]] = []
    for w in STEPS:
        steps += [{"setWeight": w}, {"pause": {"duration": "30s"}}]
    body = behind(gateway, namespace, rolling={"steps": steps})
    releases.apply(body)
    releases.wait_phase("web", "Healthy", liveRevision=1, timeout=120)
    with KeepAliveProbe(gateway.host, gateway.port, rate=RATE,
                        headers={"Host": host(namespace)}) as probe:  # fmt: skip
        probe.wait_for_version("v1", timeout=60)
        releases.apply(with_version(body, "v2"))
        for weight in STEPS:
            st = releases.wait_phase("web", "Paused", weight=weight, timeout=120)
            assert st["traffic"]["accepted"], st["traffic"]
            since = time.monotonic()
            probe.wait_for_requests(600, since, timeout=30)
            seen = probe.snapshot(since)[:600]
            share = sum(r.version == "v2" for r in seen) / len(seen)
            sd = math.sqrt(weight / 100 * (1 - weight / 100) / len(seen))
            assert abs(share - weight / 100) <= 4 * sd + 0.02, (weight, share)
            pods = {_env(d).get("APP_VERSION"): d.spec.replicas
                    for d in releases.deployments("web").values()}  # fmt: skip
            assert pods["v2"] == max(1, math.ceil(3 * weight / 100)), (weight, pods)
            assert pods["v1"] >= math.ceil(3 * (100 - weight) / 100), (weight, pods)
            report(f"canary step {weight}%: {share:.1%} of {len(seen)} requests on v2, pods {pods}")
        releases.wait_phase("web", "Healthy", liveRevision=2, timeout=120)
        healthy = time.monotonic()
        # Healthy once the gateway *accepted* the route with 100% on v2; its data plane takes
        # the new weights a moment later (Traefik: its providersThrottleDuration, 100 ms here)
        since = healthy + 0.5
        probe.wait_for_requests(200, since)
        assert probe.versions(since) == {"v2": len(probe.snapshot(since))}
        assert probe.failures() == [], probe.failures()[:5]
        late = [r for r in probe.snapshot(healthy) if r.version == "v1"]
        report(
            f"after Healthy: {len(late)} answers from v1, the last"
            f" {max((r.started - healthy for r in late), default=0) * 1000:.0f} ms after it"
        )


@pytest.mark.parametrize("how", ["abort", "failed-analysis"])
def test_abort_and_a_failed_analysis_put_every_request_back_on_stable_at_once(
    kube: Any, namespace: str, releases: Releases, gateway: Gateway, http_server: HttpServer,
    how: str,
) -> None:  # fmt: skip
    http_server.route("/judge", status=500, body="errors up")
    hold: dict[str, Any] = {"pause": {}}
    if how == "failed-analysis":
        judge = {"name": "judge", "http": {"url": http_server.url("/judge")}, "initialDelay": "5s"}
        hold = {"analysis": {"checks": [judge]}}
    body = behind(gateway, namespace, rolling={"steps": [{"setWeight": 50}, hold]})
    releases.apply(body)
    releases.wait_phase("web", "Healthy", liveRevision=1, timeout=120)
    with (
        RouteWatch(kube, namespace) as routes,
        KeepAliveProbe(
            gateway.host, gateway.port, rate=RATE, headers={"Host": host(namespace)}
        ) as probe,
    ):
        probe.wait_for_version("v1", timeout=60)
        releases.apply(with_version(body, "v2"))
        wait_for(lambda: releases.status("web").get("weight") == 50, 120, "50% on v2")
        since = time.monotonic()
        probe.wait_for_requests(200, since)
        assert set(probe.versions(since)) == {"v1", "v2"}
        if how == "abort":
            releases.annotate("web", naming.COMMAND_ABORT)
        stable = naming.deployment_name("web", releases.status("web")["liveHash"])
        at = routes.written(stable, 100, since)
        back = wait_for(
            lambda: releases.deployments("web")[releases.status("web")["liveHash"]].spec.replicas
            == 3, 30, "the stable side back to 3 replicas")  # fmt: skip
        assert back
        # at once: one route write from 50/50 to 100 on stable, and no later one gives v2 any
        before = [w for t, w in routes.changes if t < at]
        moved = [w for t, w in routes.changes if t >= at]
        assert before and before[-1].get(stable) == 50, routes.changes
        assert all(w.get(stable) == 100 and sum(w.values()) == 100 for w in moved), routes.changes
        # and the gateway applied it: a few seconds on (its own apply under load, not ours:
        # bench/gateway.py times it), a hundred requests in a row answered by v1 alone
        applied = at + APPLIED
        probe.wait_for_requests(100, applied)
        late = [r for r in probe.snapshot(applied) if r.version == "v2"]
        assert late == [], f"v2 answered requests sent {APPLIED} s after the write: {late[:3]}"
        assert probe.failures() == [], probe.failures()[:5]
        st = releases.status("web")
        assert st["liveRevision"] == 1 and st["abortedHash"]
        last_v2 = max(r.started for r in probe.snapshot(since) if r.version == "v2")
        report(f"{how}: route write -> last request answered by v2 {(last_v2 - at) * 1000:.0f} ms;"
               f" {probe.summary()}")  # fmt: skip


def test_a_hand_edit_of_the_route_is_set_back_and_a_restart_changes_nothing(
    kube: Any, namespace: str, releases: Releases, gateway: Gateway, operator: Any
) -> None:
    body = behind(gateway, namespace, rolling={"steps": [{"setWeight": 25}, {"pause": {}}]})
    releases.apply(body)
    releases.wait_phase("web", "Healthy", liveRevision=1, timeout=120)
    releases.apply(with_version(body, "v2"))
    releases.wait_phase("web", "Paused", weight=25, timeout=120)
    before = route(kube, namespace)
    wanted = live_weights(before)
    edited = [dict(r) for r in before["spec"]["rules"]]
    live = next(r for r in edited if r["name"] == "live")
    live["backendRefs"] = [{**b, "weight": 50} for b in live["backendRefs"]]
    kube.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "web", {"spec": {"rules": edited}}
    )
    wait_for(lambda: live_weights(route(kube, namespace)) == wanted, 30, "the weights set back")
    wait_for(lambda: "Drift" in releases.events("web"), 30, "a Drift Event")
    kube.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "web", {"spec": {"rules": [live]}}
    )  # the preview rule dropped
    wait_for(lambda: len(route(kube, namespace)["spec"]["rules"]) == 2, 30, "the rule back")
    generation = route(kube, namespace)["metadata"]["generation"]
    operator.stop()
    operator.start()
    time.sleep(5)  # a restarted operator reconciles every Release at once: give it the time
    after = route(kube, namespace)
    assert after["metadata"]["generation"] == generation, "a restart rewrote the route"
    st = releases.status("web")
    assert st["phase"] == "Paused" and st["weight"] == 25


def test_removing_spec_traffic_hands_the_route_to_the_service_with_no_failed_request(
    kube: Any, namespace: str, releases: Releases, gateway: Gateway
) -> None:
    body = behind(gateway, namespace)
    releases.apply(body)
    releases.wait_phase("web", "Healthy", liveRevision=1, timeout=120)
    with KeepAliveProbe(gateway.host, gateway.port, rate=RATE,
                        headers={"Host": host(namespace)}) as probe:  # fmt: skip
        probe.wait_for_version("v1", timeout=60)
        del body["spec"]["traffic"]
        releases.apply(body)
        wait_for(lambda: live_weights(route(kube, namespace)) == {"web": 1}, 30,
                 "the route sending every request to the live Service")  # fmt: skip
        wait_for(lambda: "traffic" not in releases.status("web"), 30, "the route handed over")
        assert "RouteHandedOver" in releases.events("web")
        generation = route(kube, namespace)["metadata"]["generation"]
        releases.apply(with_version(body, "v2"))  # a release by the selector, behind the route
        releases.wait_phase("web", "Healthy", liveRevision=2, timeout=120)
        probe.wait_for_version("v2", timeout=60)
        assert route(kube, namespace)["metadata"]["generation"] == generation, "not written"
        assert probe.failures() == [], probe.failures()[:5]
        report(f"spec.traffic removed, then a release by the selector: {probe.summary()}")


def test_a_route_someone_else_created_is_refused_untouched_then_adopted(
    kube: Any, namespace: str, releases: Releases, gateway: Gateway
) -> None:
    theirs = {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "HTTPRoute",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"parentRefs": [gateway.parent_ref], "hostnames": [host(namespace)],
                 "rules": [{"backendRefs": [{"name": "legacy", "port": 80}]}]},
    }  # fmt: skip
    kube.apply(theirs, namespace=namespace)
    generation = route(kube, namespace)["metadata"]["generation"]
    body = behind(gateway, namespace)
    releases.apply(body)
    st = releases.wait_phase("web", "Degraded", timeout=60)
    assert "adopt: true" in st["message"] and "RouteConflict" in releases.events("web")
    assert releases.deployments("web") == {}, "refused before anything is created"
    assert route(kube, namespace)["metadata"]["generation"] == generation, "their route untouched"
    body["spec"]["traffic"]["gatewayAPI"]["adopt"] = True
    releases.apply(body)
    releases.wait_phase("web", "Healthy", liveRevision=1, timeout=120)
    adopted = route(kube, namespace)
    assert [o["name"] for o in adopted["metadata"]["ownerReferences"]] == ["web"]
    assert set(live_weights(adopted).values()) == {100}
    with KeepAliveProbe(gateway.host, gateway.port, rate=RATE,
                        headers={"Host": host(namespace)}) as probe:  # fmt: skip
        probe.wait_for_version("v1", timeout=30)
        since = time.monotonic()
        probe.wait_for_requests(100, since)
        assert probe.versions(since) == {"v1": len(probe.snapshot(since))}
        assert probe.failures(since) == [], probe.failures(since)[:5]
