"""spec.traffic.gatewayAPI: the route's weights, its preview rule and its backends, decided by
the engine alone (engine/traffic.py); the in-memory World stores the route as the API would."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import naming

from .world import World, hash_of, spec

GATEWAY: dict[str, Any] = {
    "parentRefs": [{"name": "public", "namespace": "gw"}],
    "hostnames": ["web.example.com"],
    "previewMatches": [{"headers": [{"name": "x-canary", "value": "1"}]}],
}


def gw_spec(image: str = "app:1", **kw: Any) -> api.ReleaseSpec:
    return spec(image, gateway=GATEWAY, **kw)


def backend(s: api.ReleaseSpec) -> str:
    return naming.deployment_name("web", hash_of(s))


def route_writes(w: World) -> list[act.ApplyRoute]:
    assert w.last is not None
    return [a for a in w.last.writes if isinstance(a, act.ApplyRoute)]


def live_behind_gateway() -> World:
    w = World(gw_spec())
    for _ in range(4):
        w.reconcile()
        w.settle()
    assert w.route is not None
    return w


def test_the_first_route_waits_for_a_pod_then_weights_the_live_revision_100() -> None:
    w = World(gw_spec())
    w.reconcile()
    assert w.route is None, "no pod, no backend Service yet: nothing to route to"
    assert w.status.traffic is not None and "first available pod" in w.status.traffic.message
    w.settle()
    w.reconcile()
    w.reconcile()
    assert w.weights() == {backend(w.spec): 100}
    assert w.preview_backend() is None
    assert w.route is not None
    assert w.route.spec["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "namespace": "gw",
            "name": "public",
        }
    ]
    assert w.route.spec["hostnames"] == ["web.example.com"]
    live = w.route.spec["rules"][-1]
    assert live["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert live["backendRefs"][0] == {
        "group": "", "kind": "Service", "name": backend(w.spec), "port": 80, "weight": 100
    }  # fmt: skip
    assert w.services[backend(w.spec)].selector == naming.pod_labels("web", hash_of(w.spec))
    w.reconcile()
    assert route_writes(w) == [], "a route as wanted is not written again"


def test_preview_then_one_route_write_flips_and_the_preview_rule_goes() -> None:
    w = live_behind_gateway()
    v1, v2 = backend(w.spec), backend(gw_spec("app:2"))
    w.set_spec(gw_spec("app:2"))
    w.reconcile()  # the candidate's Deployment
    w.reconcile()  # its backend Service
    assert w.weights() == {v1: 100}, "not named before its EndpointSlice lists a pod"
    assert w.preview_backend() is None, "no available candidate pod: preview goes to live"
    w.settle(v2, available=1)
    w.reconcile()
    assert w.preview_backend() == v2
    assert w.weights() == {v1: 100, v2: 0}
    w.settle()
    w.reconcile()
    assert [a.spec["rules"] for a in route_writes(w)] == [w.route.spec["rules"]]  # type: ignore[union-attr]
    assert w.weights() == {v2: 100, v1: 0}, "the flip: one write moves 100 across"
    assert w.preview_backend() is None
    assert w.status.traffic is not None
    assert [(x.revision, x.weight) for x in w.status.traffic.weights] == [(2, 100), (1, 0)]


def test_undo_to_the_warm_revision_is_one_route_write() -> None:
    w = live_behind_gateway()
    v1, v2 = backend(w.spec), backend(gw_spec("app:2"))
    w.set_spec(gw_spec("app:2"))
    for _ in range(4):
        w.reconcile()
        w.settle()
    assert w.weights() == {v2: 100, v1: 0}
    w.annotations[naming.COMMAND_UNDO] = ""
    w.reconcile()
    assert len(route_writes(w)) == 1 and w.weights() == {v1: 100, v2: 0}
    for _ in range(2):
        w.reconcile()
    assert w.weights()[v1] == 100 and w.weights().get(v2, 0) == 0


def test_abort_returns_the_preview_to_live_in_one_write() -> None:
    w = live_behind_gateway()
    v1, v2 = backend(w.spec), backend(gw_spec("app:2"))
    w.set_spec(gw_spec("app:2", auto_promote=False))
    for _ in range(3):
        w.reconcile()
        w.settle()
    assert w.preview_backend() == v2 and w.weights()[v1] == 100
    w.annotations[naming.COMMAND_ABORT] = "true"
    w.reconcile()
    assert len(route_writes(w)) == 1
    assert w.preview_backend() is None and w.weights()[v1] == 100


def test_a_hand_edit_of_the_route_is_set_back_with_an_event() -> None:
    w = live_behind_gateway()
    assert w.route is not None
    wanted = w.route.spec
    edited = {**wanted, "rules": [{**wanted["rules"][-1], "backendRefs": []}]}
    w.route = w.route.__class__(**{**w.route.__dict__, "spec": edited})
    w.reconcile()
    assert w.route.spec == wanted
    assert w.last is not None
    [drift] = [e for e in w.last.events if e.reason == "Drift"]
    assert drift.type == "Warning"
    assert drift.message.startswith("HTTPRoute web was changed outside Greenlight: rule live")


def test_a_route_of_someone_else_is_refused_unless_adopted() -> None:
    w = World(gw_spec())
    from greenlight.engine import snapshot

    w.route = snapshot.RouteView("web", owned=False, spec={"rules": []}, resource_version="7")
    w.reconcile()
    assert w.status.phase == "Degraded" and "adopt: true" in w.status.message
    assert w.deployments == {} and w.route.spec == {"rules": []}
    w.set_spec(spec(gateway={**GATEWAY, "adopt": True}))
    for _ in range(3):
        w.reconcile()
        w.settle()
    assert w.route.owned and w.weights() == {backend(w.spec): 100}


def test_a_route_the_gateway_has_not_accepted_is_looked_at_again() -> None:
    """A gateway that drops a status update sends no other event: the Release looks again."""
    w = live_behind_gateway()
    w.gateway_accepts = False
    w.set_spec(gw_spec("app:2", scale_down_delay=600))  # (no other timer sooner)
    run(w, 4)
    assert w.route is not None and not w.route.accepted
    assert w.last is not None and w.last.requeue_after is not None
    assert w.last.requeue_after <= 30


def test_the_old_revision_keeps_its_pods_while_the_gateway_has_not_taken_the_flip() -> None:
    w = live_behind_gateway()
    v1 = backend(w.spec)
    w.set_spec(gw_spec("app:2", scale_down_delay=0))
    w.gateway_accepts = False
    for _ in range(4):
        w.reconcile()
        w.settle()
    assert w.weights()[v1] == 0
    assert w.deployments[v1].spec_replicas == 3, "the gateway may still send it requests"
    w.gateway_accepts = True
    w.route = w.route.__class__(**{**w.route.__dict__, "accepted": True})  # type: ignore[union-attr]
    w.reconcile()
    assert w.deployments[v1].spec_replicas == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("parentRefs", [], "parentRefs"),
        ("previewMatches", [{"path": {"value": "/"}}], "matches every request"),
        ("filters", [{"type": "RequestRedirect"}], "filters"),
        ("filters", [{"type": "URLRewrite"}], "needs urlRewrite"),
        ("hostnames", ["Not A Host"], "hostnames"),
    ],
)
def test_bad_gateway_input_is_refused_naming_the_field(
    field: str, value: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        spec(gateway={**GATEWAY, field: value})


def play(w: World, op: str, new_spec: Callable[[], api.ReleaseSpec]) -> None:
    """One drawn operation on the world, then a reconcile."""
    if op == "release":
        w.set_spec(new_spec())
    elif op in ("settle", "half", "none"):
        for name, d in w.deployments.items():
            if op == "settle" or d.template_hash == w.status.candidate_hash:
                w.settle(name, available=None if op == "settle" else int(op == "half"))
    elif op == "lag":  # the candidate's pods are up; its EndpointSlices do not list them yet
        if w.status.candidate_hash:
            w.endpoints[naming.deployment_name(w.name, w.status.candidate_hash)] = 0
    elif op == "listed":
        w.endpoints.clear()
    elif op == "tick":
        w.tick(31)
    elif op == "abort":
        w.annotations[naming.COMMAND_ABORT] = "true"
    elif op == "undo":
        w.annotations[naming.COMMAND_UNDO] = ""
    w.reconcile()


OPS = st.lists(
    st.sampled_from(
        ["release", "settle", "half", "none", "lag", "listed", "tick", "abort", "undo", "reconcile"]
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(ops=OPS)
def test_route_invariants(ops: list[str]) -> None:
    """Weights sum to 100 on the live rule; every route write gives weight only to revisions
    whose backend lists a ready endpoint; preview goes only to the candidate."""
    w = live_behind_gateway()
    images = iter(f"app:{i}" for i in range(2, 100))

    def check(after_plan: bool = True) -> None:
        assert w.route is not None
        weights = w.weights()
        assert sum(weights.values()) == 100
        for name, weight in weights.items():
            if weight:
                listed = w.endpoints.get(name, w.deployments[name].available_replicas)
                assert listed > 0, (name, weights)
        preview = w.preview_backend()
        if preview is not None and after_plan:  # (mid-plan, the status is the one before it)
            assert w.status.candidate_hash is not None
            assert preview == naming.deployment_name("web", w.status.candidate_hash)
            assert w.endpoints.get(preview, w.deployments[preview].available_replicas) > 0

    w.after_each = lambda: check(after_plan=False) if w.route is not None else None
    for op in ops:
        play(w, op, lambda: gw_spec(next(images)))
        check()


def test_removing_spec_traffic_hands_the_route_to_the_live_service() -> None:
    """A route deleted would cut every request the gateway sends: it stays, on the Service."""
    w = live_behind_gateway()
    assert w.route is not None
    hostnames, matches = w.route.spec["hostnames"], w.route.spec["rules"][-1]["matches"]
    w.set_spec(spec("app:1"))
    w.reconcile()
    assert w.weights() == {"web": 1}, "every request on the live Service"
    assert w.route.spec["hostnames"] == hostnames
    assert w.route.spec["rules"][0]["matches"] == matches
    assert "RouteHandedOver" in w.events()
    w.reconcile()
    assert w.status.traffic is None and route_writes(w) == [], "then no longer written"
    w.set_spec(spec("app:2"))
    w.go_live()
    assert w.weights() == {"web": 1} and w.live_selector()[naming.LABEL_HASH] == hash_of(w.spec)


def run(w: World, times: int = 1) -> None:
    for _ in range(times):
        w.reconcile()
        w.settle()


def test_the_flip_waits_until_the_gateway_lists_every_new_pod() -> None:
    """A pod counts as available a moment before its EndpointSlice lists it ready; a gateway
    sending requests to a backend with no endpoint answers 503."""
    w = live_behind_gateway()
    v1, v2 = backend(w.spec), backend(gw_spec("app:2"))
    w.set_spec(gw_spec("app:2"))
    w.endpoints[v2] = 2
    run(w, 4)
    assert w.status.phase == "Progressing" and w.weights() == {v1: 100, v2: 0}
    assert "backend lists 2/3 ready endpoints" in w.status.message
    w.endpoints.clear()
    w.reconcile()
    assert w.weights() == {v2: 100, v1: 0}


# -- canary: rolling steps behind a gateway move requests ---------------------------------------

STEPS = [
    {"setWeight": 5},
    {"setWeight": 25},
    {"pause": {"duration": "10s"}},
    {"setWeight": 50},
    {"pause": {"duration": "10s"}},
]


def canary_spec(image: str, steps: list[dict[str, Any]] = STEPS, **kw: Any) -> api.ReleaseSpec:
    return spec(image, gateway={**GATEWAY, "drainSeconds": 5}, rolling={"steps": steps}, **kw)


def canary_live() -> World:
    w = World(canary_spec("app:1"))
    for _ in range(4):
        w.reconcile()
        w.settle()
    assert w.route is not None
    return w


def test_a_canary_moves_request_shares_and_replicas_follow() -> None:
    w = canary_live()
    v1, v2 = backend(w.spec), backend(canary_spec("app:2"))
    w.set_spec(canary_spec("app:2"))
    trace: list[tuple[int, int, int]] = []  # (v2's weight, v1's pods, v2's pods), as applied

    def record() -> None:
        state = (w.weights().get(v2, 0), w.deployments[v1].spec_replicas,
                 w.deployments[v2].spec_replicas if v2 in w.deployments else 0)  # fmt: skip
        if not trace or trace[-1] != state:
            trace.append(state)

    w.after_each = record
    for _ in range(30):
        w.reconcile()
        w.settle()
        record()
        if w.status.phase == "Paused":
            assert w.status.weight in (25, 50), "the pause steps"
            w.tick(3)
        w.tick(1)
    assert w.status.phase == "Healthy" and w.status.live_hash == hash_of(w.spec)
    weights = [t[0] for t in trace]
    assert sorted(set(weights)) == [0, 5, 25, 50, 100] and weights == sorted(weights)
    for weight, v1_pods, v2_pods in trace:
        assert v2_pods >= (weight and max(1, -(-3 * weight // 100))), trace  # its share's pods
        if weight < 100:
            assert v1_pods >= -(-3 * (100 - weight) // 100), trace  # and the stable side's
    assert (5, 3, 1) in trace, "5% with 3 replicas: one new pod, three stable"
    assert (50, 2, 2) in trace, "at 50%, drained: the stable side down to two"
    assert trace[-1] == (100, 2, 3), "the stable side stays warm for an instant undo"
    w.tick(30)
    run(w, 2)
    assert trace[-1] == (100, 0, 3), "then scaleDownDelaySeconds after the promotion it goes"


@pytest.mark.parametrize("how", ["abort", "analysis"])
def test_abort_and_a_failed_analysis_put_every_request_back_in_one_write(how: str) -> None:
    check = {"name": "smoke", "http": {"url": "http://$(PREVIEW_SERVICE)/"}}
    steps = [{"setWeight": 50}, {"analysis": {"checks": [check]}}]
    w = canary_live()
    v1, v2 = backend(w.spec), backend(canary_spec("app:2", steps))
    w.set_spec(canary_spec("app:2", steps))
    run(w, 3)
    w.tick(5)
    run(w, 2)
    assert w.weights() == {v1: 50, v2: 50} and w.deployments[v1].spec_replicas == 2
    if how == "abort":
        w.annotations[naming.COMMAND_ABORT] = "true"
    else:
        assert w.answer({"status": 500, "body": "oops", "headers": {}}), "a measurement asked"
        w.reconcile()  # recorded; the verdict is read from the recorded status next
        assert w.weights() == {v1: 50, v2: 50}
    w.reconcile()
    assert w.status.aborted_hash == hash_of(canary_spec("app:2", steps)), w.status.message
    assert len(route_writes(w)) == 1
    assert w.weights() == {v1: 100, v2: 0}
    assert w.deployments[v1].spec_replicas == 3, "stable back to spec.replicas at once"
    assert w.deployments[v2].spec_replicas >= 1, "the new side keeps its pods until the gateway"
    run(w, 2)
    assert w.deployments[v2].spec_replicas == 0
    assert w.weights() == {v1: 100}


@settings(max_examples=150, deadline=None)
@given(ops=OPS)
def test_canary_invariants(ops: list[str]) -> None:
    """Weights sum to 100; weight only on revisions with an available pod, and never more than
    its pods carry once the gateway applies it."""
    w = canary_live()
    images = iter(f"app:{i}" for i in range(2, 100))

    def check() -> None:
        assert w.route is not None
        weights = w.weights()
        assert sum(weights.values()) == 100
        for name, weight in weights.items():
            if weight:
                assert w.deployments[name].available_replicas > 0, (name, weights)

    # after each route write (mid-plan too); pods lost since the last one wait for the next
    w.after_each = lambda: check() if isinstance(w.log[-1], act.ApplyRoute) else None
    for op in ops:
        play(w, op, lambda: canary_spec(next(images)))
        check()
        live = w.status.live_hash
        if live is not None and w.status.candidate_hash is None and not w.status.rolling_back:
            assert w.weights()[naming.deployment_name("web", live)] == 100 or w.last is None


def test_a_failed_post_promotion_check_flips_the_route_back_in_one_write() -> None:
    post = [{"name": "smoke", "http": {"url": "http://$(LIVE_SERVICE)/"}}]

    def with_post(image: str) -> api.ReleaseSpec:
        body = gw_spec(image).model_dump(by_alias=True, exclude_none=True)
        body["strategy"]["blueGreen"]["postPromotion"] = post
        return api.ReleaseSpec.model_validate(body)

    w = live_behind_gateway()
    v1, v2 = backend(w.spec), backend(gw_spec("app:2"))
    w.set_spec(with_post("app:2"))
    for _ in range(4):
        w.reconcile()
        w.settle()
    assert w.weights() == {v2: 100, v1: 0}
    assert w.answer({"status": 500, "body": "oops", "headers": {}}), "the check measured"
    w.reconcile()  # recorded; the verdict is read from the recorded status next
    w.reconcile()
    assert w.status.live_revision == 1 and len(route_writes(w)) == 1
    assert w.weights() == {v1: 100, v2: 0}


def test_a_group_behind_gateways_moves_every_members_route() -> None:
    from .test_group import MEMBERS, Shop, member_spec

    def gw_member(name: str, image: str) -> api.ReleaseSpec:
        body = member_spec(name, image).model_dump(by_alias=True, exclude_none=True)
        body["traffic"] = {"gatewayAPI": {**GATEWAY, "routeName": name}}
        return api.ReleaseSpec.model_validate(body)

    worlds = {}
    for name in MEMBERS:
        w = World(gw_member(name, f"{name}:1"), name=name, group="shop")
        for _ in range(4):
            w.reconcile()
            w.settle()
        worlds[name] = w
    shop = Shop(worlds)
    shop.plan()
    for name in MEMBERS:
        worlds[name].set_spec(gw_member(name, f"{name}:2"))
    for _ in range(3):
        shop.step()
        for w in worlds.values():
            w.settle()
    shop.tick(10)
    for _ in range(4):
        shop.step()
    assert shop.live() == {"django": 2, "fastapi": 2}
    for name, w in worlds.items():
        new = naming.deployment_name(name, w.status.live_hash or "")
        assert w.weights()[new] == 100, (name, w.weights())


def test_a_canary_step_waits_until_the_gateway_lists_its_pods() -> None:
    w = canary_live()
    v1, v2 = backend(w.spec), backend(canary_spec("app:2"))
    w.set_spec(canary_spec("app:2"))
    w.endpoints[v2] = 0
    run(w, 4)
    assert w.weights() == {v1: 100} and w.deployments[v2].available_replicas == 1
    assert "backend lists 0/1 ready endpoints" in w.status.message, w.status.message
    w.endpoints.clear()
    run(w, 1)
    assert w.weights() == {v1: 95, v2: 5}
