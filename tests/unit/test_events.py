"""Events are recorded once per decision (kube/cluster.py `event`, `event_name`): the name is a
digest of the state decided on, so the same decision taken again (a new leader redoing the
step a killed one did before its status write; a retry after a failed status write) is a 409
from the API server, ignored. A new step, command or spec is a new Event."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from kubernetes.aio import client
from kubernetes.aio.client.exceptions import ApiException

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import snapshot
from greenlight.kube import cluster

SPEC = api.ReleaseSpec.model_validate(
    {
        "replicas": 1,
        "template": {"spec": {"containers": [{"name": "web", "image": "app:1"}]}},
        "service": {"name": "web", "ports": [{"port": 80}]},
        "healthCheck": {"disabled": True},
    }
)


def view(
    status: dict[str, Any] | None = None, generation: int = 1, **annotations: str
) -> snapshot.ReleaseView:
    return snapshot.ReleaseView(
        name="web",
        namespace="ns",
        uid="u-1",
        generation=generation,
        spec=SPEC,
        status=api.ReleaseStatus.model_validate(status or {"phase": "Progressing"}),
        annotations=annotations,
    )


PROMOTED = act.RecordEvent("Promoted", "revision 2 (green) is live", "Normal")


def test_the_name_is_the_same_for_the_same_decision_on_the_same_state() -> None:
    name = cluster.event_name(view(), PROMOTED)
    assert name == cluster.event_name(view(), PROMOTED)
    assert name.startswith("web.") and len(name) <= 253
    different = [
        cluster.event_name(view({"phase": "Healthy"}), PROMOTED),  # a later step recorded
        cluster.event_name(view(generation=2), PROMOTED),  # a new spec
        cluster.event_name(view(**{"greenlight.dev/undo": ""}), PROMOTED),  # a command
        cluster.event_name(view(), act.RecordEvent("Promoted", "revision 3 (blue) is live")),
        cluster.event_name(view(), act.RecordEvent("Aborted", PROMOTED.message, "Warning")),
    ]
    assert name not in different and len(set(different)) == len(different)


class FakeCore:
    """create_namespaced_event as the API server answers it: 409 for a name that exists."""

    def __init__(self) -> None:
        self.events: dict[str, dict[str, Any]] = {}

    async def create_namespaced_event(self, namespace: str, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        if name in self.events:
            raise ApiException(status=409, reason="AlreadyExists")
        self.events[name] = body


async def test_a_decision_taken_twice_is_recorded_once(caplog: pytest.LogCaptureFixture) -> None:
    old, new = cluster.Cluster(client.ApiClient()), cluster.Cluster(client.ApiClient())
    core = FakeCore()
    old.core = new.core = core  # type: ignore[assignment]
    old.instance, new.instance = "replica-a", "replica-b"
    with caplog.at_level(logging.WARNING, logger="greenlight.kube"):
        await old.event(view(), PROMOTED)  # ... and replica-a dies before its status write
        await new.event(view(), PROMOTED)  # replica-b decides the same on the same status
        await new.event(view({"phase": "Healthy"}), act.RecordEvent("ScaledDown", "rev 1"))
    assert [(e["reason"], e["reportingInstance"]) for e in core.events.values()] == [
        ("Promoted", "replica-a"),
        ("ScaledDown", "replica-b"),
    ]
    assert caplog.records == [], "an Event already recorded is no failure"
