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


_FIELDS_SETS: dict[frozenset[str], set[str]] = {}
"""One `__pydantic_fields_set__` per distinct set of field names, shared by the models that
set exactly those fields (`Model.model_post_init`)."""


class Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(
        alias_generator=alias_generators.to_camel,
        populate_by_name=True,
        frozen=True,
        extra="ignore",
    )

    def model_post_init(self, context: Any, /) -> None:
        """Share the set of the fields given (pydantic keeps one per instance, for
        `exclude_unset` and `model_fields_set`) with every model that was given the same.

        The operator keeps every Release parsed in its index, about 20 models each, and these
        sets were a third of that memory (8 KiB per Release: a set of 5 to 18 names takes 728
        bytes). Sharing is safe because the models are frozen: pydantic changes a model's set
        only in a setattr (refused here) or on a copy's own new set (`model_copy`)."""
        fields = self.__pydantic_fields_set__
        shared = _FIELDS_SETS.setdefault(frozenset(fields), fields)
        if shared is not fields:
            object.__setattr__(self, "__pydantic_fields_set__", shared)


class OpenModel(Model):
    """An object that keeps fields we do not model (pod specs, probes): passed through as is."""

    model_config = pydantic.ConfigDict(extra="allow", json_schema_extra=dict(PRESERVE))
