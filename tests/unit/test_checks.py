"""Promotion gates, state in / actions out: scheduling, verdicts, and what they decide."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import checks, naming

from .world import World, hash_of, spec

OK = {"status": 200, "body": {"ok": True}, "headers": {}}
BAD = {"status": 500, "body": "oops", "headers": {}}


def with_checks(s: api.ReleaseSpec, pre: list[Any] = (), post: list[Any] = ()) -> api.ReleaseSpec:  # type: ignore[assignment]
    body = s.model_dump(by_alias=True, exclude_none=True)
    body["strategy"]["blueGreen"].update(prePromotion=list(pre), postPromotion=list(post))
    return api.ReleaseSpec.model_validate(body)


def smoke(**kw: Any) -> dict[str, Any]:
    return {"name": "smoke", "http": {"url": "http://$(PREVIEW_SERVICE)/v/$(REVISION)"}, **kw}


def candidate_ready(pre: list[Any] = (), post: list[Any] = ()) -> World:  # type: ignore[assignment]
    """Revision 1 live; revision 2 fully available, its gates about to start."""
    w = World(with_checks(spec("app:1"), pre, post)).go_live()
    w.set_spec(with_checks(spec("app:2"), pre, post))
    w.reconcile()
    w.settle()
    return w


def flips(w: World) -> bool:
    return any(a.role == "live" for a in w.log if isinstance(a, act.ApplyService) and not a.create)


def test_a_passing_pre_promotion_check_flips_only_after_its_verdict_is_recorded() -> None:
    w = candidate_ready(pre=[smoke(successCondition="result.body.ok == true")])
    v1 = w.live_hash()
    w.reconcile()
    [asked] = w.requested
    assert asked.check.http is not None
    assert asked.check.http.url == "http://web-preview.ns.svc.cluster.local/v/2"
    assert w.status.phase == "Progressing" and "smoke 0/1" in w.status.message
    w.answer(OK)
    w.reconcile()
    assert [c.phase for c in w.status.checks] == ["Passed"]
    assert w.live_hash() == v1, "the verdict is recorded first; the flip comes after"
    w.reconcile()
    assert w.live_hash() == hash_of(w.spec) and w.status.phase == "Healthy"


def test_a_failing_pre_promotion_check_aborts_and_leaves_live_alone() -> None:
    w = candidate_ready(pre=[smoke()])
    v1 = w.live_hash()
    w.reconcile()
    w.answer(BAD)
    w.reconcile()
    w.reconcile()
    assert w.live_hash() == v1 and w.status.phase == "Degraded"
    entry = w.status.history[-1]
    assert entry.outcome == "Aborted" and entry.reason == "PrePromotionCheckFailed"
    assert "smoke" in entry.message
    assert '"status": 500' in entry.message, "the last measurement is in the history"
    assert "CheckFailed" in w.events()


def gated_first(pre: list[Any], gated: bool = True, **kw: Any) -> World:
    """A Release's first revision with pre-promotion checks and firstReleaseChecks: `gated`,
    every pod available after the first reconcile."""
    s = with_checks(spec("app:1", **kw), pre)
    body = s.model_dump(by_alias=True, exclude_none=True)
    body["strategy"]["blueGreen"]["firstReleaseChecks"] = gated
    w = World(api.ReleaseSpec.model_validate(body))
    w.reconcile()
    w.settle()
    return w


def test_a_gated_first_release_is_selected_only_once_its_checks_pass() -> None:
    """Argo Rollouts #4759: firstReleaseChecks gates the first revision like any later one."""
    w = gated_first([smoke()])
    v1 = hash_of(w.spec)
    assert "web" not in w.services, "nothing served yet: no live Service to point"
    assert w.services["web-preview"].selector == naming.pod_labels("web", v1)
    w.reconcile()
    [asked] = w.answer(OK)
    assert asked.check.http is not None
    assert asked.check.http.url == "http://web-preview.ns.svc.cluster.local/v/1"
    assert "web" not in w.services and w.status.phase == "Progressing"
    w.reconcile()
    assert [c.phase for c in w.status.checks] == ["Passed"] and "web" not in w.services
    w.reconcile()
    assert w.live_selector() == naming.pod_labels("web", v1)
    assert w.status.phase == "Healthy" and w.status.live_revision == 1
    assert "Promoted" in w.events() and "FirstRelease" not in w.events()


