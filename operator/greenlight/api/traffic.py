"""`spec.traffic`: put a Release's traffic behind a Gateway (Gateway API HTTPRoute).

The user describes the route's parents, hostnames, matches and filters here; Greenlight
generates and owns one HTTPRoute per Release (`engine/traffic.py`), with a `live` rule whose
backend weights it moves and, during a release, a `preview` rule for `previewMatches`. The
shapes follow gateway.networking.k8s.io/v1 (v1.6), with the API's defaults written out, so a
route Greenlight renders is the route the API server stores.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pydantic

from greenlight.api.base import PRESERVE, Model, _rules

GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_VERSION = "v1"
HTTPROUTES = "httproutes"

OBJECT_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
HOSTNAME = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+\-.^_|~]+$"
Hostname = Annotated[str, pydantic.Field(min_length=1, max_length=253, pattern=HOSTNAME)]
MAX_MATCHES = 8
MAX_FILTERS = 8

FilterType = Literal[
    "RequestHeaderModifier", "ResponseHeaderModifier", "URLRewrite", "RequestMirror", "ExtensionRef"
]
FILTER_FIELDS: dict[str, str] = {
    "RequestHeaderModifier": "requestHeaderModifier",
    "ResponseHeaderModifier": "responseHeaderModifier",
    "URLRewrite": "urlRewrite",
    "RequestMirror": "requestMirror",
    "ExtensionRef": "extensionRef",
}
"""Each filter type and the field that carries its settings. RequestRedirect is left out: the
Gateway API refuses it in a rule that has backends, and the live rule always has them."""


class ParentRef(Model):
    """A Gateway (or a listener of one) the route attaches to, as in an HTTPRoute."""

    group: str = GATEWAY_GROUP
    kind: str = "Gateway"
    namespace: str | None = pydantic.Field(
        default=None, max_length=63, description="Defaults to the Release's namespace."
    )
    name: str = pydantic.Field(min_length=1, max_length=253, pattern=OBJECT_NAME)
    section_name: str | None = pydantic.Field(default=None, max_length=253, pattern=OBJECT_NAME)
    port: int | None = pydantic.Field(default=None, ge=1, le=65535)


class PathMatch(Model):
    model_config = pydantic.ConfigDict(
        json_schema_extra=_rules(
            (
                "self.type == 'RegularExpression' || self.value.startsWith('/')",
                "path.value: must start with '/'",
            )
        )
    )
    type: Literal["Exact", "PathPrefix", "RegularExpression"] = "PathPrefix"
    value: str = pydantic.Field(default="/", min_length=1, max_length=1024)

    @pydantic.model_validator(mode="after")
    def _absolute(self) -> PathMatch:
        if self.type != "RegularExpression" and not self.value.startswith("/"):
            raise ValueError(f"path.value: {self.value!r} must start with '/'")
        return self


class HeaderMatch(Model):
    type: Literal["Exact", "RegularExpression"] = "Exact"
    name: str = pydantic.Field(min_length=1, max_length=256, pattern=HEADER_NAME)
    value: str = pydantic.Field(min_length=1, max_length=4096)


class RouteMatch(Model):
    """One HTTPRouteMatch: a request matches when every condition given holds."""

    path: PathMatch = pydantic.Field(default_factory=PathMatch)
    headers: list[HeaderMatch] = pydantic.Field(default_factory=list, max_length=16)
    query_params: list[HeaderMatch] = pydantic.Field(default_factory=list, max_length=16)
    method: (
        Literal["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]
        | None
    ) = None


def _filter_rules() -> dict[str, Any]:
    rules = [
        (f"self.type != '{kind}' || has(self.{field})", f"filters[]: type {kind} needs {field}")
        for kind, field in FILTER_FIELDS.items()
    ]
    return _rules(*rules)


class RouteFilter(Model):
    """An HTTPRouteFilter for the live rule, passed to the route as written."""

    model_config = pydantic.ConfigDict(json_schema_extra=_filter_rules())
    type: FilterType
    request_header_modifier: dict[str, Any] | None = pydantic.Field(
        default=None, json_schema_extra=dict(PRESERVE)
    )
    response_header_modifier: dict[str, Any] | None = pydantic.Field(
        default=None, json_schema_extra=dict(PRESERVE)
    )
    url_rewrite: dict[str, Any] | None = pydantic.Field(
        default=None, json_schema_extra=dict(PRESERVE)
    )
    request_mirror: dict[str, Any] | None = pydantic.Field(
        default=None, json_schema_extra=dict(PRESERVE)
    )
    extension_ref: dict[str, Any] | None = pydantic.Field(
        default=None, json_schema_extra=dict(PRESERVE)
    )

    @pydantic.model_validator(mode="after")
    def _settings_given(self) -> RouteFilter:
        field = FILTER_FIELDS[self.type]
        if getattr(self, _snake(field)) is None:
            raise ValueError(f"type {self.type} needs {field}")
        return self


def _snake(camel: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)


PREVIEW_MATCHES_EVERYTHING = (
    "spec.traffic.gatewayAPI.previewMatches[]: each needs a header or query parameter match;"
    " without one it matches every request and the candidate would take live traffic"
)


class GatewayAPI(Model):
    """Route the Release's traffic through a Gateway with an HTTPRoute Greenlight owns."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=_rules(
            (
                "!has(self.previewMatches) || self.previewMatches.all(m,"
                " (has(m.headers) && size(m.headers) > 0)"
                " || (has(m.queryParams) && size(m.queryParams) > 0))",
                PREVIEW_MATCHES_EVERYTHING,
                ".previewMatches",
            ),
        )
    )
    parent_refs: list[ParentRef] = pydantic.Field(
        min_length=1, max_length=32, description="The Gateway(s) the route attaches to."
    )
    hostnames: list[Hostname] = pydantic.Field(default_factory=list, max_length=16)
    matches: list[RouteMatch] = pydantic.Field(
        default_factory=list,
        max_length=MAX_MATCHES,
        description="The live rule's matches; default: every path (PathPrefix /).",
    )
    filters: list[RouteFilter] = pydantic.Field(
        default_factory=list,
        max_length=MAX_FILTERS,
        description="Filters of the live and preview rules, passed to the route as written.",
    )
    preview_matches: list[RouteMatch] = pydantic.Field(
        default_factory=list,
        max_length=MAX_MATCHES,
        description="Requests matching one of these reach the candidate during a release"
        " (header or query parameter matches; a path defaults to every path).",
    )
    route_name: str | None = pydantic.Field(
        default=None,
        max_length=253,
        pattern=OBJECT_NAME,
        description="The HTTPRoute's name; defaults to the Release's name.",
    )
    adopt: bool = pydantic.Field(
        default=False,
        description="Take over an HTTPRoute of that name that Greenlight did not create.",
    )
    drain_seconds: int = pydantic.Field(
        default=5,
        ge=0,
        le=3600,
        description="Canary (rolling steps): the stable side keeps its pods this long after"
        " the gateway took a share of requests off it, for requests in flight.",
    )

    @pydantic.field_validator("preview_matches")
    @classmethod
    def _narrow(cls, found: list[RouteMatch]) -> list[RouteMatch]:
        for m in found:
            if not m.headers and not m.query_params:
                raise ValueError(PREVIEW_MATCHES_EVERYTHING.split(".", 2)[2])
        return found


class Traffic(Model):
    gateway_api: GatewayAPI | None = pydantic.Field(
        default=None,
        alias="gatewayAPI",
        description="Move traffic by HTTPRoute weights at a Gateway (per request).",
    )


class RevisionWeight(Model):
    revision: int | None = None
    template_hash: str
    weight: int


class TrafficStatus(Model):
    route: str
    weights: list[RevisionWeight] = pydantic.Field(
        default_factory=list, description="The live rule's backends as written to the route."
    )
    preview_revision: int | None = pydantic.Field(
        default=None, description="The revision previewMatches reach (none: no preview rule)."
    )
    accepted: bool = pydantic.Field(
        default=False,
        description="Every parent Gateway accepted the route's current generation with its"
        " references resolved.",
    )
    message: str = ""
