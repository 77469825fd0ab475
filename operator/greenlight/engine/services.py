"""Point the live and preview Services: the only place a selector moves.

The draft status says which revision is live and which is the candidate; this step makes the
Services say the same (selector, ports, type), and reports as drift a selector that someone
else changed from what the status recorded.
"""

from __future__ import annotations

from typing import Literal

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import naming, snapshot
from greenlight.engine.draft import Draft, Work
from greenlight.engine.reasons import Reason

Role = Literal["live", "preview"]


def selectors(name: str, d: Draft, preview: bool) -> dict[Role, dict[str, str]]:
    """What each Service selects when the status is `d` (no entry: nothing to select yet)."""
    out: dict[Role, dict[str, str]] = {}
    if d.live_hash is not None:
        out["live"] = naming.pod_labels(name, d.live_hash)
        if d.strategy == "rolling" and d.in_flight:
            out["live"] = {naming.LABEL_RELEASE: name}  # rolling: pods of every revision serve
    if preview and (target := d.candidate_hash or d.live_hash):
        out["preview"] = naming.pod_labels(name, target)
    return out


def _ports_of(svc: snapshot.ServiceView | None) -> tuple[api.ServicePort, ...]:
    return tuple(api.ServicePort.model_validate(p) for p in svc.ports) if svc else ()


def point(w: Work) -> None:
    """Plan an ApplyService for each Service that differs from the draft; report drift."""
    spec = w.spec
    wanted = selectors(w.name, w.d, spec.preview_service is not None)
    recorded = selectors(w.name, Draft.of(w.snap.release.status), True)
    for role, selector in wanted.items():
        if role == "live":
            seen, name = w.snap.live_service, spec.service.name
            ports, type_ = tuple(spec.service.ports), spec.service.type
        else:
            assert spec.preview_service is not None
            seen, name = w.snap.preview_service, spec.preview_service.name
            ports = tuple(spec.preview_service.ports or spec.service.ports) or _ports_of(
                w.snap.live_service  # adopted without ports in the spec: the same as live
            )
            type_ = "ClusterIP"
        manage_ports = seen is None or seen.owned or bool(ports)
        if seen is not None and seen.selector == selector:
            if not manage_ports or (seen.ports == naming.ports(ports) and seen.type == type_):
                continue
        elif seen is not None and seen.selector != recorded.get(role, seen.selector):
            w.event(Reason.DRIFT, _drift(role, name, seen, w), warning=True)
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


def _drift(role: Role, name: str, seen: snapshot.ServiceView, w: Work) -> str:
    now = seen.selector.get(naming.LABEL_HASH)
    what = f"revision {w.revision_of(now)}" if now and w.revision_of(now) else seen.selector
    target = w.d.live_hash if role == "live" else w.d.candidate_hash or w.d.live_hash
    return (
        f"{role} Service {name} was changed outside Greenlight to select {what};"
        f" set back to revision {w.revision_of(target)}"
    )
