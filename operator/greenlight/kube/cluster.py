"""The imperative shell: read Services, apply the engine's actions, write status and Events.

Everything here is async (kube/rest.py over kubernetes.aio), so kopf's event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import dataclasses
import datetime
import hashlib
import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

import aiohttp
from kubernetes.aio import client, config
from kubernetes.aio.client.exceptions import ApiException

from greenlight import metrics
from greenlight.api import group as api_group
from greenlight.api import release as api
from greenlight.api import templates as api_templates
from greenlight.api import traffic as routing
from greenlight.engine import actions as act
from greenlight.engine import group, naming, snapshot
from greenlight.kube import observe, render, rest

# The client's config loaders are untyped: typed once, here.
_load_incluster_config = cast(Callable[..., None], config.load_incluster_config)
_load_kube_config = cast(Callable[..., Awaitable[None]], config.load_kube_config)


def _resource_version(written: Mapping[str, Any]) -> int:
    """The resourceVersion of an object a write returned."""
    return int(written["metadata"]["resourceVersion"])


log = logging.getLogger("greenlight.kube")

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"


PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


class ApplyError(Exception):
    """One of the engine's actions failed: the API server refused it (quota, admission,
    conflict...) or could not be reached. `action`: the one that failed (those before it were
    applied, those after it were not tried)."""

    def __init__(self, message: str, action: act.Write | None = None) -> None:
        super().__init__(message)
        self.action = action


def _describe(a: act.Write) -> str:
    match a:
        case act.CopyConfig():
            return f"copy {a.kind} {a.source} to {a.name}"
        case (
            act.CreateDeployment()
            | act.ScaleDeployment()
            | act.LabelDeployment()
            | act.RestartDeployment()
            | act.DeleteDeployment()
        ):
            verb = type(a).__name__.removesuffix("Deployment").lower()
            return f"{verb} Deployment {a.name}"
        case act.AdoptWorkload():
            return f"adopt Deployment {a.name}"
        case act.ScaleWorkload():
            return f"scale Deployment {a.name} to {a.replicas}"
        case act.ApplyService():
            return f"{'create' if a.create else 'apply'} {a.role} Service {a.name}"
        case act.RestoreTemplate():
            return f"undo to revision {a.revision}"
        case act.ApplyBackend():
            return f"apply backend Service {a.name}"
        case act.ApplyRoute():
            return f"{'create' if a.create else 'apply'} HTTPRoute {a.name}"
        case act.SetPodRole():
            return f"label pod {a.pod} {naming.LABEL_ROLE}={a.role}"
        case _:
            return type(a).__name__


def event_name(release: snapshot.ReleaseView | group.GroupView, a: act.RecordEvent) -> str:
    """`<name>.<digest>`: the same for the same decision on the same state. The digest covers
    the object's uid, spec generation, command annotations and status as observed (what a
    reconcile decides from; the status changes with every step recorded) and the Event's
    reason, type and message. So an identical Event on an identical state is recorded once,
    whoever posts it; a step recorded in status, a new command or a new spec make a new one."""
    decided_on = {
        "uid": release.uid,
        "generation": release.generation,
        "annotations": release.annotations,
        "status": release.status.model_dump(mode="json", exclude_none=True),
        "event": [a.reason, a.type, a.message],
    }
    digest = hashlib.sha256(json.dumps(decided_on, sort_keys=True).encode()).hexdigest()
    return f"{release.name}.{digest[:16]}"


def _ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _same_role(a: act.Write, b: act.Write) -> bool:
    return isinstance(a, act.SetPodRole) and isinstance(b, act.SetPodRole) and a.role == b.role


def _api_message(e: ApiException) -> str:
    try:
        message = json.loads(e.body or "")["message"]
    except (ValueError, KeyError, TypeError):
        message = e.reason
    return f"{message} ({e.status})"


TLS_READ_BUFFER = 64 * 1024
"""Bytes asyncio's TLS transport reads from a socket at once (Python's default: 256 KiB).
It allocates a buffer of that size for each connection, kept for the connection's life; the
operator holds a watch per kind and namespace open at all times, and after a burst of writes
the pooled connections stay: 30 to 40 connections held 8 to 10 MiB at rest. A list page is
read in more, smaller reads (its JSON decoding costs far more)."""


def smaller_tls_reads() -> None:
    """`TLS_READ_BUFFER` for the connections made from now on (asyncio's transport reads
    `SSLProtocol.max_size`; a smaller one only splits reads)."""
    if asyncio.sslproto.SSLProtocol.max_size > TLS_READ_BUFFER:
        asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER


async def connect() -> client.ApiClient:
    smaller_tls_reads()
    configuration = client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        _load_incluster_config(client_configuration=configuration)
    else:
        await _load_kube_config(client_configuration=configuration)
    if not any(os.environ.get(v) for v in PROXY_ENV):
        # aiohttp's trust_env re-reads proxy variables and ~/.netrc in a thread on every request
        configuration.client_session_kwargs = {"trust_env": False}
    return client.ApiClient(configuration)


class Cluster:
    def __init__(self, api_client: client.ApiClient) -> None:
        self.core = rest.CoreV1(api_client)
        self.apps = rest.AppsV1(api_client)
        self.custom = rest.CustomObjects(api_client)
        self.batch = rest.BatchV1(api_client)
        self.discovery = rest.DiscoveryV1(api_client)
        self.autoscaling = rest.AutoscalingV2(api_client)
        self.policy = rest.PolicyV1(api_client)
        self.instance = os.environ.get("HOSTNAME", "greenlight")
        self.route_written: Callable[[Mapping[str, Any]], None] | None = None
        self.pod_written: Callable[[Mapping[str, Any]], None] | None = None
        """A pod as our role label write left it (indexed at once)."""
        """Told each HTTPRoute as our apply left it: indexed at once, so the next reconcile
        never mistakes the route as it was for a hand edit."""
        self.written: Callable[[Mapping[str, Any]], None] | None = None
        """Told each Release as our status write left it (the write's response): the
        indexes need not wait for its watch event to take the next step."""

    # -- reading -----------------------------------------------------------------------------
    async def service(
        self, namespace: str, name: str, release_uid: str
    ) -> snapshot.ServiceView | None:
        try:
            body = await self.core.read_namespaced_service(name, namespace)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return observe.service_view(body, release_uid)

    async def config(
        self, namespace: str, kind: snapshot.ConfigKind, name: str
    ) -> tuple[str, snapshot.ConfigView]:
        """A ConfigMap or Secret by name: (its resourceVersion, the view: a digest of its data,
        which is dropped here). Missing: ("", a view without digest)."""
        try:
            body = await self._read_config(namespace, kind, name)
        except ApiException as e:
            if e.status == 404:
                return "", snapshot.ConfigView(kind, name, None)
            raise
        rv = str((body.get("metadata") or {}).get("resourceVersion") or "")
        return rv, observe.config_view(kind, body)

    async def _read_config(
        self, namespace: str, kind: snapshot.ConfigKind, name: str
    ) -> dict[str, Any]:
        if kind == "Secret":
            body: dict[str, Any] = await self.core.read_namespaced_secret(name, namespace)
        else:
            body = await self.core.read_namespaced_config_map(name, namespace)
        return body

    async def route(self, namespace: str, name: str, release_uid: str) -> snapshot.RouteView | None:
        """An HTTPRoute by name (None: there is none, or the Gateway API is not installed)."""
        try:
            body = await self.custom.get_namespaced_custom_object(
                routing.GATEWAY_GROUP, routing.GATEWAY_VERSION, namespace, routing.HTTPROUTES, name
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return observe.route_view(body, release_uid)

    async def gateway_api_installed(self) -> bool:
        """Whether the API server serves HTTPRoutes (the Gateway API's CRDs are installed; a
        namespaced install cannot tell: it reads routes by name)."""
        gateway = (routing.GATEWAY_GROUP, routing.GATEWAY_VERSION, routing.HTTPROUTES)
        return await self._may_list(*gateway)

    async def cluster_templates_readable(self) -> bool:
        """Whether this operator may list ClusterCheckTemplates (an install for exact
        namespaces has no cluster-wide permission: it reads CheckTemplates only)."""
        return await self._may_list(api.GROUP, api.VERSION, api_templates.CLUSTER_PLURAL)

    async def _may_list(self, group: str, version: str, plural: str) -> bool:
        """A kind is served and this operator may list it cluster-wide (403, 404: no)."""
        try:
            await self.custom.list_cluster_custom_object(group, version, plural, limit=1)
        except ApiException as e:
            if e.status in (403, 404):
                return False
            raise
        return True

    # -- writing -----------------------------------------------------------------------------
    async def apply(self, release: snapshot.ReleaseView, writes: tuple[act.Write, ...]) -> None:
        """Apply in order; the first refusal stops here as an ApplyError naming the write.
        Pod labels of the same role next to each other in the order go at once: each is one
        pod's label, independent of the others (a role is given only after the roles the order
        puts before it: `live` before `draining`)."""
        i = 0
        while i < len(writes):
            batch = [writes[i]]
            while i + len(batch) < len(writes) and _same_role(batch[0], writes[i + len(batch)]):
                batch.append(writes[i + len(batch)])
            i += len(batch)
            if len(batch) == 1:
                await self._write(release, batch[0])
                continue
            outcomes = await asyncio.gather(
                *(self._write(release, a) for a in batch), return_exceptions=True
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome

    async def _write(self, release: snapshot.ReleaseView, action: act.Write) -> None:
        metrics.WRITES.labels(type(action).__name__).inc()
        try:
            await self._apply(release, action)
        except ApiException as e:
            message = _api_message(e)
            if isinstance(action, act.ApplyRoute) and e.status == 404:
                message = (
                    "the Gateway API is not installed (no gateway.networking.k8s.io/v1"
                    " HTTPRoute); install its CRDs, then restart the operator"
                )
            raise ApplyError(f"{_describe(action)}: {message}", action) from e
        except (aiohttp.ClientError, OSError, TimeoutError) as e:  # unreachable, cut, timed out
            raise ApplyError(f"{_describe(action)}: {e or type(e).__name__}", action) from e

    async def _apply(self, release: snapshot.ReleaseView, a: act.Write) -> None:
        ns = release.namespace
        match a:
            case act.CreateDeployment():
                try:
                    await self.apps.create_namespaced_deployment(ns, render.deployment(release, a))
                except ApiException as e:
                    if e.status != 409:  # already there: a previous reconcile created it
                        raise
            case act.CopyConfig():
                await self._copy_config(release, a)
            case act.ScaleDeployment():
                await self._patch_deployment(ns, a.name, {"spec": {"replicas": a.replicas}})
            case act.LabelDeployment():
                meta = {
                    "labels": {naming.LABEL_COLOR: a.color, naming.LABEL_REVISION: str(a.revision)}
                }
                await self._patch_deployment(ns, a.name, {"metadata": meta})
            case act.RestartDeployment():
                await self._patch_deployment(ns, a.name, render.restart(a))
            case act.DeleteDeployment():
                try:
                    await self.apps.delete_namespaced_deployment(a.name, ns)
                except ApiException as e:
                    if e.status != 404:
                        raise
            case act.AdoptWorkload():
                labels = {naming.LABEL_WORKLOAD_OF: release.name}
                notes = {naming.ANNOTATION_ORIGINAL_REPLICAS: str(a.replicas)}
                await self._patch_workload(
                    ns, a.name, {"metadata": {"labels": labels, "annotations": notes}}
                )
            case act.ScaleWorkload():
                await self.scale_workload(ns, a)
            case act.ApplyService():
                await self._apply_service(release, a)
            case act.ApplyBackend():
                await self.core.patch_namespaced_service(
                    a.name, ns, render.backend(release, a),
                    field_manager=naming.MANAGER, force=True, _content_type=APPLY,
                )  # fmt: skip
            case act.ApplyRoute():
                # (a create, never an apply: it fails on a route someone else created meanwhile;
                # the client does not decode an apply's answer: read it as it comes)
                gvp = (routing.GATEWAY_GROUP, routing.GATEWAY_VERSION, ns, routing.HTTPROUTES)
                c, body = self.custom, render.route(release, a)
                if a.create:
                    response = await c.create_namespaced_custom_object_without_preload_content(
                        *gvp, body, field_manager=naming.MANAGER
                    )
                else:
                    response = await c.patch_namespaced_custom_object_without_preload_content(
                        *gvp, a.name, body,
                        field_manager=naming.MANAGER, force=True, _content_type=APPLY,
                    )  # fmt: skip
                raw = await response.read()
                if response.status >= 300:
                    raise ApiException(status=response.status, reason=raw.decode()[:1000])
                written = json.loads(raw)
                if self.route_written is not None:
                    self.route_written(written)
            case act.SetPodRole():
                await self._set_role(ns, a)
            case act.RestoreTemplate():
                undo = [{"op": "replace", "path": "/spec/template", "value": a.template}]
                await self.custom.patch_namespaced_custom_object(
                    api.GROUP, api.VERSION, ns, api.PLURAL, release.name, undo,
                    _content_type=JSON_PATCH,
                )  # fmt: skip
            case act.ClearCommands():
                patch = {"metadata": {"annotations": dict.fromkeys(a.keys)}}
                await self.custom.patch_namespaced_custom_object(
                    api.GROUP, api.VERSION, ns, api.PLURAL, release.name, patch,
                    _content_type=MERGE,
                )  # fmt: skip

    async def _copy_config(self, release: snapshot.ReleaseView, a: act.CopyConfig) -> None:
        """Copy the source's data, if it still has the digest the revision was hashed with
        (else the next reconcile releases its new data as a new revision), owned by the
        revision's Deployment (created before it in the same plan). 409: copied already."""
        ns = release.namespace
        source = await self._read_config(ns, a.kind, a.source)
        if observe.config_view(a.kind, source).digest != a.digest:
            raise ApplyError(
                f"copy {a.kind} {a.source}: it changed since this reconcile read it; the next"
                " one releases it as a new revision",
                a,
            )
        owner = await self.apps.read_namespaced_deployment(a.deployment, ns)
        uid = owner["metadata"]["uid"]
        body = render.config_copy(release, a, source, str(uid))
        del source  # (a Secret's data: never kept, logged or put in a message)
        try:
            if a.kind == "Secret":
                await self.core.create_namespaced_secret(ns, body)
            else:
                await self.core.create_namespaced_config_map(ns, body)
        except ApiException as e:
            if e.status != 409:
                raise

    async def _patch_deployment(self, ns: str, name: str, patch: dict[str, Any]) -> None:
        try:
            await self.apps.patch_namespaced_deployment(name, ns, patch, _content_type=MERGE)
        except ApiException as e:
            if e.status != 404:  # gone: the next reconcile sees it and decides again
                raise

    async def _patch_workload(self, ns: str, name: str, patch: dict[str, Any]) -> None:
        """spec.workloadRef's Deployment, as field manager greenlight (its managedFields then
        say who scaled it after us)."""
        try:
            await self.apps.patch_namespaced_deployment(
                name, ns, patch, field_manager=naming.MANAGER, _content_type=MERGE
            )
        except ApiException as e:
            if e.status != 404:  # gone: the next reconcile sees it and decides again
                raise

    async def scale_workload(self, ns: str, a: act.ScaleWorkload) -> None:
        notes = {naming.ANNOTATION_SCALED_DOWN: "true" if a.drained else None}
        patch = {"metadata": {"annotations": notes}, "spec": {"replicas": a.replicas}}
        await self._patch_workload(ns, a.name, patch)

    async def release_workload(self, ns: str, name: str) -> None:
        """Our label and records off the adopted Deployment (it is its renderer's again)."""
        notes = dict.fromkeys((naming.ANNOTATION_ORIGINAL_REPLICAS, naming.ANNOTATION_SCALED_DOWN))
        patch = {"metadata": {"labels": {naming.LABEL_WORKLOAD_OF: None}, "annotations": notes}}
        await self._patch_workload(ns, name, patch)

    async def workload(self, namespace: str, name: str) -> snapshot.WorkloadView | None:
        """spec.workloadRef's Deployment by name (not adopted yet: not in the index). Read
        as the API server sends it, as its watch events are: a pod template field the client's
        models do not know would otherwise change the template hash once it is indexed."""
        response = await self.apps.read_namespaced_deployment_without_preload_content(
            name, namespace
        )
        raw = await response.read()
        if response.status == 404:
            return None
        if response.status >= 300:
            raise ApiException(status=response.status, reason=raw.decode()[:1000])
        view = observe.workload_view(json.loads(raw))
        if view.adopted_by is not None:
            return view
        # not adopted yet: what still points at it (an Event at adoption says so)
        hpas, pdbs = await asyncio.gather(
            self.autoscaling.list_namespaced_horizontal_pod_autoscaler(namespace),
            self.policy.list_namespaced_pod_disruption_budget(namespace),
        )
        labels = (view.template.get("metadata") or {}).get("labels") or {}
        return dataclasses.replace(
            view,
            autoscalers=observe.autoscalers_of(hpas["items"], name),
            budgets=observe.budgets_of(pdbs["items"], labels),
        )

    async def _apply_service(self, release: snapshot.ReleaseView, a: act.ApplyService) -> None:
        """Server-side apply of the fields we own (selector; ports and type unless adopted):
        anyone else's fields stay, and a hand edit of ours is taken back."""
        await self.core.patch_namespaced_service(
            a.name, release.namespace, render.service(release, a),
            field_manager=naming.MANAGER, force=True, _content_type=APPLY,
        )  # fmt: skip

    async def create_job(self, release: snapshot.ReleaseView, a: act.CreateJob) -> str | None:
        """Create a check's Job (409: it exists, fine). A refusal is returned, not raised: it
        counts as an error of that check (named), never as a pass."""
        try:
            await self.batch.create_namespaced_job(release.namespace, render.job(release, a))
        except ApiException as e:
            if e.status == 409:
                return None
            if e.status is not None and 400 <= e.status < 500:
                return f"Job {a.name} refused: {_api_message(e)}"
            raise
        return None

    # -- a deleted Release's adopted Service (engine/finalize.py) ----------------------------
    async def add_finalizer(self, release: snapshot.ReleaseView) -> None:
        """naming.FINALIZER on the Release, by server-side apply: finalizers are a set, so
        anyone else's stay. Raises ApplyError (reported as a failed write)."""
        body = {
            "apiVersion": f"{api.GROUP}/{api.VERSION}",
            "kind": api.KIND,
            "metadata": {"name": release.name, "finalizers": [naming.FINALIZER]},
        }
        try:
            await self.custom.patch_namespaced_custom_object(
                api.GROUP, api.VERSION, release.namespace, api.PLURAL, release.name, body,
                field_manager=naming.MANAGER, force=True, _content_type=APPLY,
            )  # fmt: skip
        except ApiException as e:
            raise ApplyError(f"add finalizer {naming.FINALIZER}: {_api_message(e)}") from e
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise ApplyError(f"add finalizer {naming.FINALIZER}: {e or type(e).__name__}") from e

    async def remove_finalizer(self, namespace: str, name: str, finalizers: Sequence[str]) -> int:
        """Release the Release (a JSON patch: unlike an apply, it never creates one that is
        gone). Returns its new resourceVersion (0: gone); a stale list fails its test (422)."""
        i = list(finalizers).index(naming.FINALIZER)
        path = f"/metadata/finalizers/{i}"
        patch = [
            {"op": "test", "path": path, "value": naming.FINALIZER},
            {"op": "remove", "path": path},
        ]
        try:
            result = await self.custom.patch_namespaced_custom_object(
                api.GROUP, api.VERSION, namespace, api.PLURAL, name, patch,
                _content_type=JSON_PATCH,
            )  # fmt: skip
        except ApiException as e:
            if e.status == 404:
                return 0
            raise
        return _resource_version(result)

    async def restore_service(
        self, namespace: str, svc: snapshot.ServiceView, selector: dict[str, str]
    ) -> None:
        """The adopted Service's original selector back, Greenlight's label and record off it,
        then Greenlight's entries off its managedFields: it owns none of the Service's fields
        any more (an update that changes only managedFields adds no entry)."""
        patch = {
            "metadata": {
                "labels": {naming.LABEL_RELEASE: None},
                "annotations": {naming.ANNOTATION_ADOPTED_SELECTOR: None},
            },
            "spec": {"selector": {**dict.fromkeys(svc.selector), **selector} or None},
        }
        try:
            restored = await self.core.patch_namespaced_service(
                svc.name, namespace, patch, field_manager=naming.MANAGER, _content_type=MERGE
            )
            meta = restored["metadata"]
            managers = [m.get("manager") for m in meta.get("managedFields") or []]
            ours = [i for i, m in enumerate(managers) if m == naming.MANAGER]
            if ours and len(ours) < len(managers):  # (emptied, the list would be ignored)
                path = "/metadata/managedFields/{}".format
                drop = [
                    op
                    for i in reversed(ours)
                    for op in (
                        {"op": "test", "path": path(i) + "/manager", "value": naming.MANAGER},
                        {"op": "remove", "path": path(i)},
                    )
                ]
                await self.core.patch_namespaced_service(
                    svc.name, namespace, drop, field_manager=naming.MANAGER,
                    _content_type=JSON_PATCH,
                )  # fmt: skip
        except ApiException as e:
            if e.status != 404:
                raise

    async def serving(
        self, namespace: str, release: str, svc: snapshot.ServiceView | None
    ) -> tuple[int, int]:
        """What serves an adopted Service besides the Release's own pods: (Ready pods its
        recorded selector selects, ready endpoints in its EndpointSlices)."""
        if svc is None or svc.owned:
            return 0, 0
        ours = await self._pods(namespace, {naming.LABEL_RELEASE: release})
        names = {p["metadata"]["name"] for p in ours}
        pods = 0
        if svc.adopted_selector:
            selected = await self._pods(namespace, svc.adopted_selector)
            pods = sum(1 for p in selected if p["metadata"]["name"] not in names and _ready(p))
        found = await self.discovery.list_namespaced_endpoint_slice(
            namespace, label_selector=f"kubernetes.io/service-name={svc.name}"
        )
        slices = found["items"]
        endpoints = sum(
            1
            for s in slices
            for e in s.get("endpoints") or []
            if (e.get("conditions") or {}).get("ready") is not False  # unset: ready
            and (e.get("targetRef") or {}).get("name") not in names
        )
        return pods, endpoints

    async def _pods(self, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        found = await self.core.list_namespaced_pod(namespace, label_selector=selector)
        items: list[dict[str, Any]] = found["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    # -- groups ------------------------------------------------------------------------------
    async def annotate_release(self, namespace: str, a: act.AnnotateRelease) -> None:
        patch = {"metadata": {"annotations": {a.key: a.value}}}
        await self.custom.patch_namespaced_custom_object(
            api.GROUP, api.VERSION, namespace, api.PLURAL, a.release, patch, _content_type=MERGE
        )

    async def clear_group_commands(self, g: group.GroupView, keys: tuple[str, ...]) -> None:
        patch = {"metadata": {"annotations": dict.fromkeys(keys)}}
        await self.custom.patch_namespaced_custom_object(
            api.GROUP, api.VERSION, g.namespace, api_group.PLURAL, g.name, patch,
            _content_type=MERGE,
        )  # fmt: skip

    async def patch_group_status(self, g: group.GroupView, status: api_group.GroupStatus) -> int:
        body = {"status": status.model_dump(by_alias=True, mode="json")}
        try:
            result = await self.custom.patch_namespaced_custom_object_status(
                api.GROUP, api.VERSION, g.namespace, api_group.PLURAL, g.name, body,
                _content_type=MERGE,
            )  # fmt: skip
        except ApiException as e:
            if e.status == 404:
                return 0
            raise
        return _resource_version(result)

    async def _set_role(self, namespace: str, a: act.SetPodRole) -> None:
        """Label a pod with its role; one gone meanwhile needs none (its answer is read raw:
        a decoded Pod model costs more than the write)."""
        body = {"metadata": {"labels": {naming.LABEL_ROLE: a.role}}}
        response = await self.core.patch_namespaced_pod_without_preload_content(
            a.pod, namespace, body, _content_type=MERGE
        )
        raw = await response.read()
        if response.status == 404:
            return
        if response.status >= 300:
            raise ApiException(status=response.status, reason=raw.decode()[:1000])
        if self.pod_written is not None:
            self.pod_written({"metadata": json.loads(raw)["metadata"]})

    async def patch_status(self, release: snapshot.ReleaseView, status: api.ReleaseStatus) -> int:
        """Write the whole status; returns the Release's new resourceVersion (0: it is gone)."""
        metrics.WRITES.labels("ReleaseStatus").inc()
        body = {"status": status.model_dump(by_alias=True, mode="json")}
        return await self._patch_status(release.namespace, release.name, body)

    async def patch_invalid(self, meta: Mapping[str, Any], status: api.ReleaseStatus) -> int:
        """Report an invalid spec without touching history or the live revision."""
        fields = status.model_dump(
            by_alias=True,
            mode="json",
            include={"phase", "message", "observed_generation", "conditions"},
        )
        return await self._patch_status(meta["namespace"], meta["name"], {"status": fields})

    async def _patch_status(self, namespace: str, name: str, body: dict[str, Any]) -> int:
        try:
            result = await self.custom.patch_namespaced_custom_object_status(
                api.GROUP, api.VERSION, namespace, api.PLURAL, name, body,
                _content_type=MERGE,
            )  # fmt: skip
        except ApiException as e:
            if e.status == 404:  # deleted meanwhile
                return 0
            raise
        if self.written is not None:
            self.written(result)
        return _resource_version(result)

    async def event(
        self, release: snapshot.ReleaseView | group.GroupView, a: act.RecordEvent
    ) -> None:
        """Record the Event once: its name is a digest of the decision (`event_name`), so a
        decision taken again on the same state (a new leader redoing the step a killed one
        did before its status write, or a retry after a failed status write) posts the same
        name and the API server refuses it (409 AlreadyExists, ignored)."""
        now = datetime.datetime.now(datetime.UTC)
        kind = api.KIND if isinstance(release, snapshot.ReleaseView) else api_group.KIND
        body = {
            "metadata": {"name": event_name(release, a)},
            "involvedObject": {
                "apiVersion": f"{api.GROUP}/{api.VERSION}",
                "kind": kind,
                "name": release.name,
                "namespace": release.namespace,
                "uid": release.uid,
            },
            "reason": a.reason,
            "message": a.message[:1024],
            "type": a.type,
            "firstTimestamp": now.isoformat(),
            "lastTimestamp": now.isoformat(),
            "count": 1,
            "source": {"component": "greenlight"},
            "reportingComponent": "greenlight.dev/operator",
            "reportingInstance": self.instance,
        }
        try:
            await self.core.create_namespaced_event(release.namespace, body)
        except ApiException as e:  # events are best effort; never fail a reconcile on them
            names = {"namespace": release.namespace, "release": release.name}
            if e.status == 409:  # this decision's Event is already recorded
                log.debug("event %s already recorded", a.reason, extra=names)
                return
            log.warning("event %s not recorded: %s", a.reason, e.reason, extra=names)
