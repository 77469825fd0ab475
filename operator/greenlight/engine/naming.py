"""Names, labels and the template hash: how a revision is identified in the cluster."""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
from typing import Any

from greenlight.api import release as api

LABEL_RELEASE = "greenlight.dev/release"
LABEL_HASH = "greenlight.dev/template-hash"
LABEL_COLOR = "greenlight.dev/color"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_ROLE = "greenlight.dev/role"
"""On a Service of ours: live, preview, or backend (a revision's, behind spec.traffic)."""
ROLE_BACKEND = "backend"
MANAGER = "greenlight"
# A label, not an annotation: annotation changes bump a Deployment's generation.
LABEL_REVISION = "greenlight.dev/revision"
ANNOTATION_TEMPLATE = "greenlight.dev/template"
ANNOTATION_CONFIG = "greenlight.dev/config"
"""On a revision's Deployment that has copies of ConfigMaps or Secrets: which it copied and the
digest of their data, as hashed (JSON; engine/config.py). An undo to it hashes with these."""
ANNOTATION_SHARED = "greenlight.dev/shared"
"""On a ConfigMap or Secret, "true": referenced as it is by every revision (live, not copied,
not in the template hash)."""
ANNOTATION_COPY_OF = "greenlight.dev/copy-of"
"""On a revision's copy of a ConfigMap or Secret: the name it was copied from."""
ANNOTATION_RESTARTED_AT = "greenlight.dev/restartedAt"
"""On the live revision's pod template (its Deployment's, never the Release's): the
spec.restartAt carried out. Changing it makes the Deployment controller replace the pods; it is
not part of the template hash, so a restart is never a new revision."""
ANNOTATION_ADOPTED_SELECTOR = "greenlight.dev/adopted-selector"
"""On an adopted Service: its selector before Greenlight first moved it (JSON), written in that
same apply and never changed; put back when the Release is deleted (engine/finalize.py)."""
FINALIZER = "greenlight.dev/cleanup"
"""On a Release that adopted its live Service or a workload (spec.workloadRef): the workload's
replicas and the Service's selector are put back before the Release (and with it its
Deployments and pods) goes."""
LABEL_WORKLOAD_OF = "greenlight.dev/workload-of"
"""On spec.workloadRef's Deployment: the Release that adopted it (its informer is filtered by
this label: only adopted Deployments are watched)."""
ANNOTATION_ORIGINAL_REPLICAS = "greenlight.dev/original-replicas"
"""On an adopted Deployment: its replicas before Greenlight scaled it, written with the label
before any scale and never changed; put back when the Release is deleted or detached."""
ANNOTATION_SCALED_DOWN = "greenlight.dev/scaled-down"
"""On an adopted Deployment: Greenlight has scaled it down (a later scale-up is someone
else's, reported with a Warning)."""
ANNOTATION_DETACH = "greenlight.dev/detach"
"""On a Release ("true"): hand the workload back (its Deployment's replicas, the adopted
Service's selector), then hold; `kubectl greenlight detach` sets it."""
LABEL_CHECK = "greenlight.dev/check"
"""On a check's Job: the check's name (with LABEL_STAGE and LABEL_HASH: which gate it is)."""
LABEL_STAGE = "greenlight.dev/stage"

# Commands given with plain kubectl; the operator consumes and clears them.
COMMAND_PROMOTE = "greenlight.dev/promote"
COMMAND_ABORT = "greenlight.dev/abort"
COMMAND_RETRY = "greenlight.dev/retry"
COMMAND_UNDO = "greenlight.dev/undo"
COMMANDS = (COMMAND_PROMOTE, COMMAND_ABORT, COMMAND_RETRY, COMMAND_UNDO)


def user_template(spec: api.ReleaseSpec) -> dict[str, Any]:
    """The pod template as the user wrote it (what undo writes back); with spec.workloadRef,
    as `workload.resolve` took it from the Deployment."""
    if spec.template is None:
        raise ValueError("spec.workloadRef: not resolved (engine/workload.py)")
    return spec.template.model_dump(by_alias=True, exclude_none=True, mode="json")


def effective_template(spec: api.ReleaseSpec) -> dict[str, Any]:
    """The user's template with the health check injected where a container has no probe."""
    template = copy.deepcopy(user_template(spec))
    check = spec.health_check
    if check is not None and not check.disabled:
        for container in template["spec"]["containers"]:
            container.setdefault("readinessProbe", check.probe())
    return template


def template_hash(template: dict[str, Any], config: str | None = None) -> str:
    """A revision's identity: its effective pod template and, when it has copies of ConfigMaps
    or Secrets, their data (`config`: engine/config.py's digest of them). Without copies the
    hash is the template's alone, as before config was part of a revision."""
    payload: Any = template if config is None else {"template": template, "config": config}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def restart_stamp(at: datetime.datetime) -> str:
    """A restart's time as the annotation says it: RFC 3339 in UTC."""
    return at.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def deployment_name(release: str, template_hash: str) -> str:
    return f"{release}-{template_hash}"


def pod_labels(release: str, template_hash: str) -> dict[str, str]:
    """The labels that select one revision's pods."""
    return {LABEL_RELEASE: release, LABEL_HASH: template_hash}


def selects_release(selector: dict[str, str], release: str) -> bool:
    """Greenlight set this selector: it selects the Release's pods (one revision, or all)."""
    return selector.get(LABEL_RELEASE) == release


def images(template: dict[str, Any]) -> list[str]:
    return [str(c.get("image", "")) for c in template["spec"]["containers"]]


def other_color(color: api.Color | None) -> api.Color:
    return "green" if color == "blue" else "blue"


def ports(ports: tuple[api.ServicePort, ...]) -> tuple[dict[str, Any], ...]:
    """Ports as the API server stores them: named, targetPort and protocol filled in."""
    return tuple(
        {
            "name": p.name or f"port-{p.port}",
            "port": p.port,
            "targetPort": p.target_port if p.target_port is not None else p.port,
            "protocol": p.protocol,
        }
        for p in ports
    )
