"""A Deployment's pod counts come from its ReplicaSet when that is current (one controller hop
earlier than the Deployment's own status), and from the Deployment otherwise."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from greenlight.kube import observe


def deployment(want: int = 3, available: int = 1, generation: int = 2, seen: int = 2) -> Any:
    body = {
        "metadata": {"name": "web-abc", "generation": generation,
                     "labels": {"greenlight.dev/template-hash": "abc"}},
        "spec": {"replicas": want},
        "status": {"observedGeneration": seen, "replicas": want, "updatedReplicas": want,
                   "readyReplicas": available, "availableReplicas": available},
    }  # fmt: skip
    return observe.deployment_view(body)


def replicaset(want: int = 3, available: int = 3, owner: str = "web-abc", seen: int = 1) -> Any:
    body = {
        "metadata": {"name": f"{owner}-x", "generation": 1, "ownerReferences": [
            {"kind": "Deployment", "name": owner, "controller": True}]},
        "spec": {"replicas": want},
        "status": {"observedGeneration": seen, "replicas": want, "readyReplicas": available,
                   "availableReplicas": available},
    }  # fmt: skip
    return observe.replicaset_view(body)


def test_a_current_replicaset_says_first_that_every_pod_is_available() -> None:
    (d,) = observe.deployments_of([deployment()], [replicaset()])
    assert d.fully_available(3) and d.ready_replicas == 3
    assert not deployment().fully_available(3)


@pytest.mark.parametrize(
    "d, sets",
    [
        (deployment(generation=3, seen=2), [replicaset()]),  # Deployment controller behind
        (deployment(), [replicaset(want=2, available=2)]),  # ReplicaSet not yet resized
        (deployment(), [replicaset(seen=0)]),  # ReplicaSet controller behind
        (deployment(), [replicaset(), replicaset()]),  # two: a restart (or a hand edit)
        (deployment(), [replicaset(owner="web-other")]),  # another revision's
    ],
)
def test_otherwise_the_deployments_own_status_counts(d: Any, sets: list[Any]) -> None:
    assert observe.deployments_of([d], sets) == (d,)


def test_a_replicaset_without_a_controlling_deployment_is_ignored() -> None:
    assert observe.replicaset_view({"metadata": {"name": "x"}, "spec": {}}) is None


@pytest.mark.parametrize(
    "status, progressed",
    [
        ("True", datetime.datetime(2026, 11, 25, 10, 0, 7, tzinfo=datetime.UTC)),  # progress
        ("False", None),  # ProgressDeadlineExceeded: no progress to count from
    ],
)
def test_progress_is_when_the_deployment_controller_last_reported_it(
    status: str, progressed: datetime.datetime | None
) -> None:
    body = {
        "metadata": {"name": "web-abc", "labels": {"greenlight.dev/template-hash": "abc"}},
        "status": {"conditions": [
            {"type": "Available", "status": "True", "lastUpdateTime": "2026-11-25T10:00:09Z"},
            {"type": "Progressing", "status": status, "lastUpdateTime": "2026-11-25T10:00:07Z"},
        ]},
    }  # fmt: skip
    d = observe.deployment_view(body)
    assert d is not None
    assert d.progressed_at == progressed


def test_the_restart_is_read_from_the_pod_template_not_the_deployment() -> None:
    body = {
        "metadata": {"name": "web-abc", "labels": {"greenlight.dev/template-hash": "abc"},
                     "annotations": {"greenlight.dev/restartedAt": "2026-01-01T00:00:00Z"}},
        "spec": {"template": {"metadata": {"annotations": {
            "greenlight.dev/restartedAt": "2026-02-02T00:00:00Z"}}}},
    }  # fmt: skip
    d = observe.deployment_view(body)
    assert d is not None and d.restarted_at == "2026-02-02T00:00:00Z"
    del body["spec"]["template"]
    none = observe.deployment_view(body)
    assert none is not None and none.restarted_at is None
