"""The `Release` API (greenlight.dev/v1alpha1): the single source of truth for the CRD.

`greenlight crd` renders these models into `crds/` (see `crd.py`); the API server then
validates and defaults every Release before the operator sees it.
"""

from __future__ import annotations

import datetime
import json
import re
from typing import Annotated, Any, Literal

import pydantic
from pydantic import alias_generators

from greenlight.api import checks as gates
from greenlight.api import commands
from greenlight.api import traffic as routing
from greenlight.api.base import (
    PRESERVE,
    IntOrString,
    Model,
    OpenModel,
    Time,
    _rules,
)

GROUP = "greenlight.dev"
VERSION = "v1alpha1"
KIND = "Release"
PLURAL = "releases"


# --- spec: Kubernetes' own rules, for every field that ends up in another object -------------
# The regexes of k8s.io/apimachinery/pkg/util/validation, written for the API server (RE2, in
# `pattern` and CEL's matches()) and for pydantic (Rust regex) alike: no look-around.

DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
"""Container names (and the parts of a DNS subdomain)."""
DNS1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
"""Service names: a DNS-1123 label that starts with a letter."""
IANA_SVC_NAME = r"^[a-z0-9]([a-z0-9]|-[a-z0-9])*$"
"""Port names: at most 15 characters, no leading, trailing or double '-', and a letter."""
QUALIFIED_NAME = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
"""Label and annotation keys: [DNS subdomain (at most 253) '/'] name (at most 63)."""
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
"""Label values: at most 63 characters."""
IMAGE = r"^\S(.*\S)?$"
"""A container image: required, no leading or trailing whitespace."""
HTTP_HEADER_NAME = r"^[-A-Za-z0-9]+$"
INT32_MAX = 2**31 - 1
MAX_NAME = 52
"""A Release's name prefixes its Deployments' (`<release>-<10-char hash>`, a 63-char label)."""

RESERVED_LABELS = (
    "greenlight.dev/release",
    "greenlight.dev/template-hash",
    "greenlight.dev/color",
    "greenlight.dev/revision",
)
"""Labels Greenlight sets on each revision's pods and Deployments (engine/naming.py): a template
that sets them is refused, not silently overwritten."""
MAX_LABELS = 256
MAX_ANNOTATIONS = 256
MAX_CONTAINERS = 32
MAX_PORTS = 32
MAX_VOLUMES = 64
MAX_STEPS = 32
"""Rolling steps (a bound the API server's CEL cost estimate needs: each may hold checks)."""
MAX_TEMPLATE_BYTES = 256 * 1024 - 1024
"""The template as JSON, with room for the annotation's key within the 256 KiB of annotations."""


def _utc(at: datetime.datetime) -> datetime.datetime:
    """A time without an offset is UTC, as the API server reads one."""
    return at if at.tzinfo is not None else at.replace(tzinfo=datetime.UTC)


RestartTime = Annotated[Time, pydantic.AfterValidator(_utc)]


def _cel(regex: str) -> str:
    """A regex as a CEL string literal."""
    return "'" + regex.replace("\\", "\\\\") + "'"


def _fail(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


IANA_RULES = (
    "an IANA service name: at most 15 lowercase letters, digits and '-', with at least one"
    " letter, no '-' at either end and no '--'"
)
PORT_NAME_MESSAGE = f"must be {IANA_RULES}"
PORT_REF_MESSAGE = f"must be a port number (1-65535) or a port name ({IANA_RULES})"


def _is_port_name(value: str) -> bool:
    return (
        len(value) <= 15
        and re.fullmatch(IANA_SVC_NAME, value) is not None
        and re.search("[a-z]", value) is not None
    )


def _port_name(value: str) -> str:
    _fail(_is_port_name(value), PORT_NAME_MESSAGE)
    return value


def _port_ref(value: int | str) -> int | str:
    ok = 1 <= value <= 65535 if isinstance(value, int) else _is_port_name(value)
    _fail(ok, PORT_REF_MESSAGE)
    return value


PortNumber = Annotated[int, pydantic.Field(ge=1, le=65535)]
PortName = Annotated[
    str,
    pydantic.Field(
        min_length=1,
        max_length=15,
        pattern=IANA_SVC_NAME,
        json_schema_extra=_rules(("self.matches('[a-z]')", PORT_NAME_MESSAGE)),
    ),
    pydantic.AfterValidator(_port_name),
]
PortRef = Annotated[
    int | str,
    pydantic.AfterValidator(_port_ref),
    pydantic.WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "maxLength": 15,
            **_rules(
                (
                    "type(self) == int ? self >= 1 && self <= 65535 : size(self) <= 15"
                    f" && self.matches({_cel(IANA_SVC_NAME)}) && self.matches('[a-z]')",
                    PORT_REF_MESSAGE,
                )
            ),
        }
    ),
]
"""A port by number or by name (a Service's targetPort, a probe's port)."""
ServiceName = Annotated[
    str,
    pydantic.Field(
        min_length=1,
        max_length=63,
        pattern=DNS1035_LABEL,
        description="A Service name (DNS-1035 label: lowercase letters, digits and '-', starting"
        " with a letter, at most 63).",
    ),
]
LabelValue = Annotated[str, pydantic.Field(max_length=63, pattern=LABEL_VALUE)]
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
"""Object names (a Deployment's): DNS-1123 labels joined by dots, at most 253 characters."""


def _key_error(key: str) -> str | None:
    """Why `key` is not a valid label or annotation key (k8s IsQualifiedName), or None."""
    prefix = key.rpartition("/")[0]
    if re.fullmatch(QUALIFIED_NAME, key) is None or len(prefix) > 253:
        return (
            f"{key!r} is not a qualified name: [a DNS subdomain (at most 253 characters) '/']"
            " a name of at most 63 letters, digits, '-', '_' or '.', starting and ending with a"
            " letter or digit"
        )
    return None


