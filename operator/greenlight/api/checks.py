"""Promotion gates: the `Check` of `prePromotion`, `postPromotion` and rolling `analysis` steps.

A check has a name, exactly one provider (http, job, prometheus, webhook) and shared knobs
(interval, count, limits, initial delay, timeout). Conditions are CEL expressions over `result`,
compiled here so that a Release with an unparseable one is refused before anything is created.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import pydantic
from pydantic import alias_generators

from greenlight.api import conditions
from greenlight.api.base import PRESERVE, Model, OpenModel, Time, _rules

DURATION = r"^[0-9]+(ms|s|m|h)$"
POSITIVE_DURATION = r"^0*[1-9][0-9]*(ms|s|m|h)$"
CHECK_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
MAX_CHECKS = 16
MAX_MEASUREMENTS = 5
MAX_POINTS = 11_000
"""Points per series a range query may ask of Prometheus (its own limit)."""
"""Measurements kept in status per check (the newest)."""


def seconds(duration: str) -> float:
    """'30s', '5m', '1h', '500ms' in seconds (the pattern guarantees the form)."""
    match = re.fullmatch(r"([0-9]+)(ms|s|m|h)", duration)
    assert match, duration
    return int(match[1]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match[2]]


def _condition(value: str | None, info: pydantic.ValidationInfo) -> str | None:
    """Parsed, and judged as cel-go would type-check it with `result` declared (conditions.py)."""
    if value is None:
        return value
    error = conditions.error(value)
    if error is not None:
        field = alias_generators.to_camel(info.field_name or "condition")
        raise ValueError(f"{field}: {error}")
    return value


VARIABLES = (
    "RELEASE", "NAMESPACE", "REVISION", "TEMPLATE_HASH", "PREVIEW_SERVICE", "LIVE_SERVICE",
    "LIVE_HASH", "DRAINING_HASH", "BASELINE_HASH",
)  # fmt: skip
"""The $(VAR)s a check may name (engine/checks.py `variables` gives their values)."""
_VAR = r"\$\([A-Za-z_][A-Za-z0-9_]*\)"
"""A $(NAME), as expansion finds it once `$$` (a literal $) is taken out, left to right."""
URL = r"^https?://([^/?#@\s]*@)?(\[[0-9A-Fa-f:.]+\]|[^/?#:@\[\]\s]+)(:[0-9]*)?([/?#].*)?$"
"""http(s)://[user@]host[:port][/path][?query]: a host (or a $(VAR) that names one) is required."""
VARIABLES_MESSAGE = "known: " + ", ".join(f"$({v})" for v in VARIABLES) + " ($$ for a literal $)"


def _cel_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\") + "'"


def _unknown_variables(value: str) -> list[str]:
    """$(NAME)s expansion would leave as they are: `$$` and every known $(VAR) taken out first
    (as the CRD's rule does: CEL has no look-behind)."""
    for known in ("$$", *(f"$({v})" for v in VARIABLES)):
        value = value.replace(known, "")
    return re.findall(_VAR, value)


def _known_variables(value: str) -> str:
    unknown = _unknown_variables(value)
    if unknown:
        raise ValueError(f"unknown variable {unknown[0]}; {VARIABLES_MESSAGE}")
    return value


_LEFT = "self" + "".join(
    f".replace({_cel_string(k)}, '')" for k in ("$$", *(f"$({v})" for v in VARIABLES))
)
URLWithVariables = Annotated[
    str,
    pydantic.Field(
        max_length=1800,  # (the CRD's CEL cost budget: 32 steps x 16 checks x this)
        pattern=URL,
        description="http(s)://host[:port][/path]; $(VAR)s allowed: " + VARIABLES_MESSAGE,
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"!{_LEFT}.matches({_cel_string(_VAR)})",
                    "message": f"names an unknown $(VAR); {VARIABLES_MESSAGE}",
                    "messageExpression": f"'unknown variable ' + {_LEFT}.find("
                    f"{_cel_string(_VAR)}) + '; {VARIABLES_MESSAGE}'",
                }
            ]
        },
    ),
    pydantic.AfterValidator(_known_variables),
]
"""A URL the operator expands $(VAR)s in before it sends the request."""


