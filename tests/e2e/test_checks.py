"""Promotion gates on a real API server, against real HTTP servers, real Jobs (kwok runs their
pods) and a real Prometheus scraping a target the test controls."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from greenlight.engine import naming
from tests.e2e.helpers import wait_for
from tests.e2e.servers import HttpServer, MetricsTarget, Prometheus
from tests.e2e.support import Operator, Releases, release_manifest, with_image
from tests.e2e.test_rolling import bounds  # noqa: F401  (the fixture)

pytestmark = pytest.mark.usefixtures("operator")


def gated(
    releases: Releases, pre: list[Any] = (), post: list[Any] = (), **kw: Any
) -> dict[str, Any]:  # type: ignore[assignment]
    """Release `web` v1 live (its first release has no gate to pass), with these gates."""
    manifest = release_manifest("web", "example/web:1", **kw)
    manifest["spec"]["strategy"]["blueGreen"].update(
        prePromotion=list(pre), postPromotion=list(post)
    )
    releases.apply(manifest)
    releases.wait_phase("web", "Healthy", liveRevision=1)
    return manifest


def live(releases: Releases) -> str | None:
    return releases.selector("web").get(naming.LABEL_HASH)


def check_phases(releases: Releases, stage: str = "prePromotion") -> dict[str, str]:
    return {
        c["name"]: c["phase"]
        for c in releases.status("web").get("checks", [])
        if c["stage"] == stage
    }


def test_a_passing_pre_promotion_http_check_lets_the_flip_happen(
    releases: Releases, http_server: HttpServer, zero_downtime: Any
) -> None:
    http_server.route("/smoke/2", json={"ok": True, "version": 2})
    smoke = {
        "name": "smoke",
        "http": {"url": http_server.url("/smoke/$(REVISION)")},
        "successCondition": "result.body.ok && result.body.version == 2",
        "count": 2,
        "interval": "500ms",
    }
    manifest = gated(releases, pre=[smoke])
    watcher = zero_downtime("web")
    releases.apply(with_image(manifest, "example/web:2"))
    st = releases.wait_phase("web", "Healthy", liveRevision=2, timeout=60)
    [check] = [c for c in st["checks"] if c["stage"] == "prePromotion"]
    assert (check["phase"], check["successes"]) == ("Passed", 2)
    assert len(http_server.requests("/smoke/2")) >= 2, "the URL's $(REVISION) was expanded"
    events = releases.events("web")
    assert {"CheckSuccessful", "CheckPassed", "Promoted"} <= set(events)
    watcher.check()


def test_a_failing_pre_promotion_check_aborts_and_live_traffic_is_untouched(
    releases: Releases, http_server: HttpServer, zero_downtime: Any
) -> None:
    http_server.route("/smoke", status=500, body="database unreachable")
    manifest = gated(releases, pre=[{"name": "smoke", "http": {"url": http_server.url("/smoke")}}])
    v1 = live(releases)
    watcher = zero_downtime("web")
    releases.apply(with_image(manifest, "example/web:2"))
    st = releases.wait_phase("web", "Degraded", timeout=60)
    assert live(releases) == v1 and st["liveRevision"] == 1
    entry = next(e for e in st["history"] if e["revision"] == 2)
    assert entry["outcome"] == "Aborted"
    assert entry["reason"] == "PrePromotionCheckFailed" and "smoke" in entry["message"]
    assert "database unreachable" in entry["message"], "the last measurement is in the history"
    assert "CheckFailed" in releases.events("web")
    watcher.check()


def first_release_gated(releases: Releases, pre: list[Any]) -> None:
    """Apply v1 of `web` with firstReleaseChecks: its own pre-promotion checks gate it."""
    blue_green = {"firstReleaseChecks": True, "prePromotion": pre}
    releases.apply(release_manifest("web", "example/web:1", blue_green=blue_green))


def no_service(releases: Releases, name: str) -> bool:
    found = releases.kube.core.list_namespaced_service(
        releases.ns, field_selector=f"metadata.name={name}"
    )
    return not found.items


def test_first_release_checks_gate_the_first_revision(
    releases: Releases, http_server: HttpServer
) -> None:
    """Argo Rollouts #4759: with firstReleaseChecks the live Service selects the first revision
    only once its pre-promotion checks passed; the preview Service reaches it before."""
    http_server.route("/smoke/1", status=503, body="warming up")
    smoke = {"name": "smoke", "http": {"url": http_server.url("/smoke/$(REVISION)")},
             "failureLimit": 100, "interval": "500ms"}  # fmt: skip
    first_release_gated(releases, [smoke])
    http_server.wait_requests("/smoke/1", count=2, timeout=60)
    assert no_service(releases, "web"), "nothing selects the first revision yet"
    st = releases.status("web")
    assert st["phase"] == "Progressing" and st.get("liveRevision") is None
    assert releases.selector("web-preview") == naming.pod_labels("web", st["candidateHash"])
    http_server.route("/smoke/1", json={"ok": True})
    st = releases.wait_phase("web", "Healthy", liveRevision=1, timeout=60)
    assert releases.selector("web") == naming.pod_labels("web", st["liveHash"])
    assert {"CheckPassed", "Promoted"} <= set(releases.events("web"))


def test_a_failing_first_release_check_aborts_the_first_revision(
    releases: Releases, http_server: HttpServer
) -> None:
    http_server.route("/smoke", status=500, body="database unreachable")
    first_release_gated(releases, [{"name": "smoke", "http": {"url": http_server.url("/smoke")}}])
    st = releases.wait_phase("web", "Degraded", timeout=60)
    assert no_service(releases, "web") and st.get("liveRevision") is None
    [entry] = st["history"]
    assert (entry["revision"], entry["outcome"]) == (1, "Aborted")
    assert entry["reason"] == "PrePromotionCheckFailed" and "smoke" in entry["message"]
    assert {"CheckFailed", "Aborted"} <= set(releases.events("web"))


def test_a_job_migration_gate_runs_once_and_gates_the_flip(
    kube: Any, namespace: str, releases: Releases
) -> None:
    migrate = {
        "name": "migrate",
        "job": {
            "template": {
                "metadata": {"annotations": {"greenlight.dev/test-complete-after": "2s"}},
                "spec": {
                    "containers": [
                        {
                            "name": "migrate",
                            "image": "example/migrate:1",
                            "env": [{"name": "TARGET_REVISION", "value": "$(REVISION)"}],
                        }
                    ]
                },
            }
        },
    }
    manifest = gated(releases, pre=[migrate])
    releases.apply(with_image(manifest, "example/web:2"))
    st = releases.wait_phase("web", "Healthy", liveRevision=2, timeout=60)
    jobs = kube.batch.list_namespaced_job(namespace, label_selector=f"{naming.LABEL_CHECK}=migrate")
    [job] = jobs.items
    env = job.spec.template.spec.containers[0].env
    assert [(e.name, e.value) for e in env] == [("TARGET_REVISION", "2")]
    assert job.status.succeeded == 1
    assert check_phases(releases) == {"migrate": "Passed"}
    assert st["liveRevision"] == 2


def test_a_failing_job_gate_aborts(kube: Any, namespace: str, releases: Releases) -> None:
    migrate = {
        "name": "migrate",
        "job": {
            "template": {
                "metadata": {"annotations": {"greenlight.dev/test-job-result": "failed"}},
                "spec": {"containers": [{"name": "migrate", "image": "example/migrate:1"}]},
            }
        },
    }
    manifest = gated(releases, pre=[migrate])
    releases.apply(with_image(manifest, "example/web:2"))
    st = releases.wait_phase("web", "Degraded", timeout=60)
    assert st["liveRevision"] == 1 and "migrate" in st["message"]
    jobs = kube.batch.list_namespaced_job(namespace, label_selector=f"{naming.LABEL_CHECK}=migrate")
    assert len(jobs.items) == 1, "one Job per revision and check, never two"


def test_prometheus_gates_the_flip_and_a_failure_after_it_flips_back_without_new_pods(
    releases: Releases, prometheus: Prometheus, metrics_target: MetricsTarget, namespace: str
) -> None:
    series = {"release": namespace}
    metrics_target.set("app_error_ratio", 0.01, labels=series)
    prometheus.wait_value(f'app_error_ratio{{release="{namespace}"}}', lambda v: v == 0.01)
    query = f'max(app_error_ratio{{release="{namespace}"}})'
    gate = {
        "prometheus": {"address": prometheus.url, "query": query},
        "successCondition": "result < 0.05",
        "failureCondition": "result >= 0.05",
        "interval": "1s",
    }
    manifest = gated(
        releases,
        pre=[{"name": "errors-before", **gate}],
        post=[{"name": "errors-after", **gate, "count": 30}],
        blue_green={"scaleDownDelaySeconds": 0},
    )
    v1 = live(releases)
    releases.apply(with_image(manifest, "example/web:2"))
    releases.wait_phase("web", "Progressing", liveRevision=2, timeout=60)
    v2 = live(releases)
    assert v2 != v1
    pods_before = releases.pod_names()
    assert releases.deployments("web")[v1].spec.replicas == 3, "v1 warm while checks run"
    metrics_target.set("app_error_ratio", 0.4, labels=series)  # the new version misbehaves
    st = releases.wait_phase("web", "Degraded", liveRevision=1, timeout=60)
    assert live(releases) == v1
    assert releases.pod_names() >= {p for p in pods_before if v1 in p}, "v1's pods, not new ones"
    entry = next(e for e in st["history"] if e["revision"] == 2)
    assert entry["outcome"] == "RolledBack" and "errors-after" in entry["message"]
    assert "RolledBack" in releases.events("web")
    metrics_target.set("app_error_ratio", 0.01, labels=series)


def test_a_webhook_approval_that_arrives_late(releases: Releases, http_server: HttpServer) -> None:
    http_server.route("/approve", status=403, json={"approved": False})
    hook = {
        "name": "approval",
        "webhook": {"url": http_server.url("/approve")},
        "interval": "500ms",
        "failureLimit": 1000,
    }
    manifest = gated(releases, pre=[hook])
    releases.apply(with_image(manifest, "example/web:2"))
    asked = http_server.wait_requests("/approve", count=3)
    body = asked[-1].json
    assert (body["name"], body["candidate"]["revision"]) == ("web", 2)
    assert body["candidate"]["images"] == ["example/web:2"]
    assert releases.status("web")["liveRevision"] == 1, "no flip while not approved"
    http_server.route("/approve", status=200, json={"approved": True})
    releases.wait_phase("web", "Healthy", liveRevision=2, timeout=30)


def test_an_operator_restart_mid_check_resumes_the_count(
    releases: Releases, http_server: HttpServer, operator: Operator
) -> None:
    http_server.route("/smoke", json={"ok": True})
    smoke = {"name": "smoke", "http": {"url": http_server.url("/smoke")}, "count": 4,
             "interval": "1s"}  # fmt: skip
    manifest = gated(releases, pre=[smoke])
    releases.apply(with_image(manifest, "example/web:2"))

    def counted() -> int:
        checks = releases.status("web").get("checks", [])
        return next((c["successes"] for c in checks if c["name"] == "smoke"), 0)

    wait_for(lambda: counted() >= 2, 30, "two measurements recorded")
    operator.stop()
    before = counted()
    operator.start()
    st = releases.wait_phase("web", "Healthy", liveRevision=2, timeout=60)
    [check] = [c for c in st["checks"] if c["stage"] == "prePromotion"]
    assert check["successes"] == 4 and before >= 2
    assert len(http_server.requests("/smoke")) <= 5, "counting resumed (one may have been lost)"


def test_promote_with_skip_checks(releases: Releases, http_server: HttpServer) -> None:
    http_server.route("/slow", json={"ok": True})
    slow = {"name": "soak", "http": {"url": http_server.url("/slow")}, "count": 100,
            "interval": "1m"}  # fmt: skip
    manifest = gated(releases, pre=[slow])
    releases.apply(with_image(manifest, "example/web:2"))
    wait_for(lambda: check_phases(releases) == {"soak": "Running"}, 30, "the check running")
    releases.annotate("web", naming.COMMAND_PROMOTE, "true")
    wait_for(lambda: "PromoteRequested" in releases.events("web"), 30, "the promote taken")
    st = releases.wait_phase("web", "Progressing", liveRevision=1)
    assert check_phases(releases) == {"soak": "Running"}, "a plain promote waits for checks"
    assert "pre-promotion" in st["message"]
    releases.annotate("web", naming.COMMAND_PROMOTE, "skip-checks")
    releases.wait_phase("web", "Healthy", liveRevision=2, timeout=30)
    assert check_phases(releases) == {"soak": "Skipped"}


def test_a_failing_rolling_analysis_step_rolls_back_within_bounds(
    releases: Releases,
    http_server: HttpServer,
    zero_downtime: Any,
    bounds: Any,  # noqa: F811  (test_rolling's fixture)
) -> None:
    http_server.route("/smoke", status=503)
    rolling = {
        "maxSurge": 1,
        "maxUnavailable": 0,
        "steps": [
            {"setWeight": 34},
            {
                "analysis": {
                    "checks": [{"name": "smoke", "http": {"url": http_server.url("/smoke")}}]
                }
            },
        ],
    }
    manifest = release_manifest("web", "example/web:1", rolling=rolling)
    releases.apply(manifest)
    releases.wait_phase("web", "Healthy", liveRevision=1)
    watcher = zero_downtime("web")
    wait_for(lambda: watcher.max_ready == 3, 30, "watcher sees 3 ready endpoints")
    within = bounds("web", replicas=3, surge=1, unavailable=0)
    releases.apply(with_image(manifest, "example/web:2"))
    st = releases.wait_phase("web", "Degraded", timeout=60)
    assert "AnalysisFailed" in st["message"] and "smoke" in st["message"]
    wait_for(
        lambda: releases.deployments("web")[st["liveHash"]].status.available_replicas == 3,
        30,
        "back to 3 on revision 1",
    )
    assert within.problems == [], "never fewer than 3 available, never more than 4 pods"


def test_an_invalid_check_is_refused_naming_the_field(releases: Releases) -> None:
    manifest = release_manifest("web", "example/web:1")
    bad = copy.deepcopy(manifest)
    bad["spec"]["strategy"]["blueGreen"]["prePromotion"] = [
        {"name": "two", "http": {"url": "http://x"}, "webhook": {"url": "http://y"}}
    ]
    with pytest.raises(Exception, match="exactly one provider"):
        releases.apply(bad)


def test_an_unparseable_condition_is_refused_before_anything_is_created(
    kube: Any, namespace: str, releases: Releases
) -> None:
    manifest = release_manifest("web", "example/web:1")
    manifest["spec"]["strategy"]["blueGreen"]["prePromotion"] = [
        {"name": "smoke", "http": {"url": "http://x"}, "successCondition": "result.status =="}
    ]
    releases.apply(manifest)  # the API server cannot parse CEL inside a string: the operator does
    st = releases.wait_phase("web", "Degraded")
    assert "spec.strategy.blueGreen.prePromotion[0].successCondition" in st["message"]
    assert "not a CEL expression" in st["message"]
    assert releases.deployments("web") == {}
    assert kube.core.list_namespaced_service(namespace).items == []


def test_the_scale_down_gate_holds_the_draining_revision_until_its_check_passes(
    releases: Releases, http_server: HttpServer
) -> None:
    """blueGreen.scaleDown.when: the old revision keeps its pods after scaleDownDelaySeconds
    while its check fails (asked about $(DRAINING_HASH)), and goes once it passes."""
    http_server.route("/drained", 503, json={"open": 12})
    manifest = release_manifest("web", "example/web:1", replicas=2)
    manifest["spec"]["strategy"]["blueGreen"].update(
        scaleDownDelaySeconds=0,
        scaleDown={
            "when": [
                {
                    "name": "connections",
                    "http": {"url": http_server.url("/drained?revision=$(DRAINING_HASH)")},
                    "interval": "1s",
                    "failureLimit": 1000,
                }
            ],
            "maxDelaySeconds": 600,
        },
    )
    releases.apply(manifest)
    releases.wait_phase("web", "Healthy", liveRevision=1)
    old = live(releases)
    releases.apply(with_image(manifest, "example/web:2"))
    releases.wait_phase("web", "Healthy", liveRevision=2)
    asked = http_server.wait_requests("/drained", count=3)
    assert all(r.query == {"revision": [old]} for r in asked), [r.query for r in asked]
    assert releases.deployments("web")[old].spec.replicas == 2, "held while it fails"
    assert check_phases(releases, "scaleDown") == {"connections": "Running"}
    http_server.route("/drained", 200, json={"open": 0})
    wait_for(
        lambda: releases.deployments("web")[old].spec.replicas == 0, 30, "the old revision at 0"
    )  # (its check is forgotten with its pods)


def test_a_prometheus_range_query_judges_every_value_in_its_window(
    releases: Releases, prometheus: Prometheus, metrics_target: MetricsTarget, namespace: str
) -> None:
    """`range`: the condition sees the window's values; a spike inside it fails the check
    even once the value is back to normal."""
    series = {"release": namespace}
    metrics_target.set("app_error_ratio", 0.01, labels=series)
    prometheus.wait_value(f'app_error_ratio{{release="{namespace}"}}', lambda v: v == 0.01)
    gate = {
        "name": "window",
        "prometheus": {"address": prometheus.url, "range": "30s", "step": "1s",
                       "query": f'max(app_error_ratio{{release="{namespace}"}})'},
        "successCondition": "result.all(v, v < 0.05)",
        "initialDelay": "3s",
    }  # fmt: skip
    manifest = gated(releases, pre=[gate])
    metrics_target.set("app_error_ratio", 0.5, labels=series)  # a spike...
    prometheus.wait_value(f'app_error_ratio{{release="{namespace}"}}', lambda v: v == 0.5)
    metrics_target.set("app_error_ratio", 0.01, labels=series)  # ... over before the release
    prometheus.wait_value(f'app_error_ratio{{release="{namespace}"}}', lambda v: v == 0.01)
    releases.apply(with_image(manifest, "example/web:2"))
    st = releases.wait_phase("web", "Degraded", timeout=60)
    [check] = [c for c in st["checks"] if c["name"] == "window"]
    assert check["phase"] == "Failed" and "0.5" in check["measurements"][-1]["value"], check
    assert st["liveRevision"] == 1
