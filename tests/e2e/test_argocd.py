"""Argo CD's view of a Release: manifests/argocd's health.lua evaluated (Lua 5.1) on the live
object in every phase (it says what the plugin's view, `cli/view.py`, says), and its actions'
returned objects applied to the cluster as a patch, as Argo CD applies them, with the effect the
plugin's commands have."""

from __future__ import annotations

from typing import Any

import pytest

from greenlight.cli import view
from tests import argocd
from tests.e2e.helpers import wait_for
from tests.e2e.support import NEVER_READY, Releases, release_manifest, with_image
from tests.e2e.test_groups import PAIR, pair

pytestmark = pytest.mark.usefixtures("operator")


def reach(releases: Releases, phase: str, **fields: Any) -> dict[str, Any]:
    """Wait for `phase` with the current generation observed; the live Release then."""
    generation = releases.get("web")["metadata"]["generation"]
    releases.wait_phase("web", phase, timeout=60, observedGeneration=generation, **fields)
    live = releases.get("web")
    assert argocd.health(live) == view.release(live).argocd_health(), "the Lua says what get does"
    return live


def image(release: dict[str, Any]) -> str:
    return str(release["spec"]["template"]["spec"]["containers"][0]["image"])


def run_action(releases: Releases, name: str) -> dict[str, Any]:
    """Run action `name` on the live Release and apply what it returns; the patch applied."""
    before = releases.get("web")
    assert argocd.discover(before)[name], f"{name} offered but disabled"
    patch = argocd.merge_patch(before, argocd.act(name, before))
    assert set(patch) <= {"metadata", "spec"}, patch
    releases.kube.custom.patch_namespaced_custom_object(
        "greenlight.dev", "v1alpha1", releases.ns, "releases", "web", patch
    )
    return dict(patch)


def test_health_in_every_phase_and_actions_applied(releases: Releases) -> None:
    manifest = release_manifest("web", "example/web:1", blue_green={"autoPromote": False})
    releases.apply(manifest)
    live = reach(releases, "Healthy", liveRevision=1)
    assert argocd.health(live)["status"] == "Healthy"

    # Progressing (pods not ready yet), then Paused: autoPromote false waits for a promote
    releases.apply(with_image(manifest, "example/web:2", ready_after="4s"))
    live = reach(releases, "Progressing", candidateRevision=2)
    assert argocd.health(live)["status"] == "Progressing"
    live = reach(releases, "Paused", candidateRevision=2)
    assert argocd.health(live) == {"status": "Suspended", "message": live["status"]["message"]}
    assert argocd.discover(live)["promote"] and not argocd.discover(live)["retry"]

    assert run_action(releases, "promote") == {
        "metadata": {"annotations": {"greenlight.dev/promote": "true"}}
    }
    live = reach(releases, "Healthy", liveRevision=2)
    assert argocd.health(live)["status"] == "Healthy"

    # abort a waiting candidate: Aborted, and Argo CD calls it Degraded; retry brings it back
    releases.apply(with_image(manifest, "example/web:3"))
    reach(releases, "Paused", candidateRevision=3)
    run_action(releases, "abort")
    live = reach(releases, "Aborted", liveRevision=2)
    assert argocd.health(live)["status"] == "Degraded"
    assert argocd.discover(live)["retry"] and not argocd.discover(live)["promote"]
    run_action(releases, "retry")
    reach(releases, "Paused", candidateRevision=3)
    run_action(releases, "promote-skip-checks")
    reach(releases, "Healthy", liveRevision=3)

    # pause and resume: spec.paused, as `kubectl greenlight pause|resume` sets it
    assert run_action(releases, "pause") == {"spec": {"paused": True}}
    assert releases.get("web")["spec"]["paused"] is True
    assert not argocd.discover(releases.get("web"))["pause"]
    assert run_action(releases, "resume") == {"spec": {"paused": False}}
    live = reach(releases, "Healthy", liveRevision=3)
    assert live["spec"]["paused"] is False and argocd.health(live)["status"] == "Healthy"

    # undo: back to revision 2 without writing the spec, held until git changes: Degraded
    run_action(releases, "undo")
    live = reach(releases, "Degraded", liveRevision=2)
    assert image(live) == "example/web:3", "the spec is not written: a sync cannot undo it"
    assert argocd.health(live) == {"status": "Degraded", "message": live["status"]["message"]}
    assert "revision 3 rolled back" in live["status"]["message"]

    # Degraded: a candidate never ready past its progress deadline
    # (a short deadline only here, so that it cannot race web:2's delayed readiness above)
    never = with_image(manifest, "example/web:5", **NEVER_READY)
    never["spec"]["progressDeadlineSeconds"] = 8
    releases.apply(never)
    live = reach(releases, "Degraded", liveRevision=2)
    assert argocd.health(live) == {"status": "Degraded", "message": live["status"]["message"]}


def test_group_health_and_actions(releases: Releases, kube: Any, namespace: str) -> None:
    manifests = pair(releases, kube, namespace, deadline=8)

    def group() -> dict[str, Any]:
        return dict(
            kube.custom.get_namespaced_custom_object(
                "greenlight.dev", "v1alpha1", namespace, "releasegroups", "shop"
            )
        )

    def reach_group(phase: str) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            g = group()
            st = g.get("status") or {}
            seen = st.get("observedGeneration") == g["metadata"]["generation"]
            return g if st.get("phase") == phase and seen else None

        found = wait_for(reached, 60, f"group phase {phase}")
        assert argocd.health(found) == view.group(found).argocd_health()
        return found

    def run_group_action(name: str) -> None:
        before = group()
        assert argocd.discover(before)[name], f"{name} offered but disabled"
        patch = argocd.merge_patch(before, argocd.act(name, before))
        kube.custom.patch_namespaced_custom_object(
            "greenlight.dev", "v1alpha1", namespace, "releasegroups", "shop", patch
        )

    assert argocd.health(reach_group("Healthy"))["status"] == "Healthy"
    run_group_action("pause")
    for n, m in manifests.items():
        releases.apply(with_image(m, f"example/{n}:2"))
    held = reach_group("Paused")
    assert argocd.health(held) == {"status": "Suspended", "message": held["status"]["message"]}
    assert {releases.status(n)["liveRevision"] for n in PAIR} == {1}
    run_group_action("resume")
    assert argocd.health(reach_group("Healthy"))["status"] == "Healthy"
    assert {releases.status(n)["liveRevision"] for n in PAIR} == {2}

    # one member never ready past its deadline: the group is Degraded
    releases.apply(with_image(manifests["django"], "example/django:3", **NEVER_READY))
    failed = reach_group("Degraded")
    assert argocd.health(failed) == {"status": "Degraded", "message": failed["status"]["message"]}
    assert argocd.discover(failed)["retry"]
