"""The reconciler's stale-cache guards, with an in-memory stand-in for kube.cluster.Cluster.

The informers' indexes lag the API server: right after our own status write (or Deployment
write) the index may still hold the object from before it. Deciding on that would repeat a step
(a second candidate, a double scale). The e2e suite covers the real API; this covers the guards'
logic.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime
from typing import Any

import aiohttp
import pytest

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import naming, snapshot
from greenlight.kube import cluster as kube_cluster
from greenlight.kube import reconcile
from greenlight.kube.workqueue import unreachable

KEY = ("ns", "web")

BODY: dict[str, Any] = {
    "metadata": {
        "name": "web",
        "namespace": "ns",
        "uid": "u-1",
        "generation": 1,
        "resourceVersion": "100",
    },
    "spec": {
        "replicas": 3,
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "app:1"}]},
        },
        "healthCheck": {"httpGet": {"path": "/healthz", "port": 8080}},
        "service": {"name": "web", "ports": [{"port": 80, "targetPort": 8080}]},
    },
}


class FakeCluster:
    """The few async methods the Reconciler calls; every write bumps a resourceVersion.

    `down`: the API server cannot be reached (every request fails as aiohttp fails it, and an
    action as `Cluster.apply` reports it); `cut_at`: it goes down at the first action of that
    type."""

    def __init__(self) -> None:
        self.rv = 200
        self.applied: list[act.Write] = []
        self.statuses: list[api.ReleaseStatus] = []
        self.events: list[act.RecordEvent] = []
        self.down = False
        self.cut_at: type[act.Write] | None = None

    def _reach(self) -> None:
        if self.down:
            raise aiohttp.ServerDisconnectedError()

    async def service(self, namespace: str, name: str, release_uid: str) -> None:
        self._reach()
        return None

    async def apply(self, release: snapshot.ReleaseView, actions: tuple[act.Write, ...]) -> None:
        for a in actions:
            if isinstance(a, self.cut_at or ()):
                self.down, self.cut_at = True, None
            if self.down:
                cause = aiohttp.ServerDisconnectedError()
                raise kube_cluster.ApplyError(f"{type(a).__name__}: {cause}", a) from cause
            self.applied.append(a)

    async def patch_status(self, release: snapshot.ReleaseView, status: api.ReleaseStatus) -> int:
        self._reach()
        self.rv += 1
        self.statuses.append(status)
        return self.rv

    async def patch_invalid(self, meta: Any, status: api.ReleaseStatus) -> int:
        self.rv += 1
        self.statuses.append(status)
        return self.rv

    async def event(self, release: snapshot.ReleaseView, a: act.RecordEvent) -> None:
        self._reach()
        self.events.append(a)


def release_at(rv: int, status: api.ReleaseStatus | None = None) -> reconcile.Indexed:
    body = copy.deepcopy(BODY)
    body["metadata"]["resourceVersion"] = str(rv)
    if status is not None:
        body["status"] = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    return reconcile.index_release(body)


def deployments_as_written(fake: FakeCluster) -> list[snapshot.DeploymentView]:
    """What the Deployment index shows once our writes reached it."""
    views: dict[str, snapshot.DeploymentView] = {}
    for a in fake.applied:
        if isinstance(a, act.CreateDeployment):
            views[a.name] = snapshot.DeploymentView(
                a.name, a.template_hash, spec_replicas=a.replicas
            )
    return list(views.values())


def reconciler(fake: FakeCluster, **kw: Any) -> reconcile.Reconciler:
    r = reconcile.Reconciler(fake, **kw)  # type: ignore[arg-type]
    r.releases = {KEY: [release_at(100)]}
    r.children = {}
    return r


async def first_reconcile(r: reconcile.Reconciler, fake: FakeCluster) -> None:
    result, _ = await r._reconcile(KEY)
    assert result == "planned"
    assert any(isinstance(a, act.CreateDeployment) for a in fake.applied)
    assert fake.statuses, "the first reconcile writes a status"


async def test_stale_until_the_index_shows_our_status_write() -> None:
    fake = FakeCluster()
    r = reconciler(fake)
    await first_reconcile(r, fake)
    written = fake.rv
    r.children = {KEY: deployments_as_written(fake)}
    applied = len(fake.applied)

    # the index still holds the Release from before our status write
    assert await r._reconcile(KEY) == ("stale", None)
    r.releases = {KEY: [release_at(written - 1, fake.statuses[-1])]}
    assert await r._reconcile(KEY) == ("stale", None)
    assert len(fake.applied) == applied, "nothing applied on a stale Release"

    r.releases = {KEY: [release_at(written, fake.statuses[-1])]}
    result, _ = await r._reconcile(KEY)
    assert result == "planned"


async def test_expecting_until_the_index_shows_the_replicas_we_wrote() -> None:
    fake = FakeCluster()
    r = reconciler(fake)
    await first_reconcile(r, fake)
    r.releases = {KEY: [release_at(fake.rv, fake.statuses[-1])]}
    applied = len(fake.applied)

    result, after = await r._reconcile(KEY)  # the Deployment index is still empty
    assert result == "expecting"
    assert after is not None and 0 < after <= r.expectation_timeout
    created = deployments_as_written(fake)
    wrong = [snapshot.DeploymentView(d.name, d.template_hash, spec_replicas=1) for d in created]
    r.children = {KEY: wrong}  # an older version of our Deployment: not what we wrote
    assert (await r._reconcile(KEY))[0] == "expecting"
    assert len(fake.applied) == applied, "nothing applied while expecting"

    r.children = {KEY: created}
    assert (await r._reconcile(KEY))[0] == "planned"


async def test_decides_anyway_after_the_expectation_timeout() -> None:
    fake = FakeCluster()
    r = reconciler(fake, expectation_timeout=0.2)
    await first_reconcile(r, fake)
    r.releases = {KEY: [release_at(fake.rv, fake.statuses[-1])]}

    result, after = await r._reconcile(KEY)
    assert result == "expecting"
    assert after is not None and after <= 0.2
    await asyncio.sleep(0.25)  # the Deployment event never came (lost, or someone changed it)
    assert (await r._reconcile(KEY))[0] == "planned"


async def test_a_deleted_release_is_gone_and_forgotten() -> None:
    fake = FakeCluster()
    r = reconciler(fake)
    await first_reconcile(r, fake)
    r.releases = {}
    assert await r._reconcile(KEY) == ("gone", None)
    r.releases = {KEY: [release_at(100)]}  # re-created with a low resourceVersion: not stale
    assert (await r._reconcile(KEY))[0] != "stale"


async def test_an_invalid_release_reports_the_field_and_applies_nothing() -> None:
    fake = FakeCluster()
    r = reconciler(fake)
    body = copy.deepcopy(BODY)
    body["spec"]["replicas"] = -1
    r.releases = {KEY: [reconcile.index_release(body)]}
    assert await r._reconcile(KEY) == ("invalid", None)
    assert fake.applied == []
    assert fake.statuses[-1].phase == "Degraded"
    assert "spec.replicas" in fake.statuses[-1].message


def reconcile_errors(status: api.ReleaseStatus) -> list[str]:
    return [c.message for c in status.conditions if c.type == "ReconcileError"]


async def test_a_write_cut_off_is_not_waited_for_and_is_reported_once_the_api_is_back() -> None:
    """The API server unreachable at the first write (the candidate's Deployment): that write
    leaves no expectation (waiting for it held the next decision for expectation_timeout), and
    the failure, which could not be reported then, is reported in status by the next reconcile
    that reaches the API server, before it decides; its own status then clears it."""
    fake = FakeCluster()
    r = reconciler(fake)
    fake.cut_at = act.CreateDeployment
    with pytest.raises(Exception) as cut:
        await r._reconcile(KEY)
    assert unreachable(cut.value), "retried as an unreachable API server is"
    assert fake.statuses == [] and fake.applied == []
    with pytest.raises(Exception) as again:  # a retry while it is still unreachable
        await r._reconcile(KEY)
    assert unreachable(again.value)

    fake.down = False
    result, _ = await r._reconcile(KEY)
    assert result == "planned", "not expecting the write that failed"
    assert any(isinstance(a, act.CreateDeployment) for a in fake.applied)
    reported, decided = fake.statuses
    assert reconcile_errors(reported) == ["CreateDeployment: Server disconnected"]
    assert reported.message == "cannot apply: CreateDeployment: Server disconnected"
    assert fake.events[0].reason == "ApplyFailed"
    assert reconcile_errors(decided) == [], "cleared by the reconcile that succeeded"


async def test_the_writes_before_a_failed_one_are_still_expected() -> None:
    """The candidate's Deployment was created, then the Service write after it failed: the
    next reconcile waits for the index to show that Deployment (deciding without it could
    create or scale twice), not for the Service write that did not happen."""
    fake = FakeCluster()
    r = reconciler(fake)
    fake.cut_at = act.ApplyService
    with pytest.raises(aiohttp.ServerDisconnectedError):  # reporting it failed too
        await r._reconcile(KEY)
    assert [type(a) for a in fake.applied] == [act.CreateDeployment]
    fake.down = False
    assert (await r._reconcile(KEY))[0] == "expecting"
    assert reconcile_errors(fake.statuses[-1]) == ["ApplyService: Server disconnected"]
    r.releases = {KEY: [release_at(fake.rv, fake.statuses[-1])]}  # the ApplyFailed status
    assert (await r._reconcile(KEY))[0] == "expecting"
    r.children = {KEY: deployments_as_written(fake)}
    assert (await r._reconcile(KEY))[0] == "planned"


async def test_expecting_until_the_index_shows_the_restart_we_wrote() -> None:
    """Deciding on a Deployment from before our restart would report the restart done (every
    pod up to date) before its controller began it."""
    fake = FakeCluster()
    r = reconciler(fake)
    await first_reconcile(r, fake)
    (created,) = deployments_as_written(fake)
    ready = dataclasses.replace(
        created, observed_generation=1, replicas=3, updated_replicas=3, ready_replicas=3,
        available_replicas=3,
    )  # fmt: skip
    r.children = {KEY: [ready]}
    at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)

    def restarted(rv: int) -> reconcile.Indexed:
        indexed = release_at(rv, fake.statuses[-1])
        assert indexed.view is not None
        spec = indexed.view.spec.model_copy(update={"restart_at": at})
        return dataclasses.replace(indexed, view=dataclasses.replace(indexed.view, spec=spec))

    r.releases = {KEY: [restarted(fake.rv)]}
    applied = len(fake.applied)
    assert (await r._reconcile(KEY))[0] == "planned"
    stamp = naming.restart_stamp(at)
    assert act.RestartDeployment(created.name, stamp) in fake.applied[applied:]
    r.releases = {KEY: [restarted(fake.rv)]}
    assert (await r._reconcile(KEY))[0] == "expecting"
    r.children = {KEY: [dataclasses.replace(ready, generation=2, restarted_at=stamp)]}
    assert (await r._reconcile(KEY))[0] == "planned"
    assert fake.statuses[-1].phase == "Progressing"
    assert fake.statuses[-1].message.startswith("restarting revision 1")


class HandingBack(FakeCluster):
    """What a detached (or deleted) Release's hand-back reads and writes."""

    def __init__(self) -> None:
        super().__init__()
        self.original = snapshot.WorkloadView(
            "web", BODY["spec"]["template"], 0, 0, "web", original_replicas=3, scaled=True
        )
        self.selector = naming.pod_labels("web", "abcdef0123")
        self.calls: list[str] = []

    async def service(self, namespace: str, name: str, release_uid: str) -> Any:
        return snapshot.ServiceView(
            "web", dict(self.selector), owned=False, adopted_selector={"app": "web"}
        )

    async def workload(self, namespace: str, name: str) -> snapshot.WorkloadView:
        return self.original

    async def serving(self, namespace: str, release: str, svc: Any) -> tuple[int, int]:
        ready = self.original.available_replicas
        return ready, ready if self.selector == {"app": "web"} else 0

    async def scale_workload(self, namespace: str, a: act.ScaleWorkload) -> None:
        self.calls.append(f"scale {a.replicas}")
        self.original = dataclasses.replace(self.original, spec_replicas=a.replicas)

    async def restore_service(self, namespace: str, svc: Any, selector: dict[str, str]) -> None:
        self.calls.append("restore selector")
        self.selector = selector

    async def release_workload(self, namespace: str, name: str) -> None:
        self.calls.append("unlabel")

    async def remove_finalizer(self, namespace: str, name: str, finalizers: Any) -> int:
        self.calls.append("remove finalizer")
        return 0


async def test_detach_hands_the_workload_and_the_service_back_then_holds() -> None:
    fake = HandingBack()
    r = reconciler(fake)
    body = copy.deepcopy(BODY)
    del body["spec"]["template"]
    body["spec"]["workloadRef"] = {"kind": "Deployment", "name": "web"}
    body["spec"]["service"]["adopt"] = True
    body["metadata"]["annotations"] = {naming.ANNOTATION_DETACH: "true"}
    body["metadata"]["finalizers"] = [naming.FINALIZER]
    r.releases = {KEY: [reconcile.index_release(body)]}
    await r._reconcile(KEY)
    assert fake.calls == ["scale 3"] and fake.applied == [], "no plan: nothing else written"
    await r._reconcile(KEY)
    assert fake.calls == ["scale 3"], "the Service keeps our pods until the original's are up"
    fake.original = dataclasses.replace(fake.original, available_replicas=3)
    await r._reconcile(KEY)
    await r._reconcile(KEY)
    assert fake.calls == ["scale 3", "restore selector", "unlabel", "remove finalizer"]
    body["metadata"]["finalizers"] = []
    r.releases = {KEY: [reconcile.index_release(body)]}
    r._written.clear()
    await r._reconcile(KEY)
    assert fake.statuses and fake.statuses[-1].phase == "Paused"
    assert "detached" in fake.statuses[-1].message and fake.applied == []