def _keys_rule(what: str) -> dict[str, Any]:
    """CEL for a map's keys (a structural schema cannot constrain property names); the message
    names the first key that is wrong."""
    ok = f"k.matches({_cel(QUALIFIED_NAME)}) && (!k.contains('/') || k.indexOf('/') <= 253)"
    rules = (
        " is not a qualified name: [a DNS subdomain (at most 253 characters) '/'] a name of at"
        " most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
    )
    return {
        "x-kubernetes-validations": [
            {
                "rule": f"self.all(k, {ok})",
                "message": f"{what}: every key must be a qualified name",
                "messageExpression": f"'{what}: key ' + self.filter(k, !({ok}))[0] + \"{rules}\"",
            }
        ]
    }


LABELS = "spec.template.metadata.labels"


class ContainerPort(OpenModel):
    container_port: PortNumber
    name: PortName | None = None
    host_port: PortNumber | None = None
    protocol: Literal["TCP", "UDP", "SCTP"] | None = None


class HTTPHeader(Model):
    name: str = pydantic.Field(min_length=1, pattern=HTTP_HEADER_NAME)
    value: str


class HTTPGetAction(OpenModel):
    port: PortRef
    path: str | None = None
    host: str | None = None
    scheme: Literal["HTTP", "HTTPS"] | None = None
    http_headers: list[HTTPHeader] | None = pydantic.Field(default=None, max_length=32)


class TCPSocketAction(OpenModel):
    port: PortRef
    host: str | None = None


class GRPCAction(OpenModel):
    port: PortNumber
    service: str | None = None


class ExecAction(OpenModel):
    command: list[str] = pydantic.Field(min_length=1)


_HANDLERS = ("httpGet", "tcpSocket", "exec", "grpc")
_HANDLER_COUNT = " + ".join(f"(has(self.{h}) ? 1 : 0)" for h in _HANDLERS)


class Probe(OpenModel):
    """A core/v1 Probe used as a readiness probe; any other Probe field is passed through."""

    model_config = pydantic.ConfigDict(
        extra="allow",
        json_schema_extra={
            **PRESERVE,
            **_rules(
                (
                    f"{_HANDLER_COUNT} <= 1",
                    "set only one of httpGet, tcpSocket, exec or grpc",
                ),
                (
                    "!has(self.terminationGracePeriodSeconds)",
                    "terminationGracePeriodSeconds: must not be set for readiness probes",
                    ".terminationGracePeriodSeconds",
                ),
            ),
        },
    )
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    exec: ExecAction | None = None
    grpc: GRPCAction | None = None
    initial_delay_seconds: int | None = pydantic.Field(default=None, ge=0, le=INT32_MAX)
    timeout_seconds: int | None = pydantic.Field(default=None, ge=1, le=INT32_MAX)
    period_seconds: int | None = pydantic.Field(default=None, ge=1, le=INT32_MAX)
    success_threshold: int | None = pydantic.Field(default=None, ge=1, le=INT32_MAX)
    failure_threshold: int | None = pydantic.Field(default=None, ge=1, le=INT32_MAX)
    termination_grace_period_seconds: int | None = pydantic.Field(
        default=None, description="Not allowed in a readiness probe."
    )

    def handlers(self) -> list[str]:
        return [h for h, v in zip(_HANDLERS, self._actions(), strict=True) if v is not None]

    def _actions(self) -> tuple[object, ...]:
        return (self.http_get, self.tcp_socket, self.exec, self.grpc)

    @pydantic.model_validator(mode="after")
    def _one_handler(self) -> Probe:
        _fail(len(self.handlers()) <= 1, "set only one of httpGet, tcpSocket, exec or grpc")
        return self

    @pydantic.field_validator("termination_grace_period_seconds")
    @classmethod
    def _no_grace_period(cls, value: int | None) -> int | None:
        _fail(value is None, "must not be set for readiness probes")
        return value

    def probe(self) -> dict[str, Any]:
        """The core/v1 Probe this stands for."""
        return self.model_dump(by_alias=True, exclude_none=True, exclude={"disabled"})


class HealthCheck(Probe):
    """A readiness probe injected into every container that has none.

    Any core/v1 Probe field is accepted (httpGet, tcpSocket, exec, grpc, periodSeconds, ...).
    """

    model_config = pydantic.ConfigDict(
        extra="allow",
        json_schema_extra={
            **PRESERVE,
            **_rules(
                (
                    "self.disabled || has(self.httpGet) || has(self.tcpSocket)"
                    " || has(self.exec) || has(self.grpc)",
                    "spec.healthCheck: set one of httpGet, tcpSocket, exec or grpc,"
                    " or disabled: true",
                ),
                (
                    f"{_HANDLER_COUNT} <= 1",
                    "spec.healthCheck: set only one of httpGet, tcpSocket, exec or grpc",
                ),
                (
                    "!has(self.terminationGracePeriodSeconds)",
                    "spec.healthCheck.terminationGracePeriodSeconds: must not be set for"
                    " readiness probes",
                    ".terminationGracePeriodSeconds",
                ),
            ),
        },
    )
    disabled: bool = pydantic.Field(
        default=False,
        description="Opt out of health checking: pods count as ready as soon as they run.",
    )

    @pydantic.model_validator(mode="after")
    def _a_handler(self) -> HealthCheck:
        _fail(
            self.disabled or bool(self.handlers()),
            "set one of httpGet, tcpSocket, exec or grpc, or disabled: true",
        )
        return self


