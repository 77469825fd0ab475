"""Manifests for the objects Greenlight owns."""

from __future__ import annotations

import copy
import json
from typing import Any

from greenlight.api import release as api
from greenlight.api import traffic as routing
from greenlight.engine import actions as act
from greenlight.engine import naming, snapshot


def owner_reference(release: snapshot.ReleaseView) -> dict[str, Any]:
    return {
        "apiVersion": f"{api.GROUP}/{api.VERSION}",
        "kind": api.KIND,
        "name": release.name,
        "uid": release.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def deployment(release: snapshot.ReleaseView, a: act.CreateDeployment) -> dict[str, Any]:
    labels = {
        **naming.pod_labels(release.name, a.template_hash),
        naming.LABEL_COLOR: a.color,
        naming.LABEL_REVISION: str(a.revision),
        naming.LABEL_MANAGED_BY: naming.MANAGER,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": a.name,
            "namespace": release.namespace,
            "labels": labels,
            "annotations": {
                naming.ANNOTATION_TEMPLATE: json.dumps(a.user_template, sort_keys=True),
                **({naming.ANNOTATION_CONFIG: a.config} if a.config else {}),
            },
            "ownerReferences": [owner_reference(release)],
        },
        "spec": {
            "replicas": a.replicas,
            "selector": {"matchLabels": naming.pod_labels(release.name, a.template_hash)},
            "template": a.template,
            # Each revision has its own Deployment: its pods change in place only for a
            # restart (spec.restartAt), each replaced by a new one that is available first.
            "strategy": ROLLING_UPDATE,
            "progressDeadlineSeconds": release.spec.progress_deadline_seconds,
            "revisionHistoryLimit": 0,
        },
    }


ROLLING_UPDATE: dict[str, Any] = {
    "type": "RollingUpdate",
    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
}
"""A revision's Deployment replaces its pods (a restart) without one fewer available: a new
pod first (at least one at a time: a surge rounds up), then an old one goes."""


def config_copy(
    release: snapshot.ReleaseView, a: act.CopyConfig, source: dict[str, Any], owner_uid: str
) -> dict[str, Any]:
    """A revision's copy of a ConfigMap or Secret: its data (and a Secret's type), immutable,
    owned by the revision's Deployment so that the garbage collector takes it with it."""
    owner = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": a.deployment,
        "uid": owner_uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": a.kind,
        "metadata": {
            "name": a.name,
            "namespace": release.namespace,
            "labels": {
                **naming.pod_labels(release.name, a.template_hash),
                naming.LABEL_MANAGED_BY: naming.MANAGER,
            },
            "annotations": {naming.ANNOTATION_COPY_OF: a.source},
            "ownerReferences": [owner],
        },
        "immutable": True,
    }
    for field in ("data", "binaryData", "type"):
        if source.get(field):
            body[field] = source[field]
    return body


def restart(a: act.RestartDeployment) -> dict[str, Any]:
    """The merge patch of a restart: the annotation on the pod template, and the rolling
    update that keeps every pod available (for a Deployment created before it was rendered)."""
    return {
        "spec": {
            "strategy": ROLLING_UPDATE,
            "template": {"metadata": {"annotations": {naming.ANNOTATION_RESTARTED_AT: a.at}}},
        }
    }


def service(release: snapshot.ReleaseView, a: act.ApplyService) -> dict[str, Any]:
    """The Service fields Greenlight owns, for server-side apply. An adopted Service without
    ports in the spec (`a.type` empty) gets only the selector and our release label."""
    labels = {naming.LABEL_RELEASE: release.name}
    spec: dict[str, Any] = {"selector": a.selector}
    metadata: dict[str, Any] = {"name": a.name, "namespace": release.namespace, "labels": labels}
    if a.type:
        spec["type"] = a.type
        spec["ports"] = [_port(p) for p in a.ports]
    if a.owned:
        labels |= {naming.LABEL_MANAGED_BY: naming.MANAGER, naming.LABEL_ROLE: a.role}
        metadata["ownerReferences"] = [owner_reference(release)]
    elif a.original is not None:  # in every apply: an applied field left out would be dropped
        record = json.dumps(a.original, sort_keys=True)
        metadata["annotations"] = {naming.ANNOTATION_ADOPTED_SELECTOR: record}
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


def backend(release: snapshot.ReleaseView, a: act.ApplyBackend) -> dict[str, Any]:
    """A revision's backend Service (spec.traffic), owned by its Deployment."""
    owner = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": a.name,
        "uid": a.deployment_uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    labels = {
        naming.LABEL_RELEASE: release.name,
        naming.LABEL_MANAGED_BY: naming.MANAGER,
        naming.LABEL_ROLE: naming.ROLE_BACKEND,
    }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": a.name,
            "namespace": release.namespace,
            "labels": labels,
            "ownerReferences": [owner],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": a.selector,
            "ports": [_port(p) for p in a.ports],
        },
    }


def _port(p: api.ServicePort) -> dict[str, Any]:
    return p.model_dump(by_alias=True, exclude_none=True) | {"name": p.name or f"port-{p.port}"}


def route(release: snapshot.ReleaseView, a: act.ApplyRoute) -> dict[str, Any]:
    """The whole HTTPRoute, owned by the Release, for server-side apply."""
    metadata: dict[str, Any] = {
        "name": a.name,
        "namespace": release.namespace,
        "labels": {naming.LABEL_RELEASE: release.name, naming.LABEL_MANAGED_BY: naming.MANAGER},
        "ownerReferences": [owner_reference(release)],
    }
    if a.resource_version is not None:  # adopting: only over the version the decision saw
        metadata["resourceVersion"] = a.resource_version
    return {
        "apiVersion": f"{routing.GATEWAY_GROUP}/{routing.GATEWAY_VERSION}",
        "kind": "HTTPRoute",
        "metadata": metadata,
        "spec": a.spec,
    }


def job(release: snapshot.ReleaseView, a: act.CreateJob) -> dict[str, Any]:
    """A job check's Job: the user's Job spec, labelled with its gate, owned by the Release."""
    spec = copy.deepcopy(a.spec)
    pod = spec["template"].setdefault("spec", {})
    pod.setdefault("restartPolicy", "Never")  # a Job refuses the Pod default (Always)
    spec.setdefault("backoffLimit", 0)  # one run per revision and check
    labels = {
        naming.LABEL_RELEASE: release.name,
        naming.LABEL_HASH: a.template_hash,
        naming.LABEL_CHECK: a.check,
        naming.LABEL_STAGE: a.stage,
        naming.LABEL_MANAGED_BY: naming.MANAGER,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": a.name,
            "namespace": release.namespace,
            "labels": labels,
            "ownerReferences": [owner_reference(release)],
        },
        "spec": spec,
    }
