"""A tiny in-memory cluster for engine tests: it applies the engine's actions the way the
Kubernetes API would and lets a test decide how many pods are available. Not a mock of the
API: the engine never sees it, only the snapshots it produces."""

from __future__ import annotations

import dataclasses
import datetime
import json
from typing import Any

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import config, naming, plan, snapshot

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def spec(
    image: str = "app:1",
    replicas: int = 3,
    *,
    auto_promote: bool = True,
    promote_after: int = 0,
    scale_down_delay: int = 30,
    deadline: int = 600,
    history_limit: int = 10,
    preview: bool = True,
    paused: bool = False,
    adopt: bool = False,
    rolling: dict[str, Any] | None = None,
    gateway: dict[str, Any] | None = None,
    undo_writes_spec: bool = False,
    restart_at: datetime.datetime | None = None,
    workload: str | None = None,
    scale_down: str = "afterFlip",
    worker: bool = False,
    handover: dict[str, Any] | None = None,
    scale_down_gate: dict[str, Any] | None = None,
) -> api.ReleaseSpec:
    body: dict[str, Any] = {
        "replicas": replicas,
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": image}]},
        },
        "healthCheck": {"httpGet": {"path": "/healthz", "port": 8080}},
        "service": {"name": "web", "ports": [{"port": 80, "targetPort": 8080}], "adopt": adopt},
        "strategy": {
            "blueGreen": {
                "autoPromote": auto_promote,
                "promoteAfterSeconds": promote_after,
                "scaleDownDelaySeconds": scale_down_delay,
            }
        },
        "progressDeadlineSeconds": deadline,
        "revisionHistoryLimit": history_limit,
        "paused": paused,
        "undoWritesSpec": undo_writes_spec,
    }
    if preview:
        body["previewService"] = {"name": "web-preview"}
    if rolling is not None:
        body["strategy"] = {"rolling": rolling}
    if gateway is not None:
        body["traffic"] = {"gatewayAPI": gateway}
    if restart_at is not None:
        body["restartAt"] = restart_at
    if worker:  # a queue consumer: no Service, only its pods' roles move
        del body["service"]
        body.pop("previewService", None)
    if handover is not None:
        body["strategy"]["blueGreen"]["handover"] = handover
    if scale_down_gate is not None:
        body["strategy"]["blueGreen"]["scaleDown"] = scale_down_gate
    if workload is not None:  # spec.workloadRef: the template is that Deployment's
        del body["template"]
        body["workloadRef"] = {"kind": "Deployment", "name": workload, "scaleDown": scale_down}
    return api.ReleaseSpec.model_validate(body)


def pod_template(image: str = "app:1") -> dict[str, Any]:
    """A Deployment's spec.template, as `spec(image)` writes it (so the same revision)."""
    return {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": image}]},
    }


def hash_of(s: api.ReleaseSpec, w: World | None = None) -> str:
    """The spec's revision (with `w`'s ConfigMaps and Secrets, when it references some)."""
    return config.revision("web", s, w.snapshot().config if w else ()).hash


def released(
    image: str = "app:1", *, name: str = "web", group: str | None = None, **kw: Any
) -> World:
    """A Release whose first revision (`image`, the rest of `spec(**kw)`) is live, every pod
    available, Healthy. A spec `spec` cannot build: `World(...).go_live()`."""
    return World(spec(image, **kw), name=name, group=group).go_live()