class SecretKeyRef(Model):
    name: str = pydantic.Field(max_length=253)
    key: str = pydantic.Field(max_length=253)


class ValueFrom(Model):
    secret_key_ref: SecretKeyRef


class Header(Model):
    """A request header; its value may come from a Secret (never shown in status or logs)."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=_rules(
            ("has(self.value) != has(self.valueFrom)", "set exactly one of value or valueFrom")
        )
    )
    name: str = pydantic.Field(max_length=256, pattern=r"^[-A-Za-z0-9]+$")
    value: str | None = pydantic.Field(default=None, max_length=4096)
    value_from: ValueFrom | None = None

    @pydantic.model_validator(mode="after")
    def _one_value(self) -> Header:
        if (self.value is None) == (self.value_from is None):
            raise ValueError(f"header {self.name}: set exactly one of value or valueFrom")
        return self


class HTTPCheck(Model):
    """A request sent by the operator (so it runs where the operator runs).

    `result` for conditions: {status: int, body: parsed JSON or the text, headers: {...}}."""

    url: URLWithVariables
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    headers: list[Header] = pydantic.Field(default_factory=list, max_length=32)
    body: str | None = pydantic.Field(default=None, max_length=65536)
    expected_status: list[Annotated[int, pydantic.Field(ge=100, le=599)]] = pydantic.Field(
        default_factory=list,
        max_length=32,
        description="Status codes that pass (100-599); default: any 2xx.",
    )


class WebhookCheck(Model):
    """A Flagger-style confirmation: POST a JSON description of the release; 2xx passes."""

    url: URLWithVariables
    headers: list[Header] = pydantic.Field(default_factory=list, max_length=32)


class PrometheusCheck(Model):
    """An instant query; `result` is its first sample's value (a number), or a list of them
    when the query returns several series (`result[0]`), or null when it returns none. With
    `range`: a range query over that window ending now, and `result` is the list of the
    series' values (e.g. `result.all(v, v < 0.5)`), a list of such lists for several series."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=_rules(
            ("!has(self.step) || has(self.range)", "step is for a range query", ".step")
        )
    )
    address: URLWithVariables
    query: str = pydantic.Field(min_length=1, max_length=16384)
    headers: list[Header] = pydantic.Field(default_factory=list, max_length=32)
    range: str | None = pydantic.Field(
        default=None,
        max_length=16,
        pattern=POSITIVE_DURATION,
        description="A range query over this window ending now (e.g. 5m).",
    )
    step: str | None = pydantic.Field(
        default=None,
        max_length=16,
        pattern=POSITIVE_DURATION,
        description="The range query's step (default: range / 30).",
    )

    @pydantic.field_validator("step")
    @classmethod
    def _range(cls, step: str | None, info: pydantic.ValidationInfo) -> str | None:
        window = info.data.get("range")
        if step is not None and window is None:
            raise ValueError("step is for a range query (set range)")
        if step is not None and window is not None and seconds(window) / seconds(step) > MAX_POINTS:
            raise ValueError(f"{window} / {step} is more than {MAX_POINTS} points per series")
        return step

    def step_seconds(self) -> float:
        assert self.range is not None
        return seconds(self.step) if self.step is not None else seconds(self.range) / 30


# A Job's spec is passed through as written, but what the Job API would refuse in the fields
# modelled here is refused at admission (by the CRD and these models), not when the check runs.
# Fields not modelled (env, resources, volume sources, ...) the Job API still judges when the
# check creates the Job: a refusal is that check's error, named, never a pass.

IMAGE = r"^\S(.*\S)?$"
"""A container image: required, no leading or trailing whitespace."""
INT32_MAX = 2**31 - 1
MAX_JOB_CONTAINERS = 8
"""Containers (and init containers) of a check's Job: a bound the CRD's CEL cost estimate needs."""


def list_map(*keys: str) -> dict[str, Any]:
    """A list whose items are unique by `keys` (the API server refuses a duplicate)."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


def unique_by_name(items: list[Any], what: str) -> list[Any]:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.name in seen:
            raise ValueError(f"[{i}].name: duplicate {what} name {item.name!r}")
        seen.add(item.name)
    return items


class JobContainer(OpenModel):
    """A container of the Job's pod: passed through; its name and image are checked."""

    name: str = pydantic.Field(
        min_length=1, max_length=63, pattern=CHECK_NAME, description="A DNS-1123 label, unique."
    )
    image: str = pydantic.Field(min_length=1, pattern=IMAGE)


