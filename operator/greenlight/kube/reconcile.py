"""One reconcile of one Release: observe -> engine.plan -> apply -> status."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Collection, Hashable, Mapping
from typing import Any, cast

from greenlight import metrics
from greenlight.api import release as api
from greenlight.api import templates as api_templates
from greenlight.engine import actions as act
from greenlight.engine import config, finalize, group, naming, plan, snapshot
from greenlight.engine import status as engine_status
from greenlight.engine.reasons import Reason
from greenlight.kube import cluster as kube_cluster
from greenlight.kube import measure, notify, observe
from greenlight.kube.settings import Settings

log = logging.getLogger("greenlight.reconcile")


@dataclasses.dataclass(frozen=True)
class Indexed:
    """What the Release index keeps per Release: parsed once per event, not per reconcile."""

    resource_version: int
    view: snapshot.ReleaseView | None
    error: str | None = None
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    conditions: list[api.Condition] = dataclasses.field(default_factory=list)
    """An invalid Release's conditions as they are (their transition times are kept)."""


def index_release(body: Mapping[str, Any]) -> Indexed:
    meta = body.get("metadata") or {}
    rv = int(meta.get("resourceVersion") or 0)
    parsed = observe.release_view(body)
    if isinstance(parsed, str):
        keys = ("name", "namespace", "uid", "generation", "deletionTimestamp", "finalizers")
        keep = {k: meta.get(k) for k in keys}
        return Indexed(rv, None, parsed, keep, observe.conditions(body))
    return Indexed(rv, parsed)


Key = tuple[str, str]
"""(namespace, name): a Release's (or a group's) key in the indexes."""
Index = Mapping[Key, Collection[Any]]
ConfigKey = tuple[str, snapshot.ConfigKind, str]
"""(namespace, kind, name) of a ConfigMap or Secret."""
TemplateKey = tuple[str, str, str]
"""(namespace, or "" for a ClusterCheckTemplate; kind; name)."""


