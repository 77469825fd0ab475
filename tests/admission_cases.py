"""Invalid Releases, one mistake each, and the field the refusal must name.

Every field of a Release that ends up in another object (a Deployment, its pods, a Service) is
checked with that object's own rules, and labels Greenlight reserves are refused. The same table
drives tests/unit/test_admission.py (the pydantic models the operator re-validates with) and
tests/e2e/test_admission.py (the real API server, through the generated CRD).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from greenlight.api import commands
from greenlight.api import release as api

Body = dict[str, Any]


def valid(name: str = "web") -> Body:
    """A Release that is accepted: every case below changes one thing in it."""
    return {
        "apiVersion": "greenlight.dev/v1alpha1",
        "kind": "Release",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "template": {
                "metadata": {
                    "labels": {"app": name, "example.com/team": "shop"},
                    "annotations": {"example.com/owner": "team-a"},
                },
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "registry.example/web:1.0.0",
                            "ports": [{"name": "http", "containerPort": 8080}],
                        },
                        {
                            "name": "sidecar",
                            "image": "registry.example/proxy:2",
                            "readinessProbe": {"tcpSocket": {"port": 9000}},
                        },
                    ]
                },
            },
            "healthCheck": {"httpGet": {"path": "/healthz", "port": "http"}},
            "service": {
                "name": name,
                "ports": [
                    {"name": "http", "port": 80, "targetPort": "http"},
                    {"port": 443, "targetPort": 8443},
                ],
            },
            "previewService": {"name": f"{name}-preview"},
            "progressDeadlineSeconds": 600,
        },
    }


def valid_group(name: str = "shop") -> Body:
    """A ReleaseGroup that is accepted (its members need not exist)."""
    return {
        "apiVersion": "greenlight.dev/v1alpha1",
        "kind": "ReleaseGroup",
        "metadata": {"name": name},
        "spec": {"members": ["web", "api"]},
    }


@dataclass(frozen=True)
class Case:
    id: str
    change: Callable[[Body], None]
    field: str
    """What the refusal must name: the field's path as the API server writes it."""
    by: str = "api"
    """Who refuses it: "api" (the API server: the CRD's schema and CEL rules, or the
    greenlight-commands admission policy) or "operator" (the API server cannot judge it: the
    operator refuses it before creating anything, with the models, and the Release says why)."""
    kind: str = "Release"

    def body(self, name: str = "web") -> Body:
        b = copy.deepcopy(valid(name) if self.kind == "Release" else valid_group(name))
        self.change(b)
        return b


def put(path: str, value: Any) -> Callable[[Body], None]:
    """Set a dotted path (list indexes as numbers): put("spec.service.ports.0.port", 0)."""

    def change(body: Body) -> None:
        *parents, last = path.split(".")
        node: Any = body
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _label(key: str, value: str) -> Callable[[Body], None]:
    def change(body: Body) -> None:
        body["spec"]["template"]["metadata"]["labels"][key] = value

    return change


def annotation(key: str) -> Callable[[Body], None]:
    def change(body: Body) -> None:
        body["spec"]["template"]["metadata"]["annotations"][key] = "x"

    return change


def drop(path: str) -> Callable[[Body], None]:
    def change(body: Body) -> None:
        *parents, last = path.split(".")
        node: Any = body
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        del node[last]

    return change


PRE = "spec.strategy.blueGreen.prePromotion"
SMOKE = {"name": "smoke", "http": {"url": "http://x"}}
SECRET = {"secretKeyRef": {"name": "s", "key": "k"}}
TWO_VALUES = {"name": "s", "http": {"url": "http://x", "headers": [
    {"name": "A", "value": "1", "valueFrom": SECRET}]}}  # fmt: skip


def command(key: str, value: str) -> Callable[[Body], None]:
    def change(body: Body) -> None:
        body["metadata"].setdefault("annotations", {})[key] = value

    return change


