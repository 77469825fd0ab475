"""What one reconcile observed: a Release, its Deployments and its Services, at one instant."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Literal

from greenlight.api import release as api
from greenlight.api import templates as api_templates


@dataclasses.dataclass(frozen=True)
class DeploymentView:
    """A trimmed Deployment: only what decisions need (kept small: it lives in an index)."""

    name: str
    template_hash: str
    uid: str = ""
    revision: int | None = None
    color: api.Color | None = None
    spec_replicas: int = 0
    generation: int = 1
    observed_generation: int = 0
    replicas: int = 0
    updated_replicas: int = 0
    ready_replicas: int = 0
    available_replicas: int = 0
    template: str | None = None
    """The user's template this revision was made from, as annotated (JSON): what an undo
    writes back into spec.template."""
    progressed_at: datetime.datetime | None = None
    """When the Deployment controller last saw this revision's pods progress (a ReplicaSet
    created or scaled, pods created, ready or available): its Progressing condition's
    lastUpdateTime while that condition is True."""
    restarted_at: str | None = None
    """The restart its pod template carries (`naming.ANNOTATION_RESTARTED_AT`; None: none)."""
    config: str | None = None
    """The ConfigMaps and Secrets it has copies of, and their digest, as annotated
    (`naming.ANNOTATION_CONFIG`, JSON; None: none): what an undo to it hashes with."""

    def fully_available(self, want: int) -> bool:
        """Every desired pod of this revision is up to date and available, and no other is."""
        return (
            self.observed_generation >= self.generation
            and self.spec_replicas == want
            and self.replicas == want
            and self.updated_replicas == want
            and self.available_replicas == want
        )

    def replacing(self) -> bool:
        """Its controller, having seen its spec, still has pods of an earlier pod template to
        replace (a restart rolling)."""
        return self.observed_generation >= self.generation and self.updated_replicas < self.replicas


ConfigKind = Literal["ConfigMap", "Secret"]


@dataclasses.dataclass(frozen=True)
class ConfigView:
    """A ConfigMap or Secret the Release's pod template references, as observed: never its
    data, only a digest of it (engine/config.py `digest`)."""

    kind: ConfigKind
    name: str
    digest: str | None
    """None: it does not exist."""
    shared: bool = False
    """Annotated `greenlight.dev/shared: "true"`: referenced as it is, not copied, not hashed."""


@dataclasses.dataclass(frozen=True)
class ServiceView:
    name: str
    selector: dict[str, str]
    owned: bool
    """Created by this Release (owner reference to it); otherwise adopted or foreign."""
    ports: tuple[dict[str, Any], ...] = ()
    """As stored: name, port, targetPort, protocol (nodePort left out: the API assigns it)."""
    type: str = "ClusterIP"
    adopted_selector: dict[str, str] | None = None
    """An adopted Service's selector before Greenlight first moved it, as recorded on it
    (`naming.ANNOTATION_ADOPTED_SELECTOR`; None: not recorded)."""
    ready_endpoints: int = 0
    """A backend Service (spec.traffic): the ready endpoints its EndpointSlices list, what the
    gateway can send requests to (a pod counts as available a moment before it is listed)."""


Role = Literal["candidate", "live", "draining"]


@dataclasses.dataclass(frozen=True)
class PodView:
    """One of the Release's pods, by its labels: its revision and the role it carries."""

    name: str
    template_hash: str
    role: str | None = None
    """Its greenlight.dev/role label as observed (None: none yet, a new pod)."""


@dataclasses.dataclass(frozen=True)
class RouteView:
    """The Release's HTTPRoute (spec.traffic.gatewayAPI), trimmed."""

    name: str
    owned: bool
    """Owned by this Release (created by it, or adopted)."""
    spec: dict[str, Any]
    """parentRefs, hostnames and rules, as stored."""
    resource_version: str = ""
    accepted: bool = False
    """Every parent accepted the current generation, with its references resolved."""
    message: str = ""
    """Why not accepted (a parent's condition), empty when accepted."""

    def serving(self) -> set[str]:
        """Backend Service names this route sends requests to (weight > 0 in any rule), or may
        still send them to (a generation the gateway has not accepted yet: every backend)."""
        out = set()
        for rule in self.spec.get("rules") or []:
            for b in rule.get("backendRefs") or []:
                if not self.accepted or b.get("weight", 1) > 0:
                    out.add(str(b.get("name")))
        return out


