"""manifests/argocd: the shipped ConfigMap is the Lua files, and its scripts (run in Lua 5.1 as
Argo CD runs them) map each phase to Argo CD's health and each action to the plugin's command.
tests/e2e/test_argocd.py runs the same scripts on live Releases and applies the actions."""

from __future__ import annotations

import datetime
import importlib.util
from typing import Any

import pytest

from greenlight.api import release as api
from greenlight.engine import naming
from tests import argocd
from tests.admission_cases import valid

_spec = importlib.util.spec_from_file_location(
    "render_argocd", argocd.ROOT / "hack/render-argocd.py"
)
assert _spec is not None and _spec.loader is not None
render_argocd = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render_argocd)


def test_configmap_is_rendered_from_the_lua_files() -> None:
    assert argocd.CONFIGMAP.read_text() == render_argocd.render(), (
        "stale: hack/render-argocd.py > manifests/argocd/argocd-cm.yaml"
    )


def obj(kind: str = "Release", generation: int = 2, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "greenlight.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "web", "namespace": "shop", "generation": generation},
        "spec": {"replicas": 3, "paused": False},
        "status": status,
    }


@pytest.mark.parametrize("kind", ["Release", "ReleaseGroup"])
@pytest.mark.parametrize(
    ("phase", "health"),
    [
        ("Healthy", "Healthy"),
        ("Progressing", "Progressing"),
        ("Paused", "Suspended"),
        ("Degraded", "Degraded"),
        ("Aborted", "Degraded"),
    ],
)
def test_health_of_each_phase(kind: str, phase: str, health: str) -> None:
    got = argocd.health(obj(kind, phase=phase, observedGeneration=2, message=f"it is {phase}"))
    assert got == {"status": health, "message": f"it is {phase}"}


@pytest.mark.parametrize("kind", ["Release", "ReleaseGroup"])
def test_healthy_only_once_the_current_generation_is_observed(kind: str) -> None:
    stale = argocd.health(obj(kind, generation=3, phase="Healthy", observedGeneration=2))
    assert stale["status"] == "Progressing" and "generation 3" in stale["message"]
    unseen = argocd.health(obj(kind, generation=3, phase="Healthy"))
    assert unseen["status"] == "Progressing"
    assert argocd.health(obj(kind))["status"] == "Progressing", "no status yet"
    assert argocd.health(obj(kind, generation=3, phase="Healthy", observedGeneration=3)) == {
        "status": "Healthy",
        "message": "phase Healthy",
    }


@pytest.mark.parametrize("kind", ["Release", "ReleaseGroup"])
@pytest.mark.parametrize(
    ("action", "key", "value"),
    [
        ("promote", naming.COMMAND_PROMOTE, "true"),
        ("promote-skip-checks", naming.COMMAND_PROMOTE, "skip-checks"),
        ("abort", naming.COMMAND_ABORT, "true"),
        ("retry", naming.COMMAND_RETRY, "true"),
        ("undo", naming.COMMAND_UNDO, ""),
    ],
)
def test_command_actions_set_the_plugins_annotation(
    kind: str, action: str, key: str, value: str
) -> None:
    before = obj(kind, phase="Paused")
    after = argocd.act(action, before)
    assert argocd.merge_patch(before, after) == {"metadata": {"annotations": {key: value}}}
    before["metadata"]["annotations"] = {"keep": "me"}
    after = argocd.act(action, before)
    assert after["metadata"]["annotations"] == {"keep": "me", key: value}


@pytest.mark.parametrize("kind", ["Release", "ReleaseGroup"])
def test_pause_and_resume_set_spec_paused(kind: str) -> None:
    running = obj(kind)
    assert argocd.merge_patch(running, argocd.act("pause", running)) == {"spec": {"paused": True}}
    held = argocd.act("pause", running)
    assert argocd.merge_patch(held, argocd.act("resume", held)) == {"spec": {"paused": False}}


def test_release_discovery_enables_what_can_apply() -> None:
    healthy = obj(phase="Healthy", liveRevision=1, history=[{"revision": 1}])
    assert {a for a, on in argocd.discover(healthy).items() if on} == {"pause", "restart"}
    waiting = obj(phase="Paused", candidateRevision=2, candidateHash="b", history=[{}, {}])
    assert {a for a, on in argocd.discover(waiting).items() if on} == {
        "promote",
        "promote-skip-checks",
        "abort",
        "undo",
        "pause",
    }, "no live revision to restart yet"
    aborted = obj(phase="Aborted", candidateRevision=2, candidateHash="b", abortedHash="b")
    aborted["spec"]["paused"] = True
    assert {a for a, on in argocd.discover(aborted).items() if on} == {"retry", "resume"}
    assert set(argocd.discover(healthy)) == {*render_argocd.ORDER, "restart"}


def test_group_discovery_follows_its_members() -> None:
    members = [{"name": "a", "candidateRevision": 2}, {"name": "b", "phase": "Degraded"}]
    group = obj("ReleaseGroup", phase="Progressing", members=members, history=[{}])
    assert {a for a, on in argocd.discover(group).items() if on} == {
        "promote",
        "promote-skip-checks",
        "abort",
        "retry",
        "pause",
    }


def test_restart_sets_spec_restart_at_to_now_and_only_a_release_has_it() -> None:
    before = obj(phase="Healthy", liveRevision=1)
    started = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    patch = argocd.merge_patch(before, argocd.act("restart", before))
    assert set(patch) == {"spec"} and set(patch["spec"]) == {"restartAt"}
    at = api.ReleaseSpec.model_validate(valid()["spec"] | patch["spec"]).restart_at
    assert at is not None and at.tzinfo is not None
    assert started <= at <= datetime.datetime.now(datetime.UTC)
    assert "restart" not in argocd.discover(obj("ReleaseGroup"))
