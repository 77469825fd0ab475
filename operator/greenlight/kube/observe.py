"""Raw API bodies -> the engine's snapshot types. Trimmed: only what decisions need."""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar, cast

import pydantic

from greenlight.api import group as api_group
from greenlight.api import release as api
from greenlight.api import templates as api_templates
from greenlight.engine import config, group, naming, snapshot

Spec = TypeVar("Spec", bound=pydantic.BaseModel)
Status = TypeVar("Status", bound=pydantic.BaseModel)


def deployment_view(body: Mapping[str, Any]) -> snapshot.DeploymentView | None:
    meta = body.get("metadata") or {}
    labels = meta.get("labels") or {}
    template_hash = labels.get(naming.LABEL_HASH)
    if not template_hash:
        return None
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    pod = ((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}
    revision = labels.get(naming.LABEL_REVISION)
    color = labels.get(naming.LABEL_COLOR)
    return snapshot.DeploymentView(
        name=meta["name"],
        template_hash=template_hash,
        uid=str(meta.get("uid") or ""),
        revision=int(revision) if revision and revision.isdigit() else None,
        color=cast(api.Color, color) if color in ("blue", "green") else None,
        spec_replicas=int(spec.get("replicas", 1)),
        generation=int(meta.get("generation") or 1),
        observed_generation=int(status.get("observedGeneration") or 0),
        replicas=int(status.get("replicas") or 0),
        updated_replicas=int(status.get("updatedReplicas") or 0),
        ready_replicas=int(status.get("readyReplicas") or 0),
        available_replicas=int(status.get("availableReplicas") or 0),
        template=(meta.get("annotations") or {}).get(naming.ANNOTATION_TEMPLATE),
        restarted_at=pod.get(naming.ANNOTATION_RESTARTED_AT),
        config=(meta.get("annotations") or {}).get(naming.ANNOTATION_CONFIG),
        progressed_at=next(
            (
                _time(c.get("lastUpdateTime"))
                for c in status.get("conditions") or []
                if c.get("type") == "Progressing" and c.get("status") == "True"
            ),
            None,
        ),
    )


def workload_view(body: Mapping[str, Any]) -> snapshot.WorkloadView:
    """spec.workloadRef's Deployment: its pod template, replicas and what we recorded on it."""
    meta = body.get("metadata") or {}
    labels = meta.get("labels") or {}
    notes = meta.get("annotations") or {}
    spec = body.get("spec") or {}
    recorded = str(notes.get(naming.ANNOTATION_ORIGINAL_REPLICAS) or "")
    return snapshot.WorkloadView(
        name=meta["name"],
        template=dict(spec.get("template") or {}),
        spec_replicas=int(spec.get("replicas", 1)),
        available_replicas=int((body.get("status") or {}).get("availableReplicas") or 0),
        adopted_by=labels.get(naming.LABEL_WORKLOAD_OF),
        original_replicas=int(recorded) if recorded.isdigit() else None,
        scaled=naming.ANNOTATION_SCALED_DOWN in notes,
        replicas_manager=replicas_manager(meta),
    )


def autoscalers_of(hpas: list[Mapping[str, Any]], deployment: str) -> tuple[str, ...]:
    """The HorizontalPodAutoscalers whose scaleTargetRef is Deployment `deployment`."""
    return tuple(
        sorted(
            h["metadata"]["name"]
            for h in hpas
            if ((h.get("spec") or {}).get("scaleTargetRef") or {}).get("kind") == "Deployment"
            and h["spec"]["scaleTargetRef"].get("name") == deployment
        )
    )


def budgets_of(pdbs: list[Mapping[str, Any]], labels: Mapping[str, str]) -> tuple[str, ...]:
    """The PodDisruptionBudgets whose selector matches pods carrying `labels` (an empty
    selector matches every pod of the namespace, as policy/v1 says)."""
    return tuple(sorted(p["metadata"]["name"] for p in pdbs if selects(
        (p.get("spec") or {}).get("selector") or {}, labels)))  # fmt: skip


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A label selector (matchLabels, matchExpressions) matches `labels`."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def replicas_manager(meta: Mapping[str, Any]) -> str | None:
    """The field manager that last wrote spec.replicas (its managedFields entry; `kubectl
    scale` and an HPA write it through the scale subresource, said so)."""
    latest: tuple[str, str] | None = None
    for m in meta.get("managedFields") or []:
        fields = ((m.get("fieldsV1") or {}).get("f:spec")) or {}
        if "f:replicas" not in fields:
            continue
        name = str(m.get("manager") or "unknown")
        if m.get("subresource"):
            name += f" (subresource {m['subresource']})"
        when = str(m.get("time") or "")
        if latest is None or when >= latest[0]:
            latest = (when, name)
    return latest[1] if latest else None


def job_view(body: Mapping[str, Any]) -> snapshot.JobView | None:
    """A check's Job (labelled by render.job), or None for any other Job."""
    meta = body.get("metadata") or {}
    labels = meta.get("labels") or {}
    check, stage = labels.get(naming.LABEL_CHECK), labels.get(naming.LABEL_STAGE)
    template_hash = labels.get(naming.LABEL_HASH)
    if not (check and stage and template_hash):
        return None
    status = body.get("status") or {}
    conditions = {
        c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"
    }
    failed = "Failed" in conditions
    succeeded = "Complete" in conditions or "SuccessCriteriaMet" in conditions
    finished = status.get("completionTime") or (conditions.get("Failed") or {}).get(
        "lastTransitionTime"
    )
    return snapshot.JobView(
        name=meta["name"],
        check=check,
        stage=stage,
        template_hash=template_hash,
        created_at=_time(meta.get("creationTimestamp")) or now(),
        succeeded=succeeded and not failed,
        failed=failed,
        finished_at=_time(finished),
    )


def _time(value: Any) -> datetime.datetime | None:
    if isinstance(value, datetime.datetime):
        return value
    if not value:
        return None
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def service_view(body: Mapping[str, Any], release_uid: str) -> snapshot.ServiceView:
    """From a Service body (a watch event's, or a GET's serialized)."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    return snapshot.ServiceView(
        name=meta["name"],
        selector=dict(spec.get("selector") or {}),
        owned=any(o.get("uid") == release_uid for o in meta.get("ownerReferences") or []),
        ports=tuple(
            {
                "name": p.get("name"),
                "port": p.get("port"),
                "targetPort": p.get("targetPort", p.get("port")),
                "protocol": p.get("protocol", "TCP"),
            }
            for p in spec.get("ports") or []
        ),
        type=spec.get("type", "ClusterIP"),
        adopted_selector=_adopted_selector(meta),
    )


def _adopted_selector(meta: Mapping[str, Any]) -> dict[str, str] | None:
    """The selector recorded when the Service was adopted (None: none, or unreadable)."""
    recorded = (meta.get("annotations") or {}).get(naming.ANNOTATION_ADOPTED_SELECTOR)
    try:
        selector = json.loads(recorded) if recorded else None
    except ValueError:
        return None
    if not isinstance(selector, dict):
        return None
    return {str(k): str(v) for k, v in selector.items()}


def service_record(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the Service index keeps: only the fields `service_view` reads."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    return {
        "metadata": {
            "name": meta.get("name"),
            "ownerReferences": [{"uid": o.get("uid")} for o in meta.get("ownerReferences") or []],
            "annotations": {
                k: v
                for k, v in (meta.get("annotations") or {}).items()
                if k == naming.ANNOTATION_ADOPTED_SELECTOR
            },
        },
        "spec": {k: spec[k] for k in ("selector", "ports", "type") if k in spec},
    }


def ready_endpoints(body: Mapping[str, Any]) -> int:
    """An EndpointSlice's ready endpoints (`ready` unset counts as ready, as the API says)."""
    return sum(
        1
        for e in body.get("endpoints") or []
        if (e.get("conditions") or {}).get("ready") is not False
    )


def route_record(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the HTTPRoute index keeps: only the fields `route_view` reads."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    parents = [
        {
            "parentRef": p.get("parentRef") or {},
            "conditions": [
                {k: c.get(k) for k in ("type", "status", "observedGeneration", "message")}
                for c in p.get("conditions") or []
            ],
        }
        for p in (body.get("status") or {}).get("parents") or []
    ]
    return {
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "generation": meta.get("generation"),
            "resourceVersion": meta.get("resourceVersion"),
            "ownerReferences": [{"uid": o.get("uid")} for o in meta.get("ownerReferences") or []],
        },
        "spec": {k: spec[k] for k in ("parentRefs", "hostnames", "rules") if k in spec},
        "status": {"parents": parents},
    }