class Container(OpenModel):
    """A container, as in a Pod spec. Fields not listed here are passed through unchanged."""

    name: str = pydantic.Field(
        min_length=1,
        max_length=63,
        pattern=DNS1123_LABEL,
        description="Container name, unique in the pod (DNS-1123 label).",
    )
    image: str = pydantic.Field(
        min_length=1, pattern=IMAGE, description="Container image, e.g. registry.example/app:1.4.2."
    )
    ports: list[ContainerPort] | None = pydantic.Field(default=None, max_length=MAX_PORTS)
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    readiness_probe: Probe | None = pydantic.Field(
        default=None,
        description="When absent, spec.healthCheck becomes this container's probe.",
    )


class InitContainer(OpenModel):
    """An init container: passed through; its name and image are checked as a container's."""

    name: str = pydantic.Field(min_length=1, max_length=63, pattern=DNS1123_LABEL)
    image: str = pydantic.Field(min_length=1, pattern=IMAGE)
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None


class Volume(OpenModel):
    """A pod volume: passed through; its name is checked (DNS-1123 label, unique)."""

    name: str = pydantic.Field(min_length=1, max_length=63, pattern=DNS1123_LABEL)


def _list_map(*keys: str) -> dict[str, Any]:
    """A list whose items are unique by `keys` (the API server refuses a duplicate)."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


def _unique(items: list[Any], what: str) -> list[Any]:
    seen: set[str] = set()
    for i, item in enumerate(items):
        _fail(item.name not in seen, f"[{i}].name: duplicate {what} name {item.name!r}")
        seen.add(item.name)
    return items


class PodSpec(OpenModel):
    """A Pod spec, as in a Deployment. Fields not listed here are passed through unchanged."""

    model_config = pydantic.ConfigDict(
        extra="allow",
        json_schema_extra={
            **PRESERVE,
            **_rules(
                (
                    "!has(self.initContainers) || self.initContainers.all(i,"
                    " !self.containers.exists(c, c.name == i.name))",
                    "spec.template.spec.initContainers: names must differ from the containers'",
                    ".initContainers",
                ),
                (
                    "!has(self.activeDeadlineSeconds)",
                    "spec.template.spec.activeDeadlineSeconds: not allowed in a Deployment's pods",
                    ".activeDeadlineSeconds",
                ),
            ),
        },
    )
    containers: list[Container] = pydantic.Field(
        min_length=1,
        max_length=MAX_CONTAINERS,
        description="At least one; names unique.",
        json_schema_extra=_list_map("name"),
    )
    init_containers: list[InitContainer] | None = pydantic.Field(
        default=None, max_length=MAX_CONTAINERS, json_schema_extra=_list_map("name")
    )
    volumes: list[Volume] | None = pydantic.Field(
        default=None, max_length=MAX_VOLUMES, json_schema_extra=_list_map("name")
    )
    restart_policy: Literal["Always"] | None = pydantic.Field(
        default=None, description="A Deployment's pods always restart: Always (or unset)."
    )
    active_deadline_seconds: int | None = pydantic.Field(
        default=None, description="Not allowed: a Deployment's pods run until replaced."
    )

    @pydantic.field_validator("containers")
    @classmethod
    def _unique_containers(cls, containers: list[Container]) -> list[Container]:
        return _unique(containers, "container")

    @pydantic.field_validator("init_containers")
    @classmethod
    def _unique_init_containers(cls, found: list[InitContainer] | None) -> Any:
        return found if found is None else _unique(found, "init container")

    @pydantic.field_validator("volumes")
    @classmethod
    def _unique_volumes(cls, volumes: list[Volume] | None) -> list[Volume] | None:
        return volumes if volumes is None else _unique(volumes, "volume")

    @pydantic.field_validator("active_deadline_seconds")
    @classmethod
    def _no_deadline(cls, value: int | None) -> int | None:
        _fail(value is None, "not allowed in a Deployment's pods")
        return value

    @pydantic.model_validator(mode="after")
    def _init_names_differ(self) -> PodSpec:
        names = {c.name for c in self.containers}
        for i, c in enumerate(self.init_containers or ()):
            _fail(
                c.name not in names,
                f"spec.template.spec.initContainers[{i}].name: {c.name!r} is also a container's",
            )
        return self


class TemplateMetadata(Model):
    model_config = pydantic.ConfigDict(
        json_schema_extra=_rules(
            *(
                (
                    f"!has(self.labels) || !('{key}' in self.labels)",
                    f"{LABELS}: {key} is reserved: Greenlight sets it on each revision's pods"
                    " and Deployments; remove it",
                    ".labels",
                )
                for key in RESERVED_LABELS
            )
        )
    )
    labels: dict[str, LabelValue] = pydantic.Field(
        default_factory=dict,
        max_length=MAX_LABELS,
        description="Pod labels (not greenlight.dev/release, template-hash, color or revision).",
        json_schema_extra=_keys_rule(LABELS),
    )
    annotations: dict[str, str] = pydantic.Field(
        default_factory=dict,
        max_length=MAX_ANNOTATIONS,
        json_schema_extra=_keys_rule("spec.template.metadata.annotations"),
    )

    @pydantic.field_validator("labels", "annotations")
    @classmethod
    def _qualified_keys(cls, values: dict[str, str]) -> dict[str, str]:
        for key in values:
            error = _key_error(key)
            _fail(error is None, f"key {error}")
        return values

    @pydantic.field_validator("labels")
    @classmethod
    def _not_reserved(cls, labels: dict[str, str]) -> dict[str, str]:
        for key in RESERVED_LABELS:
            _fail(
                key not in labels,
                f"{key} is reserved: Greenlight sets it on each revision's pods and Deployments;"
                " remove it",
            )
        return labels


class PodTemplate(Model):
    """A PodTemplateSpec, as in a Deployment. Each distinct template is one revision."""

    metadata: TemplateMetadata = pydantic.Field(default_factory=TemplateMetadata)
    spec: PodSpec

    @pydantic.model_validator(mode="after")
    def _fits_an_annotation(self) -> PodTemplate:
        """Each revision's Deployment keeps the template as written in one annotation (what undo
        writes back, kube/render.py), and a Kubernetes object's annotations hold at most 256 KiB.
        The CRD cannot measure this; the operator refuses it before creating anything."""
        written = json.dumps(
            self.model_dump(by_alias=True, exclude_none=True, mode="json"), sort_keys=True
        )
        _fail(
            len(written.encode()) <= MAX_TEMPLATE_BYTES,
            f"spec.template: {len(written.encode())} bytes as JSON; at most {MAX_TEMPLATE_BYTES}"
            " (each revision's Deployment keeps it in an annotation, and annotations hold at"
            " most 256 KiB)",
        )
        return self


def _port_key(port: ServicePort) -> str:
    return port.name or f"port-{port.port}"


def _ports_rules(path: str) -> dict[str, Any]:
    """Unique port names (an unnamed port is named port-<port>, see kube/render.py) and unique
    port/protocol pairs, as the Service's own validation requires. Written without string(int):
    the cost estimator cannot bound the length of a converted number."""
    named = "'^port-[0-9]{1,5}$'"
    return _rules(
        (
            "!has(self.ports) || self.ports.all(p, has(p.name)"
            " ? self.ports.exists_one(q, has(q.name) && q.name == p.name)"
            " && !(p.name.matches(" + named + ") && self.ports.exists(q, !has(q.name)"
            " && q.port == int(p.name.substring(5))))"
            " : self.ports.exists_one(q, !has(q.name) && q.port == p.port))",
            f"{path}.ports: port names must be unique (an unnamed port is named port-<port>)",
            ".ports",
        ),
        (
            "!has(self.ports) || self.ports.all(p, self.ports.exists_one(q, q.port == p.port"
            " && q.protocol == p.protocol))",
            f"{path}.ports: each port and protocol may appear only once",
            ".ports",
        ),
    )


def _unique_ports(ports: list[ServicePort]) -> list[ServicePort]:
    names = [_port_key(p) for p in ports]
    pairs = [(p.port, p.protocol) for p in ports]
    _fail(
        len(set(names)) == len(names),
        "port names must be unique (an unnamed port is named port-<port>)",
    )
    _fail(len(set(pairs)) == len(pairs), "each port and protocol may appear only once")
    return ports


class ServicePort(Model):
    name: PortName | None = pydantic.Field(
        default=None, description="Defaults to port-<port>. Unique in the Service."
    )
    port: PortNumber
    target_port: PortRef | None = pydantic.Field(
        default=None, description="Container port number or name; defaults to port."
    )
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"


class LiveService(Model):
    """The Service that carries live traffic. Greenlight creates it when absent."""

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.adopt || (has(self.ports) && size(self.ports) > 0)",
                    "message": "spec.service.ports: required unless the Service already exists"
                    " (adopt: true)",
                    "fieldPath": ".ports",
                },
                *_ports_rules("spec.service")["x-kubernetes-validations"],
            ]
        }
    )
    name: ServiceName
    ports: list[ServicePort] = pydantic.Field(default_factory=list, max_length=MAX_PORTS)
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    adopt: bool = pydantic.Field(
        default=False,
        description=(
            "Manage the selector of a Service that exists and was not created by Greenlight."
            " It is left in place when the Release is deleted."
        ),
    )

    _ports = pydantic.field_validator("ports")(_unique_ports)

    @pydantic.model_validator(mode="after")
    def _ports_unless_adopted(self) -> LiveService:
        _fail(
            self.adopt or bool(self.ports),
            "spec.service.ports: required unless the Service already exists (adopt: true)",
        )
        return self


class PreviewService(Model):
    """A Service that selects the candidate revision before it goes live."""

    model_config = pydantic.ConfigDict(json_schema_extra=_ports_rules("spec.previewService"))
    name: ServiceName
    ports: list[ServicePort] = pydantic.Field(
        default_factory=list, max_length=MAX_PORTS, description="Defaults to spec.service.ports."
    )

    _ports = pydantic.field_validator("ports")(_unique_ports)


ScaleDown = Literal["never", "afterFlip", "progressive"]


class WorkloadRef(Model):
    """A Deployment whose pod template Greenlight releases (instead of spec.template)."""

    api_version: Literal["apps/v1"] = pydantic.Field(
        default="apps/v1", description="apps/v1 (the only one)."
    )
    kind: Literal["Deployment"] = pydantic.Field(description="Deployment (the only kind).")
    name: str = pydantic.Field(
        min_length=1,
        max_length=253,
        pattern=DNS1123_SUBDOMAIN,
        description="The Deployment, in the Release's namespace. Each change of its pod template"
        " is a new revision; Greenlight runs the pods, the Deployment is drained (scaleDown).",
    )
    scale_down: ScaleDown = pydantic.Field(
        default="afterFlip",
        description="What happens to the Deployment's own pods: afterFlip (scaled to 0"
        " scaleDownDelaySeconds after a Greenlight revision is live), progressive (scaled down"
        " as the first revision's pods become available behind the Service), never (left"
        " alone). A scale-up by anyone else is taken back, with a Warning naming who. Its"
        " replicas are put back when the Release is deleted or detached.",
    )


class ScaleDownGate(Model):
    """When and how fast the previous live revision (role `draining`) is scaled down after a
    flip: once its checks pass, never later than maxDelaySeconds, in paced batches."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=_rules(gates.placement_rule("when", "scaleDown"))
    )

    when: list[gates.Check] = pydantic.Field(
        default_factory=list,
        max_length=gates.MAX_CHECKS,
        description="Checks against the draining revision ($(DRAINING_HASH), e.g. its open"
        " connections <= N from Prometheus); its scale-down waits until every one passed (a"
        " failed one waits for maxDelaySeconds).",
        json_schema_extra=gates.list_map("name"),
    )
    max_delay_seconds: int = pydantic.Field(
        default=600,
        ge=0,
        le=INT32_MAX,
        description="Scale the draining revision down this long after the flip at the latest,"
        " whatever its checks say.",
    )
    pods_per_interval: int = pydantic.Field(
        default=0,
        ge=0,
        le=INT32_MAX,
        description="Remove this many of its pods every intervalSeconds, so clients reconnect"
        " spread out; 0: all at once.",
    )
    interval_seconds: int = pydantic.Field(default=10, ge=1, le=3600)

    _unique = pydantic.field_validator("when")(gates.unique_names)
    _placed = pydantic.field_validator("when")(gates.placed("scaleDown"))


