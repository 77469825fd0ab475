"""`CheckTemplate` (namespaced) and `ClusterCheckTemplate`: a check written once, with typed
arguments, used by name from any gate (`templateRef` and `args` in a Release's check).

The template's `check` is any check without its name (a provider and its knobs), where
`$(args.NAME)` stands for an argument: a string field gets the value in place; a field that is
only `$(args.NAME)` gets the argument's type (a number stays a number). The result is judged by
the same model as a check written in place (`resolve`), so a template that resolves to a bad
check is refused naming the Release's field.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import pydantic

from greenlight.api import checks as gates
from greenlight.api.base import PRESERVE, Model

KIND = "CheckTemplate"
CLUSTER_KIND = "ClusterCheckTemplate"
PLURAL = "checktemplates"
CLUSTER_PLURAL = "clusterchecktemplates"
ARG = re.compile(r"\$\(args\.([A-Za-z_][A-Za-z0-9_]*)\)")


class TemplateArg(Model):
    name: str = pydantic.Field(max_length=63, pattern=gates.ARG_NAME)
    type: Literal["string", "number", "duration"] = pydantic.Field(
        default="string", description="number: a decimal; duration: e.g. 30s, 5m."
    )
    default: str | None = pydantic.Field(
        default=None, max_length=4096, description="Absent: every check using it must give it."
    )
    description: str = pydantic.Field(default="", max_length=1024)


class CheckTemplateSpec(Model):
    args: list[TemplateArg] = pydantic.Field(
        default_factory=list, max_length=32, json_schema_extra=gates.list_map("name")
    )
    check: dict[str, Any] = pydantic.Field(
        description="A check without its name: one provider (http, job, prometheus, webhook,"
        " compare) and its knobs; $(args.NAME) where an argument goes.",
        json_schema_extra={"type": "object", **PRESERVE},
    )

    @pydantic.field_validator("args")
    @classmethod
    def _unique(cls, args: list[TemplateArg]) -> list[TemplateArg]:
        return gates.unique_by_name(args, "arg")

    @pydantic.model_validator(mode="after")
    def _known_args(self) -> CheckTemplateSpec:
        declared = {a.name for a in self.args}
        for name in _named(self.check):
            if name not in declared:
                raise ValueError(f"spec.check: $(args.{name}) is not in spec.args")
        if "templateRef" in self.check:
            raise ValueError("spec.check.templateRef: a template cannot use another template")
        for a in self.args:
            if a.default is not None:
                error = _typed_error(a, a.default)
                if error:
                    raise ValueError(f"spec.args[{a.name}].default: {error}")
        return self


class CheckTemplate(Model):
    """A check for the gates of the Releases in its namespace."""

    api_version: Literal["greenlight.dev/v1alpha1"] = "greenlight.dev/v1alpha1"
    kind: Literal["CheckTemplate"] = "CheckTemplate"
    metadata: dict[str, Any] = pydantic.Field(default_factory=dict)
    spec: CheckTemplateSpec


class ClusterCheckTemplate(Model):
    """A check for the gates of every Release in the cluster."""

    api_version: Literal["greenlight.dev/v1alpha1"] = "greenlight.dev/v1alpha1"
    kind: Literal["ClusterCheckTemplate"] = "ClusterCheckTemplate"
    metadata: dict[str, Any] = pydantic.Field(default_factory=dict)
    spec: CheckTemplateSpec


def _named(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set().union(*(_named(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_named(v) for v in node))
    if isinstance(node, str):
        return set(ARG.findall(node))
    return set()


def _typed_error(arg: TemplateArg, value: str) -> str | None:
    if arg.type == "number":
        try:
            float(value)
        except ValueError:
            return f"{value!r} is not a number"
    if arg.type == "duration" and not re.fullmatch(gates.DURATION, value):
        return f"{value!r} is not a duration (e.g. 30s, 5m)"
    return None


def _typed(arg: TemplateArg, value: str) -> Any:
    if arg.type == "number":
        number = float(value)
        return int(number) if number.is_integer() else number
    return value


def resolve(check: gates.Check, template: CheckTemplateSpec) -> gates.Check:
    """`check` (a templateRef and args) as the template makes it: ValueError naming the arg or
    the template's field when it cannot be."""
    assert check.template_ref is not None
    given = {a.name: a.value for a in check.args or ()}
    declared = {a.name: a for a in template.args}
    for name in given:
        if name not in declared:
            known = ", ".join(declared) or "none"
            raise ValueError(f"args: {name} is not an argument of the template (it has: {known})")
    values: dict[str, Any] = {}
    for name, arg in declared.items():
        value = given.get(name, arg.default)
        if value is None:
            raise ValueError(f"args: {name} is required by the template and not given")
        error = _typed_error(arg, value)
        if error:
            raise ValueError(f"args: {name}: {error}")
        values[name] = value

    def fill(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: fill(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fill(v) for v in node]
        if isinstance(node, str):
            whole = ARG.fullmatch(node)
            if whole:
                return _typed(declared[whole[1]], values[whole[1]])
            return ARG.sub(lambda m: str(values[m[1]]), node)
        return node

    body = {**fill(template.check), "name": check.name}
    try:
        return gates.Check.model_validate(body)
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(
            f"{check.template_ref.kind} {check.template_ref.name}: {where}: {first['msg']}"
        ) from None