def route_stub(body: Mapping[str, Any]) -> dict[str, Any]:
    """An HTTPRoute that is not a Release's: only what says its name is taken (and by whom)."""
    meta = body.get("metadata") or {}
    return {
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "resourceVersion": meta.get("resourceVersion"),
            "ownerReferences": [{"uid": o.get("uid")} for o in meta.get("ownerReferences") or []],
        }
    }


def route_view(body: Mapping[str, Any], release_uid: str) -> snapshot.RouteView:
    """An HTTPRoute: accepted when every parentRef has a status for the current generation
    saying Accepted and ResolvedRefs."""
    meta = body.get("metadata") or {}
    spec = dict(body.get("spec") or {})
    generation = meta.get("generation")
    ns = meta.get("namespace")
    parents = (body.get("status") or {}).get("parents") or []
    message = ""
    for ref in spec.get("parentRefs") or []:
        found = next(
            (
                p
                for p in parents
                if (p.get("parentRef") or {}).get("name") == ref.get("name")
                and (p.get("parentRef") or {}).get("namespace", ns) == ref.get("namespace", ns)
            ),
            None,
        )
        conditions = {c.get("type"): c for c in (found or {}).get("conditions") or []}
        for kind in ("Accepted", "ResolvedRefs"):
            c = conditions.get(kind)
            if c is None or c.get("observedGeneration") != generation:
                message = message or f"waiting for Gateway {ref.get('name')} to accept the route"
            elif c.get("status") != "True":
                message = message or f"Gateway {ref.get('name')}: {kind}: {c.get('message', '')}"
    return snapshot.RouteView(
        name=meta["name"],
        owned=any(o.get("uid") == release_uid for o in meta.get("ownerReferences") or []),
        spec={k: spec[k] for k in ("parentRefs", "hostnames", "rules") if k in spec},
        resource_version=str(meta.get("resourceVersion") or ""),
        accepted=not message,
        message=message,
    )


