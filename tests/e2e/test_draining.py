"""Connection draining in Service mode (pod roles): after a flip the old pods' role becomes
`draining`; the sample app, told so by its Downward API role file (DRAIN_ON_DRAINING), closes
its idle keep-alive connections and answers `Connection: close`, so pooled clients (a
keep-alive pool, and seed 004's nginx with `keepalive 32`) reconnect, and kube-proxy sends the
new connections to the live revision. The old revision keeps its pods for the undo; its
scale-down is paced (blueGreen.scaleDown.podsPerInterval)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.gateway import nginx_front
from tests.e2e.helpers import wait_for
from tests.e2e.realnode import on_real_node, require_real_node, sample_release
from tests.e2e.support import Releases
from tests.e2e.traffic import KeepAliveProbe, Result

pytestmark = [pytest.mark.realnode, pytest.mark.usefixtures("real_node", "operator")]

RATE = 50
DELAY = 15  # scaleDownDelaySeconds: the old revision stays warm this long


@pytest.fixture(scope="module")
def real_node(kube: Any) -> None:
    require_real_node(kube)


def report(text: str) -> None:
    print(f"\n[draining] {text}", file=sys.__stdout__, flush=True)


def draining_release(version: str, drain: bool) -> dict[str, Any]:
    body = on_real_node(
        sample_release("web", version, replicas=2), version,
        ROLE_FILE="/etc/podinfo/labels", DRAIN_ON_DRAINING=str(drain).lower(),
    )  # fmt: skip
    pod = body["spec"]["template"]["spec"]
    pod["volumes"] = [
        {
            "name": "podinfo",
            "downwardAPI": {
                "items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]
            },
        }
    ]
    pod["containers"][0]["volumeMounts"] = [{"name": "podinfo", "mountPath": "/etc/podinfo"}]
    body["spec"]["strategy"] = {
        "blueGreen": {
            "scaleDownDelaySeconds": DELAY,
            "scaleDown": {"maxDelaySeconds": DELAY, "podsPerInterval": 1, "intervalSeconds": 2},
        }
    }
    return body


@pytest.fixture
def clients(kube: Any, namespace: str, releases: Releases) -> Iterator[list[KeepAliveProbe]]:
    releases.apply(draining_release("v1", True))
    releases.wait_phase("web", "Healthy", liveRevision=1, timeout=120)
    ip = kube.core.read_namespaced_service("web", namespace).spec.cluster_ip
    with nginx_front(ip, 80, host_header="web") as port:
        pool = KeepAliveProbe(ip, 80, rate=RATE)
        front = KeepAliveProbe("127.0.0.1", port, rate=RATE)
        with pool, front:
            for probe in (pool, front):
                probe.wait_until_served(timeout=60)
                probe.wait_for_version("v1", timeout=60)
            yield [pool, front]


def last_answer(results: list[Result], version: str) -> float:
    return max((r.started + r.seconds for r in results if r.version == version), default=0.0)


@pytest.mark.parametrize("drain", [True, False], ids=["draining-app", "app-ignores-its-role"])
def test_a_draining_app_sends_keep_alive_clients_to_the_new_version_at_once(
    releases: Releases, clients: list[KeepAliveProbe], drain: bool
) -> None:
    """With the draining switch on: 0 failed requests through the flip and the paced
    scale-down, and the old version stops answering pooled clients long before its pods go.
    Without it (shown, not required): those clients stay on it until its scale-down, and the
    keep-alive race as its pods stop can fail a few requests: the case this feature is for."""
    if not drain:  # v1 was released draining; v2 is the first that ignores its role
        releases.apply(draining_release("v1b", False))
        releases.wait_phase("web", "Healthy", liveRevision=2, timeout=120)
        for probe in clients:
            probe.wait_for_version("v1b", timeout=DELAY + 30)
        old = "v1b"
    else:
        old = "v1"
    flip = time.monotonic()
    releases.apply(draining_release("v2", drain))
    live = 3 if not drain else 2
    releases.wait_phase("web", "Healthy", liveRevision=live, timeout=120)
    old_hash = next(
        h for h, d in releases.deployments("web").items()
        if any(e.value == old for e in d.spec.template.spec.containers[0].env or [])
    )  # fmt: skip

    def scaled() -> float | None:
        d = releases.deployments("web")[old_hash]
        return time.monotonic() if (d.spec.replicas or 0) < 2 else None

    scale_down = wait_for(scaled, DELAY + 30, "the old revision's paced scale-down", 0.1)
    wait_for(
        lambda: releases.deployments("web")[old_hash].spec.replicas == 0, 30, "the old one at 0"
    )
    time.sleep(3)  # requests keep flowing after the last old pod went
    for name, probe in zip(("keep-alive pool", "nginx keepalive 32"), clients, strict=True):
        results = probe.snapshot(since=flip)
        failed = [r for r in results if not r.ok]
        old_for = last_answer(results, old) - flip
        report(
            f"{'draining app' if drain else 'app ignoring its role'}, {name}: the old version"
            f" answered until {old_for:.2f} s after the release was applied; its scale-down"
            f" began at {scale_down - flip:.2f} s; {len(results)} requests, {len(failed)} failed"
        )
        if not drain:  # today's behaviour, shown: pooled clients stay until the pods go
            assert last_answer(results, old) >= scale_down, name
            continue
        assert not failed, (
            f"{name}: {len(failed)} failed, first at {failed[0].started - flip:.2f} s after the"
            f" release, last at {failed[-1].started - flip:.2f} s: {failed[0].error}"
        )
        assert last_answer(results, old) < scale_down, f"{name}: old answers until scale-down"