class Reconciler:
    def __init__(
        self,
        cluster: kube_cluster.Cluster,
        expectation_timeout: float = Settings.expectation_timeout,
        runner: measure.Runner | None = None,
        notifier: notify.Notifier | None = None,
    ) -> None:
        self.cluster = cluster
        self.expectation_timeout = expectation_timeout
        self.runner = runner or measure.Runner(None, lambda key: None)
        self.notifier = notifier or notify.Notifier(None)
        """Sends notifications in the background (never holding a reconcile)."""
        """Takes promotion-gate measurements off the workers; results come back here."""
        self.jobs: Mapping[Key, Collection[snapshot.JobView]] = {}
        """Check Jobs by Release: their state is a job check's measurement."""
        self.groups: Mapping[Key, Collection[group.GroupView | str]] = {}
        """ReleaseGroups by (namespace, name): a GroupView, or the message of an invalid one."""
        self.memberships: Mapping[Key, Collection[str]] = {}
        """Group names by member (namespace, Release name)."""
        self.releases: Mapping[Key, Collection[Indexed]] = {}
        self.children: Mapping[Key, Collection[snapshot.DeploymentView]] = {}
        self.replicasets: Mapping[Key, Collection[observe.ReplicaSetView]] = {}
        """Our Deployments' ReplicaSets by Release: their pods' availability comes first."""
        self.services: Mapping[Key, Collection[dict[str, Any]]] = {}
        self.routes: Mapping[Key, Collection[dict[str, Any]]] = {}
        self.routes_watched = False
        """The HTTPRoute informer runs (the Gateway API is installed): a route not in its
        index does not exist; otherwise one is read by name."""
        self.workloads: Mapping[Key, Collection[snapshot.WorkloadView]] = {}
        """spec.workloadRef's Deployments we adopted (labelled), by (namespace, Release)."""
        self.endpoints: Mapping[Key, Collection[int]] = {}
        """Ready endpoints per backend Service, one entry per EndpointSlice."""
        """Services labelled with a Release, by (namespace, name): their watch wakes the
        Release, so a hand edit is repaired at once. Others (foreign) are read with a GET."""
        self.config: dict[ConfigKey, tuple[str, snapshot.ConfigView]] = {}
        """The ConfigMaps and Secrets a Release references: (resourceVersion, the view: a
        digest of the data, never the data), read by name when first needed. The informer
        (metadata only) drops an entry when its object changes (`config_changed`), and
        `handlers.Feeds` drops those no Release references any more."""
        self.copies: Mapping[Key, Collection[tuple[snapshot.ConfigKind, str]]] = {}
        self.pods: Mapping[Key, Collection[snapshot.PodView]] = {}
        """The Releases' pods (their revision and role label), by Release."""
        self.templates: Mapping[TemplateKey, Collection[snapshot.TemplateView]] = {}
        """CheckTemplates (namespace, kind, name) and ClusterCheckTemplates ("", kind, name)."""
        """(kind, name) of the revisions' copies that exist, by Release."""
        self._written: dict[Hashable, int] = {}
        """resourceVersion of our last status write per Release: older index entries are stale."""
        self._expected: dict[Hashable, tuple[float, dict[str, dict[str, Any] | None]]] = {}
        """What we last wrote per Deployment (None: deleted; else its view's fields: replicas,
        a restart), until the index shows it. Deciding on a cache that has not seen our own
        writes could break maxSurge, or report a restart done before it began. Only writes
        the API server answered: one that failed (refused, cut off, timed out) is not waited
        for; the next reconcile decides it again (the same write: idempotent)."""
        self._unreported: dict[Hashable, str] = {}
        """A failed action's message per Release until a status write reports it: when the
        API server was unreachable, the next reconcile that reaches it reports it first."""

    async def reconcile(self, key: Hashable) -> float | None:
        """Returns seconds until this Release (or group: key ("group", ns, name)) wants to be
        looked at again (None: on events)."""
        result = "error"
        try:
            if isinstance(key, tuple) and len(key) == 3 and key[0] == "group":
                result, after = await self._reconcile_group(key[1], key[2])
            else:
                result, after = await self._reconcile(cast(Key, key))
            return after
        finally:
            metrics.RECONCILES.labels(result).inc()

    def deployments(self, key: Key) -> tuple[snapshot.DeploymentView, ...]:
        return observe.deployments_of(self.children.get(key, ()), self.replicasets.get(key, ()))

    async def config_of(
        self, release: snapshot.ReleaseView, workload: snapshot.WorkloadView | None = None
    ) -> tuple[snapshot.ConfigView, ...]:
        """The ConfigMaps and Secrets the Release's template (or spec.workloadRef's) references,
        as cached (a miss: read by name, the digest kept, the data dropped)."""
        seen = []
        for ref in config.spec_references(release.spec, workload):
            key = (release.namespace, ref.kind, ref.name)
            cached = self.config.get(key)
            if cached is None:
                cached = self.config[key] = await self.cluster.config(*key)
            seen.append(cached[1])
        return tuple(seen)

    def cached_config(self, release: snapshot.ReleaseView) -> tuple[snapshot.ConfigView, ...]:
        """`config_of` without reading: only what is cached (for the queue's lanes)."""
        refs = config.spec_references(release.spec, self.workload_of(release))
        keys = ((release.namespace, r.kind, r.name) for r in refs)
        return tuple(self.config[k][1] for k in keys if k in self.config)

    def config_changed(self, key: ConfigKey, resource_version: str | None) -> bool:
        """The informer saw a referenced object at `resource_version` (None: deleted): True
        (and the cached digest dropped, read again when next needed) unless the cache has it."""
        cached = self.config.get(key)
        if cached is not None and resource_version is not None and cached[0] == resource_version:
            return False
        self.config.pop(key, None)
        return True

    def group_of(self, namespace: str, name: str) -> str | None:
        return min(self.memberships.get((namespace, name), ()), default=None)

    def _group_flip_to(self, release: snapshot.ReleaseView, name: str | None) -> int | None:
        """The member's revision in its group's last history entry (what the group decided)."""
        found = list(self.groups.get((release.namespace, name), ())) if name else []
        if not found or isinstance(found[0], str) or not found[0].status.history:
            return None
        revision: int | None = found[0].status.history[-1].revisions.get(release.name)
        return revision

    async def _reconcile_group(self, namespace: str, name: str) -> tuple[str, float | None]:
        found = list(self.groups.get((namespace, name), ()))
        if not found:
            return "gone", None
        view = found[0]
        if isinstance(view, str):
            return "invalid", None  # the API server's schema refuses most; nothing to act on
        if view.resource_version < self._written.get(("group", namespace, name), 0):
            return "stale", None  # our own status write has not reached the index; its event will
        members = []
        for member in view.spec.members:
            indexed = next(iter(self.releases.get((namespace, member), ())), None)
            release = indexed.view if indexed is not None else None
            live = None
            if release is not None:
                live = await self._service(release, _name(release.spec.service))
            others = tuple(g for g in self.memberships.get((namespace, member), ()) if g != name)
            members.append(
                group.Member(
                    name=member,
                    release=release,
                    deployments=self.deployments((namespace, member)),
                    live_service=live,
                    other_groups=tuple(sorted(others)),
                    config=(
                        await self.config_of(release, self.workload_of(release))
                        if release is not None
                        else ()
                    ),
                )
            )
        snap = group.GroupSnapshot(view, tuple(members), observe.now())
        plan_ = group.plan_group(snap)
        status = plan_.status
        for command in plan_.member_commands:
            await self.cluster.annotate_release(namespace, command)
        if plan_.cleared:
            await self.cluster.clear_group_commands(view, plan_.cleared)
        for event in plan_.events:
            await self.cluster.event(view, event)
        spread = status.last_flip_spread_ms
        if spread is not None and spread != view.status.last_flip_spread_ms:
            metrics.GROUP_FLIP_SPREAD.observe(spread / 1000)
        if status != view.status:
            rv = await self.cluster.patch_group_status(view, status)
            if rv:
                self._written[("group", namespace, name)] = rv
        return "planned", plan_.requeue_after

    async def _reconcile(self, key: Key) -> tuple[str, float | None]:
        found = list(self.releases.get(key, ()))
        if not found:
            self._written.pop(key, None)
            self._unreported.pop(key, None)
            self.runner.forget(key)
            namespace, name = key
            metrics.set_phase(namespace, name, None)
            return "gone", None
        indexed: Indexed = found[0]
        if indexed.resource_version < self._written.get(key, 0):
            return "stale", None  # our own status write has not reached the index; its event will
        if indexed.view is None:
            await self._report_invalid(indexed)
            return "invalid", None
        release = indexed.view
        if release.deleting is not None or naming.ANNOTATION_DETACH in release.annotations:
            return await self._finalize(key, release)
        observed = release.status  # as stored: with a failure reported just now, else indexed
        failed = self._unreported.get(key)
        if failed is not None:  # an action failed while the API server was unreachable
            observed = await self._report_failure(key, release, failed, observed) or observed
        deployments = self.deployments(key)
        waiting = self._still_expected(key, deployments)
        if waiting is not None:
            return "expecting", waiting  # the Deployment events that satisfy it wake us sooner
        started = time.perf_counter()
        spec = release.spec
        preview_name = spec.preview_service.name if spec.preview_service else None
        # what the indexes do not hold is read by name, all at once (a first release: both
        # Services, before they exist)
        live, preview, (route, backends), workload = await asyncio.gather(
            self._service(release, _name(spec.service)),
            self._service(release, preview_name),
            self._routing(release, deployments),
            self._workload(release),
        )
        group_name = self.group_of(release.namespace, release.name)
        snap = snapshot.Snapshot(
            release=release,
            deployments=deployments,
            live_service=live,
            preview_service=preview,
            now=observe.now(),
            results=self.runner.results(key),
            jobs=tuple(self.jobs.get(key, ())),
            group=group_name,
            group_flip_to=self._group_flip_to(release, group_name),
            route=route,
            backends=backends,
            config=await self.config_of(release, workload),
            copies=frozenset(self.copies.get(key, ())),
            workload=workload,
            pods=tuple(self.pods.get(key, ())),
            templates=self._templates(release),
        )
        result = plan.plan(snap)
        try:
            if finalize.wanted(snap):  # before this reconcile's writes can move the Service
                await self.cluster.add_finalizer(release)
            await self.cluster.apply(release, result.writes)
        except kube_cluster.ApplyError as e:
            self._expect(key, _before(result.writes, e.action))  # they were applied; not it
            if isinstance(e.action, act.CopyConfig):  # (changed meanwhile: read it again)
                self.config.pop((release.namespace, e.action.kind, e.action.source), None)
            await self._report_failure(key, release, str(e), observed)
            raise
        self._expect(key, result.writes)
        for job in result.jobs:
            refused = await self.cluster.create_job(release, job)
            if refused is not None:
                self.runner.record_error(key, job, refused)
        # The Events alongside the status write: both only once every write succeeded, and
        # the next reconcile (a burst's next flip) does not wait for them one after another.
        events = [self.cluster.event(release, a) for a in result.events]
        if result.status != observed:
            rv, *_ = await asyncio.gather(
                self.cluster.patch_status(release, result.status), *events
            )
            if rv:
                self._written[key] = rv
        else:
            await asyncio.gather(*events)
        self.runner.consumed(key, snap.results)  # recorded (or not needed): forget them
        _count_measurements(release.status, result.status)
        for measurement in result.measurements:
            self.runner.start(key, release.namespace, measurement)
        for notification in result.notifications:
            self.notifier.send(release.namespace, notification)
        metrics.set_phase(release.namespace, release.name, result.status.phase)
        for a in result.events:
            metrics.TRANSITIONS.labels(a.reason).inc()
            log.info(
                "%s", a.message,
                extra={"release": release.name, "namespace": release.namespace,
                       "reason": a.reason},
            )  # fmt: skip
        metrics.RECONCILE_SECONDS.observe(time.perf_counter() - started)
        return "planned", result.requeue_after

    async def _finalize(self, key: Key, release: snapshot.ReleaseView) -> tuple[str, float | None]:
        """Deleted (or detached): no plan. What it adopted goes back first, one step per
        reconcile (engine/finalize.py): the workload's replicas, the Service's selector; then
        the finalizer, and (deleted) the Release's pods with it."""
        detaching = release.deleting is None
        if naming.FINALIZER not in release.finalizers:
            if detaching:
                await self._detached(key, release)
            return "deleting", None  # nothing of ours holds it: the garbage collector goes on
        svc = await self._service(release, _name(release.spec.service))
        workload = await self._workload(release)
        pods, endpoints = await self.cluster.serving(release.namespace, release.name, svc)
        seen = finalize.Deleting(release, svc, pods, endpoints, observe.now(), workload)
        step = finalize.on_delete(seen)
        if step.scale_workload is not None and workload is not None:
            scale = act.ScaleWorkload(workload.name, step.scale_workload, drained=False)
            await self.cluster.scale_workload(release.namespace, scale)
        if step.restore is not None and svc is not None:
            await self.cluster.restore_service(release.namespace, svc, step.restore)
        await asyncio.gather(*(self.cluster.event(release, a) for a in step.events))
        if step.release:
            if step.release_workload is not None:
                await self.cluster.release_workload(release.namespace, step.release_workload)
            rv = await self.cluster.remove_finalizer(
                release.namespace, release.name, release.finalizers
            )
            if rv:
                self._written[key] = rv  # a re-run waits for the index to see it gone
        return "finalizing", step.requeue_after

    async def _detached(self, key: Key, release: snapshot.ReleaseView) -> None:
        """Detached and handed back: say so once; nothing else is written while it holds."""
        message = (
            f"detached ({naming.ANNOTATION_DETACH}): the workload and the Service were handed"
            " back; this Release changes nothing until the annotation is removed, and can be"
            " deleted without touching traffic"
        )
        if release.status.message == message:
            return
        await self.cluster.event(release, act.RecordEvent(Reason.DETACHED, message))
        status = release.status.model_copy(update={"phase": "Paused", "message": message})
        rv = await self.cluster.patch_status(release, status)
        if rv:
            self._written[key] = rv

    async def _workload(self, release: snapshot.ReleaseView) -> snapshot.WorkloadView | None:
        """spec.workloadRef's Deployment: from the index once adopted, else read by name."""
        ref = release.spec.workload_ref
        if ref is None:
            return None
        return self.workload_of(release) or await self.cluster.workload(release.namespace, ref.name)

    def workload_of(self, release: snapshot.ReleaseView) -> snapshot.WorkloadView | None:
        """spec.workloadRef's Deployment as indexed (None: none, or not adopted yet)."""
        ref = release.spec.workload_ref
        found = self.workloads.get((release.namespace, release.name), ()) if ref else ()
        return next((w for w in found if ref is not None and w.name == ref.name), None)

    async def _service(
        self, release: snapshot.ReleaseView, name: str | None
    ) -> snapshot.ServiceView | None:
        if name is None:  # a worker: no Service
            return None
        found = list(self.services.get((release.namespace, name), ()))
        if found:
            return observe.service_view(found[0], release.uid)
        return await self.cluster.service(release.namespace, name, release.uid)

    async def _routing(
        self, release: snapshot.ReleaseView, deployments: tuple[snapshot.DeploymentView, ...]
    ) -> tuple[snapshot.RouteView | None, tuple[snapshot.ServiceView, ...]]:
        """spec.traffic: the route (indexed once it is labelled ours, else read by name) and
        the revisions' backend Services."""
        gw, recorded = release.spec.gateway, release.status.traffic
        if gw is None:  # spec.traffic removed: the route it wrote, until handed over
            key = (release.namespace, recorded.route if recorded else "")
            seen = list(self.routes.get(key, ())) if recorded else []
            return (observe.route_view(seen[0], release.uid) if seen else None), ()
        name = gw.route_name or release.name
        found = list(self.routes.get((release.namespace, name), ()))
        route: snapshot.RouteView | None = None
        if found:
            route = observe.route_view(found[0], release.uid)
        elif not self.routes_watched:
            route = await self.cluster.route(release.namespace, name, release.uid)
        backends = []
        for d in deployments:
            seen = list(self.services.get((release.namespace, d.name), ()))
            if seen:
                view = observe.service_view(seen[0], release.uid)
                ready = sum(self.endpoints.get((release.namespace, d.name), ()))
                backends.append(dataclasses.replace(view, ready_endpoints=ready))
        return route, tuple(backends)

    def _expect(self, key: Hashable, actions: tuple[act.Write, ...]) -> None:
        writes: dict[str, dict[str, Any] | None] = {}
        for a in actions:
            if isinstance(a, act.CreateDeployment | act.ScaleDeployment):
                writes[a.name] = {**(writes.get(a.name) or {}), "spec_replicas": a.replicas}
            elif isinstance(a, act.RestartDeployment):
                writes[a.name] = {**(writes.get(a.name) or {}), "restarted_at": a.at}
            elif isinstance(a, act.DeleteDeployment):
                writes[a.name] = None
        if writes:
            self._expected[key] = (time.monotonic() + self.expectation_timeout, writes)

    def _still_expected(
        self, key: Hashable, deployments: tuple[snapshot.DeploymentView, ...]
    ) -> float | None:
        """Seconds to wait for the index to show our last writes, or None when it does."""
        if key not in self._expected:
            return None
        expires, writes = self._expected[key]
        seen = {d.name: d for d in deployments}

        def shown(name: str, fields: dict[str, Any] | None) -> bool:
            d = seen.get(name)
            if fields is None or d is None:
                return fields is None and d is None
            return all(getattr(d, f) == v for f, v in fields.items())

        if all(shown(name, fields) for name, fields in writes.items()):
            del self._expected[key]
            return None
        remaining = expires - time.monotonic()
        if remaining <= 0:  # an event was lost or someone else changed it: decide anyway
            del self._expected[key]
            return None
        return remaining

    async def _report_failure(
        self,
        key: Hashable,
        release: snapshot.ReleaseView,
        error: str,
        observed: api.ReleaseStatus,
    ) -> api.ReleaseStatus | None:
        """Event and status condition, once per distinct error: a write per retry would wake
        the Release at once (its own event) and defeat the work queue's backoff. Returns the
        status written (None: `observed` already reports it). Until both are written (the API
        server unreachable), the error waits in `_unreported` for the next reconcile."""
        self._unreported[key] = error
        status = engine_status.apply_failed(observed, error, observe.now(), release.generation)
        if status is not None:
            # the Event first: posted again after a lost status write, it is refused (409)
            await self.cluster.event(
                release, act.RecordEvent(Reason.APPLY_FAILED, error, "Warning")
            )
            rv = await self.cluster.patch_status(release, status)
            if rv:
                self._written[key] = rv
        del self._unreported[key]
        return status

    def _templates(self, release: snapshot.ReleaseView) -> tuple[snapshot.TemplateView, ...]:
        """The check templates the spec's checks name, those that exist."""
        out: list[snapshot.TemplateView] = []
        for _, _, check in release.spec.all_checks():
            ref = check.template_ref
            if ref is not None:
                ns = "" if ref.kind == api_templates.CLUSTER_KIND else release.namespace
                out += self.templates.get((ns, ref.kind, ref.name), ())
        return tuple(out)

    async def _report_invalid(self, indexed: Indexed) -> None:
        meta = indexed.meta
        if meta.get("deletionTimestamp") and naming.FINALIZER in (meta.get("finalizers") or []):
            # deleted with a spec we cannot read (nor its Service's name): never hold it
            await self.cluster.remove_finalizer(meta["namespace"], meta["name"], meta["finalizers"])
            return
        message = indexed.error or "invalid spec"
        status = api.ReleaseStatus(
            phase="Degraded",
            message=message,
            observed_generation=meta.get("generation"),
            conditions=engine_status.invalid(
                message, indexed.conditions, observe.now(), meta.get("generation")
            ),
        )
        await self.cluster.patch_invalid(meta, status)


def _before(actions: tuple[act.Write, ...], failed: act.Write | None) -> tuple[act.Write, ...]:
    """The writes applied before `failed` (none when it is unknown)."""
    for i, a in enumerate(actions):
        if a is failed:
            return actions[:i]
    return ()


def _count_measurements(before: api.ReleaseStatus, after: api.ReleaseStatus) -> None:
    """greenlight_check_measurements_total: the measurements this reconcile recorded."""
    seen = {(c.stage, c.template_hash, c.name): c.successes + c.failures + c.inconclusive
            + c.errors for c in before.checks}  # fmt: skip
    for c in after.checks:
        new = (
            c.successes
            + c.failures
            + c.inconclusive
            + c.errors
            - seen.get((c.stage, c.template_hash, c.name), 0)
        )
        for m in c.measurements[-new:] if new > 0 else []:
            metrics.CHECK_MEASUREMENTS.labels(c.name, m.verdict).inc()


def _name(service: api.LiveService | None) -> str | None:
    return service.name if service is not None else None
