"""Canary judgement in the engine: a `compare` check asks for both sides' samples over the right
windows, judges them (engine/judge.py), records every number in status, and decides the
release; check templates make checks, and a running check keeps the template it started with."""

from __future__ import annotations

import random
from typing import Any

from greenlight.api import release as api
from greenlight.api import templates as api_templates
from greenlight.engine import actions as act
from greenlight.engine import snapshot
from tests.unit.world import World, hash_of, spec

LATENCY = {
    "name": "latency",
    "query": 'latency{hash="$(TEMPLATE_HASH)"}',
    "baselineQuery": 'latency{hash="$(BASELINE_HASH)"}',
    "tolerance": 0.1,
}
ERRORS = {
    "name": "errors",
    "test": "proportion",
    "query": 'errors{hash="$(TEMPLATE_HASH)"}',
    "baselineQuery": 'errors{hash="$(BASELINE_HASH)"}',
    "totalQuery": 'requests{hash="$(TEMPLATE_HASH)"}',
    "baselineTotalQuery": 'requests{hash="$(BASELINE_HASH)"}',
}


def judge_check(**fields: Any) -> dict[str, Any]:
    compare = {"address": "http://prometheus:9090", "range": "2m", "step": "5s",
               "metrics": [LATENCY, ERRORS], **fields}  # fmt: skip
    return {"name": "judge", "compare": compare}


def canary(check: dict[str, Any]) -> dict[str, Any]:
    steps = [{"setWeight": 34}, {"analysis": {"checks": [check]}}]
    return {"maxSurge": 1, "maxUnavailable": 0, "steps": steps}


def at_analysis(check: dict[str, Any], templates: tuple[Any, ...] = ()) -> World:
    w = World(spec("app:1", rolling=canary(check)), templates=templates)
    for _ in range(3):
        w.reconcile()
        w.settle()
    w.set_spec(spec("app:2", rolling=canary(check)))
    for _ in range(6):
        w.reconcile()
        w.settle()
    assert w.status.current_step == 1 and w.requested, "held at the analysis step, measuring"
    return w


def samples(shift: float = 1.0, errors: int = 0, n: int = 60) -> dict[str, Any]:
    rng = random.Random(7)
    base = [rng.gauss(0.040, 0.004) for _ in range(n)]
    cand = [rng.gauss(0.040, 0.004) * shift for _ in range(n)]
    return {
        "latency": {"candidate": cand, "baseline": base},
        "errors": {"candidate": [errors, 1000], "baseline": [0, 1000]},
    }


def run(w: World, rounds: int = 8) -> None:
    for _ in range(rounds):
        w.reconcile()
        w.settle()


def entry(w: World) -> Any:
    return next(c for c in w.status.checks if c.name == "judge")


def test_a_slower_candidate_fails_with_every_number_in_status_and_rolls_back() -> None:
    w = at_analysis(judge_check())
    asked = w.requested[-1]
    live, candidate = hash_of(spec("app:1")), hash_of(w.spec)
    assert asked.check.compare is not None
    queries = [(m.query, m.baseline_query) for m in asked.check.compare.metrics]
    assert queries[0] == (f'latency{{hash="{candidate}"}}', f'latency{{hash="{live}"}}')
    (c_from, c_to), (b_from, b_to) = asked.windows
    assert (c_from, c_to) == (b_from, b_to) and (c_to - c_from).total_seconds() == 120
    assert c_to == w.now, "concurrent: both sides over the same window, ending now"
    w.answer(samples(shift=1.5))
    run(w)
    j = entry(w).judgement
    assert entry(w).phase == "Failed" and j is not None and j.verdict == "Failed"
    latency = next(m for m in j.metrics if m.name == "latency")
    assert latency.verdict == "Fail" and latency.candidate_n == latency.baseline_n == 60
    assert latency.relative is not None and 0.4 < latency.relative < 0.6
    assert latency.lower > 0 and latency.p_value < 0.001 and latency.candidate and latency.baseline
    assert j.score == 50.0, "errors passed (weight 1), latency failed (weight 1)"
    warnings = [a.message for a in w.log if isinstance(a, act.RecordEvent) and a.type == "Warning"]
    assert any("latency" in m and "%" in m for m in warnings), warnings
    assert w.status.live_revision == 1 and w.status.phase == "Degraded"


def test_an_identical_candidate_passes_and_the_release_goes_on() -> None:
    w = at_analysis(judge_check())
    w.answer(samples(shift=1.0))
    run(w, 12)
    assert entry(w).phase == "Passed" and entry(w).judgement.score == 100.0
    assert w.status.phase == "Healthy" and w.status.live_revision == 2


def test_more_errors_fail_the_proportion_and_a_zero_error_baseline_is_a_number() -> None:
    w = at_analysis(judge_check())
    w.answer(samples(errors=200))
    run(w)
    errors = next(m for m in entry(w).judgement.metrics if m.name == "errors")
    assert errors.verdict == "Fail" and errors.relative is None, "the baseline's rate is 0"
    assert 0.15 < errors.estimate < 0.25 and errors.p_value < 0.001


def test_too_few_samples_are_inconclusive_never_passed() -> None:
    w = at_analysis(judge_check())
    w.answer(samples(n=5))
    run(w)
    assert entry(w).judgement.verdict == "Inconclusive"
    assert entry(w).phase == "Inconclusive" and w.status.live_revision == 1


