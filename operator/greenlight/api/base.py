"""Shared building blocks of the API models: camelCase aliases, CEL rules, times."""

from __future__ import annotations

import datetime
from typing import Annotated, Any

import pydantic
from pydantic import alias_generators

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
