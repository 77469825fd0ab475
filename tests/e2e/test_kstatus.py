"""kstatus conventions on the real API server: `kubectl wait --for=condition=Ready` and the
kstatus library itself (sigs.k8s.io/cli-utils, built by hack/kstatus) read every phase of a
Release (and a ReleaseGroup) as the phase means: Healthy is Current, a release in progress or
held is InProgress, Degraded and Aborted are Failed."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from greenlight.engine import naming
from tests.e2e.conftest import KubectlError
from tests.e2e.helpers import wait_for
from tests.e2e.support import NEVER_READY, Releases, release_manifest, with_image

pytestmark = pytest.mark.usefixtures("operator")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def kstatus() -> str:
    return subprocess.run(
        [str(ROOT / "hack" / "kstatus")], capture_output=True, text=True, check=True
    ).stdout.strip()


def verdict(kstatus: str, kube: Any, namespace: str, what: str) -> str:
    body = kube.kubectl("get", what, "-n", namespace, "-o", "json")
    out = subprocess.run([kstatus], input=body, capture_output=True, text=True, check=True)
    return out.stdout.split()[-1]


def test_kstatus_and_kubectl_wait_read_every_phase(
    kube: Any, namespace: str, releases: Releases, kstatus: str
) -> None:
    manifest = release_manifest("web", "example/web:1")
    releases.apply(manifest)
    releases.wait_phase("web", "Healthy", liveRevision=1)
    assert verdict(kstatus, kube, namespace, "release/web") == "Current"

    releases.apply(with_image(manifest, "example/web:2", ready_after="4s"))
    releases.wait_phase("web", "Progressing", candidateRevision=2)
    assert verdict(kstatus, kube, namespace, "release/web") == "InProgress"
    kube.kubectl("wait", "-n", namespace, "--for=condition=Ready", "release/web", "--timeout=60s")
    st = releases.status("web")
    assert (st["phase"], st["liveRevision"]) == ("Healthy", 2), "Ready only once it is live"
    assert verdict(kstatus, kube, namespace, "release/web") == "Current"

    manual = copy.deepcopy(with_image(manifest, "example/web:3"))
    manual["spec"]["strategy"]["blueGreen"]["autoPromote"] = False
    releases.apply(manual)
    releases.wait_phase("web", "Paused", candidateRevision=3)
    assert verdict(kstatus, kube, namespace, "release/web") == "InProgress"
    releases.annotate("web", naming.COMMAND_ABORT)
    releases.wait_phase("web", "Aborted")
    assert verdict(kstatus, kube, namespace, "release/web") == "Failed"

    # A short deadline only here: on the earlier revisions it raced the delayed readiness on a
    # loaded machine (a candidate that took more than 4 s to come up was aborted).
    never = with_image(manifest, "example/web:4", **NEVER_READY)
    never["spec"]["progressDeadlineSeconds"] = 4
    releases.apply(never)
    releases.wait_phase("web", "Degraded", timeout=60)
    assert verdict(kstatus, kube, namespace, "release/web") == "Failed"
    with pytest.raises(KubectlError, match="timed out"):
        kube.kubectl(
            "wait", "-n", namespace, "--for=condition=Ready", "release/web", "--timeout=3s"
        )
    conditions = {c["type"]: c for c in releases.status("web")["conditions"]}
    generation = releases.get("web")["metadata"]["generation"]
    assert conditions["Stalled"]["status"] == "True"
    assert all(c["observedGeneration"] == generation for c in conditions.values())


def test_an_invalid_release_is_stalled(
    kube: Any, namespace: str, releases: Releases, kstatus: str
) -> None:
    manifest = release_manifest("web", "example/web:1")
    manifest["spec"]["strategy"]["blueGreen"]["prePromotion"] = [
        {"name": "smoke", "http": {"url": "http://x"}, "successCondition": "result =="}
    ]
    releases.apply(manifest)
    releases.wait_phase("web", "Degraded")
    assert verdict(kstatus, kube, namespace, "release/web") == "Failed"


def test_a_group_is_current_once_its_members_are_live(
    kube: Any, namespace: str, releases: Releases, kstatus: str
) -> None:
    group = {
        "apiVersion": "greenlight.dev/v1alpha1",
        "kind": "ReleaseGroup",
        "metadata": {"name": "shop"},
        "spec": {"members": ["a", "b"], "settleSeconds": 0},
    }
    kube.apply(group, namespace=namespace)
    for n in ("a", "b"):
        releases.apply(release_manifest(n, f"example/{n}:1"))
    wait_for(
        lambda: verdict(kstatus, kube, namespace, "releasegroup/shop") == "Current",
        60,
        "the group Current",
    )
    body = json.loads(kube.kubectl("get", "releasegroup/shop", "-n", namespace, "-o", "json"))
    assert {c["type"]: c["status"] for c in body["status"]["conditions"]}["Ready"] == "True"
