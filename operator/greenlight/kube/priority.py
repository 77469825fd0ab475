"""Which lane of the work queue an event puts its Release in.

The engine decides what each change makes due next (`engine/lanes.py`, pure); this module only
takes what the informers delivered and the Release index keeps, and maps the engine's answer to
the queue's `Priority`. Nothing here re-derives a decision (hashes, readiness, verdicts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

from greenlight.engine import lanes, naming, snapshot
from greenlight.kube.workqueue import Priority

LANES = {"traffic": Priority.TRAFFIC, "urgent": Priority.URGENT, "bulk": Priority.BULK}
PROGRESS: Final = "progress"
"""Not a lane: Deployment progress, which the queue coalesces (`WorkQueue.add_progress`)."""
Wake = Priority | Literal["progress"]


def release_event(
    indexed: Any, deployments: Iterable[Any] = (), seen: tuple[snapshot.ConfigView, ...] = ()
) -> Priority:
    """A Release event, given its Release index entry (`reconcile.Indexed`, or None when gone),
    its Deployments (their index views) and the ConfigMaps and Secrets it references, as
    cached."""
    view: snapshot.ReleaseView | None = indexed.view if indexed is not None else None
    return LANES[lanes.release(view, deployments, seen)]


def deployment_event(deployment: snapshot.DeploymentView | None, indexed: Any) -> Wake:
    """A Deployment (or ReplicaSet) event of a Release, given its index view and the
    Release's index entry."""
    lane = lanes.deployment(deployment, getattr(indexed, "view", None))
    return PROGRESS if lane == "progress" else LANES[lane]


def job_event(job: snapshot.JobView | None) -> Priority:
    return LANES[lanes.job(job)]


def route_event(route: snapshot.RouteView, indexed: Any) -> Priority:
    return LANES[lanes.route(route, getattr(indexed, "view", None))]


def service_event(service: Mapping[str, Any], indexed: Any) -> Priority:
    """A Service of a Release (its body, or the Service index's record)."""
    name = (service.get("metadata") or {}).get("name")
    selected = ((service.get("spec") or {}).get("selector") or {}).get(naming.LABEL_HASH)
    return LANES[lanes.service(name, selected, getattr(indexed, "view", None))]


def endpoints_event(
    service: str, ready: int, indexed: Any, deployments: Iterable[Any]
) -> Priority | None:
    """A backend Service's ready endpoints grew (None: nothing to reconcile)."""
    lane = lanes.endpoints(service, ready, getattr(indexed, "view", None), deployments)
    return LANES[lane] if lane else None