@dataclasses.dataclass
class World:
    spec: api.ReleaseSpec
    now: datetime.datetime = T0
    status: api.ReleaseStatus = dataclasses.field(default_factory=api.ReleaseStatus)
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    deployments: dict[str, snapshot.DeploymentView] = dataclasses.field(default_factory=dict)
    services: dict[str, snapshot.ServiceView] = dataclasses.field(default_factory=dict)
    generation: int = 1
    last: plan.Plan | None = None
    log: list[Any] = dataclasses.field(default_factory=list)
    """Every action of every plan, as applied: writes, Jobs, measurements, notifications, Events."""
    after_each: Any = None
    """Called after every single action: the API applies them one at a time, not atomically."""
    results: list[snapshot.CheckResult] = dataclasses.field(default_factory=list)
    """Measurements the shell took, handed to the next reconcile (then consumed)."""
    jobs: dict[str, snapshot.JobView] = dataclasses.field(default_factory=dict)
    requested: list[act.Measure] = dataclasses.field(default_factory=list)
    name: str = "web"
    group: str | None = None
    group_flip_to: int | None = None
    route: snapshot.RouteView | None = None
    """spec.traffic: the HTTPRoute as the API server stores it."""
    gateway_accepts: bool = True
    """The gateway accepts each route write at once (False: its status lags)."""
    endpoints: dict[str, int] = dataclasses.field(default_factory=dict)
    """Backend Service name -> ready endpoints its EndpointSlices list, when they lag behind
    the pods (default: every available pod of its Deployment)."""
    objects: dict[tuple[snapshot.ConfigKind, str], dict[str, str]] = dataclasses.field(
        default_factory=dict
    )
    """ConfigMaps and Secrets by (kind, name): their data (a Secret's as the API returns it)."""
    shared: set[tuple[snapshot.ConfigKind, str]] = dataclasses.field(default_factory=set)
    """Those annotated greenlight.dev/shared: "true"."""
    copies: dict[tuple[snapshot.ConfigKind, str], act.CopyConfig] = dataclasses.field(
        default_factory=dict
    )
    """Revisions' copies by (kind, name): owned by their Deployment (deleted with it)."""
    copied: dict[tuple[snapshot.ConfigKind, str], dict[str, str]] = dataclasses.field(
        default_factory=dict
    )
    """Each copy's data, as the shell read it from its source."""
    pod_templates: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """Each Deployment's pod template, as created (what its pods run)."""
    workload: snapshot.WorkloadView | None = None
    """spec.workloadRef's Deployment, as the API server stores it."""
    templates: tuple[snapshot.TemplateView, ...] = ()
    """CheckTemplates and ClusterCheckTemplates as the informers hold them."""
    roles: dict[str, str] = dataclasses.field(default_factory=dict)
    """Pod name -> its greenlight.dev/role label (a Deployment's pods: `<name>-<i>`, for i
    below its replicas)."""

    def pods(self) -> list[snapshot.PodView]:
        """Each Deployment's pods, with the role label they were born with (their template's)
        or were given since."""
        out = []
        for d in self.deployments.values():
            template = self.pod_templates.get(d.name) or {}
            born = ((template.get("metadata") or {}).get("labels") or {}).get(naming.LABEL_ROLE)
            for i in range(d.replicas):
                name = f"{d.name}-{i}"
                out.append(snapshot.PodView(name, d.template_hash, self.roles.get(name, born)))
        return out

    def pod_roles(self) -> dict[str, set[str | None]]:
        """Each revision (by hash) with pods: the roles its pods carry."""
        out: dict[str, set[str | None]] = {}
        for p in self.pods():
            out.setdefault(p.template_hash, set()).add(p.role)
        return out

    def snapshot(self) -> snapshot.Snapshot:
        return snapshot.Snapshot(
            release=snapshot.ReleaseView(
                name=self.name,
                namespace="ns",
                uid="uid-1",
                generation=self.generation,
                spec=self.spec,
                status=self.status,
                annotations=dict(self.annotations),
            ),
            deployments=tuple(self.deployments.values()),
            live_service=self.services.get(self.spec.service.name) if self.spec.service else None,
            preview_service=(
                self.services.get(self.spec.preview_service.name)
                if self.spec.preview_service
                else None
            ),
            now=self.now,
            results=tuple(self.results),
            jobs=tuple(self.jobs.values()),
            group=self.group,
            group_flip_to=self.group_flip_to,
            route=self.route,
            workload=self.workload,
            backends=tuple(
                dataclasses.replace(
                    s, ready_endpoints=self.endpoints.get(n, self.deployments[n].available_replicas)
                )
                for n, s in self.services.items()
                if n in self.deployments
            ),
            config=tuple(
                snapshot.ConfigView(
                    ref.kind,
                    ref.name,
                    config.digest(self.objects[(ref.kind, ref.name)])
                    if (ref.kind, ref.name) in self.objects
                    else None,
                    shared=(ref.kind, ref.name) in self.shared,
                )
                for ref in config.spec_references(self.spec, self.workload)
            ),
            copies=frozenset(self.copies),
            pods=tuple(self.pods()),
            templates=self.templates,
        )

    def reconcile(self) -> plan.Plan:
        result = plan.plan(self.snapshot())
        self.results = []
        for action in result.writes:
            self.apply(action)
            if self.after_each is not None:
                self.after_each()
        for other in (*result.jobs, *result.measurements, *result.notifications, *result.events):
            self.apply(other)
        self.status = result.status
        self.last = result
        return result

    def apply(self, a: Any) -> None:
        self.log.append(a)
        d: snapshot.DeploymentView | None
        if isinstance(a, act.CreateDeployment):
            assert a.name not in self.deployments, f"duplicate create of {a.name}"
            self.deployments[a.name] = snapshot.DeploymentView(
                name=a.name,
                template_hash=a.template_hash,
                revision=a.revision,
                color=a.color,
                spec_replicas=a.replicas,
                template=json.dumps(a.user_template, sort_keys=True),
                config=a.config,
            )
            self.pod_templates[a.name] = a.template
        elif isinstance(a, act.CopyConfig):
            data = self.objects.get((a.kind, a.source))
            assert data is not None and config.digest(data) == a.digest, "the shell refuses it"
            assert a.deployment in self.deployments, "owned by its Deployment: created first"
            self.copies.setdefault((a.kind, a.name), a)
            self.copied.setdefault((a.kind, a.name), dict(data))
        elif isinstance(a, act.ScaleDeployment):
            d = self.deployments[a.name]
            self.deployments[a.name] = dataclasses.replace(
                d, spec_replicas=a.replicas, generation=d.generation + 1
            )
        elif isinstance(a, act.LabelDeployment):
            d = self.deployments[a.name]
            self.deployments[a.name] = dataclasses.replace(d, color=a.color, revision=a.revision)
        elif isinstance(a, act.RestartDeployment):
            d = self.deployments[a.name]
            if d.restarted_at != a.at:  # a new pod template: its controller rolls the pods
                self.deployments[a.name] = dataclasses.replace(
                    d, restarted_at=a.at, generation=d.generation + 1
                )
        elif isinstance(a, act.DeleteDeployment):
            self.deployments.pop(a.name, None)
            for key, c in list(self.copies.items()):  # the garbage collector: owned by it
                if c.deployment == a.name:
                    del self.copies[key], self.copied[key]
        elif isinstance(a, act.AdoptWorkload):
            assert self.workload is not None and self.workload.name == a.name
            self.workload = dataclasses.replace(
                self.workload, adopted_by=self.name, original_replicas=a.replicas
            )
        elif isinstance(a, act.ScaleWorkload):
            assert self.workload is not None and self.workload.name == a.name
            self.workload = dataclasses.replace(
                self.workload,
                spec_replicas=a.replicas,
                available_replicas=min(a.replicas, self.workload.available_replicas),
                scaled=a.drained,
                replicas_manager=naming.MANAGER,
            )
        elif isinstance(a, act.ApplyService):
            old = self.services.get(a.name)
            self.services[a.name] = snapshot.ServiceView(
                a.name,
                dict(a.selector),
                owned=old.owned if old else True,
                ports=naming.ports(a.ports) if a.type else old.ports if old else (),
                type=a.type or (old.type if old else "ClusterIP"),
                adopted_selector=a.original,  # the annotation, applied with the selector
            )
        elif isinstance(a, act.ApplyBackend):
            self.services[a.name] = snapshot.ServiceView(
                a.name, dict(a.selector), owned=False, ports=naming.ports(a.ports)
            )
        elif isinstance(a, act.ApplyRoute):
            if a.resource_version is not None:
                assert self.route is not None and a.resource_version == self.route.resource_version
            rv = str(int(self.route.resource_version or 0) + 1) if self.route else "1"
            self.route = snapshot.RouteView(
                a.name, owned=True, spec=a.spec, resource_version=rv, accepted=self.gateway_accepts
            )
        elif isinstance(a, act.SetPodRole):
            assert any(p.name == a.pod for p in self.pods()), f"no pod {a.pod}"
            self.roles[a.pod] = a.role
        elif isinstance(a, act.Measure):
            self.requested.append(a)
        elif isinstance(a, act.CreateJob):
            assert a.name not in self.jobs, f"a second Job {a.name}"
            self.jobs[a.name] = snapshot.JobView(
                a.name, a.check, a.stage, a.template_hash, created_at=self.now
            )
        elif isinstance(a, act.ClearCommands):
            for key in a.keys:
                self.annotations.pop(key, None)
        elif isinstance(a, act.RestoreTemplate):
            body = self.spec.model_dump(by_alias=True, exclude_none=True)
            body["template"] = a.template
            self.set_spec(api.ReleaseSpec.model_validate(body))

    def set_spec(self, new: api.ReleaseSpec) -> None:
        self.spec = new
        self.generation += 1

    def settle(self, name: str | None = None, available: int | None = None) -> None:
        """The Deployment controller and kubelet catch up: `available` pods (default: all);
        the adopted Deployment's pods too."""
        if self.workload is not None and name is None:
            self.workload = dataclasses.replace(
                self.workload, available_replicas=self.workload.spec_replicas
            )
        for key, d in self.deployments.items():
            if name is not None and key != name:
                continue
            n = d.spec_replicas if available is None else min(available, d.spec_replicas)
            # it reports progress on its first sync and whenever more pods are up (Progressing)
            now = (d.spec_replicas, n, n)
            before = (d.updated_replicas, d.ready_replicas, d.available_replicas)
            progressed = d.observed_generation == 0 or any(map(int.__gt__, now, before))
            self.deployments[key] = dataclasses.replace(
                d,
                observed_generation=d.generation,
                replicas=d.spec_replicas,
                updated_replicas=d.spec_replicas,
                ready_replicas=n,
                available_replicas=n,
                progressed_at=self.now if progressed else d.progressed_at,
            )

    def by_hash(self, template_hash: str) -> snapshot.DeploymentView:
        for d in self.deployments.values():
            if d.template_hash == template_hash:
                return d
        raise KeyError(template_hash)

    def live_selector(self) -> dict[str, str]:
        assert self.spec.service is not None
        return self.services[self.spec.service.name].selector

    def weights(self) -> dict[str, int]:
        """The route's live rule: backend Service name -> weight."""
        assert self.route is not None
        live = next(r for r in self.route.spec["rules"] if r["name"] == "live")
        return {b["name"]: b["weight"] for b in live["backendRefs"]}

    def preview_backend(self) -> str | None:
        assert self.route is not None
        rule = next((r for r in self.route.spec["rules"] if r["name"] == "preview"), None)
        return rule["backendRefs"][0]["name"] if rule else None

    def live_hash(self) -> str | None:
        """The revision the live Service selects; a worker's: the one whose pods are live."""
        if self.spec.service is None:
            live = [h for h, roles in self.pod_roles().items() if roles == {"live"}]
            return live[0] if len(live) == 1 else None
        svc = self.services.get(self.spec.service.name)
        return svc.selector.get(naming.LABEL_HASH) if svc else None

    def go_live(self) -> World:
        """Reconcile, every pod becoming available, until the spec's revision is live and the
        Release Healthy for its generation (a first release: two reconciles). Fails if it never
        gets there (a check, a manual promotion or a pause holds it)."""
        for _ in range(5):
            self.reconcile()
            if (
                self.status.phase == "Healthy"
                and self.status.observed_generation == self.generation
                and self.live_hash() == self.spec_hash()
            ):
                return self
            self.settle()
        raise AssertionError(f"not live: {self.status.phase}, {self.status.conditions}")

    def spec_hash(self) -> str:
        """The spec's revision (spec.workloadRef: its Deployment's template)."""
        if self.spec.template is None and self.workload is not None:
            template = api.PodTemplate.model_validate(self.workload.template)
            return hash_of(self.spec.model_copy(update={"template": template}), self)
        return hash_of(self.spec, self)

    def serving(self) -> int:
        """Pods available behind the live Service's selector, of whatever revisions it selects."""
        sel = self.live_selector()
        return sum(
            d.available_replicas
            for d in self.deployments.values()
            if all(
                naming.pod_labels(self.name, d.template_hash).get(k) == v for k, v in sel.items()
            )
        )

    def tick(self, seconds: float) -> None:
        self.now += datetime.timedelta(seconds=seconds)

    def events(self) -> list[str]:
        return [a.reason for a in self.log if isinstance(a, act.RecordEvent)]

    def answer(self, value: Any = None, error: str | None = None) -> list[act.Measure]:
        """The shell takes every measurement asked for so far: each gets `value` (or `error`)."""
        asked, self.requested = self.requested, []
        for m in asked:
            self.results.append(
                snapshot.CheckResult(
                    m.stage, m.name, m.template_hash, m.seq, self.now, value=value, error=error
                )
            )
        return asked

    def finish_job(self, name: str, ok: bool) -> None:
        j = self.jobs[name]
        self.jobs[name] = dataclasses.replace(j, succeeded=ok, failed=not ok, finished_at=self.now)