def template_view(kind: str, body: Mapping[str, Any]) -> snapshot.TemplateView:
    """A CheckTemplate or ClusterCheckTemplate; one the API server took but the model refuses
    (its check names an undeclared argument, ...) says why."""
    meta = body["metadata"]
    generation = int(meta.get("generation") or 0)
    try:
        spec = api_templates.CheckTemplateSpec.model_validate(body.get("spec") or {})
    except pydantic.ValidationError as e:
        error = "; ".join(_field_error(err) for err in e.errors())
        return snapshot.TemplateView(kind, meta["name"], generation, None, error)
    return snapshot.TemplateView(kind, meta["name"], generation, spec)


def release_view(body: Mapping[str, Any]) -> snapshot.ReleaseView | str:
    """The Release, or a message naming the invalid field (the CRD schema catches most)."""
    meta = body.get("metadata") or {}
    parsed = _parse(body, api.ReleaseSpec, api.ReleaseStatus)
    if isinstance(parsed, str):
        return parsed
    spec, status = parsed
    return snapshot.ReleaseView(
        name=meta["name"],
        namespace=meta["namespace"],
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation") or 1),
        spec=spec,
        status=status,
        annotations={
            k: v
            for k, v in (meta.get("annotations") or {}).items()
            if k in naming.COMMANDS or k == naming.ANNOTATION_DETACH
        },
        deleting=_time(meta.get("deletionTimestamp")),
        finalizers=tuple(meta.get("finalizers") or ()),
    )


def _parse(
    body: Mapping[str, Any], spec_model: type[Spec], status_model: type[Status]
) -> tuple[Spec, Status] | str:
    """The spec, or a message naming its invalid fields; an unreadable status starts over
    from the world (an empty one)."""
    try:
        spec = spec_model.model_validate(body.get("spec") or {})
    except pydantic.ValidationError as e:
        return "; ".join(_field_error(err) for err in e.errors())
    try:
        status = status_model.model_validate(body.get("status") or {})
    except pydantic.ValidationError:
        status = status_model()
    return spec, status


