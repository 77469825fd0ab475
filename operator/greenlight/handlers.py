"""The operator's wiring: informers feed the indexes and wake Releases; the work queue runs.

kopf runs the process (start-up, clean-up, signals, the liveness probe) but watches nothing:
`kube/informer.py` lists and watches Releases, ReleaseGroups and the Deployments, Services and
check Jobs labelled with a Release, and `Feeds` turns each change into index entries and a
wake-up in the lane `engine/lanes.py` decides. The workers start once every informer has
applied its first list. No kopf progress storage is used: kopf never writes to a Release;
every decision comes from `engine.plan` over what is observed now.
"""

from __future__ import annotations

import asyncio
import fnmatch
import functools
import gc
import logging
import time
from collections.abc import Hashable, Mapping
from typing import Any

import kopf

from greenlight import metrics
from greenlight.api import group as api_group
from greenlight.api import release as api
from greenlight.api import templates
from greenlight.api import traffic as routing
from greenlight.engine import config, group, naming, snapshot
from greenlight.kube import (
    cluster,
    informer,
    leader,
    measure,
    notify,
    observe,
    priority,
    reconcile,
    rest,
    workqueue,
)
from greenlight.kube.informer import Index
from greenlight.kube.reconcile import Key
from greenlight.kube.settings import Settings

log = logging.getLogger("greenlight")

GC_THRESHOLDS = (50_000, 20, 100)
"""The cyclic collector's generation thresholds (CPython's: 700, 10, 10). Decoding a list page
allocates about 100,000 objects, and with the defaults the collector ran every 700 of them over
a heap that grows to hundreds of MiB: three quarters of the CPU of decoding and indexing 60,000
objects went to it (a restart with 10,000 Releases spent 4 s in JSON decoding). The caches are
acyclic and freed by reference counting; the collector only has cycles to find."""


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    ours: Settings = memo.get("settings") or Settings.from_env()  # `greenlight run` or `kopf run`
    gc.set_threshold(*GC_THRESHOLDS)
    settings.posting.level = logging.WARNING
    settings.scanning.disabled = True  # kopf watches no resource (no CRD or namespace scans)
    memo["api"] = api_client = await cluster.connect()
    kube = cluster.Cluster(api_client)
    runner = measure.Runner(kube.core, lambda key: queue.add(key))
    notifier = notify.Notifier(kube.core)
    reconciler = reconcile.Reconciler(kube, ours.expectation_timeout, runner, notifier)

    async def run(key: Any) -> None:
        metrics.QUEUE_DEPTH.set(len(queue))
        after = await reconciler.reconcile(key)
        if after is not None:
            queue.add_after(key, after)

    queue = workqueue.WorkQueue(run, ours.retry_delay, ours.max_backoff)
    feeds = Feeds(reconciler, queue, memo.get("namespaces") or [])
    kube.written = feeds.written
    kube.route_written = feeds.route_written
    kube.pod_written = functools.partial(feeds.pod, "MODIFIED", ours=True)
    routes = await kube.gateway_api_installed()
    reconciler.routes_watched = routes
    cluster_templates = await kube.cluster_templates_readable()
    informers = feeds.informers(kube, ours, routes, cluster_templates)
    memo["reconciler"], memo["queue"], memo["runner"] = reconciler, queue, runner
    memo["notifier"] = notifier
    memo["tasks"] = [asyncio.create_task(i.run(), name=i.name) for i in informers]
    memo["tasks"].append(asyncio.create_task(_begin(memo, kube, ours, informers, feeds)))


