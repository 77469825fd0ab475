"""spec.traffic.gatewayAPI: the HTTPRoute that carries a Release's traffic, and its backends.

The only place a route weight moves. The draft status says which revision is live and which is
the candidate (the strategy's step decided it); this step makes the route say the same:

- a backend Service per revision that has pods (named like its Deployment, selecting only that
  revision's pods, owned by the Deployment, so it goes with it);
- one HTTPRoute (owned by the Release) with a `live` rule whose backends carry the weights: 100
  on the live revision, 0 on a candidate or a warm revision (listed, so the flip, an undo and a
  flip-back are one route write that moves 100 across), and during a release a `preview` rule
  that sends requests matching `previewMatches` to the candidate once it is `routable`.

Weights are a pure function of the draft: no weight ever goes to a revision whose backend
Service's EndpointSlices list no ready endpoint (`routable`): a pod counts as available a moment
before it is listed, and a gateway answers 503 for a backend it knows no endpoint of. A route
changed by anyone else is set back with an Event naming what changed. Every default of the
Gateway API is written out, and a route is "as wanted" when everything rendered here is in it
(`contains`), so an apply never loops on a field the API server fills in.
"""

from __future__ import annotations

import datetime
from typing import Any

from greenlight.api import release as api
from greenlight.api import traffic as routing
from greenlight.engine import actions as act
from greenlight.engine import naming, snapshot
from greenlight.engine.draft import Work
from greenlight.engine.reasons import Reason

LIVE_RULE = "live"
PREVIEW_RULE = "preview"
RECHECK_SECONDS = 30
"""While the gateway has not accepted the route as written, look again this often: its status
is an event we wait for, and a gateway that drops a status update sends no other."""


def route_name(name: str, gw: routing.GatewayAPI) -> str:
    return gw.route_name or name


def route_is_ours(w: Work) -> bool:
    """Never take over an HTTPRoute we did not create, unless the Release asks to (adopt)."""
    gw, seen = w.spec.gateway, w.snap.route
    if gw is None or seen is None or seen.owned or gw.adopt:
        return True
    problem = (
        f"spec.traffic.gatewayAPI.routeName: HTTPRoute {seen.name!r} exists and was not created"
        " by this Release; set spec.traffic.gatewayAPI.adopt: true to let Greenlight own it"
    )
    if w.snap.release.status.message != problem:
        w.event(Reason.ROUTE_CONFLICT, problem, warning=True)
    w.outcome("Degraded", problem, Reason.ROUTE_CONFLICT)
    w.refused = True
    return False


def weights(w: Work, backends: set[str]) -> list[tuple[str, int]]:
    """(template hash, weight) of the live rule's backends: 100 on the live revision, 0 on
    the other revisions that have pods and a backend Service listing a ready one, newest
    first; a canary's step
    weight moves from the live revision to the candidate (once `routable`). Empty while the
    live revision is not routable (a first release coming up)."""
    live = w.d.live_hash
    if live is None or live not in backends or not routable(w, live):
        return []
    others = [
        d.template_hash
        for d in w.snap.deployments
        if d.template_hash != live
        and (d.spec_replicas > 0 or d.template_hash == w.d.candidate_hash)
        and d.template_hash in backends
        and _listed(w, d.template_hash)
    ]
    others.sort(key=lambda h: w.revision_of(h) or 0, reverse=True)
    share = {h: 0 for h in others}
    c = w.d.candidate_hash
    if w.d.strategy == "rolling" and c in share and routable(w, c):
        share[c] = w.d.rolling.weight or 0  # a canary step (engine/canary.py)
    return [(live, 100 - sum(share.values())), *share.items()]


def _listed(w: Work, template_hash: str) -> bool:
    """Its backend Service's EndpointSlices list a ready pod. Before that a route naming it,
    even at weight 0, can fail at the gateway as a whole (Traefik drops the route while a
    backend's EndpointSlice does not exist yet: every request answered 404)."""
    seen = _backend(w, template_hash)
    return seen is not None and seen.ready_endpoints > 0


def _backend(w: Work, template_hash: str) -> snapshot.ServiceView | None:
    return w.snap.backend(naming.deployment_name(w.name, template_hash))


def routable(w: Work, template_hash: str | None, pods: int = 1) -> bool:
    """The gateway can send requests to `pods` pods of a revision: its backend Service's
    EndpointSlices list that many ready endpoints (always true without spec.traffic)."""
    if w.spec.gateway is None or pods <= 0:
        return True
    seen = _backend(w, template_hash) if template_hash else None
    return seen is not None and seen.ready_endpoints >= pods


