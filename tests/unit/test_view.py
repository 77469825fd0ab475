"""cli/view.py: a Release (or ReleaseGroup) body in, the one view every CLI surface renders out
(pure: no cluster, no console). Argo CD's health.lua is checked against the view's health."""

from __future__ import annotations

import json
from typing import Any

import pytest

from greenlight.cli import view
from greenlight.engine import naming
from tests import argocd

from .test_checks import BAD, candidate_ready, smoke
from .world import World, released, spec


def body(w: World, name: str = "web") -> dict[str, Any]:
    return {
        "apiVersion": "greenlight.dev/v1alpha1",
        "kind": "Release",
        "metadata": {"name": name, "namespace": "shop", "generation": w.generation},
        "spec": w.spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
        "status": w.status.model_dump(by_alias=True, mode="json"),
    }


def test_a_release_in_flight() -> None:
    w = released("app:1")
    w.set_spec(spec("app:2"))
    w.reconcile()
    v = view.release(body(w))
    assert (v.name, v.namespace, v.phase, v.state, v.strategy) == (
        "web",
        "shop",
        "Progressing",
        "running",
        "blueGreen",
    )
    assert v.observed and not v.paused and v.replicas == 3
    assert v.live == view.Slot(1, "blue", 3, 3) and v.live.text == "revision 1 (blue)"
    assert v.candidate == view.Slot(2, "green", 0, 3)
    assert [(h.revision, h.live, h.candidate, h.marks) for h in v.history] == [
        (2, False, True, " (candidate)"),
        (1, True, False, " (live)"),
    ]
    assert v.history[1].undo == "live" and v.history[1].pods == "3/3"
    assert v.commands["promote"] is None and v.commands["abort"] is None
    assert v.commands["retry"] == "nothing to retry: no aborted revision"
    assert v.commands["pause"] is None and v.commands["resume"] == "spec.paused is not set"


def test_state_is_done_only_once_the_specs_revision_is_live_for_the_current_generation() -> None:
    w = World(spec("app:1"))
    assert view.release(body(w)).observed is False, "no status yet"
    assert view.release(body(w)).phase == "Unknown"
    w.go_live()
    assert view.release(body(w)).state == "done"
    w.set_spec(spec("app:2"))  # the status still says Healthy, for the previous generation
    unseen = view.release(body(w))
    assert (unseen.phase, unseen.observed, unseen.state) == ("Healthy", False, "running")
    w.reconcile()
    w.settle()
    w.reconcile()
    assert view.release(body(w)).state == "done"


def test_failed_states() -> None:
    w = released("app:1", deadline=60)
    w.set_spec(spec("app:2", deadline=60))
    w.reconcile()
    w.tick(61)
    w.reconcile()
    assert view.release(body(w)).state == "degraded"
    w = released("app:1")
    w.set_spec(spec("app:2"))
    w.reconcile()
    w.annotations[naming.COMMAND_ABORT] = "true"
    w.reconcile()
    aborted = view.release(body(w))
    assert aborted.state == "aborted" and aborted.commands["retry"] is None
    assert (
        aborted.commands["promote"] == "nothing to promote: revision 2 is aborted (retry it first)"
    )


def test_undo_refusals_per_revision_are_the_engines() -> None:
    w = released("app:1")
    w.set_spec(spec("app:2"))
    w.go_live()
    v = view.release(body(w))
    assert v.refusal("undo") is None
    assert v.refusal("undo", 9) == "revision 9 is not in the history (known: 1, 2)"
    assert v.refusal("undo", 2) == "revision 2 is already the spec"
    assert [h.undo for h in v.history] == ["live", None]


def test_an_invalid_spec_refuses_every_command_and_is_never_done() -> None:
    b = body(released("app:1"))
    b["spec"]["template"] = {"spec": {}}
    v = view.release(b)
    assert v.replicas == 3, "spec.replicas read from the body as it is"
    for command in view.ANNOTATION_COMMANDS:
        refused = v.refusal(command)
        assert refused is not None and refused.startswith("its spec is invalid: "), refused
    assert v.state == "running"


def test_checks_show_their_last_measurement() -> None:
    w = candidate_ready(pre=[smoke(count=3, failureLimit=1, interval="1s")])
    w.reconcile()
    w.answer(BAD)
    w.reconcile()
    [check] = view.release(body(w)).checks
    assert (check.name, check.stage, check.revision, check.phase) == (
        "smoke",
        "prePromotion",
        2,
        "Running",
    )
    assert check.failed == 1 and check.last.startswith("Failed: ") and "500" in check.last
    assert view.release(body(w)).running_checks == ["smoke"]


def test_rolling_steps_are_labelled() -> None:
    steps = [{"setWeight": 20}, {"pause": {"duration": "60s"}}, {"pause": {}}]
    w = released("app:1", rolling={"steps": steps})
    w.set_spec(spec("app:2", rolling={"steps": steps}))
    w.reconcile()
    v = view.release(body(w))
    assert v.strategy == "rolling" and v.steps == ("20%", "pause 60s", "pause")
    assert v.step == 0 and v.weight is not None
    w.annotations[naming.COMMAND_ABORT] = "true"
    for _ in range(6):  # (the rollback's batches)
        w.reconcile()
        w.settle()
    done = view.release(body(w))
    assert body(w)["status"]["currentStep"] is not None, "the status keeps the last step"
    assert done.candidate is None and (done.step, done.weight) == (None, None), "not shown"


