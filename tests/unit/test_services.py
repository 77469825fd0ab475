"""The Services step (engine/services.py), the only place a selector moves: the live and
preview Services are made to say what the status decided (selector, ports, type), and a
selector someone changed by hand is put back with a Drift warning."""

from __future__ import annotations

import dataclasses

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import naming, snapshot

from .world import World, hash_of, released, spec


def drift(w: World) -> list[act.RecordEvent]:
    return [a for a in w.log if isinstance(a, act.RecordEvent) and a.reason == "Drift"]


def test_a_live_selector_changed_by_hand_is_put_back_with_a_drift_warning() -> None:
    w = released("app:1")
    w.set_spec(spec("app:2"))
    w.go_live()
    v2 = hash_of(w.spec)
    history = list(w.status.history)
    for wrong in ({"app": "web"}, naming.pod_labels("web", history[0].template_hash)):
        svc = w.services["web"]
        w.services["web"] = dataclasses.replace(svc, selector=wrong)
        p = w.reconcile()
        assert w.live_hash() == v2 and w.live_selector() == naming.pod_labels("web", v2)
        drift = [a for a in p.events if isinstance(a, act.RecordEvent) and a.reason == "Drift"]
        assert drift and drift[0].type == "Warning" and "web" in drift[0].message
        assert w.status.phase == "Healthy" and w.status.live_revision == 2
        assert w.status.history == history, "a repair is not a new release"


def test_the_repair_is_planned_in_the_reconcile_that_reports_healthy() -> None:
    w = released("app:1")
    svc = w.services["web"]
    w.services["web"] = dataclasses.replace(svc, selector={"app": "web"})
    p = w.reconcile()
    # the repair is planned in the same reconcile, before the status that says Healthy
    kinds = [type(a).__name__ for a in p.writes]
    assert "ApplyService" in kinds


def test_an_adopted_service_keeps_its_traffic_until_the_first_revision_is_available() -> None:
    w = World(spec("app:1", adopt=True))
    w.services["web"] = snapshot.ServiceView("web", {"app": "legacy"}, owned=False)
    w.reconcile()
    assert w.live_selector() == {"app": "legacy"}
    w.settle()
    w.reconcile()
    assert w.live_hash() == hash_of(w.spec)
    assert w.status.phase == "Healthy"


def test_the_drift_warning_names_what_it_found_and_what_it_set_back() -> None:
    w = released("app:1")
    w.set_spec(spec("app:2"))
    w.go_live()
    old = w.status.history[0].template_hash
    w.services["web"] = dataclasses.replace(
        w.services["web"], selector=naming.pod_labels("web", old)
    )
    w.reconcile()
    [warning] = drift(w)
    assert warning.message == (
        "live Service web was changed outside Greenlight to select revision 1;"
        " set back to revision 2"
    )


def test_the_preview_service_selects_the_candidate_once_it_has_an_available_pod() -> None:
    """Argo Rollouts #2641: requests sent to the preview Service fail while it selects a
    revision with no pod to answer; it stays on the live revision until then."""
    w = released("app:1")
    v1 = hash_of(w.spec)
    assert w.services["web-preview"].selector == naming.pod_labels("web", v1), "no candidate"
    w.set_spec(spec("app:2"))
    w.reconcile()
    v2 = hash_of(w.spec)
    candidate = naming.deployment_name("web", v2)
    w.settle(candidate, available=0)
    w.reconcile()
    assert w.services["web-preview"].selector == naming.pod_labels("web", v1), "0 available"
    assert drift(w) == []
    w.settle(candidate, available=1)
    w.reconcile()
    assert w.services["web-preview"].selector == naming.pod_labels("web", v2), "1 available"
    assert w.live_hash() == v1
    w.settle(candidate, available=0)  # its one pod went away: back to the live revision
    w.reconcile()
    assert w.services["web-preview"].selector == naming.pod_labels("web", v1)
    assert drift(w) == [], "what the Release itself decided is no drift"
    w.go_live()
    assert w.services["web-preview"].selector == naming.pod_labels("web", v2)
    assert w.live_hash() == v2


def test_a_preview_selector_changed_by_hand_is_put_back_with_a_drift_warning() -> None:
    w = released("app:1", auto_promote=False)
    v1 = hash_of(w.spec)
    w.set_spec(spec("app:2", auto_promote=False))
    w.reconcile()
    w.settle()
    w.reconcile()
    assert w.status.phase == "Paused"
    v2 = hash_of(w.spec)
    preview = w.services["web-preview"]
    w.services["web-preview"] = dataclasses.replace(preview, selector={"app": "web"})
    w.reconcile()
    assert w.services["web-preview"].selector == naming.pod_labels("web", v2)
    assert w.live_hash() == v1, "the live Service is not touched"
    [warning] = drift(w)
    assert warning.type == "Warning" and warning.message.startswith("preview Service web-preview")


def test_ports_and_type_changed_by_hand_are_taken_back_without_a_warning() -> None:
    w = released("app:1")
    svc = w.services["web"]
    w.services["web"] = dataclasses.replace(
        svc,
        ports=({"name": "http", "port": 8080, "targetPort": 80, "protocol": "TCP"},),
        type="NodePort",
    )
    p = w.reconcile()
    [apply] = [a for a in p.writes if isinstance(a, act.ApplyService)]
    assert apply.name == "web" and apply.selector == svc.selector
    assert w.services["web"].ports == svc.ports and w.services["web"].type == svc.type
    assert drift(w) == [], "only a selector moved by hand is drift"


def test_ports_are_compared_as_the_api_server_stores_them() -> None:
    """Defaults filled in (name, targetPort, protocol), so a Service as stored is no change."""
    port = api.ServicePort.model_validate({"port": 80})
    assert naming.ports((port,)) == (
        {"name": "port-80", "port": 80, "targetPort": 80, "protocol": "TCP"},
    )
    w = released("app:1")
    assert w.services["web"].ports == naming.ports(tuple(w.spec.service.ports))
    p = w.reconcile()
    assert not [a for a in p.writes if isinstance(a, act.ApplyService)]


def test_a_rolling_release_in_flight_serves_every_revision_from_the_live_service() -> None:
    rolling = {"maxSurge": 1, "maxUnavailable": 0}
    w = released("app:1", rolling=rolling)
    v1 = hash_of(w.spec)
    assert w.live_selector() == naming.pod_labels("web", v1)
    w.set_spec(spec("app:2", rolling=rolling))
    w.reconcile()
    assert w.live_selector() == {naming.LABEL_RELEASE: "web"}
    for _ in range(10):
        w.settle()
        w.reconcile()
    assert w.status.phase == "Healthy"
    assert w.live_selector() == naming.pod_labels("web", hash_of(w.spec)), "pinned at the end"


def test_a_service_deleted_by_hand_is_created_again() -> None:
    w = released("app:1")
    selector = w.live_selector()
    del w.services["web"]
    p = w.reconcile()
    [apply] = [a for a in p.writes if isinstance(a, act.ApplyService)]
    assert apply.create and apply.name == "web" and w.live_selector() == selector
