"""The `Release` API (greenlight.dev/v1alpha1): the single source of truth for the CRD.

`greenlight crd` renders these models into `crds/` (see `crd.py`); the API server then
validates and defaults every Release before the operator sees it.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

import pydantic
from pydantic import alias_generators

GROUP = "greenlight.dev"
VERSION = "v1alpha1"
KIND = "Release"
PLURAL = "releases"

PRESERVE: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}

IntOrString = Annotated[
    int | str,
    pydantic.WithJsonSchema(
        {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}
    ),
]
Time = Annotated[
    datetime.datetime, pydantic.WithJsonSchema({"type": "string", "format": "date-time"})
]


def _rules(*rules: tuple[str, str] | tuple[str, str, str]) -> dict[str, Any]:
    """CEL rules for `x-kubernetes-validations`: (rule, message[, fieldPath])."""
    out = []
    for rule in rules:
        entry = {"rule": rule[0], "message": rule[1]}
        if len(rule) == 3:
            entry["fieldPath"] = rule[2]
        out.append(entry)
    return {"x-kubernetes-validations": out}


class Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(
        alias_generator=alias_generators.to_camel,
        populate_by_name=True,
        frozen=True,
        extra="ignore",
    )


class OpenModel(Model):
    """An object that keeps fields we do not model (pod specs, probes): passed through as is."""

    model_config = pydantic.ConfigDict(extra="allow", json_schema_extra=dict(PRESERVE))


# --- spec -------------------------------------------------------------------------------------


class Container(OpenModel):
    """A container, as in a Pod spec. Fields not listed here are passed through unchanged."""

    name: str = pydantic.Field(description="Container name, unique in the pod.")
    image: str = pydantic.Field(description="Container image, e.g. registry.example/app:1.4.2.")
    readiness_probe: dict[str, Any] | None = pydantic.Field(
        default=None,
        description="Kept as is. When absent, spec.healthCheck becomes this container's probe.",
        json_schema_extra={"type": "object", **PRESERVE},
    )


class PodSpec(OpenModel):
    """A Pod spec, as in a Deployment. Fields not listed here are passed through unchanged."""

    containers: list[Container] = pydantic.Field(min_length=1, description="At least one.")


class TemplateMetadata(Model):
    labels: dict[str, str] = pydantic.Field(default_factory=dict)
    annotations: dict[str, str] = pydantic.Field(default_factory=dict)


class PodTemplate(Model):
    """A PodTemplateSpec, as in a Deployment. Each distinct template is one revision."""

    metadata: TemplateMetadata = pydantic.Field(default_factory=TemplateMetadata)
    spec: PodSpec


class HealthCheck(OpenModel):
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
                )
            ),
        },
    )
    disabled: bool = pydantic.Field(
        default=False,
        description="Opt out of health checking: pods count as ready as soon as they run.",
    )
    http_get: dict[str, Any] | None = pydantic.Field(
        default=None, json_schema_extra={"type": "object", **PRESERVE}
    )
    tcp_socket: dict[str, Any] | None = pydantic.Field(
        default=None, json_schema_extra={"type": "object", **PRESERVE}
    )
    exec: dict[str, Any] | None = pydantic.Field(
        default=None, json_schema_extra={"type": "object", **PRESERVE}
    )
    grpc: dict[str, Any] | None = pydantic.Field(
        default=None, json_schema_extra={"type": "object", **PRESERVE}
    )
    period_seconds: int | None = pydantic.Field(default=None, ge=1)
    failure_threshold: int | None = pydantic.Field(default=None, ge=1)

    def probe(self) -> dict[str, Any]:
        """The core/v1 Probe this health check stands for."""
        return self.model_dump(by_alias=True, exclude_none=True, exclude={"disabled"})


class ServicePort(Model):
    name: str | None = None
    port: int = pydantic.Field(ge=1, le=65535)
    target_port: IntOrString | None = pydantic.Field(
        default=None, description="Container port number or name; defaults to port."
    )
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"


class LiveService(Model):
    """The Service that carries live traffic. Greenlight creates it when absent."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=_rules(
            (
                "self.adopt || size(self.ports) > 0",
                "spec.service.ports: required unless the Service already exists (adopt: true)",
                ".ports",
            )
        )
    )
    name: str = pydantic.Field(
        max_length=63, description="Service name in the Release's namespace."
    )
    ports: list[ServicePort] = pydantic.Field(default_factory=list)
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    adopt: bool = pydantic.Field(
        default=False,
        description=(
            "Manage the selector of a Service that exists and was not created by Greenlight."
            " It is left in place when the Release is deleted."
        ),
    )


