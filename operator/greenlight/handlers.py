"""kopf wiring only: two indexes, two event handlers that wake a Release, the work queue.

No kopf progress storage is used (no on.create/on.update): kopf never writes to a Release;
every decision comes from `engine.plan` over what is observed now.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import kopf

from greenlight import metrics
from greenlight.api import group as api_group
from greenlight.api import release as api
from greenlight.engine import naming
from greenlight.kube import (
    cluster,
    leader,
    measure,
    notify,
    observe,
    priority,
    reconcile,
    workqueue,
)
from greenlight.kube.settings import Settings

log = logging.getLogger("greenlight")


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    ours: Settings = memo.get("settings") or Settings.from_env()  # `greenlight run` or `kopf run`
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = ours.watch_server_timeout
    settings.networking.request_timeout = ours.request_timeout
    if memo.get("exact_namespaces"):
        # No namespace listing (the names are exact) and no CRD watch: a namespace-scoped
        # install needs no cluster-wide permission (kopf still discovers resources at start).
        settings.scanning.disabled = True
    kube = cluster.Cluster(await cluster.connect())
    runner = measure.Runner(kube.core, lambda key: queue.add(key))
    notifier = notify.Notifier(kube.core)
    reconciler = reconcile.Reconciler(kube, ours.expectation_timeout, runner, notifier)

    async def run(key: Any) -> None:
        metrics.QUEUE_DEPTH.set(len(queue))
        after = await reconciler.reconcile(key)
        if after is not None:
            queue.add_after(key, after)

    queue = workqueue.WorkQueue(run, ours.retry_delay, ours.max_backoff)
    memo["reconciler"], memo["queue"], memo["runner"] = reconciler, queue, runner
    memo["notifier"] = notifier
    lease: leader.Lease | None = memo.get("lease")  # `greenlight run`; `kopf run`: alone
    if lease is None:
        queue.start(ours.workers)
    else:  # the workers run while this replica holds the Lease; kopf watches either way

        def known() -> list[Any]:  # every Release, and every group (it decides on members)
            groups = [("group", *cast(tuple[str, str], key)) for key in reconciler.groups]
            return [*reconciler.releases.keys(), *groups]

        leases = leader.LeaseApi(kube.core.api_client, lease.namespace, lease.name)
        memo["leadership"] = leader.Leadership(leases, lease, ours, queue, known)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    if "leadership" in memo:
        await memo["leadership"].close()  # stops the workers, then releases the Lease
    await memo["queue"].stop()
    await memo["runner"].stop()
    await memo["notifier"].stop()


@kopf.index(api.GROUP, api.VERSION, api.PLURAL)
def releases(namespace: str, name: str, body: kopf.Body, **_: Any) -> Any:
    return {(namespace, name): reconcile.index_release(body)}


@kopf.index("apps", "v1", "deployments", labels={naming.LABEL_RELEASE: kopf.PRESENT})
def children(namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any) -> Any:
    view = observe.deployment_view(body)
    return {(namespace, labels[naming.LABEL_RELEASE]): view} if view else None


@kopf.index("", "v1", "services", labels={naming.LABEL_RELEASE: kopf.PRESENT})
def services(namespace: str, name: str, body: kopf.Body, **_: Any) -> Any:
    return {(namespace, name): observe.service_record(body)}


@kopf.index("batch", "v1", "jobs", labels={naming.LABEL_CHECK: kopf.PRESENT})
def jobs(namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any) -> Any:
    view = observe.job_view(body)
    release = labels.get(naming.LABEL_RELEASE)
    return {(namespace, release): view} if view and release else None


@kopf.on.event("batch", "v1", "jobs", labels={naming.LABEL_CHECK: kopf.PRESENT})
async def job_changed(
    namespace: str, labels: kopf.Labels, body: kopf.Body, memo: kopf.Memo, releases: kopf.Index,
    children: kopf.Index, jobs: kopf.Index, **_: Any,
) -> None:  # fmt: skip
    """A check's Job made progress: its Release records it."""
    memo["reconciler"].jobs = jobs
    if naming.LABEL_RELEASE in labels:
        urgency = priority.job_event(observe.job_view(body))
        _wake(memo, releases, children, (namespace, labels[naming.LABEL_RELEASE]), urgency)