def test_a_failing_check_aborts_a_gated_first_release_which_never_goes_live() -> None:
    w = gated_first([smoke()])
    w.reconcile()
    w.answer(BAD)
    w.reconcile()
    w.reconcile()
    assert w.status.phase == "Degraded" and w.status.live_hash is None
    entry = w.status.history[-1]
    assert (entry.revision, entry.outcome, entry.reason) == (
        1,
        "Aborted",
        "PrePromotionCheckFailed",
    )
    [aborted] = [a for a in w.log if isinstance(a, act.RecordEvent) and a.reason == "Aborted"]
    assert aborted.type == "Warning" and "check smoke failed" in aborted.message
    assert "nothing is live" in w.status.message
    # without the opt-in, the aborted revision still does not fill the live Service
    body = w.spec.model_dump(by_alias=True, exclude_none=True)
    body["strategy"]["blueGreen"]["firstReleaseChecks"] = False
    w.set_spec(api.ReleaseSpec.model_validate(body))
    w.reconcile()
    assert "web" not in w.services and w.status.phase == "Degraded"


def test_a_gated_first_release_waits_for_a_promote_command_without_auto_promote() -> None:
    w = gated_first([], auto_promote=False)
    w.reconcile()
    assert w.status.phase == "Paused" and "web" not in w.services
    w.annotations[naming.COMMAND_PROMOTE] = "true"
    w.reconcile()
    assert w.live_selector() == naming.pod_labels("web", hash_of(w.spec))
    assert "PromoteIgnored" not in w.events()


def test_without_the_opt_in_the_first_release_fills_the_live_service_unchecked() -> None:
    w = gated_first([smoke()], gated=False)
    assert w.live_selector() == naming.pod_labels("web", hash_of(w.spec))
    w.reconcile()
    assert w.status.phase == "Healthy" and w.requested == [] and w.status.checks == []


def test_measurements_follow_the_interval_and_count() -> None:
    w = candidate_ready(pre=[smoke(count=3, interval="10s", initialDelay="5s")])
    p = w.reconcile()
    assert w.requested == [] and p.requeue_after == 5
    w.tick(5)
    w.reconcile()
    assert [m.seq for m in w.answer(OK)] == [0]
    p = w.reconcile()
    assert p.requeue_after == 10 and w.requested == []
    for seq in (1, 2):
        w.tick(10)
        w.reconcile()
        assert [m.seq for m in w.answer(OK)] == [seq]
    w.reconcile()
    [entry] = w.status.checks
    assert (entry.phase, entry.successes, len(entry.measurements)) == ("Passed", 3, 3)


def test_a_result_is_counted_once_even_if_the_shell_delivers_it_twice() -> None:
    w = candidate_ready(pre=[smoke(count=2, interval="1s")])
    w.reconcile()
    asked = w.answer(OK)
    w.reconcile()
    w.results = [*w.results]  # nothing new
    for m in asked:  # the same measurement again (a retry after a lost status write)
        w.results.append(
            checks.snapshot.CheckResult(m.stage, m.name, m.template_hash, m.seq, w.now, value=OK)
        )
    w.reconcile()
    assert w.status.checks[0].successes == 1


def test_provider_errors_beyond_the_limit_fail_the_check_naming_it() -> None:
    w = candidate_ready(pre=[smoke(consecutiveErrorLimit=2, interval="1s")])
    for _ in range(3):
        w.reconcile()
        w.answer(error="connection refused")
        w.tick(1)
    w.reconcile()
    [entry] = w.status.checks
    assert entry.phase == "Failed" and "3 errors in a row: connection refused" in entry.message
    w.reconcile()
    assert w.status.phase == "Degraded" and "check smoke failed" in w.status.message


