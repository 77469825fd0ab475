"""Render the CRDs (Release, ReleaseGroup) from the pydantic models: structural schemas (no
$ref, no nulls)."""

from __future__ import annotations

import copy
from typing import Any

import pydantic
import yaml

from greenlight.api import group, release, templates

_DROP = {"title", "$defs", "additionalProperties"}


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """Inline $refs, drop nulls and titles: what apiextensions/v1 calls a structural schema."""
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].split("/")[-1]])
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return _structural({**target, **extra}, defs)
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        variants = [v for v in node["anyOf"] if v.get("type") != "null"]
        if len(variants) == 1:
            rest = {k: v for k, v in node.items() if k not in ("anyOf", "default")}
            if node.get("default") is not None:
                rest["default"] = node["default"]
            return _structural({**variants[0], **rest}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP and not (key == "additionalProperties" and isinstance(value, dict)):
            continue
        if key == "properties":
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key == "default" and value in ({}, []) and node.get("type") != "object":
            continue
        elif key == "const":
            out["enum"] = [value]
        else:
            out[key] = _structural(value, defs)
    if "properties" in out and "type" not in out:
        out["type"] = "object"
    if out.get("x-kubernetes-preserve-unknown-fields") and "type" not in out:
        out["type"] = "object"
    if out.get("type") == "object" and out.get("default") == {}:
        out.pop("default")
    return out


def schema(model: type[pydantic.BaseModel] = release.Release) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    root: dict[str, Any] = _structural(raw, defs)
    root["properties"]["metadata"] = {"type": "object"}
    for key in ("apiVersion", "kind"):
        root["properties"][key] = {"type": "string"}
    root["properties"].get("status", {}).pop("default", None)
    root.pop("required", None)
    root["required"] = ["spec"]
    return root


PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Live", "type": "integer", "jsonPath": ".status.liveRevision"},
    {"name": "Color", "type": "string", "jsonPath": ".status.liveColor"},
    {"name": "Candidate", "type": "integer", "jsonPath": ".status.candidateRevision"},
    {"name": "Step", "type": "integer", "jsonPath": ".status.currentStep"},
    {"name": "Weight", "type": "integer", "jsonPath": ".status.weight", "priority": 1},
    {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
    {"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas", "priority": 1},
    {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


GROUP_COLUMNS: list[dict[str, Any]] = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Members", "type": "string", "jsonPath": ".spec.members"},
    {"name": "Waiting", "type": "string", "jsonPath": ".status.waitingFor"},
    {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


TEMPLATE_COLUMNS: list[dict[str, Any]] = [
    {"name": "Args", "type": "string", "jsonPath": ".spec.args[*].name"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]
TEMPLATES: dict[str, tuple[str, type[pydantic.BaseModel], list[str], str]] = {
    templates.KIND: (templates.PLURAL, templates.CheckTemplate, ["checktmpl"], "Namespaced"),
    templates.CLUSTER_KIND: (
        templates.CLUSTER_PLURAL,
        templates.ClusterCheckTemplate,
        ["cchecktmpl"],
        "Cluster",
    ),
}


def crd(kind: str = release.KIND) -> dict[str, Any]:
    model: type[pydantic.BaseModel]
    scope = "Namespaced"
    subresources: dict[str, Any] = {"status": {}}
    columns: list[dict[str, Any]]
    if kind in TEMPLATES:
        plural, model, short, scope = TEMPLATES[kind]
        columns, subresources = TEMPLATE_COLUMNS, {}
    elif kind == release.KIND:
        plural, model, short, columns = (
            release.PLURAL,
            release.Release,
            ["rel", "gl"],
            PRINTER_COLUMNS,
        )
    else:
        plural, model, short, columns = (
            group.PLURAL,
            group.ReleaseGroup,
            ["relgroup"],
            GROUP_COLUMNS,
        )
    if kind == release.KIND:  # `kubectl scale release`, a HorizontalPodAutoscaler
        subresources["scale"] = {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.availableReplicas",  # the live revision's
            "labelSelectorPath": ".status.selector",
        }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{release.GROUP}"},
        "spec": {
            "group": release.GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short,
                "categories": ["all", "greenlight"],
            },
            "scope": scope,
            "versions": [
                {
                    "name": release.VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema(model)},
                    "subresources": subresources,
                    "additionalPrinterColumns": columns,
                }
            ],
        },
    }


HEADER = "# Generated by `greenlight crd` from operator/greenlight/api: do not edit.\n"


def render(kind: str = release.KIND) -> str:
    return HEADER + yaml.safe_dump(crd(kind), sort_keys=False, width=100)


def files() -> dict[str, str]:
    """crds/<file>: its content, for every CRD."""
    return {
        f"{release.GROUP}_{release.PLURAL}.yaml": render(release.KIND),
        f"{release.GROUP}_{group.PLURAL}.yaml": render(group.KIND),
        **{f"{release.GROUP}_{t[0]}.yaml": render(kind) for kind, t in TEMPLATES.items()},
    }