# Event handlers are coroutines: kopf would run plain functions in a thread pool, one hop each.
@kopf.on.event(api.GROUP, api.VERSION, api.PLURAL)
async def release_changed(
    namespace: str, name: str, memo: kopf.Memo, releases: kopf.Index, children: kopf.Index,
    services: kopf.Index, **_: Any,
) -> None:  # fmt: skip
    memo["reconciler"].services = services
    key = (namespace, name)
    _wake(memo, releases, children, key, priority.release_event(_indexed(releases, key)))


@kopf.on.event("apps", "v1", "deployments", labels={naming.LABEL_RELEASE: kopf.PRESENT})
async def child_changed(
    namespace: str, labels: kopf.Labels, body: kopf.Body, memo: kopf.Memo, releases: kopf.Index,
    children: kopf.Index, services: kopf.Index, **_: Any,
) -> None:  # fmt: skip
    memo["reconciler"].services = services
    key = (namespace, labels[naming.LABEL_RELEASE])
    urgency = priority.deployment_event(observe.deployment_view(body), _indexed(releases, key))
    _wake(memo, releases, children, key, urgency)


@kopf.on.event("", "v1", "services", labels={naming.LABEL_RELEASE: kopf.PRESENT})
async def service_changed(
    namespace: str, labels: kopf.Labels, body: kopf.Body, memo: kopf.Memo, releases: kopf.Index,
    children: kopf.Index, services: kopf.Index, **_: Any,
) -> None:  # fmt: skip
    """A Service of ours changed (a hand edit, a re-apply): the Release repairs it."""
    memo["reconciler"].services = services
    key = (namespace, labels[naming.LABEL_RELEASE])
    _wake(memo, releases, children, key, priority.service_event(body, _indexed(releases, key)))


@kopf.index(api.GROUP, api.VERSION, api_group.PLURAL)
def groups(namespace: str, name: str, body: kopf.Body, **_: Any) -> Any:
    return {(namespace, name): observe.group_view(body)}


@kopf.index(api.GROUP, api.VERSION, api_group.PLURAL)
def memberships(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> Any:
    return {(namespace, member): name for member in spec.get("members") or []}


@kopf.on.event(api.GROUP, api.VERSION, api_group.PLURAL)
async def group_changed(
    namespace: str, name: str, spec: kopf.Spec, memo: kopf.Memo, releases: kopf.Index,
    children: kopf.Index, groups: kopf.Index, memberships: kopf.Index, **_: Any,
) -> None:  # fmt: skip
    """A group changed: it and its members (those that left too: they go on alone)."""
    reconciler: reconcile.Reconciler = memo["reconciler"]
    reconciler.groups, reconciler.memberships = groups, memberships
    known = memo.setdefault("group_members", {})
    members = set(spec.get("members") or [])
    for member in members | known.get((namespace, name), set()):
        _wake(memo, releases, children, (namespace, member), workqueue.Priority.URGENT)
    known[(namespace, name)] = members
    memo["queue"].add(("group", namespace, name), workqueue.Priority.URGENT)


def _wake(
    memo: kopf.Memo, releases: kopf.Index, children: kopf.Index, key: Any,
    urgency: workqueue.Priority,
) -> None:  # fmt: skip
    """Queue the Release in the lane `kube/priority.py` chose for this event."""
    reconciler: reconcile.Reconciler = memo["reconciler"]
    reconciler.releases, reconciler.children = releases, children
    memo["queue"].add(key, urgency)
    for group in reconciler.memberships.get(key, ()):  # its group decides on it too
        memo["queue"].add(("group", key[0], group), urgency)


def _indexed(releases: kopf.Index, key: Any) -> reconcile.Indexed | None:
    """The Release index's entry for a key (None: not in the index, e.g. deleted)."""
    return next(iter(releases.get(key, ())), None)
