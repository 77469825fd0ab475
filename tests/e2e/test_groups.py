"""Release groups on a real API server: the seed's django + fastapi pair, released as one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from greenlight.engine import naming
from tests.e2e.helpers import wait_for
from tests.e2e.support import NEVER_READY, Operator, Releases, release_manifest, with_image

pytestmark = pytest.mark.usefixtures("operator")
PAIR = ("django", "fastapi")


def group_manifest(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "greenlight.dev/v1alpha1",
        "kind": "ReleaseGroup",
        "metadata": {"name": "shop"},
        "spec": {"members": list(PAIR), "settleSeconds": 1, **spec},
    }


def group_status(kube: Any, namespace: str) -> dict[str, Any]:
    body = kube.custom.get_namespaced_custom_object(
        "greenlight.dev", "v1alpha1", namespace, "releasegroups", "shop"
    )
    return dict(body.get("status") or {})


def pair(releases: Releases, kube: Any, namespace: str, **kw: Any) -> dict[str, dict[str, Any]]:
    """Both members live on revision 1, in group `shop`."""
    manifests = {n: release_manifest(n, f"example/{n}:1", **kw) for n in PAIR}
    kube.apply(group_manifest(), namespace=namespace)
    for m in manifests.values():
        releases.apply(m)
    for n in PAIR:
        releases.wait_phase(n, "Healthy", liveRevision=1)
    wait_for(lambda: group_status(kube, namespace).get("phase") == "Healthy", 30, "group Healthy")
    return manifests


def live(releases: Releases, name: str) -> str | None:
    return releases.selector(name).get(naming.LABEL_HASH)


def test_neither_flips_until_both_are_ready_then_both_flip_together(
    releases: Releases, kube: Any, namespace: str, zero_downtime: Any
) -> None:
    manifests = pair(releases, kube, namespace)
    watchers = [zero_downtime(n) for n in PAIR]
    for w in watchers:
        wait_for(lambda w=w: w.max_ready == 3, 30, "watchers see 3 ready endpoints")
    releases.apply(with_image(manifests["django"], "example/django:2"))
    releases.apply(with_image(manifests["fastapi"], "example/fastapi:2", ready_after="6s"))
    st = wait_for(
        lambda: (
            (s := releases.status("django")).get("conditions")
            and any(c["reason"] == "GroupWaiting" for c in s["conditions"])
            and s
        ),
        30,
        "django ready and waiting for its group",
    )
    assert st["liveRevision"] == 1
    assert releases.status("fastapi")["liveRevision"] == 1, "fastapi not ready: no flip"
    wait_for(
        lambda: group_status(kube, namespace).get("waitingFor") == ["fastapi"],
        30,
        "the group waiting for fastapi",
    )
    assert releases.status("django")["liveRevision"] == 1
    for n in PAIR:
        releases.wait_phase(n, "Healthy", liveRevision=2, timeout=60)
    # (the group records the spread once it has seen both members live: a moment later)
    g = wait_for(lambda: (s := group_status(kube, namespace)).get("lastFlipSpreadMs") is not None
                 and s, 30, "the group's flip spread")  # fmt: skip
    assert g["history"][-1]["revisions"] == {"django": 2, "fastapi": 2}
    assert g["lastFlipSpreadMs"] >= 0
    for w in watchers:
        w.check()


def test_one_member_never_ready_aborts_both_and_live_traffic_is_untouched(
    releases: Releases, kube: Any, namespace: str
) -> None:
    manifests = pair(releases, kube, namespace, deadline=5)
    before = {n: live(releases, n) for n in PAIR}
    releases.apply(with_image(manifests["django"], "example/django:2"))
    releases.apply(with_image(manifests["fastapi"], "example/fastapi:2", **NEVER_READY))
    for n in PAIR:
        st = wait_for(
            lambda n=n: any(
                e["revision"] == 2 and e["outcome"] == "Aborted"
                for e in releases.status(n)["history"]
            ),
            60,
            f"{n} revision 2 aborted",
        )
        assert st
    assert {n: live(releases, n) for n in PAIR} == before
    wait_for(lambda: group_status(kube, namespace).get("phase") == "Degraded", 30, "group Degraded")


def test_undo_of_the_group(releases: Releases, kube: Any, namespace: str) -> None:
    manifests = pair(releases, kube, namespace)
    first = {n: live(releases, n) for n in PAIR}
    for n in PAIR:
        releases.apply(with_image(manifests[n], f"example/{n}:2"))
    for n in PAIR:
        releases.wait_phase(n, "Healthy", liveRevision=2, timeout=60)
    kube.kubectl("annotate", "-n", namespace, "releasegroup", "shop", f"{naming.COMMAND_UNDO}=")
    wait_for(lambda: {n: live(releases, n) for n in PAIR} == first, 60, "both back on v1 pods")
    for n in PAIR:
        st = releases.wait_phase(n, "Degraded", timeout=60)  # held: the spec says revision 2
        assert st["rolledBackTo"] == st["liveHash"] == first[n]


def test_a_flip_interrupted_between_two_members_finishes_forward_on_restart(
    releases: Releases, kube: Any, namespace: str, operator: Operator
) -> None:
    manifests = pair(releases, kube, namespace)
    kube.apply(group_manifest(paused=True), namespace=namespace)  # hold the flip
    for n in PAIR:
        releases.apply(with_image(manifests[n], f"example/{n}:2"))
    for n in PAIR:
        wait_for(
            lambda n=n: any(
                c["reason"] == "GroupWaiting" for c in releases.status(n).get("conditions", [])
            ),
            60,
            f"{n} waiting for its group",
        )
    operator.stop()
    # what an operator killed between the two flips leaves: django flipped, fastapi not
    candidate = releases.status("django")["candidateHash"]
    patch = {"spec": {"selector": naming.pod_labels("django", candidate)}}
    kube.core.patch_namespaced_service("django", namespace, patch)
    kube.apply(group_manifest(paused=False), namespace=namespace)
    operator.start()
    for n in PAIR:
        releases.wait_phase(n, "Healthy", liveRevision=2, timeout=60)
    assert live(releases, "django") == candidate, "never flipped backward"


def test_only_one_member_changes(releases: Releases, kube: Any, namespace: str) -> None:
    manifests = pair(releases, kube, namespace)
    releases.apply(with_image(manifests["fastapi"], "example/fastapi:2"))
    releases.wait_phase("fastapi", "Healthy", liveRevision=2, timeout=60)
    assert releases.status("django")["liveRevision"] == 1
    wait_for(
        lambda: (
            group_status(kube, namespace)["history"][-1]["revisions"] == {"django": 1, "fastapi": 2}
        ),
        30,
        "the group entry",
    )


def test_a_group_naming_a_missing_release_is_degraded_naming_the_field(
    releases: Releases, kube: Any, namespace: str
) -> None:
    kube.apply(group_manifest(members=["django", "celery"]), namespace=namespace)
    releases.apply(release_manifest("django", "example/django:1"))
    wait_for(
        lambda: (
            "spec.members[1]: Release celery not found"
            in group_status(kube, namespace).get("message", "")
        ),
        30,
        "group Degraded naming the missing member",
    )
    assert group_status(kube, namespace)["phase"] == "Degraded"


def test_the_plugin_shows_and_undoes_a_group(releases: Releases, kube: Any, namespace: str) -> None:
    manifests = pair(releases, kube, namespace)
    first = {n: live(releases, n) for n in PAIR}
    for n in PAIR:
        releases.apply(with_image(manifests[n], f"example/{n}:2"))
    for n in PAIR:
        releases.wait_phase(n, "Healthy", liveRevision=2, timeout=60)
    plugin = str(Path(sys.executable).parent / "kubectl-greenlight")
    env = {
        "KUBECONFIG": kube.kubeconfig,
        "PATH": str(Path(sys.executable).parent),
        "COLUMNS": "160",
    }
    shown = subprocess.run(
        [plugin, "get", "group/shop", "-n", namespace], env=env, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert "django 2, fastapi 2" in shown.stdout and "django 1, fastapi 1" in shown.stdout
    done = subprocess.run(
        [plugin, "undo", "group/shop", "-n", namespace], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    wait_for(lambda: {n: live(releases, n) for n in PAIR} == first, 60, "both back on v1 pods")