HandoverPolicy = Literal["overlap", "handover"]


class Handover(Model):
    """A Release without spec.service (a worker): how the `live` role moves at the flip."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=_rules(
            (
                "self.policy != 'handover' || size(self.checks) > 0 || has(self.timeoutSeconds)",
                "spec.strategy.blueGreen.handover: policy handover needs checks or"
                " timeoutSeconds (when may the new revision take over?)",
            ),
            gates.placement_rule("checks", "handover"),
        )
    )
    policy: HandoverPolicy = pydantic.Field(
        default="overlap",
        description="overlap: the new revision becomes live, then the old one draining (both"
        " may work for a moment); handover: the old one becomes draining first, and the new"
        " one live once the checks pass or timeoutSeconds passes (neither works for a moment).",
    )
    checks: list[gates.Check] = pydantic.Field(
        default_factory=list,
        max_length=gates.MAX_CHECKS,
        description="policy handover: checks against the draining revision ($(DRAINING_HASH)),"
        " e.g. that it holds no message; the new revision becomes live once all passed.",
        json_schema_extra=gates.list_map("name"),
    )
    timeout_seconds: int | None = pydantic.Field(
        default=None,
        ge=0,
        le=INT32_MAX,
        description="policy handover: the new revision becomes live this long after the old"
        " one started draining, whatever the checks say.",
    )

    _unique = pydantic.field_validator("checks")(gates.unique_names)
    _placed = pydantic.field_validator("checks")(gates.placed("handover"))

    @pydantic.model_validator(mode="after")
    def _when(self) -> Handover:
        _fail(
            self.policy != "handover" or bool(self.checks) or self.timeout_seconds is not None,
            "spec.strategy.blueGreen.handover: policy handover needs checks or timeoutSeconds"
            " (when may the new revision take over?)",
        )
        return self


class BlueGreen(Model):
    model_config = pydantic.ConfigDict(
        json_schema_extra=_rules(
            gates.placement_rule("prePromotion", "prePromotion"),
            gates.placement_rule("postPromotion", "postPromotion"),
        )
    )
    auto_promote: bool = pydantic.Field(
        default=True,
        description="Flip once the candidate is fully available. false: pause until promoted.",
    )
    promote_after_seconds: int = pydantic.Field(
        default=0, ge=0, description="Wait this long after the candidate is available, then flip."
    )
    scale_down_delay_seconds: int = pydantic.Field(
        default=30, ge=0, description="Keep the old slot warm this long after the flip."
    )
    pre_promotion: list[gates.Check] = pydantic.Field(
        default_factory=list,
        max_length=gates.MAX_CHECKS,
        description="Checks against the candidate; every one must pass before the flip. A"
        " failure aborts the candidate (live traffic untouched).",
        json_schema_extra=gates.list_map("name"),
    )
    post_promotion: list[gates.Check] = pydantic.Field(
        default_factory=list,
        max_length=gates.MAX_CHECKS,
        description="Checks right after the flip, while the old slot stays warm (its scale-down"
        " waits for them). A failure flips the live Service back at once.",
        json_schema_extra=gates.list_map("name"),
    )
    scale_down: ScaleDownGate | None = pydantic.Field(
        default=None,
        description="Hold the draining revision's scale-down for checks, and pace it. Without"
        " it: all at once, scaleDownDelaySeconds after the flip.",
    )
    handover: Handover | None = pydantic.Field(
        default=None,
        description="Only without spec.service (a worker): how the live role moves at the flip"
        " (default: overlap).",
    )
    first_release_checks: bool = pydantic.Field(
        default=False,
        description="Release the first revision like any later one: the live Service selects"
        " it only once all its pods are available and its prePromotion checks passed (a failure"
        " aborts it), as autoPromote and promoteAfterSeconds allow. false: the first revision"
        " fills the live Service directly.",
    )

    _unique = pydantic.field_validator("pre_promotion", "post_promotion")(gates.unique_names)
    _pre = pydantic.field_validator("pre_promotion")(gates.placed("prePromotion"))
    _post = pydantic.field_validator("post_promotion")(gates.placed("postPromotion"))


class Pause(Model):
    duration: str | None = pydantic.Field(
        default=None,
        pattern=r"^[0-9]+(s|m|h)$",
        description="e.g. 30s, 5m. Absent: wait until promoted.",
    )


class Analysis(Model):
    checks: list[gates.Check] = pydantic.Field(
        min_length=1, max_length=gates.MAX_CHECKS, json_schema_extra=gates.list_map("name")
    )

    _unique = pydantic.field_validator("checks")(gates.unique_names)


class RollingStep(Model):
    model_config = pydantic.ConfigDict(
        json_schema_extra=_rules(
            (
                "(has(self.setWeight) ? 1 : 0) + (has(self.pause) ? 1 : 0)"
                " + (has(self.analysis) ? 1 : 0) == 1",
                "spec.strategy.rolling.steps[]: set exactly one of setWeight, pause or analysis",
            )
        )
    )
    set_weight: int | None = pydantic.Field(default=None, ge=0, le=100)
    pause: Pause | None = None
    analysis: Analysis | None = pydantic.Field(
        default=None,
        description="Wait here until these checks pass; a failure rolls back within bounds.",
    )

    @pydantic.model_validator(mode="after")
    def _one_kind(self) -> RollingStep:
        given = [self.set_weight is not None, self.pause is not None, self.analysis is not None]
        if sum(given) != 1:
            raise ValueError(
                "spec.strategy.rolling.steps[]: set exactly one of setWeight, pause or analysis"
            )
        return self


def _is_zero(field: str) -> str:
    return f"(type(self.{field}) == string ? self.{field} == '0%' : self.{field} == 0)"


def _int_or_percent(field: str) -> str:
    return (
        f"type(self.{field}) == string ? self.{field}.endsWith('%')"
        f" && int(self.{field}.replace('%', '')) <= 100 : self.{field} >= 0"
    )


class Rolling(Model):
    """Move replicas from the stable revision to the new one in batches (like a Deployment)."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=_rules(
            (
                _int_or_percent("maxSurge"),
                "spec.strategy.rolling.maxSurge: use an integer >= 0 or a percentage 0%-100%",
                ".maxSurge",
            ),
            (
                _int_or_percent("maxUnavailable"),
                "spec.strategy.rolling.maxUnavailable: use an integer >= 0 or a percentage 0%-100%",
                ".maxUnavailable",
            ),
            (
                f"!({_is_zero('maxSurge')} && {_is_zero('maxUnavailable')})",
                "spec.strategy.rolling: maxSurge and maxUnavailable cannot both be 0",
            ),
        )
    )
    max_surge: IntOrString = pydantic.Field(
        default="25%", description="Pods above replicas during a batch: integer or percentage."
    )
    max_unavailable: IntOrString = pydantic.Field(
        default=0, description="Pods below replicas during a batch: integer or percentage."
    )
    steps: list[RollingStep] = pydantic.Field(
        default_factory=list,
        max_length=MAX_STEPS,
        description="setWeight (share of replicas on the new revision; with spec.traffic, of"
        " requests at the gateway), pause and analysis steps.",
    )
    step_delay_seconds: int = pydantic.Field(
        default=0, ge=0, description="Wait this long between batches (Swarm's update delay)."
    )

    @pydantic.field_validator("max_surge", "max_unavailable")
    @classmethod
    def _int_or_percentage(cls, value: int | str, info: pydantic.ValidationInfo) -> int | str:
        field = alias_generators.to_camel(info.field_name or "")
        ok = value >= 0 if isinstance(value, int) else _percent(value) is not None
        if not ok:
            raise ValueError(
                f"spec.strategy.rolling.{field}: {value!r} is not an integer >= 0 or a"
                " percentage 0%-100%"
            )
        return value

    @pydantic.model_validator(mode="after")
    def _not_both_zero(self) -> Rolling:
        if _percent_or_int(self.max_surge) == 0 and _percent_or_int(self.max_unavailable) == 0:
            raise ValueError("spec.strategy.rolling: maxSurge and maxUnavailable cannot both be 0")
        return self