def job(template_spec: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A job check whose Job spec is `fields` and whose pod spec is `template_spec`."""
    pod = {"containers": [{"name": "smoke", "image": "curlimages/curl:8"}], **template_spec}
    return {"name": "smoke", "job": {"template": {"spec": pod}, **fields}}


def notify(*names: str, url: str = "http://hooks.example/x") -> Callable[[Body], None]:
    def change(body: Body) -> None:
        body["spec"]["notifications"] = [{"name": n, "webhook": {"url": url}} for n in names]

    return change


GW = "spec.traffic.gatewayAPI"
GATEWAY = {
    "parentRefs": [{"name": "public", "namespace": "gateways"}],
    "previewMatches": [{"headers": [{"name": "x-canary", "value": "1"}]}],
}


def gateway(**fields: Any) -> Callable[[Body], None]:
    """spec.traffic.gatewayAPI: the valid one above with `fields` changed."""

    def change(body: Body) -> None:
        body["spec"]["traffic"] = {"gatewayAPI": {**GATEWAY, **fields}}

    return change


def gate(check: dict[str, Any]) -> Callable[[Body], None]:
    def change(body: Body) -> None:
        body["spec"]["strategy"] = {"blueGreen": {"prePromotion": [check]}}

    return change


POST = "spec.strategy.blueGreen.postPromotion"
LATENCY = {"name": "latency", "query": "q", "baselineQuery": "b"}
ERRORS = {"name": "errors", "test": "proportion", "query": "e", "baselineQuery": "be",
          "totalQuery": "t", "baselineTotalQuery": "bt"}  # fmt: skip


def judge(**fields: Any) -> dict[str, Any]:
    """A compare check (time-shifted, so that postPromotion takes it) with `fields` changed."""
    compare = {"address": "http://p:9090", "baseline": "before", "metrics": [LATENCY, ERRORS]}
    return {"name": "judge", "compare": {**compare, **fields}}


def post(check: dict[str, Any]) -> Callable[[Body], None]:
    def change(body: Body) -> None:
        body["spec"]["strategy"] = {"blueGreen": {"postPromotion": [check]}}

    return change


def worker_handover(check: dict[str, Any]) -> Callable[[Body], None]:
    def change(body: Body) -> None:
        del body["spec"]["service"], body["spec"]["previewService"]
        handover = {"policy": "handover", "checks": [check]}
        body["spec"]["strategy"] = {"blueGreen": {"handover": handover}}

    return change


def analysis(check: dict[str, Any]) -> Callable[[Body], None]:
    def change(body: Body) -> None:
        steps = [{"setWeight": 50}, {"analysis": {"checks": [check]}}]
        body["spec"]["strategy"] = {"rolling": {"steps": steps}}

    return change


def no_service(body: Body) -> None:
    """A worker: no spec.service (and no preview Service, unless a case puts one back)."""
    del body["spec"]["service"]
    body["spec"].pop("previewService", None)


def worker_with_preview(body: Body) -> None:
    del body["spec"]["service"]


def blue_green(**fields: Any) -> Callable[[Body], None]:
    def change(body: Body) -> None:
        body["spec"]["strategy"] = {"blueGreen": fields}

    return change


BG = "spec.strategy.blueGreen"


def same_name_as_live(body: Body) -> None:
    body["spec"]["previewService"]["name"] = body["spec"]["service"]["name"]


def _many(body: Body, what: str, n: int) -> None:
    body["spec"]["template"]["metadata"][what] = {f"example.com/k{i}": "v" for i in range(n)}


LABELS = "spec.template.metadata.labels"
ANNOTATIONS = "spec.template.metadata.annotations"
POD = "spec.template.spec"
C0 = "spec.template.spec.containers[0]"
HC = "spec.healthCheck"
SVC = "spec.service"
P0 = "spec.service.ports[0]"

WORKLOAD = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}


def workload(**fields: Any) -> Callable[[Body], None]:
    """spec.workloadRef instead of spec.template, with `fields` changed."""

    def change(body: Body) -> None:
        del body["spec"]["template"]
        body["spec"]["workloadRef"] = {**WORKLOAD, **fields}

    return change


def _also(*changes: Callable[[Body], None]) -> Callable[[Body], None]:
    def change(body: Body) -> None:
        for c in changes:
            c(body)

    return change


CASES = [
    # spec.workloadRef: exactly one of it and spec.template; a Deployment; a known policy
    Case("workload-ref-and-template", put("spec.workloadRef", WORKLOAD), "spec.workloadRef"),
    Case("neither-template-nor-workload-ref", drop("spec.template"), "spec.template"),
    Case("workload-ref-kind", workload(kind="StatefulSet"), "spec.workloadRef.kind"),
    Case(
        "workload-ref-api-version",
        workload(apiVersion="apps/v1beta1"),
        "spec.workloadRef.apiVersion",
    ),
    Case("workload-ref-name", workload(name="Web"), "spec.workloadRef.name"),
    Case("workload-ref-scale-down", workload(scaleDown="always"), "spec.workloadRef.scaleDown"),
    Case(
        "workload-ref-undo-writes-spec",
        _also(workload(), put("spec.undoWritesSpec", True)),
        "spec.undoWritesSpec",
    ),
    # the Release itself: its name prefixes Deployment and pod names
    Case("name-too-long", put("metadata.name", "a" * 53), "metadata.name"),
    Case("replicas-negative", put("spec.replicas", -1), "spec.replicas"),
    Case("replicas-beyond-int32", put("spec.replicas", 2**31), "spec.replicas"),
    Case("deadline-zero", put("spec.progressDeadlineSeconds", 0), "spec.progressDeadlineSeconds"),
    Case(
        "deadline-beyond-int32",
        put("spec.progressDeadlineSeconds", 2**31),
        "spec.progressDeadlineSeconds",
    ),
    Case("restart-at-not-a-time", put("spec.restartAt", "yesterday"), "spec.restartAt"),
    Case("restart-at-no-date", put("spec.restartAt", "12:00:00Z"), "spec.restartAt"),
    # pod labels: qualified-name keys, 63-character values, and the keys Greenlight sets
    Case("label-key-space", _label("my label", "x"), LABELS),
    Case("label-key-two-slashes", _label("a/b/c", "x"), LABELS),
    Case("label-key-name-too-long", _label("a" * 64, "x"), LABELS),
    Case("label-key-prefix-uppercase", _label("Example.com/team", "x"), LABELS),
    Case("label-key-prefix-too-long", _label("a" * 254 + "/x", "x"), LABELS),
    Case("label-key-empty-name", _label("example.com/", "x"), LABELS),
    Case("label-value-too-long", _label("tier", "v" * 64), LABELS),
    Case("label-value-space", _label("tier", "front end"), LABELS),
    Case("label-value-leading-dash", _label("tier", "-web"), LABELS),
    Case("label-reserved-release", _label("greenlight.dev/release", "other"), LABELS),
    Case("label-reserved-template-hash", _label("greenlight.dev/template-hash", "abc"), LABELS),
    Case("label-reserved-color", _label("greenlight.dev/color", "blue"), LABELS),
    Case("label-reserved-revision", _label("greenlight.dev/revision", "1"), LABELS),
    Case("labels-too-many", lambda b: _many(b, "labels", api.MAX_LABELS + 1), LABELS),
    # pod annotations: qualified-name keys
    Case("annotation-key-space", annotation("my note"), ANNOTATIONS),
    Case("annotation-key-empty-name", annotation("example.com/"), ANNOTATIONS),
    Case(
        "annotations-too-many",
        lambda b: _many(b, "annotations", api.MAX_ANNOTATIONS + 1),
        ANNOTATIONS,
    ),
    # containers: DNS-1123 label names, unique; an image; ports; readiness probes
    Case(
        "container-name-uppercase", put("spec.template.spec.containers.0.name", "App"), f"{C0}.name"
    ),
    Case(
        "container-name-underscore",
        put("spec.template.spec.containers.0.name", "my_app"),
        f"{C0}.name",
    ),
    Case(
        "container-name-too-long",
        put("spec.template.spec.containers.0.name", "a" * 64),
        f"{C0}.name",
    ),
    Case("container-name-empty", put("spec.template.spec.containers.0.name", ""), f"{C0}.name"),
    Case(
        "container-name-duplicate",
        put("spec.template.spec.containers.1.name", "app"),
        "spec.template.spec.containers",
    ),
    Case(
        "containers-none", put("spec.template.spec.containers", []), "spec.template.spec.containers"
    ),
    Case("image-empty", put("spec.template.spec.containers.0.image", ""), f"{C0}.image"),
    Case(
        "image-trailing-space",
        put("spec.template.spec.containers.0.image", "web:1 "),
        f"{C0}.image",
    ),
    Case("image-missing", drop("spec.template.spec.containers.0.image"), f"{C0}.image"),
    Case(
        "container-port-zero",
        put("spec.template.spec.containers.0.ports.0.containerPort", 0),
        f"{C0}.ports[0].containerPort",
    ),
    Case(
        "container-port-too-big",
        put("spec.template.spec.containers.0.ports.0.containerPort", 70000),
        f"{C0}.ports[0].containerPort",
    ),
    Case(
        "container-port-name-too-long",
        put("spec.template.spec.containers.0.ports.0.name", "a-long-port-name"),
        f"{C0}.ports[0].name",
    ),
    Case(
        "container-port-name-double-dash",
        put("spec.template.spec.containers.0.ports.0.name", "http--alt"),
        f"{C0}.ports[0].name",
    ),
    Case(
        "container-port-name-no-letter",
        put("spec.template.spec.containers.0.ports.0.name", "8080"),
        f"{C0}.ports[0].name",
    ),
    Case(
        "container-probe-two-handlers",
        put(
            "spec.template.spec.containers.1.readinessProbe",
            {"tcpSocket": {"port": 9000}, "httpGet": {"port": 9000}},
        ),
        "spec.template.spec.containers[1].readinessProbe",
    ),
    Case(
        "container-probe-port-zero",
        put("spec.template.spec.containers.1.readinessProbe.tcpSocket.port", 0),
        "spec.template.spec.containers[1].readinessProbe.tcpSocket.port",
    ),
    Case(
        "image-pull-policy",
        put("spec.template.spec.containers.0.imagePullPolicy", "Sometimes"),
        f"{C0}.imagePullPolicy",
    ),
    # the rest of the pod spec Greenlight looks at: what a Deployment's pods may not have
    Case(
        "restart-policy", put("spec.template.spec.restartPolicy", "Never"), f"{POD}.restartPolicy"
    ),
    Case(
        "active-deadline",
        put("spec.template.spec.activeDeadlineSeconds", 30),
        f"{POD}.activeDeadlineSeconds",
    ),
    Case(
        "init-container-name-uppercase",
        put("spec.template.spec.initContainers", [{"name": "Init", "image": "busybox:1"}]),
        f"{POD}.initContainers[0].name",
    ),
    Case(
        "init-container-image-empty",
        put("spec.template.spec.initContainers", [{"name": "init", "image": ""}]),
        f"{POD}.initContainers[0].image",
    ),
    Case(
        "init-container-named-like-a-container",
        put("spec.template.spec.initContainers", [{"name": "app", "image": "busybox:1"}]),
        f"{POD}.initContainers",
    ),
    Case(
        "volume-name-uppercase",
        put("spec.template.spec.volumes", [{"name": "Data", "emptyDir": {}}]),
        f"{POD}.volumes[0].name",
    ),
    Case(
        "volume-name-duplicate",
        put("spec.template.spec.volumes", [{"name": "data", "emptyDir": {}}] * 2),
        f"{POD}.volumes",
    ),
    # the health check (becomes each container's readinessProbe)
    Case("health-port-too-big", put("spec.healthCheck.httpGet.port", 70000), f"{HC}.httpGet.port"),
    Case(
        "health-port-name-uppercase",
        put("spec.healthCheck.httpGet.port", "HTTP"),
        f"{HC}.httpGet.port",
    ),
    Case(
        "health-port-missing", put("spec.healthCheck.httpGet", {"path": "/"}), f"{HC}.httpGet.port"
    ),
    Case(
        "health-tcp-port-name-dash",
        put("spec.healthCheck", {"tcpSocket": {"port": "-http"}}),
        f"{HC}.tcpSocket.port",
    ),
    Case(
        "health-grpc-port-zero", put("spec.healthCheck", {"grpc": {"port": 0}}), f"{HC}.grpc.port"
    ),
    Case(
        "health-exec-no-command",
        put("spec.healthCheck", {"exec": {"command": []}}),
        f"{HC}.exec.command",
    ),
    Case("health-scheme", put("spec.healthCheck.httpGet.scheme", "FTP"), f"{HC}.httpGet.scheme"),
    Case(
        "health-header-name",
        put("spec.healthCheck.httpGet.httpHeaders", [{"name": "X Trace", "value": "1"}]),
        f"{HC}.httpGet.httpHeaders[0].name",
    ),
    Case(
        "health-two-handlers",
        put("spec.healthCheck.tcpSocket", {"port": 8080}),
        HC,
    ),
    Case("health-period-zero", put("spec.healthCheck.periodSeconds", 0), f"{HC}.periodSeconds"),
    Case("health-timeout-zero", put("spec.healthCheck.timeoutSeconds", 0), f"{HC}.timeoutSeconds"),
    Case(
        "health-termination-grace",
        put("spec.healthCheck.terminationGracePeriodSeconds", 30),
        f"{HC}.terminationGracePeriodSeconds",
    ),
    # the live Service: DNS-1035 name, IANA port names, port numbers, targetPort int-or-name
    Case("service-name-uppercase", put("spec.service.name", "Web"), f"{SVC}.name"),
    Case("service-name-leading-digit", put("spec.service.name", "1web"), f"{SVC}.name"),
    Case("service-name-dot", put("spec.service.name", "web.shop"), f"{SVC}.name"),
    Case("service-name-too-long", put("spec.service.name", "w" * 64), f"{SVC}.name"),
    Case("service-port-zero", put("spec.service.ports.0.port", 0), f"{P0}.port"),
    Case("service-port-too-big", put("spec.service.ports.0.port", 65536), f"{P0}.port"),
    Case("service-port-name-uppercase", put("spec.service.ports.0.name", "HTTP"), f"{P0}.name"),
    Case(
        "service-port-name-too-long",
        put("spec.service.ports.0.name", "http-and-more-xy"),
        f"{P0}.name",
    ),
    Case("service-port-name-no-letter", put("spec.service.ports.0.name", "80"), f"{P0}.name"),
    Case("target-port-zero", put("spec.service.ports.0.targetPort", 0), f"{P0}.targetPort"),
    Case("target-port-too-big", put("spec.service.ports.0.targetPort", 65536), f"{P0}.targetPort"),
    Case(
        "target-port-underscore",
        put("spec.service.ports.0.targetPort", "http_alt"),
        f"{P0}.targetPort",
    ),
    Case(
        "target-port-digits-string",
        put("spec.service.ports.0.targetPort", "8080"),
        f"{P0}.targetPort",
    ),
    Case("service-port-protocol", put("spec.service.ports.0.protocol", "HTTP"), f"{P0}.protocol"),
    Case("service-type", put("spec.service.type", "ExternalName"), f"{SVC}.type"),
    Case("service-port-names-duplicate", put("spec.service.ports.1.name", "http"), f"{SVC}.ports"),
    Case(
        "service-port-name-collides-with-default",
        put("spec.service.ports.0.name", "port-443"),
        f"{SVC}.ports",
    ),
    Case("service-port-duplicate", put("spec.service.ports.1.port", 80), f"{SVC}.ports"),
    Case("service-ports-missing", put("spec.service.ports", []), f"{SVC}.ports"),
    # the preview Service
    Case(
        "preview-name-uppercase",
        put("spec.previewService.name", "Web-Preview"),
        "spec.previewService.name",
    ),
    Case(
        "preview-name-same-as-live",
        same_name_as_live,
        "spec.previewService.name",
    ),
    Case(
        "preview-port-name",
        put("spec.previewService.ports", [{"name": "Http", "port": 80}]),
        "spec.previewService.ports[0].name",
    ),
    Case(
        "preview-ports-duplicate",
        put("spec.previewService.ports", [{"port": 80}, {"port": 80}]),
        "spec.previewService.ports",
    ),
    # promotion gates (a CEL condition that does not parse or type-check is refused by the
    # operator: the API server cannot parse the CEL inside a string; the rows by="operator")
    Case("check-no-provider", gate({"name": "smoke"}), f"{PRE}[0]"),
    Case(
        "check-two-providers",
        gate({"name": "smoke", "http": {"url": "http://x"}, "webhook": {"url": "http://y"}}),
        f"{PRE}[0]",
    ),
    Case("check-zero-interval", gate({**SMOKE, "interval": "0s"}), f"{PRE}[0].interval"),
    Case("check-bad-interval", gate({**SMOKE, "interval": "ten seconds"}), f"{PRE}[0].interval"),
    Case("check-name-uppercase", gate({**SMOKE, "name": "Smoke"}), f"{PRE}[0].name"),
    Case("check-count-zero", gate({**SMOKE, "count": 0}), f"{PRE}[0].count"),
    Case(
        "check-url-not-http", gate({"name": "s", "http": {"url": "ftp://x"}}), f"{PRE}[0].http.url"
    ),
    Case(
        "check-job-without-containers",
        gate({"name": "m", "job": {"template": {"spec": {"containers": []}}}}),
        f"{PRE}[0].job.template.spec.containers",
    ),
    Case(
        "check-prometheus-without-condition",
        gate({"name": "p", "prometheus": {"address": "http://p", "query": "up"}}),
        f"{PRE}[0]",  # the models name the check; the API server also .successCondition
    ),
    Case("check-header-two-values", gate(TWO_VALUES), f"{PRE}[0].http.headers[0]"),
    # compare (canary judgement): where it is sound, its metrics, weights and scores
    Case("compare-in-pre-promotion", gate(judge()), PRE),
    Case("compare-post-promotion-concurrent", post(judge(baseline="concurrent")), POST),
    Case("compare-handover", worker_handover(judge()), "spec.strategy.blueGreen.handover.checks"),
    Case(
        "compare-without-baseline-query",
        post(judge(metrics=[{"name": "latency", "query": "q"}])),
        f"{POST}[0].compare.metrics[0].baselineQuery",
    ),
    Case(
        "compare-weights-not-100",
        post(judge(metrics=[{**LATENCY, "weight": 50}, {**ERRORS, "weight": 30}])),
        f"{POST}[0].compare.metrics",
    ),
    Case(
        "compare-weights-some-missing",
        post(judge(metrics=[{**LATENCY, "weight": 100}, ERRORS])),
        f"{POST}[0].compare.metrics",
    ),
    Case(
        "compare-scores-out-of-order",
        post(judge(passScore=60, marginalScore=80)),
        f"{POST}[0].compare.marginalScore",
    ),
    Case("compare-score-above-100", post(judge(passScore=101)), f"{POST}[0].compare.passScore"),
    Case(
        "compare-proportion-without-totals",
        post(judge(metrics=[{**LATENCY, "test": "proportion"}])),
        f"{POST}[0].compare.metrics[0]",  # (the API server: .totalQuery)
    ),
    Case(
        "compare-direction-unknown",
        post(judge(metrics=[{**LATENCY, "direction": "up"}])),
        f"{POST}[0].compare.metrics[0].direction",
    ),
    Case(
        "compare-tolerance-negative",
        post(judge(metrics=[{**LATENCY, "tolerance": -0.1}])),
        f"{POST}[0].compare.metrics[0].tolerance",
    ),
    Case(
        "compare-with-condition",
        post({**judge(), "successCondition": "result > 0"}),
        f"{POST}[0]",  # (the API server: .successCondition)
    ),
    Case(
        "compare-metrics-duplicate",
        analysis(judge(baseline="concurrent", metrics=[LATENCY, LATENCY])),
        "spec.strategy.rolling.steps[1].analysis.checks[0].compare.metrics",
    ),
    Case(
        "compare-no-metrics",
        analysis(judge(baseline="concurrent", metrics=[])),
        "spec.strategy.rolling.steps[1].analysis.checks[0].compare.metrics",
    ),
    Case(
        "prometheus-step-without-range",
        gate(
            {
                "name": "p",
                "prometheus": {"address": "http://p", "query": "up", "step": "10s"},
                "successCondition": "true",
            }
        ),
        f"{PRE}[0].prometheus.step",
    ),
    # templates: a templateRef with a provider, args without a templateRef
    Case(
        "template-ref-and-provider",
        gate({**SMOKE, "templateRef": {"name": "t"}}),
        f"{PRE}[0]",
    ),
    Case(
        "args-without-template", gate({**SMOKE, "args": [{"name": "a", "value": "1"}]}), f"{PRE}[0]"
    ),  # (the API server: .args)
    Case(
        "template-kind-unknown",
        gate({"name": "t", "templateRef": {"name": "t", "kind": "Template"}}),
        f"{PRE}[0].templateRef.kind",
    ),
    Case(
        "check-names-duplicate",
        lambda b: b["spec"].update(strategy={"blueGreen": {"prePromotion": [SMOKE, SMOKE]}}),
        PRE,
    ),
    # URLs the operator sends requests to: a host (or a $(VAR) naming one), known $(VAR)s only
    Case(
        "check-url-no-host", gate({"name": "s", "http": {"url": "http://"}}), f"{PRE}[0].http.url"
    ),
    Case(
        "check-url-empty-host",
        gate({"name": "s", "http": {"url": "http:///healthz"}}),
        f"{PRE}[0].http.url",
    ),
    Case(
        "check-url-port-without-host",
        gate({"name": "s", "http": {"url": "http://:8080/healthz"}}),
        f"{PRE}[0].http.url",
    ),
    Case(
        "check-url-unknown-variable",
        gate({"name": "s", "http": {"url": "http://$(PREVIEW_SVC)/healthz"}}),
        f"{PRE}[0].http.url",
    ),
    Case(
        "check-url-unknown-variable-after-escape",
        gate({"name": "s", "http": {"url": "http://$(PREVIEW_SERVICE)/$$$(PATH)"}}),
        f"{PRE}[0].http.url",
    ),
    Case(
        "webhook-url-unknown-variable",
        gate({"name": "w", "webhook": {"url": "http://hooks.example/$(RELEASE_NAME)"}}),
        f"{PRE}[0].webhook.url",
    ),
    Case(
        "prometheus-address-no-host",
        gate(
            {
                "name": "p",
                "prometheus": {"address": "https://", "query": "up"},
                "successCondition": "result > 0",
            }
        ),
        f"{PRE}[0].prometheus.address",
    ),
    Case(
        "check-expected-status-below-100",
        gate({"name": "s", "http": {"url": "http://x", "expectedStatus": [200, 99]}}),
        f"{PRE}[0].http.expectedStatus[1]",
    ),
    Case(
        "check-expected-status-above-599",
        gate({"name": "s", "http": {"url": "http://x", "expectedStatus": [600]}}),
        f"{PRE}[0].http.expectedStatus[0]",
    ),
    # a check's Job: what the Job API would refuse, in the fields Greenlight models
    Case(
        "job-restart-policy-always",
        gate(job({"restartPolicy": "Always"})),
        f"{PRE}[0].job.template.spec.restartPolicy",
    ),
    Case(
        "job-container-name-uppercase",
        gate(job({"containers": [{"name": "Smoke", "image": "curlimages/curl:8"}]})),
        f"{PRE}[0].job.template.spec.containers[0].name",
    ),
    Case(
        "job-container-image-missing",
        gate(job({"containers": [{"name": "smoke"}]})),
        f"{PRE}[0].job.template.spec.containers[0].image",
    ),
    Case(
        "job-container-names-duplicate",
        gate(job({"containers": [{"name": "a", "image": "x:1"}, {"name": "a", "image": "y:1"}]})),
        f"{PRE}[0].job.template.spec.containers",
    ),
    Case(
        "job-backoff-limit-negative",
        gate(job({}, backoffLimit=-1)),
        f"{PRE}[0].job.backoffLimit",
    ),
    Case(
        "job-active-deadline-negative",
        gate(job({}, activeDeadlineSeconds=-1)),
        f"{PRE}[0].job.activeDeadlineSeconds",
    ),
    Case(
        "job-selector-without-manual-selector",
        gate(job({}, selector={"matchLabels": {"app": "smoke"}})),
        f"{PRE}[0].job.selector",
    ),
    # notifications
    Case("notification-names-duplicate", notify("team", "team"), "spec.notifications"),
    Case(
        "notification-url-no-host",
        notify("team", url="https:///hook"),
        "spec.notifications[0].webhook.url",
    ),
    # command annotations (the admission policy greenlight-commands: CRD rules cannot read
    # metadata.annotations); a ReleaseGroup's go to its members as their own
    *(
        Case(
            f"command-{key.rpartition('/')[2]}-{value or 'empty'}",
            command(key, value),
            f"metadata.annotations[{key}]",
        )
        for key, value in (
            (commands.PROMOTE, "false"),
            (commands.PROMOTE, "skip"),
            (commands.ABORT, "false"),
            (commands.RETRY, "now"),
            (commands.UNDO, "previous"),
            (commands.UNDO, "0"),
            (commands.UNDO, "-1"),
        )
    ),
    Case(
        "group-command-promote-false",
        command(commands.PROMOTE, "false"),
        f"metadata.annotations[{commands.PROMOTE}]",
        kind="ReleaseGroup",
    ),
    Case(
        "group-command-abort-yes",
        command(commands.ABORT, "yes"),
        f"metadata.annotations[{commands.ABORT}]",
        kind="ReleaseGroup",
    ),
    Case(
        "group-command-undo-revision",
        command(commands.UNDO, "3"),
        f"metadata.annotations[{commands.UNDO}]",
        kind="ReleaseGroup",
    ),
    # spec.traffic.gatewayAPI: what would make a bad HTTPRoute, or send live traffic astray
    Case("gateway-no-parent", gateway(parentRefs=[]), f"{GW}.parentRefs"),
    Case(
        "gateway-parent-name", gateway(parentRefs=[{"name": "Public"}]), f"{GW}.parentRefs[0].name"
    ),
    Case(
        "gateway-parent-port",
        gateway(parentRefs=[{"name": "p", "port": 0}]),
        f"{GW}.parentRefs[0].port",
    ),
    Case("gateway-hostname", gateway(hostnames=["Shop Example"]), f"{GW}.hostnames[0]"),
    Case(
        "gateway-preview-matches-everything",
        gateway(previewMatches=[{"path": {"type": "PathPrefix", "value": "/"}}]),
        f"{GW}.previewMatches",
    ),
    Case(
        "gateway-path-relative",
        gateway(matches=[{"path": {"type": "PathPrefix", "value": "api"}}]),
        f"{GW}.matches[0].path",
    ),
    Case(
        "gateway-header-match-type",
        gateway(previewMatches=[{"headers": [{"type": "Prefix", "name": "x", "value": "1"}]}]),
        f"{GW}.previewMatches[0].headers[0].type",
    ),
    Case("gateway-method", gateway(matches=[{"method": "FETCH"}]), f"{GW}.matches[0].method"),
    Case(
        "gateway-filter-redirect",
        gateway(filters=[{"type": "RequestRedirect"}]),
        f"{GW}.filters[0].type",
    ),
    Case(
        "gateway-filter-without-settings",
        gateway(filters=[{"type": "URLRewrite"}]),
        f"{GW}.filters[0]",
    ),
    Case("gateway-drain-negative", gateway(drainSeconds=-1), f"{GW}.drainSeconds"),
    # CEL conditions, judged as a type-checker with `result` declared would: the API server
    # cannot (the CEL is inside a string), so the operator refuses them before creating anything
    *(
        Case(f"condition-{id_}", gate({**SMOKE, field: source}), f"{PRE}[0].{field}", by="operator")
        for id_, field, source in (
            ("unparseable", "successCondition", "result.status =="),
            ("undeclared-name", "successCondition", "result.status == 200 && ready"),
            ("misspelt-result", "successCondition", "resutl.status == 200"),
            ("macro-variable-misused", "successCondition", "result.body.items.all(i, j.ok)"),
            ("number", "successCondition", "result.body.count + 1"),
            ("size", "failureCondition", "size(result.body.errors)"),
            ("string-literal", "failureCondition", "'false'"),
            ("list-literal", "successCondition", "[result.status == 200]"),
        )
    ),
    # workers (no spec.service) and the drain gates
    Case("worker-with-preview-service", worker_with_preview, "spec.previewService"),
    Case("worker-behind-a-gateway", _also(no_service, gateway()), "spec.traffic"),
    Case(
        "handover-with-a-service",
        blue_green(handover={"policy": "overlap"}),
        f"{BG}.handover",
    ),
    Case(
        "handover-without-checks-or-timeout",
        _also(no_service, blue_green(handover={"policy": "handover"})),
        f"{BG}.handover",
    ),
    Case(
        "handover-check-of-no-provider",
        _also(no_service, blue_green(handover={"policy": "handover", "checks": [{"name": "x"}]})),
        f"{BG}.handover.checks[0]",
    ),
    Case(
        "scale-down-check-of-no-provider",
        blue_green(scaleDown={"when": [{"name": "conns"}]}),
        f"{BG}.scaleDown.when[0]",
    ),
    Case(
        "scale-down-negative-pace",
        blue_green(scaleDown={"podsPerInterval": -1}),
        f"{BG}.scaleDown.podsPerInterval",
    ),
]
