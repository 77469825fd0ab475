"""A revision's ConfigMaps and Secrets: which the pod template references, which become part
of the revision (copied, hashed), and what its Deployment runs with.

A referenced object is copied into an immutable `<name>-<template hash>` owned by the
revision's Deployment, and the template hash covers the digest of its data: an edit in place
is a new revision, released, gated and undone like an image. Not copied: an object annotated
`greenlight.dev/shared: "true"` (referenced as it is), and a missing optional one. A missing
required one holds the revision before anything is created (`Revision.missing`).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import naming, snapshot

CONFIG_MAP: snapshot.ConfigKind = "ConfigMap"
SECRET: snapshot.ConfigKind = "Secret"


@dataclasses.dataclass(frozen=True)
class Ref:
    """A ConfigMap or Secret the pod template names (optional: every reference to it says so)."""

    kind: snapshot.ConfigKind
    name: str
    optional: bool

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


@dataclasses.dataclass(frozen=True)
class Revision:
    """The revision a spec makes with the config observed (or an undo's, as recorded)."""

    hash: str
    template: dict[str, Any]
    """What its Deployment runs: the effective template with the copies' names in place."""
    copies: tuple[act.CopyConfig, ...]
    """The copies to make (none for a revision recorded on its Deployment: made already)."""
    config: str | None
    """What its Deployment records (naming.ANNOTATION_CONFIG); None: no copy."""
    missing: tuple[Ref, ...] = ()
    """Required references to objects that do not exist: it cannot start."""


def digest(data: Mapping[str, Any] | None, binary_data: Mapping[str, Any] | None = None) -> str:
    """The digest of a ConfigMap's or Secret's data (sha256 of the sorted data and binaryData):
    what the template hash covers and the only trace of the data kept in memory."""
    body = {"data": dict(data or {}), "binaryData": dict(binary_data or {})}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def copy_name(name: str, template_hash: str) -> str:
    """A revision's copy of `name` (at most 253 characters, as an object name)."""
    return f"{name[: 253 - len(template_hash) - 1]}-{template_hash}"


def _slots(pod: Mapping[str, Any]) -> Iterator[tuple[snapshot.ConfigKind, dict[str, Any], str]]:
    """Each place a pod spec names a ConfigMap or Secret: (kind, the dict, its name field)."""
    for c in [*(pod.get("containers") or []), *(pod.get("initContainers") or [])]:
        for env in c.get("env") or []:
            source = env.get("valueFrom") or {}
            for field, kind in (("configMapKeyRef", CONFIG_MAP), ("secretKeyRef", SECRET)):
                if isinstance(source.get(field), dict):
                    yield kind, source[field], "name"
        for env in c.get("envFrom") or []:
            for field, kind in (("configMapRef", CONFIG_MAP), ("secretRef", SECRET)):
                if isinstance(env.get(field), dict):
                    yield kind, env[field], "name"
    for v in pod.get("volumes") or []:
        if isinstance(v.get("configMap"), dict):
            yield CONFIG_MAP, v["configMap"], "name"
        if isinstance(v.get("secret"), dict):
            yield SECRET, v["secret"], "secretName"
        for s in (v.get("projected") or {}).get("sources") or []:
            for field, kind in (("configMap", CONFIG_MAP), ("secret", SECRET)):
                if isinstance(s.get(field), dict):
                    yield kind, s[field], "name"


def references(template: Mapping[str, Any]) -> tuple[Ref, ...]:
    """The ConfigMaps and Secrets a pod template references (containers, init containers,
    volumes, projected volumes), sorted; required when any reference is."""
    optional: dict[tuple[snapshot.ConfigKind, str], bool] = {}
    for kind, slot, field in _slots(template.get("spec") or {}):
        name = slot.get(field)
        if isinstance(name, str) and name:
            optional[(kind, name)] = optional.get((kind, name), True) and bool(slot.get("optional"))
    return tuple(Ref(kind, name, o) for (kind, name), o in sorted(optional.items()))


def spec_references(
    spec: api.ReleaseSpec, workload: snapshot.WorkloadView | None = None
) -> tuple[Ref, ...]:
    """The references of the template released: spec.template's, or with spec.workloadRef
    its Deployment's (`workload`; none while it is not seen)."""
    if spec.template is None:
        return references(workload.template) if workload is not None else ()
    return references(naming.user_template(spec))


def revision(release: str, spec: api.ReleaseSpec, seen: Iterable[snapshot.ConfigView]) -> Revision:
    """The revision `spec` makes with the ConfigMaps and Secrets as `seen` now (an unresolved
    spec.workloadRef, refused before anything is decided: none, hash "")."""
    if spec.template is None:
        return Revision("", {}, (), None)
    template = naming.effective_template(spec)
    views = {(v.kind, v.name): v for v in seen}
    digests: dict[str, str] = {}
    missing = []
    for ref in references(template):
        view = views.get((ref.kind, ref.name))
        if view is None or view.digest is None:
            if not ref.optional:
                missing.append(ref)
        elif not view.shared:
            digests[f"{ref.kind}/{ref.name}"] = view.digest
    made = _made(template, sorted(digests), _combined(digests))
    copies = tuple(
        act.CopyConfig(
            kind=kind,
            source=name,
            name=copy_name(name, made.hash),
            digest=digests[f"{kind}/{name}"],
            deployment=naming.deployment_name(release, made.hash),
            template_hash=made.hash,
        )
        for kind, name in _split(sorted(digests))
    )
    return dataclasses.replace(made, copies=copies, missing=tuple(missing))


def recorded(spec: api.ReleaseSpec, d: snapshot.DeploymentView) -> Revision:
    """The revision `spec` makes with the config `d` recorded (an undo to `d`'s template: its
    copies, not today's data). Its copies exist, or cannot be made again: none to make."""
    record = json.loads(d.config) if d.config else {}
    copied = [str(k) for k in record.get("copies") or []]
    return _made(naming.effective_template(spec), copied, record.get("digest"))


def _combined(digests: Mapping[str, str]) -> str | None:
    """One digest of every copied object's name and data digest (None: no copy)."""
    if not digests:
        return None
    return hashlib.sha256(json.dumps(digests, sort_keys=True).encode()).hexdigest()


def _split(keys: Iterable[str]) -> Iterator[tuple[snapshot.ConfigKind, str]]:
    for key in keys:
        kind, _, name = key.partition("/")
        yield (SECRET if kind == SECRET else CONFIG_MAP), name


def _made(template: dict[str, Any], copied: list[str], combined: str | None) -> Revision:
    h = naming.template_hash(template, combined)
    if combined is None:
        return Revision(h, template, (), None)
    names = {key: copy_name(key[1], h) for key in _split(copied)}
    rendered = copy.deepcopy(template)
    for kind, slot, field in _slots(rendered.get("spec") or {}):
        new = names.get((kind, slot.get(field) or ""))
        if new is not None:
            slot[field] = new
    record = json.dumps({"copies": sorted(copied), "digest": combined}, sort_keys=True)
    return Revision(h, rendered, (), record)