def _percent(value: str) -> int | None:
    digits = value[:-1]
    if value.endswith("%") and digits.isdigit() and int(digits) <= 100:
        return int(digits)
    return None


def _percent_or_int(value: int | str) -> int | None:
    return value if isinstance(value, int) else _percent(value)


class Strategy(Model):
    model_config = pydantic.ConfigDict(
        json_schema_extra=_rules(
            (
                "!(has(self.blueGreen) && has(self.rolling))",
                "spec.strategy: set only one of blueGreen or rolling",
            )
        )
    )
    blue_green: BlueGreen | None = None
    rolling: Rolling | None = None

    @property
    def effective_blue_green(self) -> BlueGreen:
        return self.blue_green or BlueGreen()


WORKER_PREVIEW = (
    "spec.previewService: needs spec.service (without one, a worker's candidate is told by its"
    " pods' greenlight.dev/role)"
)
WORKER_TRAFFIC = "spec.traffic: needs spec.service (a worker without one takes no requests)"
SERVICE_HANDOVER = (
    "spec.strategy.blueGreen.handover: only without spec.service (a worker); with a Service"
    " the flip moves its selector"
)


class ReleaseSpec(Model):
    model_config = pydantic.ConfigDict(
        json_schema_extra=_rules(
            (
                "has(self.template) || has(self.workloadRef)",
                "spec.template: required unless spec.workloadRef names a Deployment",
                ".template",
            ),
            (
                "!(has(self.template) && has(self.workloadRef))",
                "spec.workloadRef: set only one of spec.template or spec.workloadRef",
                ".workloadRef",
            ),
            (
                "!has(self.workloadRef) || !has(self.undoWritesSpec) || !self.undoWritesSpec",
                "spec.undoWritesSpec: not with spec.workloadRef (the template is the"
                " Deployment's: an undo holds until it changes)",
                ".undoWritesSpec",
            ),
            (
                "has(self.healthCheck) || !has(self.template) ||"
                " self.template.spec.containers.all(c, has(c.readinessProbe))",
                "spec.healthCheck: required when a container has no readinessProbe;"
                " add spec.healthCheck (e.g. httpGet) or set spec.healthCheck.disabled: true",
                ".healthCheck",
            ),
            (
                "!has(self.previewService) || has(self.service)",
                WORKER_PREVIEW,
                ".previewService",
            ),
            (
                "!has(self.previewService) || !has(self.service)"
                " || self.previewService.name != self.service.name",
                "spec.previewService.name: must differ from spec.service.name",
                ".previewService.name",
            ),
            ("!has(self.traffic) || has(self.service)", WORKER_TRAFFIC, ".traffic"),
            (
                "!has(self.service) || !has(self.strategy) || !has(self.strategy.blueGreen)"
                " || !has(self.strategy.blueGreen.handover)",
                SERVICE_HANDOVER,
                ".strategy.blueGreen.handover",
            ),
        )
    )
    replicas: int = pydantic.Field(
        default=1, ge=0, le=INT32_MAX, description="Desired pods of the live revision."
    )
    template: PodTemplate | None = pydantic.Field(
        default=None, description="The pods to release. Exactly one of template or workloadRef."
    )
    workload_ref: WorkloadRef | None = pydantic.Field(
        default=None,
        description="Release the pod template of this Deployment (kustomize and Helm keep"
        " rendering it) instead of spec.template.",
    )
    health_check: HealthCheck | None = None
    service: LiveService | None = pydantic.Field(
        default=None,
        description="The Service whose selector moves at the flip. Without it (a queue worker)"
        " only the pods' greenlight.dev/role moves: candidate, live, draining.",
    )
    preview_service: PreviewService | None = None
    traffic: routing.Traffic | None = pydantic.Field(
        default=None,
        description="Move traffic at a Gateway (an HTTPRoute Greenlight owns), per request;"
        " without it, by the live Service's selector.",
    )
    strategy: Strategy = pydantic.Field(default_factory=Strategy)
    progress_deadline_seconds: int = pydantic.Field(
        default=600,
        ge=1,
        le=INT32_MAX,
        description="Abort a candidate that makes no progress for this long: no new pod created,"
        " ready or available (as its Deployment reports), counted from its start.",
    )
    revision_history_limit: int = pydantic.Field(
        default=10, ge=1, description="Old revisions (Deployments and history entries) to keep."
    )
    paused: bool = pydantic.Field(
        default=False, description="Hold the release: no flip, no new slot."
    )
    undo_writes_spec: bool = pydantic.Field(
        default=False,
        description="An undo writes the old template back into spec.template (without GitOps)."
        " By default it rolls back without touching the spec and holds until spec.template"
        " changes, so a GitOps tool re-applying the spec cannot undo it.",
    )
    restart_at: RestartTime | None = pydantic.Field(
        default=None,
        description="Restart the live revision's pods (RFC 3339; `kubectl greenlight restart`"
        " sets it to now): when it is later than status.restartedAt, and not in the future, the"
        " live revision's Deployment replaces its pods, never fewer available than before; no"
        " new revision (not part of the template hash).",
    )
    notifications: list[gates.Notification] = pydantic.Field(
        default_factory=list,
        max_length=8,
        description="Webhooks told of transitions (started, awaiting promotion, promoted,"
        " aborted, rolled back, degraded). Names unique.",
        json_schema_extra=gates.list_map("name"),
    )

    @pydantic.field_validator("notifications")
    @classmethod
    def _unique_notifications(cls, found: list[gates.Notification]) -> list[gates.Notification]:
        return gates.unique_by_name(found, "notification")

    @pydantic.model_validator(mode="after")
    def _spec_rules(self) -> ReleaseSpec:
        """The CEL rules above, for the operator's own validation."""
        _fail(
            self.template is not None or self.workload_ref is not None,
            "spec.template: required unless spec.workloadRef names a Deployment",
        )
        _fail(
            self.template is None or self.workload_ref is None,
            "spec.workloadRef: set only one of spec.template or spec.workloadRef",
        )
        _fail(
            self.workload_ref is None or not self.undo_writes_spec,
            "spec.undoWritesSpec: not with spec.workloadRef (the template is the Deployment's:"
            " an undo holds until it changes)",
        )
        _fail(
            self.health_check is not None
            or self.template is None
            or all(c.readiness_probe is not None for c in self.template.spec.containers),
            "spec.healthCheck: required when a container has no readinessProbe; add"
            " spec.healthCheck (e.g. httpGet) or set spec.healthCheck.disabled: true",
        )
        _fail(self.preview_service is None or self.service is not None, WORKER_PREVIEW)
        _fail(
            self.preview_service is None
            or self.service is None
            or self.preview_service.name != self.service.name,
            "spec.previewService.name: must differ from spec.service.name",
        )
        _fail(self.traffic is None or self.service is not None, WORKER_TRAFFIC)
        blue_green = self.strategy.blue_green
        _fail(
            self.service is None or blue_green is None or blue_green.handover is None,
            SERVICE_HANDOVER,
        )
        return self

    @property
    def service_ports(self) -> list[ServicePort]:
        """spec.service.ports (none without a Service: a worker)."""
        return self.service.ports if self.service is not None else []

    @property
    def gateway(self) -> routing.GatewayAPI | None:
        return self.traffic.gateway_api if self.traffic is not None else None

    def all_checks(self) -> list[tuple[str, gates.Place, gates.Check]]:
        """Every check of the spec: (its field path, its place, the check)."""
        out: list[tuple[str, gates.Place, gates.Check]] = []
        bg, rolling = self.strategy.blue_green, self.strategy.rolling
        path = "spec.strategy.blueGreen"
        if bg is not None:
            places: list[tuple[str, gates.Place, list[gates.Check]]] = [
                ("prePromotion", "prePromotion", bg.pre_promotion),
                ("postPromotion", "postPromotion", bg.post_promotion),
            ]
            if bg.scale_down is not None:
                places.append(("scaleDown.when", "scaleDown", bg.scale_down.when))
            if bg.handover is not None:
                places.append(("handover.checks", "handover", bg.handover.checks))
            for field, place, found in places:
                out += [(f"{path}.{field}[{i}]", place, c) for i, c in enumerate(found)]
        for s, step in enumerate(rolling.steps if rolling is not None else ()):
            for i, c in enumerate(step.analysis.checks if step.analysis else ()):
                out.append(
                    (f"spec.strategy.rolling.steps[{s}].analysis.checks[{i}]", "analysis", c)
                )
        return out