async def _begin(
    memo: kopf.Memo,
    kube: cluster.Cluster,
    ours: Settings,
    informers: list[informer.Informer],
    feeds: Feeds,
) -> None:
    """Once every informer has listed: start the workers (or the election that starts them)."""
    started = time.perf_counter()
    await asyncio.gather(*(i.synced.wait() for i in informers))
    reconciler: reconcile.Reconciler = memo["reconciler"]
    log.info(
        "caches filled in %.1f s: %d Releases, %d groups",
        time.perf_counter() - started, len(reconciler.releases), len(reconciler.groups),
        extra={"informer": "all"},
    )  # fmt: skip
    queue: workqueue.WorkQueue = memo["queue"]
    lease: leader.Lease | None = memo.get("lease")  # `greenlight run`; the e2e operator: alone
    if lease is None:
        for key in feeds.known():  # what the lists queued keeps its lane; the rest is BULK
            queue.add(key, workqueue.Priority.BULK)
        queue.start(ours.workers)
    else:  # the workers run while this replica holds the Lease; the informers run either way
        leases = leader.LeaseApi(kube.core.api_client, lease.namespace, lease.name)
        memo["leadership"] = leader.Leadership(leases, lease, ours, queue, feeds.known)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    for task in memo.get("tasks", []):
        task.cancel()
    await asyncio.gather(*memo.get("tasks", []), return_exceptions=True)
    if "leadership" in memo:
        await memo["leadership"].close()  # stops the workers, then releases the Lease
    await memo["queue"].stop()
    await memo["runner"].stop()
    await memo["notifier"].stop()
    await memo["api"].close()  # its HTTP session (else aiohttp warns: "Unclosed client session")