class JobPodSpec(OpenModel):
    """A Pod spec, as in a Job; passed through as written."""

    model_config = pydantic.ConfigDict(
        extra="allow",
        json_schema_extra={
            **PRESERVE,
            **_rules(
                (
                    "!has(self.initContainers) || self.initContainers.all(i,"
                    " !self.containers.exists(c, c.name == i.name))",
                    "initContainers: names must differ from the containers'",
                    ".initContainers",
                )
            ),
        },
    )
    containers: list[JobContainer] = pydantic.Field(
        min_length=1,
        max_length=MAX_JOB_CONTAINERS,
        description="At least one.",
        json_schema_extra=list_map("name"),
    )
    init_containers: list[JobContainer] | None = pydantic.Field(
        default=None, max_length=MAX_JOB_CONTAINERS, json_schema_extra=list_map("name")
    )
    restart_policy: Literal["Never", "OnFailure"] | None = pydantic.Field(
        default=None, description="Never (the default here) or OnFailure: a Job's pods end."
    )

    @pydantic.field_validator("containers")
    @classmethod
    def _unique_containers(cls, containers: list[JobContainer]) -> list[JobContainer]:
        return unique_by_name(containers, "container")

    @pydantic.field_validator("init_containers")
    @classmethod
    def _unique_init(cls, found: list[JobContainer] | None) -> list[JobContainer] | None:
        return found if found is None else unique_by_name(found, "init container")

    @pydantic.model_validator(mode="after")
    def _init_names_differ(self) -> JobPodSpec:
        names = {c.name for c in self.containers}
        for i, c in enumerate(self.init_containers or ()):
            if c.name in names:
                raise ValueError(f"initContainers[{i}].name: {c.name!r} is also a container's")
        return self


class JobPodTemplate(OpenModel):
    spec: JobPodSpec