def endpoints_wanted(w: Work, template_hash: str, pods: int) -> str:
    """Why a revision is not routable yet, for a status message ('' when it is)."""
    if routable(w, template_hash, pods):
        return ""
    seen = _backend(w, template_hash)
    ready = seen.ready_endpoints if seen else 0
    return f"; the gateway's backend lists {ready}/{pods} ready endpoints"


def preview_target(w: Work, backends: set[str]) -> str | None:
    """The candidate, when previewMatches are set and it has a ready endpoint to answer."""
    gw, c = w.spec.gateway, w.d.candidate_hash
    if gw is None or not gw.preview_matches or c is None or c == w.d.live_hash:
        return None
    if c not in backends or not routable(w, c):
        return None
    return c


def render(
    w: Work, gw: routing.GatewayAPI, live: list[tuple[str, int]], preview: str | None
) -> dict[str, Any]:
    """The route's spec, every Gateway API default written out."""
    port = _backend_port(w)
    filters = [f.model_dump(by_alias=True, exclude_none=True) for f in gw.filters]

    def backend(h: str, weight: int) -> dict[str, Any]:
        return {
            "group": "",
            "kind": "Service",
            "name": naming.deployment_name(w.name, h),
            "port": port,
            "weight": weight,
        }

    rules: list[dict[str, Any]] = []
    if preview is not None:
        rules.append(_rule(PREVIEW_RULE, gw.preview_matches, filters, [backend(preview, 1)]))
    rules.append(
        _rule(
            LIVE_RULE,
            gw.matches or [routing.RouteMatch()],
            filters,
            [backend(h, weight) for h, weight in live],
        )
    )
    spec: dict[str, Any] = {
        "parentRefs": [p.model_dump(by_alias=True, exclude_none=True) for p in gw.parent_refs],
        "rules": rules,
    }
    if gw.hostnames:
        spec["hostnames"] = list(gw.hostnames)
    return spec


def _rule(
    name: str,
    matches: list[routing.RouteMatch],
    filters: list[dict[str, Any]],
    backends: list[dict[str, Any]],
) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "name": name,
        "matches": [m.model_dump(by_alias=True, exclude_none=True) for m in matches],
        "backendRefs": backends,
    }
    for m in rule["matches"]:  # empty lists are not stored: leave them out
        for key in ("headers", "queryParams"):
            if not m[key]:
                del m[key]
    if filters:
        rule["filters"] = filters
    return rule


def _backend_port(w: Work) -> int:
    ports = w.spec.service_ports
    if ports:
        return ports[0].port
    seen = w.snap.live_service  # adopted without ports in the spec: the Service's own
    return int(seen.ports[0]["port"]) if seen and seen.ports else 80


def _backend_ports(w: Work) -> tuple[api.ServicePort, ...]:
    if w.spec.service_ports:
        return tuple(w.spec.service_ports)
    seen = w.snap.live_service
    return tuple(api.ServicePort.model_validate(p) for p in seen.ports) if seen else ()


def point(w: Work) -> None:
    """Plan the backend Services and the route the draft asks for; report drift."""
    gw = w.spec.gateway
    if gw is None:
        _hand_over(w)
        return
    name = route_name(w.name, gw)
    backends = _backends(w)
    live = weights(w, backends)
    preview = preview_target(w, backends)
    recorded = w.snap.release.status.traffic
    status = routing.TrafficStatus(
        route=name,
        weights=[
            routing.RevisionWeight(revision=w.revision_of(h), template_hash=h, weight=weight)
            for h, weight in live
        ],
        preview_revision=w.revision_of(preview) if preview else None,
    )
    seen = w.snap.route
    if not live:  # no available live pod to send a request to: the route stays as it is
        message = "waiting for the live revision's first available pod"
        w.traffic = recorded or status.model_copy(update={"message": message})
        return
    wanted = render(w, gw, live, preview)
    if seen is not None and seen.owned and contains(seen.spec, wanted):
        w.traffic = status.model_copy(update={"accepted": seen.accepted, "message": seen.message})
        if not seen.accepted:
            _not_in_effect(w, name, seen.message)
            w.wake_at(w.now + datetime.timedelta(seconds=RECHECK_SECONDS))
        return
    if (
        seen is not None
        and seen.owned
        and recorded is not None
        and recorded.weights == status.weights
        and recorded.preview_revision == status.preview_revision
    ):  # nothing we decided changed, yet the route did: someone else wrote it
        w.event(Reason.DRIFT, _drift(name, seen.spec, wanted), warning=True)
    w.do(
        act.ApplyRoute(
            name=name,
            spec=wanted,
            create=seen is None,
            resource_version=seen.resource_version if seen and not seen.owned else None,
        )
    )
    w.traffic = status.model_copy(update={"message": "route written; waiting for the gateway"})
    _not_in_effect(w, name, "route written; waiting for the gateway")
    w.wake_at(w.now + datetime.timedelta(seconds=RECHECK_SECONDS))