def test_promote_with_skip_checks_skips_what_is_left() -> None:
    w = candidate_ready(pre=[smoke(count=5, interval="1m")])
    v1 = w.live_hash()
    w.reconcile()
    w.annotations[naming.COMMAND_PROMOTE] = "true"
    w.reconcile()
    assert w.live_hash() == v1, "a plain promote still waits for the checks"
    w.annotations[naming.COMMAND_PROMOTE] = "skip-checks"
    w.reconcile()
    assert [c.phase for c in w.status.checks] == ["Skipped"]
    w.reconcile()
    assert w.live_hash() == hash_of(w.spec)


def test_a_failing_post_promotion_check_flips_back_to_the_warm_slot_without_new_pods() -> None:
    w = candidate_ready(post=[smoke(count=3, interval="10s")])
    v1 = w.live_hash()
    w.reconcile()  # flips, starts the post-promotion check
    v2 = hash_of(w.spec)
    assert w.live_hash() == v2 and w.status.phase == "Progressing"
    w.tick(60)  # past scaleDownDelaySeconds: the old slot stays warm while checks run
    w.reconcile()
    w.answer(OK)
    w.reconcile()
    assert w.by_hash(v1 or "").spec_replicas == 3
    w.tick(10)
    w.reconcile()
    w.answer(BAD)
    w.reconcile()  # records the failure
    assert w.live_hash() == v2
    before = len(w.log)
    w.reconcile()  # flips back
    assert w.live_hash() == v1 and w.status.live_revision == 1
    new = w.log[before:]
    assert not [a for a in new if isinstance(a, act.CreateDeployment)], "no new pods"
    assert w.status.phase == "Degraded" and "RolledBack" in w.events()
    assert next(e for e in w.status.history if e.template_hash == v2).outcome == "RolledBack"
    for _ in range(3):
        w.reconcile()
    assert w.live_hash() == v1, "the spec still names revision 2: it is not released again"


def test_a_job_check_runs_its_job_once_and_passes_when_it_succeeds() -> None:
    job = {"name": "migrate", "job": {"template": {"spec": {"containers": [
        {"name": "m", "image": "migrate", "env": [{"name": "REV", "value": "$(REVISION)"}]}],
        "restartPolicy": "Never"}}}}  # fmt: skip
    w = candidate_ready(pre=[job])
    w.reconcile()
    [name] = w.jobs
    creates = [a for a in w.log if isinstance(a, act.CreateJob)]
    assert creates[0].spec["template"]["spec"]["containers"][0]["env"][0]["value"] == "2"
    for _ in range(3):
        w.reconcile()  # running: no second Job, no flip
    assert len(w.jobs) == 1 and w.status.checks[0].phase == "Running"
    w.finish_job(name, ok=True)
    w.reconcile()
    w.reconcile()
    assert w.live_hash() == hash_of(w.spec)


def test_a_job_check_that_fails_aborts() -> None:
    job = {"name": "migrate", "job": {"template": {"spec": {"containers": [
        {"name": "m", "image": "migrate"}]}}}}  # fmt: skip
    w = candidate_ready(pre=[job])
    w.reconcile()
    w.finish_job(next(iter(w.jobs)), ok=False)
    w.reconcile()
    w.reconcile()
    assert w.status.phase == "Degraded" and w.status.history[-1].outcome == "Aborted"


def test_a_failed_rolling_analysis_rolls_back_within_bounds() -> None:
    rolling = {
        "maxSurge": 1,
        "maxUnavailable": 0,
        "steps": [{"setWeight": 34}, {"analysis": {"checks": [smoke()]}}],
    }
    w = World(spec("app:1", rolling=rolling))
    for _ in range(3):
        w.reconcile()
        w.settle()
    w.set_spec(spec("app:2", rolling=rolling))
    for _ in range(6):
        w.reconcile()
        w.settle()
    assert w.status.current_step == 1 and w.requested, "held at the analysis step, measuring"
    w.answer(BAD)
    for _ in range(8):
        w.reconcile()
        total = sum(min(d.available_replicas, d.spec_replicas) for d in w.deployments.values())
        assert total >= 3, "maxUnavailable 0: never below 3 available"
        w.settle()
    assert w.status.live_revision == 1 and w.status.phase == "Degraded"
    assert "AnalysisFailed" in (w.status.history[-1].reason or "")