class Feeds:
    """Each watched kind's changes into the Reconciler's indexes, and the keys they wake."""

    def __init__(
        self, reconciler: reconcile.Reconciler, queue: workqueue.WorkQueue, namespaces: list[str]
    ) -> None:
        self.reconciler, self.queue = reconciler, queue
        self.releases: Index[Key, reconcile.Indexed] = Index()
        self.children: Index[Key, snapshot.DeploymentView] = Index()
        self.replicasets: Index[Key, observe.ReplicaSetView] = Index()
        self.services: Index[Key, dict[str, Any]] = Index()
        self.routes: Index[Key, dict[str, Any]] = Index()
        self.endpoints: Index[Key, int] = Index()
        self.workloads: Index[Key, snapshot.WorkloadView] = Index()
        self.pods: Index[Key, snapshot.PodView] = Index()
        self.jobs: Index[Key, snapshot.JobView] = Index()
        self.groups: Index[Key, group.GroupView | str] = Index()
        self.memberships: Index[Key, str] = Index()
        self.referenced: Index[reconcile.ConfigKey, str] = Index()
        """Release names by the (namespace, kind, name) of each ConfigMap and Secret their
        templates reference (one entry per Release uid): whom an edit wakes."""
        self.copies: Index[Key, tuple[snapshot.ConfigKind, str]] = Index()
        self.templates: Index[reconcile.TemplateKey, snapshot.TemplateView] = Index()
        r = reconciler  # it reads them
        r.releases, r.children, r.services = self.releases, self.children, self.services
        r.routes, r.endpoints = self.routes, self.endpoints
        r.replicasets, r.workloads = self.replicasets, self.workloads
        r.jobs, r.groups, r.memberships = self.jobs, self.groups, self.memberships
        r.copies, r.pods, r.templates = self.copies, self.pods, self.templates
        self.namespaces = namespaces
        """Exact names get an informer each; none, or any pattern (kopf's `-n` globs, `!ns`
        to exclude), watch the whole cluster and keep the matching namespaces."""
        self.exact = bool(namespaces) and not any(set("*?[!,") & set(n) for n in namespaces)
        self.members: dict[Hashable, set[str]] = {}
        """Each group's members at its last event: one that leaves is woken too."""

    def informers(
        self,
        kube: cluster.Cluster,
        settings: Settings,
        routes: bool = False,
        cluster_templates: bool = False,
    ) -> list[informer.Informer]:
        """One per kind (and namespace); HTTPRoutes, and the EndpointSlices of the revisions'
        backend Services, only when the Gateway API is installed; ClusterCheckTemplates when
        the operator may read them."""
        release, check = naming.LABEL_RELEASE, naming.LABEL_CHECK
        kinds = {
            "releases": (self.release, _custom(kube, api.PLURAL)),
            "releasegroups": (self.group, _custom(kube, api_group.PLURAL)),
            "deployments": (self.deployment, _listers(kube.apps, "deployments", release)),
            "replicasets": (self.replicaset, _listers(kube.apps, "replicasets", release)),
            "services": (self.service, _listers(kube.core, "services", release)),
            "jobs": (self.job, _listers(kube.batch, "jobs", check)),
            # spec.workloadRef: only the Deployments a Release adopted (labelled with it)
            "workloads": (
                self.workload,
                _listers(kube.apps, "deployments", naming.LABEL_WORKLOAD_OF),
            ),
        }
        # every ConfigMap and Secret, metadata only (no data is sent): an edit of one that a
        # Release references wakes it; the revisions' copies are indexed by name
        kinds["configmaps"] = (
            functools.partial(self.config, "ConfigMap"),
            _metadata(kube.core, "configmaps"),
        )
        kinds["secrets"] = (
            functools.partial(self.config, "Secret"),
            _metadata(kube.core, "secrets"),
        )
        # the Releases' pods, metadata only: their roles (engine/roles.py)
        kinds["pods"] = (self.pod, _metadata(kube.core, "pods", release))
        # check templates (few, small): a change wakes the Releases whose checks name one
        kinds["checktemplates"] = (
            functools.partial(self.template, templates.KIND),
            _custom(kube, templates.PLURAL),
        )
        if routes:
            kinds["httproutes"] = (self.route, _routes(kube))  # all: a name taken is a conflict
            backends = f"{release},{naming.LABEL_ROLE}={naming.ROLE_BACKEND}"  # mirrored
            kinds["endpointslices"] = (
                self.endpointslice, _listers(kube.discovery, "endpointslices", backends)
            )  # fmt: skip
        scopes: list[str | None] = list(self.namespaces) if self.exact else [None]
        cluster_wide = []
        if cluster_templates:
            cluster_wide.append(
                informer.Informer(
                    "clusterchecktemplates",
                    _custom(kube, templates.CLUSTER_PLURAL)[1],  # (cluster-scoped)
                    functools.partial(self.template, templates.CLUSTER_KIND),
                    settings.watch_server_timeout,
                    settings.request_timeout,
                )
            )
        return [
            informer.Informer(
                f"{kind}/{ns or '*'}",
                functools.partial(namespaced, ns) if ns else everywhere,
                self._scoped(handler),
                settings.watch_server_timeout,
                settings.request_timeout,
            )
            for kind, (handler, (namespaced, everywhere)) in kinds.items()
            for ns in scopes
        ] + cluster_wide

    def known(self) -> list[Hashable]:
        """Every Release, and every group (it decides on its members)."""
        groups = [("group", *key) for key in self.groups if isinstance(key, tuple)]
        return [*self.releases, *groups]

    def _scoped(self, handler: informer.Handler) -> informer.Handler:
        if self.exact or not self.namespaces:
            return handler
        include = [n for n in self.namespaces if not n.startswith("!")]
        exclude = [n[1:] for n in self.namespaces if n.startswith("!")]

        def scoped(kind: str, body: Mapping[str, Any]) -> None:
            ns = (body.get("metadata") or {}).get("namespace") or ""
            if any(fnmatch.fnmatchcase(ns, p) for p in include) and not any(
                fnmatch.fnmatchcase(ns, p) for p in exclude
            ):
                handler(kind, body)

        return scoped

    def release(self, kind: str, body: Mapping[str, Any]) -> None:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        if kind == "DELETED":
            self.releases.put(meta["uid"], None)
        else:
            self._index_release(key, meta["uid"], body)
        indexed = self._indexed(key)
        view = indexed.view if indexed is not None and kind != "DELETED" else None
        self._reference(meta["uid"], key, view)
        seen = self.reconciler.cached_config(view) if view is not None else ()
        urgency = priority.release_event(indexed, self.children.get(key, ()), seen)
        self._wake(key, urgency)

    def _reference(self, uid: str, key: Key, view: snapshot.ReleaseView | None) -> None:
        """Which ConfigMaps and Secrets the Release references now; a cached digest no Release
        references any more is dropped."""
        ns, name = key
        refs = (
            config.spec_references(view.spec, self.reconciler.workload_of(view))
            if view is not None
            else ()
        )
        before = set(self.referenced.keys_of(uid))
        self.referenced.put(uid, {(ns, r.kind, r.name): name for r in refs})
        for gone in before - set(self.referenced.keys_of(uid)):
            if gone not in self.referenced:
                self.reconciler.config.pop(gone, None)

    def config(self, kind: snapshot.ConfigKind, event: str, body: Mapping[str, Any]) -> None:
        """A ConfigMap or Secret (its metadata): a revision's copy is indexed by name (one
        deleted wakes its Release: it is made again); one that Releases reference wakes them
        when it changed (its digest is read again). Any other is dropped."""
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        owner = observe.is_copy(meta)
        if owner is not None:
            self.copies.put(
                meta["uid"], None if event == "DELETED" else {(ns, owner): (kind, name)}
            )
            if event == "DELETED":
                self._wake((ns, owner), workqueue.Priority.BULK)
            return
        key = (ns, kind, name)
        releases = set(self.referenced.get(key, ()))
        if not releases:
            return
        rv = None if event == "DELETED" else str(meta.get("resourceVersion") or "")
        if self.reconciler.config_changed(key, rv):
            for release in sorted(releases):
                self._wake((ns, release), workqueue.Priority.URGENT)

    def template(self, kind_: str, event: str, body: Mapping[str, Any]) -> None:
        """A CheckTemplate or ClusterCheckTemplate: indexed by (namespace, kind, name); the
        Releases whose checks name it are woken (one refused for it missing goes on)."""
        meta = body["metadata"]
        ns = meta.get("namespace") or ""
        view = None if event == "DELETED" else observe.template_view(kind_, body)
        self.templates.put(meta["uid"], None if view is None else {(ns, kind_, meta["name"]): view})
        for key in list(self.releases):
            indexed = self._indexed(key)
            if indexed is None or indexed.view is None or (ns and key[0] != ns):
                continue
            refs = (c.template_ref for _, _, c in indexed.view.spec.all_checks())
            if any(r is not None and (r.kind, r.name) == (kind_, meta["name"]) for r in refs):
                self._wake(key, workqueue.Priority.URGENT)

    def written(self, body: Mapping[str, Any]) -> None:
        """A Release as our own status write left it: indexed at once, and queued when its
        next step moves traffic now (an undo's flip to the warm revision it set back); its watch
        event comes later and wakes it as any event does."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        self._index_release(key, meta["uid"], body)
        urgency = priority.release_event(self._indexed(key), self.children.get(key, ()))
        if urgency == workqueue.Priority.TRAFFIC:
            self._wake(key, urgency)

    def _index_release(self, key: Key, uid: str, body: Mapping[str, Any]) -> None:
        """Index a Release, unless the index already has this version or a newer one (our own
        write's, ahead of the watch): the echo of a status write is not parsed again (in a
        storm most Release events are those echoes)."""
        now, rv = self._indexed(key), _version(body["metadata"])
        if now is not None and (now.resource_version > rv or now.resource_version == rv > 0):
            return
        self.releases.put(uid, {key: reconcile.index_release(body)})

    def deployment(self, kind: str, body: Mapping[str, Any]) -> None:
        meta = body["metadata"]
        key = (meta["namespace"], meta["labels"][naming.LABEL_RELEASE])
        view = observe.deployment_view(body) if kind != "DELETED" else None
        self.children.put(meta["uid"], {key: view} if view else None)
        self._wake(key, priority.deployment_event(self._current(key, view), self._indexed(key)))

    def replicaset(self, kind: str, body: Mapping[str, Any]) -> None:
        """A Deployment's ReplicaSet: its pods became available a hop before the Deployment
        says so (`observe.deployments_of`)."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["labels"][naming.LABEL_RELEASE])
        view = observe.replicaset_view(body) if kind != "DELETED" else None
        self.replicasets.put(meta["uid"], {key: view} if view else None)
        if view is not None:
            owner = next((d for d in self.children.get(key, ()) if d.name == view.deployment), None)
            self._wake(
                key, priority.deployment_event(self._current(key, owner), self._indexed(key))
            )

    def _current(
        self, key: Key, view: snapshot.DeploymentView | None
    ) -> snapshot.DeploymentView | None:
        """A Deployment as the engine will see it: with its ReplicaSet's counts when current."""
        if view is None:
            return None
        return observe.deployments_of([view], self.replicasets.get(key, ()))[0]

    def service(self, kind: str, body: Mapping[str, Any]) -> None:
        """A Service of ours changed (a hand edit, a re-apply): the Release repairs it. One that
        lost our label (a deleted Release's adopted Service, given back) leaves the index."""
        meta = body["metadata"]
        entry = {(meta["namespace"], meta["name"]): observe.service_record(body)}
        self.services.put(meta["uid"], None if kind == "DELETED" else entry)
        release = (meta.get("labels") or {}).get(naming.LABEL_RELEASE)
        if release is None:
            return
        key = (meta["namespace"], release)
        self._wake(key, priority.service_event(body, self._indexed(key)))

    def pod(self, kind: str, body: Mapping[str, Any], ours: bool = False) -> None:
        """One of the Releases' pods (metadata): a new one without its role, or a role changed
        by someone else, wakes its Release (engine/roles.py labels it). Our own label write
        (`ours`, indexed as its answer comes) and its watch echo wake nothing."""
        meta = body["metadata"]
        labels = meta.get("labels") or {}
        release, template_hash = labels.get(naming.LABEL_RELEASE), labels.get(naming.LABEL_HASH)
        if not release or not template_hash:
            return
        key, uid = (meta["namespace"], release), meta["uid"]
        before = self.pods.value(uid)
        if kind == "DELETED" or meta.get("deletionTimestamp"):
            self.pods.put(uid, None)
            return
        view = snapshot.PodView(meta["name"], template_hash, labels.get(naming.LABEL_ROLE))
        self.pods.put(uid, {key: view})
        if not ours and (view.role is None or (before is not None and before.role != view.role)):
            self._wake(key, workqueue.Priority.URGENT)

    def route_written(self, body: Mapping[str, Any]) -> None:
        """Our own route write, indexed at once; it wakes nothing (the reconcile that wrote it
        decided on it; the gateway's status on it is the next event that matters). Unless the
        watch brought it, or newer, first: the gateway's status on it may come in before our
        write's answer is read, and must not be replaced by the older answer."""
        meta = body["metadata"]
        named = (meta["namespace"], meta["name"])
        rv = _version(meta)
        if any(_version(r["metadata"]) >= rv for r in self.routes.get(named, ())):
            return
        self.routes.put(meta["uid"], {named: observe.route_record(body)})

    def route(self, kind: str, body: Mapping[str, Any]) -> None:
        """A Release's HTTPRoute: the gateway accepted it, or someone changed it (repaired).
        Anyone else's is indexed by name only: a Release naming it is refused (or adopts it).
        The echo of our own write (its resourceVersion indexed already) wakes nothing."""
        meta = body["metadata"]
        release = (meta.get("labels") or {}).get(naming.LABEL_RELEASE)
        record = observe.route_record(body) if release else observe.route_stub(body)
        named = (meta["namespace"], meta["name"])
        rv = meta.get("resourceVersion")
        echo = kind != "DELETED" and any(
            r["metadata"].get("resourceVersion") == rv for r in self.routes.get(named, ())
        )
        self.routes.put(meta["uid"], None if kind == "DELETED" else {named: record})
        if release is None or echo:
            return
        key = (meta["namespace"], release)
        indexed = self._indexed(key)
        view = observe.route_view(record, indexed.view.uid if indexed and indexed.view else "")
        self._wake(key, priority.route_event(view, indexed))

    def endpointslice(self, kind: str, body: Mapping[str, Any]) -> None:
        """A backend Service's ready endpoints: what the gateway can send requests to."""
        meta = body["metadata"]
        labels = meta.get("labels") or {}
        service, release = labels.get(SERVICE_NAME), labels.get(naming.LABEL_RELEASE)
        if not service:
            return
        backend: Key = (meta["namespace"], service)
        ready = observe.ready_endpoints(body) if kind != "DELETED" else None
        before = sum(self.endpoints.get(backend, ()), 0)
        self.endpoints.put(meta["uid"], {backend: ready} if ready is not None else None)
        after = sum(self.endpoints.get(backend, ()), 0)
        if release and after > before:  # fewer never unblocks a decision
            key = (meta["namespace"], release)
            deployments = self.reconciler.deployments(key)
            lane = priority.endpoints_event(service, after, self._indexed(key), deployments)
            if lane is not None:
                self._wake(key, lane)

    def workload(self, kind: str, body: Mapping[str, Any]) -> None:
        """An adopted Deployment changed (a new pod template, a scale-up): its Release acts."""
        meta = body["metadata"]
        release = str((meta.get("labels") or {}).get(naming.LABEL_WORKLOAD_OF) or "")
        view = observe.workload_view(body) if kind != "DELETED" and release else None
        self.workloads.put(meta["uid"], {(meta["namespace"], release): view} if view else None)
        if release:
            self._wake((meta["namespace"], release), workqueue.Priority.URGENT)

    def job(self, kind: str, body: Mapping[str, Any]) -> None:
        """A check's Job made progress: its Release records it."""
        meta = body["metadata"]
        release = (meta.get("labels") or {}).get(naming.LABEL_RELEASE)
        view = observe.job_view(body) if kind != "DELETED" else None
        entry = {(meta["namespace"], release): view} if view and release else None
        self.jobs.put(meta["uid"], entry)
        if release:
            self._wake((meta["namespace"], release), priority.job_event(view))

    def group(self, kind: str, body: Mapping[str, Any]) -> None:
        """A group changed: it and its members (those that left too: they go on alone). The
        members in the TRAFFIC lane: a group's status write may be its decision to flip them."""
        meta = body["metadata"]
        ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
        members = set((body.get("spec") or {}).get("members") or [])
        gone = kind == "DELETED"
        self.groups.put(uid, None if gone else {(ns, name): observe.group_view(body)})
        self.memberships.put(uid, None if gone else {(ns, m): name for m in members})
        for member in members | self.members.get((ns, name), set()):
            self._wake((ns, member), workqueue.Priority.TRAFFIC)
        if gone:
            self.members.pop((ns, name), None)
        else:
            self.members[(ns, name)] = members
        self.queue.add(("group", ns, name), workqueue.Priority.URGENT)

    def _wake(self, key: Key, urgency: priority.Wake) -> None:
        ns = key[0]
        keys = [key, *(("group", ns, name) for name in self.memberships.get(key, ()))]
        for k in keys:  # (its group decides on it too)
            if urgency == priority.PROGRESS:
                self.queue.add_progress(k)
            else:
                self.queue.add(k, urgency)

    def _indexed(self, key: Key) -> reconcile.Indexed | None:
        """The Release index's entry for a key (None: not in the index, e.g. deleted)."""
        return next(iter(self.releases.get(key, ())), None)