def test_post_promotion_compares_with_the_revision_live_before_the_flip() -> None:
    body = spec().model_dump(by_alias=True, exclude_none=True)
    body["strategy"]["blueGreen"]["postPromotion"] = [judge_check(baseline="before")]
    s1 = api.ReleaseSpec.model_validate(body)
    w = World(s1).go_live()
    body["template"]["spec"]["containers"][0]["image"] = "app:2"
    w.set_spec(api.ReleaseSpec.model_validate(body))
    for _ in range(6):
        w.reconcile()
        w.settle()
        if w.requested:
            break
    asked = w.requested[-1]
    assert asked.stage == "postPromotion"
    old = hash_of(s1)
    assert asked.check.compare is not None
    assert asked.check.compare.metrics[0].baseline_query == f'latency{{hash="{old}"}}'
    (c_from, c_to), (b_from, b_to) = asked.windows
    assert b_to == c_from == entry(w).started_at, "the baseline: just before the flip"
    assert b_to - b_from == c_to - c_from


TEMPLATE = {
    "args": [{"name": "metric"}, {"name": "tolerance", "type": "number", "default": "0.2"}],
    "check": {
        "compare": {
            "address": "http://prometheus:9090",
            "metrics": [
                {
                    "name": "m",
                    "query": '$(args.metric){hash="$(TEMPLATE_HASH)"}',
                    "baselineQuery": '$(args.metric){hash="$(BASELINE_HASH)"}',
                    "tolerance": "$(args.tolerance)",
                }
            ],
        },
        "interval": "30s",
    },
}


def template(generation: int = 1, body: dict[str, Any] = TEMPLATE) -> snapshot.TemplateView:
    spec_ = api_templates.CheckTemplateSpec.model_validate(body)
    return snapshot.TemplateView("CheckTemplate", "latency", generation, spec_)


def uses(args: dict[str, str]) -> dict[str, Any]:
    return {"name": "judge", "templateRef": {"name": "latency"},
            "args": [{"name": k, "value": v} for k, v in args.items()]}  # fmt: skip


def test_a_template_makes_the_check_and_a_change_mid_release_does_not_change_it() -> None:
    w = at_analysis(uses({"metric": "latency"}), templates=(template(),))
    asked = w.requested[-1].check
    assert asked.compare is not None and asked.interval == "30s"
    metric = asked.compare.metrics[0]
    assert metric.query.startswith("latency{") and metric.tolerance == 0.2, "typed default"
    assert entry(w).template == "CheckTemplate/latency@1" and entry(w).resolved is not None
    changed = {**TEMPLATE, "check": {**TEMPLATE["check"], "interval": "5m"}}
    w.templates = (template(2, changed),)
    w.tick(30)
    w.reconcile()
    assert entry(w).template == "CheckTemplate/latency@1", "the running check keeps its template"
    assert w.requested[-1].check.interval == "30s"


def test_a_missing_template_or_argument_is_refused_naming_the_field_and_nothing_is_made() -> None:
    field = "spec.strategy.rolling.steps[1].analysis.checks[0]"
    for templates, args, why in [
        ((), {"metric": "latency"}, "CheckTemplate latency: not found"),
        ((template(),), {}, "args: metric is required"),
        ((template(),), {"metric": "m", "other": "x"}, "args: other is not an argument"),
        ((template(),), {"metric": "m", "tolerance": "much"}, "'much' is not a number"),
    ]:
        w = World(spec("app:1", rolling=canary(uses(args))), templates=templates)
        w.reconcile()
        assert w.status.phase == "Degraded" and field in w.status.message, w.status.message
        assert why in w.status.message, w.status.message
        assert not w.deployments and not w.services, "refused before anything is created"


def test_a_template_that_makes_a_compare_where_it_is_unsound_is_refused() -> None:
    body = spec().model_dump(by_alias=True, exclude_none=True)
    body["strategy"]["blueGreen"]["prePromotion"] = [uses({"metric": "latency"})]
    w = World(api.ReleaseSpec.model_validate(body), templates=(template(),))
    w.reconcile()
    assert "prePromotion[0]" in w.status.message and "compare" in w.status.message
    assert not w.deployments


def test_a_prometheus_range_query_gets_its_window() -> None:
    check = {
        "name": "judge",
        "prometheus": {"address": "http://p", "query": "up", "range": "5m", "step": "30s"},
        "successCondition": "result.all(v, v < 1.0)",
    }
    w = at_analysis(check)
    ((start, end),) = w.requested[-1].windows
    assert (end - start).total_seconds() == 300 and end == w.now
    w.answer([0.1, 0.2, 0.3])
    run(w, 12)
    assert entry(w).phase == "Passed" and w.status.live_revision == 2


def test_get_and_the_dashboard_view_show_every_metric_of_the_judgement() -> None:
    from rich.console import Console

    from greenlight.cli import view
    from greenlight.cli.commands import get

    w = at_analysis(judge_check())
    w.answer(samples(shift=1.3))
    w.reconcile()
    release = {
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": w.spec.model_dump(by_alias=True, mode="json"),
        "status": w.status.model_dump(by_alias=True, mode="json"),
    }
    [row] = view.release(release).checks
    assert row.score == 50.0 and [m.name for m in row.metrics] == ["latency", "errors"]
    latency = row.metrics[0]
    assert latency.verdict == "Fail" and latency.samples == "60 / 60"
    assert latency.shift.startswith("+3") and "%" in latency.shift, latency.shift
    assert latency.candidate and latency.baseline, "both boxes, for the dashboard's chart"
    assert latency.candidate["median"] > latency.baseline["median"]
    console = Console(record=True, width=200)
    console.print(get.summary(view.release(release)))
    text = console.export_text()
    [line] = [x for x in text.splitlines() if "latency" in x and "60 / 60" in x]
    assert "judge" in line and "50" in line and "Fail" in line and "%" in line, line