class PreviewService(Model):
    """A Service that selects the candidate revision before it goes live."""

    name: str = pydantic.Field(max_length=63)
    ports: list[ServicePort] = pydantic.Field(
        default_factory=list, description="Defaults to spec.service.ports."
    )


class BlueGreen(Model):
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


class Pause(Model):
    duration: str | None = pydantic.Field(
        default=None,
        pattern=r"^[0-9]+(s|m|h)$",
        description="e.g. 30s, 5m. Absent: wait until promoted.",
    )


class RollingStep(Model):
    model_config = pydantic.ConfigDict(
        json_schema_extra=_rules(
            (
                "has(self.setWeight) != has(self.pause)",
                "spec.strategy.rolling.steps[]: set exactly one of setWeight or pause",
            )
        )
    )
    set_weight: int | None = pydantic.Field(default=None, ge=0, le=100)
    pause: Pause | None = None


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
        description="setWeight (share of replicas on the new revision) and pause steps.",
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


class ReleaseSpec(Model):
    model_config = pydantic.ConfigDict(
        json_schema_extra=_rules(
            (
                "has(self.healthCheck) || self.template.spec.containers.all(c,"
                " has(c.readinessProbe))",
                "spec.healthCheck: required when a container has no readinessProbe;"
                " add spec.healthCheck (e.g. httpGet) or set spec.healthCheck.disabled: true",
                ".healthCheck",
            ),
            (
                "!has(self.previewService) || self.previewService.name != self.service.name",
                "spec.previewService.name: must differ from spec.service.name",
                ".previewService.name",
            ),
        )
    )
    replicas: int = pydantic.Field(
        default=1, ge=0, description="Desired pods of the live revision."
    )
    template: PodTemplate
    health_check: HealthCheck | None = None
    service: LiveService
    preview_service: PreviewService | None = None
    strategy: Strategy = pydantic.Field(default_factory=Strategy)
    progress_deadline_seconds: int = pydantic.Field(
        default=600, ge=1, description="Abort a candidate that is not available within this time."
    )
    revision_history_limit: int = pydantic.Field(
        default=10, ge=1, description="Old revisions (Deployments and history entries) to keep."
    )
    paused: bool = pydantic.Field(
        default=False, description="Hold the release: no flip, no new slot."
    )


# --- status -----------------------------------------------------------------------------------

Phase = Literal["Progressing", "Paused", "Healthy", "Degraded", "Aborted"]
Color = Literal["blue", "green"]
Outcome = Literal["Progressing", "Live", "Retired", "Aborted", "Superseded"]


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
    reason: str | None = None
    created_at: Time
    promoted_at: Time | None = None
    retired_at: Time | None = None


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
    promote_requested: str | None = pydantic.Field(
        default=None, description="Template hash a promote command was given for."
    )
    aborted_hash: str | None = pydantic.Field(
        default=None, description="Template hash not retried until the spec changes or a retry."
    )
    strategy: Literal["blueGreen", "rolling"] | None = pydantic.Field(
        default=None, description="Strategy of the release in flight (a switch waits for the next)."
    )
    current_step: int | None = pydantic.Field(default=None, description="Rolling: step index.")
    weight: int | None = pydantic.Field(
        default=None, description="Rolling: percent of replicas available on the new revision."
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
    ready_replicas: int = 0
    available_replicas: int = 0
    candidate_ready_replicas: int = 0
    conditions: list[Condition] = pydantic.Field(default_factory=list)
    history: list[HistoryEntry] = pydantic.Field(default_factory=list)


class Release(Model):
    """A release of one application: its pods, its Services, and how new versions go live."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=_rules(
            (
                "size(self.metadata.name) <= 52",
                "metadata.name: at most 52 characters (it prefixes Deployment and pod names)",
            )
        )
    )
    api_version: Literal["greenlight.dev/v1alpha1"] = "greenlight.dev/v1alpha1"
    kind: Literal["Release"] = "Release"
    metadata: dict[str, Any] = pydantic.Field(default_factory=dict)
    spec: ReleaseSpec
    status: ReleaseStatus = pydantic.Field(default_factory=ReleaseStatus)