class JobCheck(OpenModel):
    """A batch/v1 Job spec, run once per revision and check; passes when the Job succeeds."""

    model_config = pydantic.ConfigDict(
        extra="allow",
        json_schema_extra={
            **PRESERVE,
            **_rules(
                (
                    "!has(self.selector) || (has(self.manualSelector) && self.manualSelector)",
                    "the Job API generates the selector; set manualSelector: true to give one",
                    ".selector",
                )
            ),
        },
    )
    template: JobPodTemplate
    backoff_limit: int | None = pydantic.Field(
        default=None, ge=0, le=INT32_MAX, description="Default here: 0 (one run)."
    )
    parallelism: int | None = pydantic.Field(default=None, ge=0, le=INT32_MAX)
    completions: int | None = pydantic.Field(default=None, ge=0, le=INT32_MAX)
    active_deadline_seconds: int | None = pydantic.Field(default=None, ge=0)
    ttl_seconds_after_finished: int | None = pydantic.Field(default=None, ge=0, le=INT32_MAX)
    manual_selector: bool | None = None
    selector: dict[str, Any] | None = pydantic.Field(
        default=None, json_schema_extra={"type": "object", **PRESERVE}
    )

    @pydantic.field_validator("selector")
    @classmethod
    def _selector(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        if value is not None and not info.data.get("manual_selector"):
            raise ValueError("the Job API generates it; set manualSelector: true to give one")
        return value


class CompareMetric(Model):
    """One metric of a `compare` check: the candidate's samples against the baseline's."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=_rules(
            (
                "self.test != 'proportion'"
                " || (has(self.totalQuery) && has(self.baselineTotalQuery))",
                "a proportion needs totalQuery and baselineTotalQuery (the trials per step)",
                ".totalQuery",
            ),
            (
                "self.test == 'proportion'"
                " || (!has(self.totalQuery) && !has(self.baselineTotalQuery))",
                "totalQuery and baselineTotalQuery are for test: proportion only",
                ".totalQuery",
            ),
        )
    )
    name: str = pydantic.Field(max_length=48, pattern=CHECK_NAME)
    test: Literal["mannWhitney", "proportion"] = pydantic.Field(
        default="mannWhitney",
        description="mannWhitney: the two samples' distributions (latency-like: every value of"
        " every series in the range is a sample); proportion: events of trials (errors of"
        " requests: the queries give counts per step, their sums are compared).",
    )
    query: str = pydantic.Field(
        min_length=1,
        max_length=4096,
        description="A range query for the candidate ($(TEMPLATE_HASH) selects its pods);"
        " proportion: its events per step.",
    )
    baseline_query: str = pydantic.Field(
        min_length=1,
        max_length=4096,
        description="The same for the baseline ($(BASELINE_HASH): the live revision's, or with"
        " baseline: before the revision live before the flip).",
    )
    total_query: str | None = pydantic.Field(
        default=None, max_length=4096, description="proportion: the candidate's trials per step."
    )
    baseline_total_query: str | None = pydantic.Field(
        default=None, max_length=4096, description="proportion: the baseline's trials per step."
    )
    direction: Literal["increase", "decrease", "either"] = pydantic.Field(
        default="increase", description="Which change is bad."
    )
    tolerance: float = pydantic.Field(
        default=0.1,
        ge=0,
        le=1000,
        description="The change accepted, relative to the baseline's level (0.1: 10%; with a"
        " baseline of 0, any significant change in the bad direction fails).",
    )
    weight: int | None = pydantic.Field(
        default=None,
        ge=0,
        le=100,
        description="Share of the score; give every metric one (adding up to 100) or none"
        " (equal shares).",
    )
    min_samples: int | None = pydantic.Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Below this many samples (mannWhitney, default 20) or trials (proportion,"
        " default 100) on either side the metric is Inconclusive, never Passed.",
    )

    @pydantic.model_validator(mode="after")
    def _totals(self) -> CompareMetric:
        totals = (self.total_query is not None, self.baseline_total_query is not None)
        if self.test == "proportion" and totals != (True, True):
            raise ValueError(
                f"metric {self.name}: totalQuery: a proportion needs totalQuery and"
                " baselineTotalQuery (the trials per step)"
            )
        if self.test != "proportion" and any(totals):
            raise ValueError(
                f"metric {self.name}: totalQuery: totalQuery and baselineTotalQuery are for"
                " test: proportion only"
            )
        return self


MAX_METRICS = 10


class CompareCheck(Model):
    """Automated canary judgement: each metric's candidate samples against the baseline's,
    by statistics (Mann-Whitney U with a Hodges-Lehmann shift, or two proportions); the score
    is the weighted share of metrics that passed."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=_rules(
            (
                "self.metrics.all(m, !has(m.weight)) || (self.metrics.all(m, has(m.weight))"
                " && self.metrics.map(m, m.weight).sum() == 100)",
                "weights: give every metric a weight, adding up to 100, or none",
                ".metrics",
            ),
            (
                "self.marginalScore <= self.passScore",
                "marginalScore must not be above passScore",
                ".marginalScore",
            ),
        )
    )
    address: URLWithVariables
    headers: list[Header] = pydantic.Field(default_factory=list, max_length=32)
    metrics: list[CompareMetric] = pydantic.Field(
        min_length=1, max_length=MAX_METRICS, json_schema_extra=list_map("name")
    )
    baseline: Literal["concurrent", "before"] = pydantic.Field(
        default="concurrent",
        description="concurrent: both revisions over the same window (they serve the same"
        " traffic: canary and rolling steps); before: the candidate since the check started"
        " against the previous live revision over as long a window before it (time-shifted:"
        " only for postPromotion of a blue-green release).",
    )
    range: str = pydantic.Field(
        default="5m",
        max_length=16,
        pattern=POSITIVE_DURATION,
        description="The window of the range queries, ending now.",
    )
    step: str = pydantic.Field(
        default="10s", max_length=16, pattern=POSITIVE_DURATION, description="Their step."
    )
    confidence: float = pydantic.Field(
        default=0.95, ge=0.5, le=0.999, description="Of the tests and intervals."
    )
    pass_score: int = pydantic.Field(
        default=95, ge=0, le=100, description="Score (0-100) at or above which it passes."
    )
    marginal_score: int = pydantic.Field(
        default=75,
        ge=0,
        le=100,
        description="Below this it fails; between the two it is inconclusive.",
    )
    outliers: Literal["remove", "keep"] = pydantic.Field(
        default="remove", description="remove: samples beyond 3 x IQR of their side (Kayenta's)."
    )

    @pydantic.field_validator("metrics")
    @classmethod
    def _metrics(cls, metrics: list[CompareMetric]) -> list[CompareMetric]:
        unique_by_name(metrics, "metric")
        weighted = [m.weight is not None for m in metrics]
        if any(weighted) and (not all(weighted) or sum(m.weight or 0 for m in metrics) != 100):
            raise ValueError("weights: give every metric a weight, adding up to 100, or none")
        return metrics

    @pydantic.field_validator("marginal_score")
    @classmethod
    def _scores(cls, marginal: int, info: pydantic.ValidationInfo) -> int:
        passing = info.data.get("pass_score")
        if passing is not None and marginal > passing:
            raise ValueError(f"{marginal} is above passScore {passing}")
        return marginal

    @pydantic.field_validator("step")
    @classmethod
    def _points(cls, step: str, info: pydantic.ValidationInfo) -> str:
        window = info.data.get("range")
        if window is not None and seconds(window) / seconds(step) > MAX_POINTS:
            raise ValueError(f"{window} / {step} is more than {MAX_POINTS} points per series")
        return step

    def weights(self) -> list[float]:
        return [float(m.weight) if m.weight is not None else 1.0 for m in self.metrics]