# --- status -----------------------------------------------------------------------------------

Phase = Literal["Progressing", "Paused", "Healthy", "Degraded", "Aborted"]
Color = Literal["blue", "green"]
Outcome = Literal["Progressing", "Live", "Retired", "Aborted", "Superseded", "RolledBack"]


class Condition(Model):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    last_transition_time: Time
    observed_generation: int | None = None


class HistoryEntry(Model):
    revision: int
    template_hash: str
    images: list[str] = pydantic.Field(default_factory=list)
    color: Color
    outcome: Outcome
    reason: str | None = pydantic.Field(
        default=None, description="Why it ended as it did (a reason: Aborted, RolledBack...)."
    )
    message: str = pydantic.Field(default="", description="The reason's details, for people.")
    created_at: Time
    promoted_at: Time | None = None
    retired_at: Time | None = None
    scaled_down_at: Time | None = pydantic.Field(
        default=None,
        description="blueGreen.scaleDown.podsPerInterval: when its last batch of pods was removed.",
    )


class RevisionReplicas(Model):
    revision: int | None = None
    template_hash: str
    replicas: int
    available_replicas: int


class ReleaseStatus(Model):
    phase: Phase | None = None
    message: str = ""
    observed_generation: int | None = None
    live_revision: int | None = None
    live_hash: str | None = None
    live_color: Color | None = None
    candidate_revision: int | None = None
    candidate_hash: str | None = None
    candidate_color: Color | None = None
    candidate_since: Time | None = pydantic.Field(
        default=None,
        description="When the current candidate started: the progress deadline's origin.",
    )
    candidate_available_since: Time | None = None
    candidate_handover_since: Time | None = pydantic.Field(
        default=None,
        description="A worker's handover: when the live revision started draining (the"
        " candidate becomes live once it has drained).",
    )
    promote_requested: str | None = pydantic.Field(
        default=None, description="Template hash a promote command was given for."
    )
    aborted_hash: str | None = pydantic.Field(
        default=None, description="Template hash not retried until the spec changes or a retry."
    )
    desired_hash: str | None = pydantic.Field(
        default=None,
        description="The template hash the spec makes with the ConfigMaps and Secrets it"
        " references, as last reconciled (set only when it references some: their data is part"
        " of the revision, and kubectl greenlight does not read it).",
    )
    rolled_back_to: str | None = pydantic.Field(
        default=None,
        description="An undo holds: the template hash it went back to, live (or brought back)"
        " while the spec's revision (abortedHash) waits for spec.template to change or a retry.",
    )
    strategy: Literal["blueGreen", "rolling"] | None = pydantic.Field(
        default=None, description="Strategy of the release in flight (a switch waits for the next)."
    )
    current_step: int | None = pydantic.Field(default=None, description="Rolling: step index.")
    weight: int | None = pydantic.Field(
        default=None,
        description="Rolling: percent of replicas available on the new revision; with"
        " spec.traffic, percent of requests the route gives it.",
    )
    step_started_at: Time | None = None
    progress_at: Time | None = pydantic.Field(
        default=None, description="Rolling: last progress; the progress deadline runs from it."
    )
    last_batch_at: Time | None = None
    rolling_back: bool = False
    revisions: list[RevisionReplicas] = pydantic.Field(
        default_factory=list, description="Replica counts per revision with pods."
    )
    replicas: int = 0
    selector: str = pydantic.Field(
        default="", description="The live revision's pods (the scale subresource's selector)."
    )
    ready_replicas: int = 0
    available_replicas: int = 0
    candidate_ready_replicas: int = 0
    conditions: list[Condition] = pydantic.Field(default_factory=list)
    history: list[HistoryEntry] = pydantic.Field(default_factory=list)
    checks: list[gates.CheckStatus] = pydantic.Field(
        default_factory=list,
        description="Promotion gates of the release in flight (and the last finished ones).",
    )
    checks_skipped: str | None = pydantic.Field(
        default=None, description="Template hash whose remaining checks a promote skipped."
    )
    traffic: routing.TrafficStatus | None = pydantic.Field(
        default=None, description="spec.traffic: the route and the weights in effect."
    )
    restarted_at: Time | None = pydantic.Field(
        default=None,
        description="The spec.restartAt last carried out: the live revision's pods were"
        " restarted for it (a restartAt not later than this does nothing).",
    )


class Release(Model):
    """A release of one application: its pods, its Services, and how new versions go live."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=_rules(
            (
                f"size(self.metadata.name) <= {MAX_NAME}",
                f"metadata.name: at most {MAX_NAME} characters (it prefixes Deployment and pod"
                " names)",
            )
        )
    )
    api_version: Literal["greenlight.dev/v1alpha1"] = "greenlight.dev/v1alpha1"
    kind: Literal["Release"] = "Release"
    metadata: dict[str, Any] = pydantic.Field(default_factory=dict)
    spec: ReleaseSpec
    status: ReleaseStatus = pydantic.Field(default_factory=ReleaseStatus)

    @pydantic.field_validator("metadata")
    @classmethod
    def _name_length(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        name = metadata.get("name")
        _fail(
            not isinstance(name, str) or len(name) <= MAX_NAME,
            f"metadata.name: at most {MAX_NAME} characters (it prefixes Deployment and pod names)",
        )
        return metadata

    @pydantic.field_validator("metadata")
    @classmethod
    def _command_values(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        """What the policy greenlight-commands refuses at the API server (api/commands.py)."""
        error = commands.error(KIND, metadata)
        _fail(error is None, error or "")
        return metadata