def test_variables_expand_like_kubernetes() -> None:
    values = {"REVISION": "7", "RELEASE": "web"}
    assert checks.expand("$(RELEASE)-$(REVISION) $$(RELEASE) $(OTHER)", values) == (
        "web-7 $(RELEASE) $(OTHER)"
    )


def test_prometheus_conditions_decide_and_a_missing_field_is_an_error() -> None:
    gate = {
        "name": "errors",
        "prometheus": {"address": "http://p", "query": "x"},
        "successCondition": "result < 0.05",
        "failureCondition": "result > 0.1",
    }
    body = spec().model_dump(by_alias=True, exclude_none=True)
    body["strategy"] = {"blueGreen": {"prePromotion": [gate]}}
    check = api.ReleaseSpec.model_validate(body).strategy.effective_blue_green.pre_promotion[0]

    def one(value: Any) -> str:
        r = checks.snapshot.CheckResult("s", "errors", "h", 0, w.now, value=value)
        return checks.verdict(check, r)[0]

    w = World(spec())
    assert [one(0.01), one(0.5), one(0.07)] == ["Successful", "Failed", "Inconclusive"]
    assert one(None) == "Error", "no series: the condition cannot be evaluated"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.sampled_from(["ok", "bad", "error", "tick", "settle", "promote", "skip", "image"]),
        max_size=30,
    )
)
def test_no_flip_unless_every_pre_check_passed_and_a_failed_post_check_ends_on_the_previous(
    ops: list[str],
) -> None:
    pre = [smoke(count=2, interval="1s"), smoke(name="deep", count=1)]
    post = [{"name": "after", "http": {"url": "http://x"}, "count": 2, "interval": "1s"}]
    image = 2
    w = candidate_ready(pre=pre, post=post)
    for op in ops:
        if op in ("ok", "bad", "error"):
            w.answer(OK if op == "ok" else BAD, "refused" if op == "error" else None)
        elif op == "tick":
            w.tick(1)
        elif op == "settle":
            w.settle()
        elif op in ("promote", "skip"):
            w.annotations[naming.COMMAND_PROMOTE] = "true" if op == "promote" else "skip-checks"
        elif op == "image":
            image += 1
            w.set_spec(with_checks(spec(f"app:{image}"), pre, post))
        observed = w.status
        live_before = w.live_hash()
        w.reconcile()
        live_after = w.live_hash()
        if live_after != live_before and live_before is not None and live_after is not None:
            if live_after == observed.candidate_hash:  # a flip forward
                gates = {
                    c.name: c.phase
                    for c in observed.checks
                    if c.stage == checks.PRE and c.template_hash == live_after
                }
                assert set(gates) == {"smoke", "deep"}, gates
                assert set(gates.values()) <= {"Passed", "Skipped"}, gates
            else:  # a flip back: only after a recorded post-promotion failure
                failed = [
                    c
                    for c in observed.checks
                    if c.stage == checks.POST and c.template_hash == live_before
                ]
                assert failed and failed[0].phase == "Failed"
                retired = [e for e in observed.history if e.template_hash == live_after]
                assert retired and retired[0].outcome == "Retired"


def test_a_flip_whose_status_write_was_lost_still_starts_post_promotion_and_says_promoted() -> None:
    """The flip reached the Service but its status write did not: the next reconcile records
    the flip from the Service and starts the post-promotion checks from there, and the
    Promoted Event (what notifications hear) is not lost."""
    w = candidate_ready(post=[smoke(count=2, interval="10s")])
    before = w.status
    w.reconcile()  # flips, starts the post-promotion check
    v2 = hash_of(w.spec)
    assert w.live_hash() == v2
    w.status, w.requested, w.log = before, [], []  # the status patch (and its Events) lost
    w.reconcile()
    assert w.status.live_hash == v2
    post = [c for c in w.status.checks if c.stage == checks.POST and c.template_hash == v2]
    assert [c.phase for c in post] == ["Running"], "post-promotion checks start"
    assert "Promoted" in w.events()
    assert {(m.stage, m.template_hash) for m in w.requested} == {(checks.POST, v2)}, "measured"