SERVICE_NAME = "kubernetes.io/service-name"


def _version(meta: Mapping[str, Any]) -> int:
    """A resourceVersion as a number (etcd's revision), 0 when it is not one."""
    rv = str(meta.get("resourceVersion") or "")
    return int(rv) if rv.isdigit() else 0


def _custom(kube: cluster.Cluster, plural: str) -> tuple[informer.Lister, informer.Lister]:
    c = kube.custom
    return (
        functools.partial(
            c.list_namespaced_custom_object_without_preload_content, api.GROUP, api.VERSION,
            plural=plural,
        ),
        functools.partial(
            c.list_cluster_custom_object_without_preload_content, api.GROUP, api.VERSION, plural
        ),
    )  # fmt: skip


def _routes(kube: cluster.Cluster) -> tuple[informer.Lister, informer.Lister]:
    c, group, version = kube.custom, routing.GATEWAY_GROUP, routing.GATEWAY_VERSION
    return (
        functools.partial(
            c.list_namespaced_custom_object_without_preload_content, group, version,
            plural=routing.HTTPROUTES,
        ),
        functools.partial(
            c.list_cluster_custom_object_without_preload_content, group, version,
            routing.HTTPROUTES,
        ),
    )  # fmt: skip


def _metadata(
    api_: rest.CoreV1, plural: str, label: str | None = None
) -> tuple[informer.Lister, informer.Lister]:
    """(list in a namespace, list everywhere) of every object of a kind (carrying `label`),
    metadata only: the API server sends PartialObjectMetadata (no data: a cluster's Secrets
    are never decoded, nor a pod's spec and status)."""
    namespaced = functools.partial(api_.list_without_preload_content, plural)
    everywhere = functools.partial(api_.list_without_preload_content, plural, None)
    selected = {"label_selector": label} if label else {}

    def metadata_only(lister: informer.Lister) -> informer.Lister:
        def call(*args: Any, **kwargs: Any) -> Any:
            as_ = "PartialObjectMetadata" if kwargs.get("watch") else "PartialObjectMetadataList"
            accept = f"application/json;as={as_};g=meta.k8s.io;v=v1,application/json"
            return lister(*args, _headers={"Accept": accept}, **selected, **kwargs)

        return call

    return metadata_only(namespaced), metadata_only(everywhere)


def _listers(api_: Any, plural: str, label: str) -> tuple[informer.Lister, informer.Lister]:
    """(list in a namespace, list everywhere), of objects carrying `label`."""
    lister = api_.list_without_preload_content
    return (
        functools.partial(lister, plural, label_selector=label),
        functools.partial(lister, plural, None, label_selector=label),
    )