def test_the_routes_weights_are_shown() -> None:
    from .test_traffic import gw_spec, live_behind_gateway

    w = live_behind_gateway()
    assert view.release(body(w)).traffic == "HTTPRoute web: rev 1 100%; accepted"
    w.set_spec(gw_spec("app:2", auto_promote=False))
    for _ in range(4):  # the backend Service, its endpoints, the route
        w.reconcile()
        w.settle()
    assert (
        view.release(body(w)).traffic == "HTTPRoute web: rev 1 100%, rev 2 0%; preview rev 2;"
        " accepted"
    )
    assert view.release(body(released("app:1"))).traffic is None


def test_the_json_is_plain_and_names_what_the_page_reads() -> None:
    w = released("app:1")
    w.set_spec(spec("app:2", paused=True))
    j = view.release(body(w)).json()
    assert json.loads(json.dumps(j)) == j
    assert set(j) == {
        "name",
        "phase",
        "message",
        "state",
        "strategy",
        "paused",
        "live",
        "candidate",
        "step",
        "steps",
        "weight",
        "traffic",
        "checks",
        "history",
        "commands",
    }
    assert j["paused"] and j["commands"]["pause"] and j["commands"]["resume"] is None
    assert j["live"] == {"revision": 1, "color": "blue", "ready": 3, "replicas": 3}


def bodies() -> list[tuple[str, dict[str, Any]]]:
    """A Release in each phase, and before and after the operator has seen a spec."""
    found = []
    w = World(spec("app:1", auto_promote=False))
    found.append(("no status", body(w)))
    w.go_live()
    found.append(("healthy", body(w)))
    w.set_spec(spec("app:2", auto_promote=False))
    found.append(("not yet seen", body(w)))
    w.reconcile()
    found.append(("progressing", body(w)))
    for _ in range(3):  # ready, and waiting for a promotion
        w.reconcile()
        w.settle()
    found.append(("paused", body(w)))
    w.annotations[naming.COMMAND_ABORT] = "true"
    w.reconcile()
    found.append(("aborted", body(w)))
    d = released("app:1", deadline=60)
    d.set_spec(spec("app:2", deadline=60))
    d.reconcile()
    d.tick(61)
    d.reconcile()
    found.append(("degraded", body(d)))
    return found


@pytest.mark.parametrize(("case", "release"), bodies(), ids=[c for c, _ in bodies()])
def test_argocd_health_lua_says_what_the_view_says(case: str, release: dict[str, Any]) -> None:
    assert argocd.health(release) == view.release(release).argocd_health(), case


def group_body(generation: int = 1, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "greenlight.dev/v1alpha1",
        "kind": "ReleaseGroup",
        "metadata": {"name": "shop", "namespace": "ns", "generation": generation},
        "spec": {"members": ["django", "fastapi"]},
        "status": status,
    }


@pytest.mark.parametrize(
    "status",
    [
        {},
        {"phase": "Healthy", "observedGeneration": 1},
        {"phase": "Healthy", "observedGeneration": 0},
        {"phase": "Paused", "observedGeneration": 1, "message": "held"},
        {"phase": "Degraded", "observedGeneration": 1, "message": "django failed"},
    ],
)
def test_argocd_group_health_lua_says_what_the_view_says(status: dict[str, Any]) -> None:
    g = group_body(**status)
    assert argocd.health(g) == view.group(g).argocd_health()


def test_a_group() -> None:
    g = view.group(
        group_body(
            phase="Progressing",
            observedGeneration=1,
            waitingFor=["fastapi"],
            members=[{"name": "django", "liveRevision": 1, "candidateRevision": 2}],
            history=[{"at": "2026-01-01T00:00:00Z", "revisions": {"django": 1}}],
        )
    )
    assert g.spec_members == ("django", "fastapi") and g.waiting_for == ("fastapi",)
    assert g.members == (view.MemberRow("django", None, 1, 2, False),)
    assert g.history == (view.GroupEntryRow("2026-01-01 00:00:00", {"django": 1}),)
    assert g.commands["undo"] == "group ns/shop: no earlier group entry to undo to"
    assert g.commands["promote"] is None
    assert g.json()["members"][0]["candidateRevision"] == 2


def test_a_groups_state_follows_its_members() -> None:
    healthy = view.group(group_body(phase="Healthy", observedGeneration=1))
    done = view.release(body(released("app:1")))
    assert view.group_state(healthy, {"django": done, "fastapi": done}) == "done"
    assert view.group_state(healthy, {"django": done, "fastapi": None}) == "running"
    unseen = view.group(group_body(generation=2, phase="Healthy", observedGeneration=1))
    assert view.group_state(unseen, {"django": done, "fastapi": done}) == "running"
