"""An action the API server refuses: reported once in status, dropped when a reconcile succeeds."""

from __future__ import annotations

import datetime

import aiohttp
import pytest

from greenlight.engine import actions as act
from greenlight.engine import status as plan
from greenlight.kube import cluster as kube_cluster
from greenlight.kube import reconcile
from greenlight.kube.workqueue import unreachable

from .test_reconciler import BODY
from .world import World, spec

NOW = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.UTC)
QUOTA = 'create live Service web: services "web" is forbidden: exceeded quota (403)'


def test_a_refused_action_is_a_condition_and_the_message_until_a_reconcile_succeeds() -> None:
    w = World(spec("app:1"))
    w.reconcile()
    before = w.status
    failed = plan.apply_failed(before, QUOTA, NOW, generation=1)
    assert failed is not None
    [condition] = [c for c in failed.conditions if c.type == "ReconcileError"]
    assert (condition.status, condition.reason, condition.message) == ("True", "ApplyFailed", QUOTA)
    assert failed.message == f"cannot apply: {QUOTA}"
    assert [c.type for c in failed.conditions] == [
        "Available", "Progressing", "Reconciling", "Ready", "Stalled", "ReconcileError",
    ]  # fmt: skip
    stalled = {c.type: (c.status, c.reason) for c in failed.conditions}
    assert stalled["Stalled"] == ("True", "ApplyFailed") and stalled["Ready"][0] == "False"
    assert failed.model_copy(
        update={"message": before.message, "conditions": before.conditions}
    ) == (before), "nothing else changes: the refused step did not happen"

    assert plan.apply_failed(failed, QUOTA, NOW, 1) is None, "the same error is not written twice"
    later = plan.apply_failed(failed, "another error (500)", NOW + datetime.timedelta(1), 1)
    assert later is not None
    [again] = [c for c in later.conditions if c.type == "ReconcileError"]
    assert again.last_transition_time == NOW

    w.status = failed
    w.reconcile()
    assert "ReconcileError" not in [c.type for c in w.status.conditions]
    assert not w.status.message.startswith("cannot apply")


def test_a_lost_status_write_keeps_the_revision_its_deployment_carries() -> None:
    w = World(spec("app:1"))
    empty = w.status
    w.reconcile()  # creates the Deployment of revision 1; then say its status write was lost
    [deployment] = w.deployments.values()
    assert deployment.revision == 1
    w.status = empty
    w.settle()
    w.reconcile()
    assert w.status.live_revision == 1
    assert [e.revision for e in w.status.history] == [1]
    assert [d.revision for d in w.deployments.values()] == [1]


class Unreachable:
    """An AppsV1Api whose API server cannot be reached (as aiohttp fails a cut connection)."""

    async def create_namespaced_deployment(self, namespace: str, body: object) -> None:
        raise aiohttp.ServerDisconnectedError()


async def test_an_action_the_api_server_never_answered_is_an_apply_error_naming_it() -> None:
    """Not only a refusal: a write cut off by the network (it may or may not have happened) is
    an ApplyError naming the action, so it is reported in status and not waited for."""
    cluster = object.__new__(kube_cluster.Cluster)
    cluster.apps = Unreachable()  # type: ignore[assignment]
    release = reconcile.index_release(BODY).view
    assert release is not None
    create = act.CreateDeployment("web-abc", "abc", 1, "blue", 3, {}, {})
    with pytest.raises(kube_cluster.ApplyError) as failed:
        await cluster.apply(release, (create,))
    assert str(failed.value) == "create Deployment web-abc: Server disconnected"
    assert failed.value.action is create
    assert unreachable(failed.value)
