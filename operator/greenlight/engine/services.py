"""Point the live and preview Services: the only place a selector moves.

The draft status says which revision is live and which is the candidate; this step makes the
Services say the same (selector, ports, type), and reports as drift a selector that someone
else changed from what the status recorded. The preview Service selects the candidate only
once it has an available pod (`preview_target`).
"""

from __future__ import annotations

from typing import Literal

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import naming, snapshot
from greenlight.engine.draft import Draft, Work
from greenlight.engine.reasons import Reason

Role = Literal["live", "preview"]


def selectors(name: str, d: Draft, preview: str | None) -> dict[Role, dict[str, str]]:
    """What each Service selects when the status is `d` and the preview Service selects the
    revision `preview` (no entry: nothing to select yet)."""
    out: dict[Role, dict[str, str]] = {}
    if d.live_hash is not None:
        out["live"] = naming.pod_labels(name, d.live_hash)
        if d.strategy == "rolling" and d.in_flight:
            out["live"] = {naming.LABEL_RELEASE: name}  # rolling: pods of every revision serve
    if preview is not None:
        out["preview"] = naming.pod_labels(name, preview)
    return out


def preview_target(d: Draft, snap: snapshot.Snapshot) -> str | None:
    """The revision the preview Service selects: the candidate once its Deployment has an
    available pod, the live revision until then (requests sent to the preview Service are
    never left with no pod to answer while the live revision has some); the candidate from
    the start when nothing is live (no other choice)."""
    c = d.candidate_hash
    if c is not None and (d.live_hash is None or _has_pods(snap.deployment(c))):
        return c
    return d.live_hash


def _has_pods(d: snapshot.DeploymentView | None) -> bool:
    return d is not None and d.available_replicas > 0


def _changed_by_hand(name: str, d: Draft, role: Role, selector: dict[str, str]) -> bool:
    """`selector` is not one the observed status `d` let `role` select (nothing decided yet:
    any is): the preview Service's is the candidate's, or the live revision's while the
    candidate had no available pod."""
    if role == "preview":
        allowed = [naming.pod_labels(name, h) for h in (d.candidate_hash, d.live_hash) if h]
    else:
        allowed = list(selectors(name, d, None).values())
    return bool(allowed) and selector not in allowed


def _ports_of(svc: snapshot.ServiceView | None) -> tuple[api.ServicePort, ...]:
    return tuple(api.ServicePort.model_validate(p) for p in svc.ports) if svc else ()


def point(w: Work) -> None:
    """Plan an ApplyService for each Service that differs from the draft; report drift."""
    spec = w.spec
    if spec.service is None:
        return  # a worker: its pods' roles move instead (engine/roles.py)
    preview = preview_target(w.d, w.snap) if spec.preview_service is not None else None
    wanted = selectors(w.name, w.d, preview)
    observed = Draft.of(w.snap.release.status)
    for role, selector in wanted.items():
        if role == "live":
            seen, name = w.snap.live_service, spec.service.name
            ports, type_ = tuple(spec.service.ports), spec.service.type
        else:
            assert spec.preview_service is not None
            seen, name = w.snap.preview_service, spec.preview_service.name
            ports = tuple(spec.preview_service.ports or spec.service_ports) or _ports_of(
                w.snap.live_service  # adopted without ports in the spec: the same as live
            )
            type_ = "ClusterIP"
        manage_ports = seen is None or seen.owned or bool(ports)
        if seen is not None and seen.selector == selector:
            if not manage_ports or (seen.ports == naming.ports(ports) and seen.type == type_):
                continue
        elif seen is not None and _changed_by_hand(w.name, observed, role, seen.selector):
            target = w.d.live_hash if role == "live" else preview
            w.event(Reason.DRIFT, _drift(role, name, seen, target, w), warning=True)
        w.do(
            act.ApplyService(
                role=role,
                name=name,
                selector=selector,
                ports=ports if manage_ports else (),
                type=type_ if manage_ports else "",
                create=seen is None,
                owned=seen is None or seen.owned,
                original=None if seen is None or seen.owned else original_selector(w.name, seen),
            )
        )


def original_selector(release: str, seen: snapshot.ServiceView) -> dict[str, str] | None:
    """An adopted Service's selector before Greenlight first moved it: as recorded on it, else
    its selector now, unless that is already ours (adopted before selectors were recorded:
    unknown, never invented)."""
    if seen.adopted_selector is not None:
        return seen.adopted_selector
    return None if naming.selects_release(seen.selector, release) else dict(seen.selector)


def _drift(role: Role, name: str, seen: snapshot.ServiceView, target: str | None, w: Work) -> str:
    now = seen.selector.get(naming.LABEL_HASH)
    what = f"revision {w.revision_of(now)}" if now and w.revision_of(now) else seen.selector
    return (
        f"{role} Service {name} was changed outside Greenlight to select {what};"
        f" set back to revision {w.revision_of(target)}"
    )
