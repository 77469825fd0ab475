"""What the engine asks the shell to do, by kind. Each action is idempotent when applied twice.

`Plan` (engine/draft.py) keeps each kind apart: object writes (`Write`, applied in order by
kube/cluster.py), Events, check Jobs and measurements, notifications; a group's plan
(`group.GroupPlan`) has member commands. A new action is one class here and one field or
`Write` arm; the shell handles each kind in one place.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Literal

from greenlight.api import checks as api_checks
from greenlight.api import release as api
from greenlight.engine.reasons import Reason
from greenlight.engine.snapshot import Role


@dataclasses.dataclass(frozen=True)
class CreateDeployment:
    name: str
    template_hash: str
    revision: int
    color: api.Color
    replicas: int
    template: dict[str, Any]
    """The effective pod template, labels included."""
    user_template: dict[str, Any]
    """The template as the user wrote it: what undo writes back."""
    config: str | None = None
    """The ConfigMaps and Secrets it has copies of, and their digest (naming.ANNOTATION_CONFIG)."""


@dataclasses.dataclass(frozen=True)
class CopyConfig:
    """Make a revision's copy of a ConfigMap or Secret its pod template references: immutable,
    named `name`, owned by the revision's Deployment (it goes with it). Only the source's
    name and the digest of its data as hashed: the shell reads the data, and refuses to copy
    it when it no longer has that digest (the next reconcile makes that a new revision)."""

    kind: Literal["ConfigMap", "Secret"]
    source: str
    name: str
    digest: str
    deployment: str
    template_hash: str


@dataclasses.dataclass(frozen=True)
class ScaleDeployment:
    name: str
    replicas: int


@dataclasses.dataclass(frozen=True)
class LabelDeployment:
    """Refresh a Deployment's colour and revision (metadata only: no new pods)."""

    name: str
    color: api.Color
    revision: int


@dataclasses.dataclass(frozen=True)
class RestartDeployment:
    """spec.restartAt: set the restart annotation on a revision's pod template (the Deployment
    controller replaces its pods, none unavailable: maxUnavailable 0); no new revision."""

    name: str
    at: str
    """naming.restart_stamp of the restartAt carried out."""


@dataclasses.dataclass(frozen=True)
class DeleteDeployment:
    name: str


@dataclasses.dataclass(frozen=True)
class AdoptWorkload:
    """spec.workloadRef's Deployment: label it ours and record its replicas (before any
    scale; the record is never changed)."""

    name: str
    replicas: int


@dataclasses.dataclass(frozen=True)
class ScaleWorkload:
    """Scale spec.workloadRef's Deployment (field manager greenlight); `drained`: record that
    Greenlight scaled it down (False: its replicas put back)."""

    name: str
    replicas: int
    drained: bool = True


@dataclasses.dataclass(frozen=True)
class SetPodRole:
    """Label one pod `greenlight.dev/role` (metadata only: the pod is not restarted; a
    Downward API volume shows the app the new value)."""

    pod: str
    role: Role


@dataclasses.dataclass(frozen=True)
class ApplyService:
    """Create or update the Service's fields we own: the selector, and ports and type unless
    it is adopted without ports in the spec (`type` empty)."""

    role: Literal["live", "preview"]
    name: str
    selector: dict[str, str]
    ports: tuple[api.ServicePort, ...]
    type: str = "ClusterIP"
    create: bool = False
    owned: bool = True
    """Created by this Release (owner reference, removed with it); False: adopted."""
    original: dict[str, str] | None = None
    """Adopted: its selector before Greenlight first moved it, recorded on it in the same apply
    and kept (None: owned, or adopted before selectors were recorded: unknown)."""


@dataclasses.dataclass(frozen=True)
class ApplyBackend:
    """spec.traffic: a revision's backend Service for the route (named like its Deployment,
    selecting only its pods, owned by the Deployment so that it goes with it)."""

    name: str
    deployment_uid: str
    selector: dict[str, str]
    ports: tuple[api.ServicePort, ...]


@dataclasses.dataclass(frozen=True)
class ApplyRoute:
    """spec.traffic: server-side apply the whole HTTPRoute spec (its rules are atomic lists:
    whoever writes a weight owns them all)."""

    name: str
    spec: dict[str, Any]
    create: bool = False
    resource_version: str | None = None
    """Adopting a route that is not ours yet: apply only over this version of it."""


@dataclasses.dataclass(frozen=True)
class RestoreTemplate:
    """Undo: write a revision's user template (stored on its Deployment) back into
    spec.template."""

    template: dict[str, Any]
    revision: int


@dataclasses.dataclass(frozen=True)
class ClearCommands:
    keys: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class RecordEvent:
    reason: Reason
    message: str
    type: Literal["Normal", "Warning"] = "Normal"


@dataclasses.dataclass(frozen=True)
class CreateJob:
    """The Job of a job check (owned by the Release; a deterministic name: never run twice)."""

    name: str
    check: str
    stage: str
    template_hash: str
    spec: dict[str, Any]
    """The check's batch/v1 Job spec, $(VAR)s expanded."""


@dataclasses.dataclass(frozen=True)
class Measure:
    """Take measurement `seq` of a check now; its result comes back in a later snapshot."""

    stage: str
    name: str
    template_hash: str
    seq: int
    check: api_checks.Check
    """With $(VAR)s expanded; header values from Secrets are resolved by the shell."""
    release: dict[str, Any]
    """What a webhook is sent: the release's name, namespace, revisions, images, phase."""
    windows: tuple[tuple[datetime.datetime, datetime.datetime], ...] = ()
    """Range queries' (start, end): a prometheus range query's; compare: the candidate's and
    the baseline's (engine/checks.py `windows`)."""

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.stage, self.name, self.template_hash, self.seq)


@dataclasses.dataclass(frozen=True)
class AnnotateRelease:
    """Give a member Release a command (the group's promote, abort, retry, undo)."""

    release: str
    key: str
    value: str


@dataclasses.dataclass(frozen=True)
class Notify:
    """Tell a configured webhook about a transition (sent in the background, retried)."""

    notification: api_checks.Notification
    event: str
    message: str
    payload: dict[str, Any]


Write = (
    CreateDeployment
    | CopyConfig
    | ScaleDeployment
    | LabelDeployment
    | RestartDeployment
    | DeleteDeployment
    | AdoptWorkload
    | ScaleWorkload
    | ApplyService
    | ApplyBackend
    | ApplyRoute
    | SetPodRole
    | RestoreTemplate
    | ClearCommands
)
"""A write to an object the Release owns (or to the Release itself), in the plan's order."""