def _field_error(err: Any) -> str:
    """`spec.strategy.blueGreen.prePromotion[0].successCondition: ...`, as the API server
    names a field."""
    path = "spec"
    for part in err["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in ("int", "str") and not str(part).startswith(_VALIDATOR_STEPS):
            path += f".{part}"  # (pydantic also names its validator steps: not fields)
    return f"{path}: {err['msg']}"


_VALIDATOR_STEPS = ("function-after[", "function-before[", "list[", "dict[")


@dataclasses.dataclass(frozen=True)
class ReplicaSetView:
    """A Deployment's ReplicaSet: its pods' availability, one controller hop before the
    Deployment's own status says the same (kept small: it lives in an index)."""

    deployment: str
    spec_replicas: int
    generation: int
    observed_generation: int
    replicas: int
    ready_replicas: int
    available_replicas: int


def replicaset_view(body: Mapping[str, Any]) -> ReplicaSetView | None:
    """A ReplicaSet controlled by a Deployment, or None."""
    meta = body.get("metadata") or {}
    owner = next(
        (o for o in meta.get("ownerReferences") or []
         if o.get("kind") == "Deployment" and o.get("controller")),
        None,
    )  # fmt: skip
    if owner is None:
        return None
    status = body.get("status") or {}
    return ReplicaSetView(
        deployment=owner["name"],
        spec_replicas=int((body.get("spec") or {}).get("replicas", 1)),
        generation=int(meta.get("generation") or 1),
        observed_generation=int(status.get("observedGeneration") or 0),
        replicas=int(status.get("replicas") or 0),
        ready_replicas=int(status.get("readyReplicas") or 0),
        available_replicas=int(status.get("availableReplicas") or 0),
    )


def deployments_of(
    views: Iterable[snapshot.DeploymentView], replicasets: Iterable[ReplicaSetView] = ()
) -> tuple[snapshot.DeploymentView, ...]:
    """A Release's Deployments by name, each with its pod counts from its ReplicaSet when that
    is current: the Deployment controller has seen the Deployment's spec (so it has set the
    ReplicaSet's replicas), the ReplicaSet controller has seen that, and the Deployment has
    only this ReplicaSet (every pod is up to date; a restart makes a second one). The
    ReplicaSet's status is what the Deployment's own status is later copied from, one
    controller hop (hundreds of milliseconds under a burst) earlier."""
    owned: dict[str, list[ReplicaSetView]] = {}
    for r in replicasets:
        owned.setdefault(r.deployment, []).append(r)
    found = []
    for d in views:
        sets = owned.get(d.name, [])
        if len(sets) == 1 and d.observed_generation >= d.generation:
            r = sets[0]
            if r.observed_generation >= r.generation and r.spec_replicas == d.spec_replicas:
                d = dataclasses.replace(
                    d,
                    replicas=r.replicas,
                    updated_replicas=r.replicas,
                    ready_replicas=r.ready_replicas,
                    available_replicas=r.available_replicas,
                )
        found.append(d)
    return tuple(sorted(found, key=lambda d: d.name))


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def group_view(body: Mapping[str, Any]) -> group.GroupView | str:
    """A ReleaseGroup, or a message naming the invalid field."""
    meta = body.get("metadata") or {}
    parsed = _parse(body, api_group.GroupSpec, api_group.GroupStatus)
    if isinstance(parsed, str):
        return parsed
    spec, status = parsed
    return group.GroupView(
        name=meta["name"],
        namespace=meta["namespace"],
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation") or 1),
        spec=spec,
        status=status,
        annotations={
            k: v for k, v in (meta.get("annotations") or {}).items() if k in naming.COMMANDS
        },
        resource_version=int(meta.get("resourceVersion") or 0),
    )


def conditions(body: Mapping[str, Any]) -> list[api.Condition]:
    """The readable conditions of any object's status (unreadable ones are dropped)."""
    out = []
    for c in (body.get("status") or {}).get("conditions") or []:
        try:
            out.append(api.Condition.model_validate(c))
        except pydantic.ValidationError:
            continue
    return out


def config_view(kind: snapshot.ConfigKind, body: Mapping[str, Any]) -> snapshot.ConfigView:
    """A ConfigMap or Secret as the engine sees it: a digest of its data, never the data."""
    meta = body.get("metadata") or {}
    shared = (meta.get("annotations") or {}).get(naming.ANNOTATION_SHARED, "") == "true"
    digest = config.digest(body.get("data"), body.get("binaryData"))
    return snapshot.ConfigView(kind, str(meta.get("name") or ""), digest, shared)


def is_copy(meta: Mapping[str, Any]) -> str | None:
    """A revision's copy of a ConfigMap or Secret: the Release it belongs to (None: not one)."""
    labels = meta.get("labels") or {}
    release = labels.get(naming.LABEL_RELEASE)
    return str(release) if release and naming.LABEL_HASH in labels else None