ARG_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class TemplateRef(Model):
    name: str = pydantic.Field(min_length=1, max_length=253)
    kind: Literal["CheckTemplate", "ClusterCheckTemplate"] = pydantic.Field(
        default="CheckTemplate",
        description="CheckTemplate: in the Release's namespace; ClusterCheckTemplate:"
        " cluster-wide.",
    )


class Arg(Model):
    name: str = pydantic.Field(max_length=63, pattern=ARG_NAME)
    value: str = pydantic.Field(max_length=4096)


PROVIDERS = ("http", "job", "prometheus", "webhook", "compare", "templateRef")
PROVIDER_FIELDS = ("http", "job", "prometheus", "webhook", "compare", "template_ref")


class Check(Model):
    """One gate. Exactly one provider; conditions in CEL over `result`."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=_rules(
            (
                " + ".join(f"(has(self.{p}) ? 1 : 0)" for p in PROVIDERS) + " == 1",
                "set exactly one provider: http, job, prometheus, webhook, compare or templateRef",
            ),
            (
                "!has(self.prometheus) || has(self.successCondition)",
                "prometheus needs a successCondition",
                ".successCondition",
            ),
            (
                "!has(self.compare) || (!has(self.successCondition)"
                " && !has(self.failureCondition))",
                "compare: its score decides (passScore, marginalScore), not conditions",
                ".successCondition",
            ),
            (
                "has(self.templateRef) || !has(self.args)",
                "args are for a templateRef",
                ".args",
            ),
        )
    )
    name: str = pydantic.Field(max_length=48, pattern=CHECK_NAME)
    http: HTTPCheck | None = None
    job: JobCheck | None = None
    prometheus: PrometheusCheck | None = None
    webhook: WebhookCheck | None = None
    compare: CompareCheck | None = None
    template_ref: TemplateRef | None = pydantic.Field(
        default=None,
        description="A CheckTemplate or ClusterCheckTemplate: its check (provider and knobs),"
        " with $(args.NAME) replaced by args; the check records the template's generation it"
        " used, so a template changed mid-release does not change a running check.",
    )
    args: list[Arg] | None = pydantic.Field(
        default=None, max_length=32, json_schema_extra=list_map("name")
    )
    success_condition: str | None = pydantic.Field(
        default=None,
        max_length=4096,
        description="CEL over `result`; true: the measurement passes (prometheus: required).",
    )
    failure_condition: str | None = pydantic.Field(
        default=None, max_length=4096, description="CEL over `result`; true: it fails."
    )
    interval: str = pydantic.Field(
        default="10s",
        max_length=16,
        pattern=POSITIVE_DURATION,
        description="Between measurements, e.g. 10s, 1m (positive).",
    )
    count: int = pydantic.Field(
        default=1,
        ge=1,
        le=1000,
        description="Successful measurements needed to pass (failures within failureLimit,"
        " e.g. a webhook approval that arrives late, only delay it).",
    )
    failure_limit: int = pydantic.Field(
        default=0, ge=0, description="Failed measurements tolerated; one more fails the check."
    )
    inconclusive_limit: int = pydantic.Field(
        default=0, ge=0, description="Inconclusive ones tolerated; one more holds the release."
    )
    consecutive_error_limit: int = pydantic.Field(
        default=4,
        ge=0,
        description="Provider errors in a row tolerated (connection refused, bad query, ...);"
        " one more fails the check.",
    )
    initial_delay: str = pydantic.Field(
        default="0s",
        max_length=16,
        pattern=DURATION,
        description="Wait before the first measurement.",
    )
    timeout_seconds: int = pydantic.Field(
        default=10, ge=1, le=3600, description="Per measurement (job: for the whole Job)."
    )

    _conditions = pydantic.field_validator("success_condition", "failure_condition")(_condition)

    @pydantic.model_validator(mode="after")
    def _one_provider(self) -> Check:
        given = [p for p in PROVIDER_FIELDS if getattr(self, p) is not None]
        if len(given) != 1:
            raise ValueError(
                f"check {self.name}: set exactly one provider (http, job, prometheus, webhook,"
                f" compare or templateRef), not {len(given)}"
            )
        if self.prometheus is not None and self.success_condition is None:
            raise ValueError(f"check {self.name}: prometheus needs a successCondition")
        if self.compare is not None and (self.success_condition or self.failure_condition):
            raise ValueError(
                f"check {self.name}: successCondition: compare: its score decides (passScore,"
                " marginalScore), not conditions"
            )
        if self.args is not None and self.template_ref is None:
            raise ValueError(f"check {self.name}: args: args are for a templateRef")
        if self.args is not None:
            unique_by_name(self.args, "arg")
        return self

    @property
    def provider(self) -> str:
        return next(p for p in PROVIDERS if getattr(self, _snake(p)) is not None)


Place = Literal["prePromotion", "postPromotion", "analysis", "handover", "scaleDown"]
NOT_DRAINING = "compare: it judges a candidate under live traffic, not a draining revision"
NOT_PRE = (
    "compare: before a blue-green flip the candidate serves no live traffic, so there is"
    " nothing sound to compare; use it in postPromotion with baseline: before, or in the"
    " analysis steps of a rolling release or canary"
)
POST_BEFORE = (
    "compare: after a blue-green flip the previous revision serves nothing; set baseline:"
    " before to compare with it over the time before the flip"
)


def placement_error(place: Place, check: Check) -> str | None:
    """Where a `compare` check is sound: both revisions under the same traffic (rolling and
    canary steps), or time-shifted by choice after a blue-green flip (baseline: before)."""
    if check.compare is None:
        return None
    if place in ("handover", "scaleDown"):
        return NOT_DRAINING
    if place == "prePromotion":
        return NOT_PRE
    if place == "postPromotion" and check.compare.baseline != "before":
        return POST_BEFORE
    return None


def placed(place: Place) -> Any:
    """A field validator: the checks of `place` where placement_error allows them."""

    def check_places(checks: list[Check]) -> list[Check]:
        for i, check in enumerate(checks):
            error = placement_error(place, check)
            if error:
                raise ValueError(f"[{i}].{error}")
        return checks

    return check_places


def placement_rule(field: str, place: Place) -> tuple[str, str, str]:
    """The CEL rule of placement_error for the list `field`."""
    if place == "postPromotion":
        rule = (
            f"!has(self.{field}) || self.{field}.all(c, !has(c.compare)"
            " || (has(c.compare.baseline) && c.compare.baseline == 'before'))"
        )
        return (rule, POST_BEFORE, f".{field}")
    message = NOT_PRE if place == "prePromotion" else NOT_DRAINING
    return (f"!has(self.{field}) || self.{field}.all(c, !has(c.compare))", message, f".{field}")


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m[1].lower(), name)


def unique_names(checks: list[Check]) -> list[Check]:
    names = [c.name for c in checks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"check names must be unique: {', '.join(duplicates)}")
    return checks


# --- notifications ----------------------------------------------------------------------------

NotifyEvent = Literal[
    "Started", "AwaitingPromotion", "Promoted", "Aborted", "RolledBack", "Degraded"
]
NOTIFY_EVENTS: tuple[NotifyEvent, ...] = (
    "Started", "AwaitingPromotion", "Promoted", "Aborted", "RolledBack", "Degraded",
)  # fmt: skip


class NotificationWebhook(Model):
    url: str = pydantic.Field(
        max_length=2048, pattern=URL, description="http(s)://host[:port][/path] (no $(VAR)s)."
    )
    headers: list[Header] = pydantic.Field(default_factory=list, max_length=32)


class Notification(Model):
    """A message on chosen transitions, sent without holding the release (retried 3 times)."""

    name: str = pydantic.Field(max_length=48, pattern=CHECK_NAME)
    webhook: NotificationWebhook
    format: Literal["json", "slack"] = pydantic.Field(
        default="json",
        description="json: {event, release, namespace, revision, phase, message, at};"
        " slack: an incoming-webhook payload ({text}).",
    )
    on: list[NotifyEvent] = pydantic.Field(
        default_factory=lambda: list(NOTIFY_EVENTS),
        max_length=len(NOTIFY_EVENTS),
        description="Which transitions (default: all).",
    )


# --- status -----------------------------------------------------------------------------------

Verdict = Literal["Successful", "Failed", "Inconclusive", "Error"]
CheckPhase = Literal["Running", "Passed", "Failed", "Inconclusive", "Skipped"]


class Measurement(Model):
    at: Time
    verdict: Verdict
    value: str = pydantic.Field(default="", description="The result, shortened.")


class Box(Model):
    """Five numbers of one side's samples (after outliers): a box plot."""

    min: float
    q1: float
    median: float
    q3: float
    max: float