@dataclasses.dataclass(frozen=True)
class JobView:
    """The Job of a job check, as its labels and status say."""

    name: str
    check: str
    stage: str
    template_hash: str
    created_at: datetime.datetime
    succeeded: bool = False
    failed: bool = False
    finished_at: datetime.datetime | None = None


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """A measurement the shell took (or a check Job's state), not yet recorded in status."""

    stage: str
    name: str
    template_hash: str
    seq: int
    at: datetime.datetime
    value: Any = None
    """http/webhook: {status, body, headers}; prometheus: a number, a list, or None;
    job: Succeeded, Failed or Running."""
    error: str | None = None
    """A provider error (connection refused, bad query, ...): the measurement counts as Error."""


@dataclasses.dataclass(frozen=True)
class WorkloadView:
    """spec.workloadRef's Deployment (the original), trimmed: its pod template is released;
    what Greenlight recorded on it says what to put back (engine/workload.py)."""

    name: str
    template: dict[str, Any]
    """Its spec.template, as stored."""
    spec_replicas: int
    available_replicas: int = 0
    adopted_by: str | None = None
    """The Release whose label it carries (`naming.LABEL_WORKLOAD_OF`; None: not adopted)."""
    original_replicas: int | None = None
    """Its replicas before Greenlight first scaled it (`naming.ANNOTATION_ORIGINAL_REPLICAS`)."""
    scaled: bool = False
    """Greenlight has scaled it down (`naming.ANNOTATION_SCALED_DOWN`)."""
    replicas_manager: str | None = None
    """The field manager that last set spec.replicas (its managedFields)."""
    autoscalers: tuple[str, ...] = ()
    """HorizontalPodAutoscalers whose scaleTargetRef names it (read while not adopted yet)."""
    budgets: tuple[str, ...] = ()
    """PodDisruptionBudgets whose selector matches its pods (read while not adopted yet)."""


@dataclasses.dataclass(frozen=True)
class ReleaseView:
    name: str
    namespace: str
    uid: str
    generation: int
    spec: api.ReleaseSpec
    status: api.ReleaseStatus
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    deleting: datetime.datetime | None = None
    """Its deletionTimestamp: it is being deleted (engine/finalize.py decides what goes first)."""
    finalizers: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class TemplateView:
    """A CheckTemplate (or ClusterCheckTemplate) a check of the spec names."""

    kind: str
    name: str
    generation: int
    spec: api_templates.CheckTemplateSpec | None
    error: str = ""
    """Why its spec is not a template (spec is None then)."""


@dataclasses.dataclass(frozen=True)
class Snapshot:
    release: ReleaseView
    deployments: tuple[DeploymentView, ...]
    live_service: ServiceView | None
    preview_service: ServiceView | None
    now: datetime.datetime
    results: tuple[CheckResult, ...] = ()
    jobs: tuple[JobView, ...] = ()
    group: str | None = None
    """The ReleaseGroup this Release is a member of: it flips only when its group says so."""
    group_flip_to: int | None = None
    """This member's revision in its group's last history entry: the group decided that this
    revision goes live (a member flips its candidate when it is that revision)."""
    route: RouteView | None = None
    """spec.traffic.gatewayAPI: the HTTPRoute of that name, if it exists."""
    backends: tuple[ServiceView, ...] = ()
    """spec.traffic.gatewayAPI: the backend Services of the Release's revisions that exist."""
    config: tuple[ConfigView, ...] = ()
    """Every ConfigMap and Secret the spec's pod template references (engine/config.py)."""
    copies: frozenset[tuple[ConfigKind, str]] = frozenset()
    """(kind, name) of the revisions' copies of them that exist."""
    workload: WorkloadView | None = None
    """spec.workloadRef: the Deployment it names, if it exists."""
    pods: tuple[PodView, ...] = ()
    """The Release's pods, with their roles (engine/roles.py)."""
    templates: tuple[TemplateView, ...] = ()
    """The check templates the spec's checks name, those that exist."""

    def template(self, kind: str, name: str) -> TemplateView | None:
        return next((t for t in self.templates if (t.kind, t.name) == (kind, name)), None)

    def backend(self, name: str) -> ServiceView | None:
        return next((s for s in self.backends if s.name == name), None)

    def deployment(self, template_hash: str | None) -> DeploymentView | None:
        for d in self.deployments:
            if d.template_hash == template_hash:
                return d
        return None