def _hand_over(w: Work) -> None:
    """spec.traffic removed: the route we wrote stays (deleting it would cut every request the
    gateway sends), with every request on the live Service, which the selector moves from now
    on; then Greenlight no longer writes it. Deleting it is the user's call."""
    seen, recorded = w.snap.route, w.snap.release.status.traffic
    w.traffic = None
    if seen is None or not seen.owned or recorded is None or w.spec.service is None:
        return  # (without a Service either: nothing to hand the route over to, left as it is)
    rules = seen.spec.get("rules") or []
    live = next((r for r in rules if r.get("name") == LIVE_RULE), rules[0] if rules else {})
    backend = {"group": "", "kind": "Service", "name": w.spec.service.name,
               "port": _backend_port(w), "weight": 1}  # fmt: skip
    rule = {k: v for k, v in live.items() if k in ("name", "matches", "filters")}
    wanted = {**seen.spec, "rules": [{**rule, "backendRefs": [backend]}]}
    if contains(seen.spec, wanted):
        if not seen.accepted:  # the gateway may still send requests to the revisions' backends
            w.traffic = recorded.model_copy(update={"message": seen.message})
        return
    w.do(act.ApplyRoute(name=seen.name, spec=wanted, create=False, resource_version=None))
    message = f"spec.traffic removed: HTTPRoute {seen.name} sends every request to Service"
    w.event(Reason.ROUTE_HANDED_OVER, f"{message} {w.spec.service.name}; it is no longer updated")
    w.traffic = recorded.model_copy(update={"message": f"{message} {w.spec.service.name}"})


def _not_in_effect(w: Work, name: str, why: str) -> None:
    """Healthy means requests reach the live revision: not before the gateway took the route."""
    if w.phase == "Healthy":
        w.outcome("Progressing", f"{w.message}; HTTPRoute {name}: {why}", Reason.ROUTE_PENDING)


def _backends(w: Work) -> set[str]:
    """A Service per revision with pods (and the live and candidate revisions): the revisions
    that have one, or get one before the route is written (the writes are in that order)."""
    ports = _backend_ports(w)
    out = set()
    for d in w.snap.deployments:
        if d.spec_replicas == 0 and d.template_hash not in (w.d.live_hash, w.d.candidate_hash):
            continue
        selector = naming.pod_labels(w.name, d.template_hash)
        seen = _backend(w, d.template_hash)
        out.add(d.template_hash)
        if seen is not None and seen.selector == selector and seen.ports == naming.ports(ports):
            continue
        w.do(act.ApplyBackend(name=d.name, deployment_uid=d.uid, selector=selector, ports=ports))
    return out


def contains(seen: Any, wanted: Any) -> bool:
    """Everything in `wanted` is in `seen` (lists item by item, of the same length): what the
    API server added (defaults, fields of newer versions) does not count as a difference."""
    if isinstance(wanted, dict):
        return isinstance(seen, dict) and all(
            k in seen and contains(seen[k], v) for k, v in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(seen, list)
            and len(seen) == len(wanted)
            and all(contains(s, v) for s, v in zip(seen, wanted, strict=True))
        )
    return bool(seen == wanted)


def _drift(name: str, seen: dict[str, Any], wanted: dict[str, Any]) -> str:
    def rules(spec: dict[str, Any]) -> dict[str, list[str]]:
        return {
            str(r.get("name", i)): [
                f"{b.get('name')}={b.get('weight', 1)}" for b in r.get("backendRefs") or []
            ]
            for i, r in enumerate(spec.get("rules") or [])
        }

    now, want = rules(seen), rules(wanted)
    what = []
    for rule in sorted(set(now) | set(want)):
        if rule not in now:
            what.append(f"rule {rule} was dropped")
        elif rule not in want:
            what.append(f"rule {rule} was added")
        elif now[rule] != want[rule]:
            what.append(f"rule {rule} backends were {', '.join(now[rule]) or 'none'}")
    if not what:
        what.append("its parents, hostnames, matches or filters were changed")
    return (
        f"HTTPRoute {name} was changed outside Greenlight: {'; '.join(what)};"
        " set back to what the Release says"
    )