class MetricJudgement(Model):
    """One metric of the newest judgement of a `compare` check."""

    name: str
    verdict: Literal["Pass", "Fail", "Inconclusive"]
    weight: float
    candidate_n: int = pydantic.Field(description="Samples (or trials) of the candidate.")
    baseline_n: int
    removed: int = pydantic.Field(default=0, description="Outliers removed, both sides.")
    estimate: float = pydantic.Field(
        description="The shift candidate - baseline (Hodges-Lehmann), or the rates' difference."
    )
    lower: float = pydantic.Field(description="Its confidence interval.")
    upper: float
    relative: float | None = pydantic.Field(
        default=None, description="The estimate over the baseline's level (none when 0)."
    )
    p_value: float
    candidate: Box | None = None
    baseline: Box | None = None
    message: str = ""


class Judgement(Model):
    at: Time
    verdict: Verdict
    score: float = pydantic.Field(description="Weighted share (0-100) of metrics that passed.")
    metrics: list[MetricJudgement] = pydantic.Field(default_factory=list)


class CheckStatus(Model):
    """One check of one revision at one stage (prePromotion, postPromotion, step-N)."""

    name: str
    stage: str
    template_hash: str
    phase: CheckPhase = "Running"
    started_at: Time
    next_at: Time | None = pydantic.Field(default=None, description="The next measurement.")
    successes: int = 0
    failures: int = 0
    inconclusive: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    measurements: list[Measurement] = pydantic.Field(default_factory=list)
    message: str = ""
    judgement: Judgement | None = pydantic.Field(
        default=None, description="compare: the newest judgement, every number of it."
    )
    template: str | None = pydantic.Field(
        default=None,
        description="templateRef: the template and generation this check runs"
        " (CheckTemplate/NAME@GENERATION).",
    )
    resolved: dict[str, Any] | None = pydantic.Field(
        default=None,
        description="templateRef: the check as resolved when it started (a later change of"
        " the template does not change it).",
        json_schema_extra={"type": "object", **PRESERVE},
    )

    @property
    def taken(self) -> int:
        return self.successes + self.failures + self.inconclusive
