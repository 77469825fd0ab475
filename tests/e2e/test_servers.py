"""The real servers of tests/e2e/servers.py do what promotion-gate tests rely on (no cluster)."""

from __future__ import annotations

import json
import secrets
import socket
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.servers import (
    HttpServer,
    MetricsTarget,
    Prometheus,
    PrometheusError,
    Request,
    Response,
)


def call(
    url: str, method: str = "GET", body: Any = None, timeout: float = 10, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    data = None if body is None else json.dumps(body).encode()
    if data is not None:
        headers.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_routes_answer_status_json_and_headers(http_server: HttpServer) -> None:
    http_server.route("/smoke", json={"ok": True, "version": "2"}, headers={"X-Slot": "green"})
    http_server.route("/broken", status=500, json={"ok": False})
    http_server.route("/not-json", body="<html>oops</html>", headers={"Content-Type": "text/json"})

    status, headers, body = call(http_server.url("/smoke?attempt=1"))
    assert (status, json.loads(body)) == (200, {"ok": True, "version": "2"})
    assert headers["X-Slot"] == "green"
    assert headers["Content-Type"] == "application/json"
    assert call(http_server.url("/broken"))[0] == 500
    status, headers, body = call(http_server.url("/not-json"))
    assert (status, headers["Content-Type"], body) == (200, "text/json", b"<html>oops</html>")
    assert call(http_server.url("/nowhere"))[0] == 404

    first = http_server.requests("/smoke")[0]
    assert (first.method, first.path, first.query) == ("GET", "/smoke", {"attempt": ["1"]})
    seen = [r.path for r in http_server.requests()]
    assert seen == ["/smoke", "/broken", "/not-json", "/nowhere"]


def test_a_slow_route_is_slow(http_server: HttpServer) -> None:
    http_server.route("/slow", json={"ok": True}, delay=1.5)
    started = time.monotonic()
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        call(http_server.url("/slow"), timeout=0.3)  # a check with a short timeout gives up
    assert time.monotonic() - started < 1.0
    started = time.monotonic()
    assert call(http_server.url("/slow"), timeout=10)[0] == 200
    assert time.monotonic() - started >= 1.5


def test_a_webhook_is_recorded_and_its_approval_arrives_late(http_server: HttpServer) -> None:
    http_server.route("/hook", status=403, json={"approved": False})
    payload = {"name": "web", "namespace": "shop", "revisions": {"live": 1, "candidate": 2}}
    assert call(http_server.url("/hook"), "POST", payload, Authorization="Bearer s3cret")[0] == 403

    hook = http_server.wait_requests("/hook", count=1, timeout=5)[0]
    assert (hook.method, hook.json) == ("POST", payload)
    assert hook.headers["authorization"] == "Bearer s3cret"
    assert hook.headers["content-type"] == "application/json"

    http_server.route("/hook", status=200, json={"approved": True})  # someone approves, later
    assert call(http_server.url("/hook"), "POST", payload)[0] == 200
    assert [r.json for r in http_server.requests("/hook")] == [payload, payload]


def test_a_handler_answers_by_the_request(http_server: HttpServer) -> None:
    def by_revision(req: Request) -> Response:
        ok = req.json.get("revision") == 2
        return Response(status=200 if ok else 409, json={"seen": req.json.get("revision")})

    http_server.route("/gate", handler=by_revision)
    assert call(http_server.url("/gate"), "POST", {"revision": 1})[0] == 409
    status, _, body = call(http_server.url("/gate"), "PUT", {"revision": 2})
    assert (status, json.loads(body)) == (200, {"seen": 2})


def exposed(target: MetricsTarget) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(target.url, timeout=10).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_metrics_target_exposes_what_the_test_sets(metrics_target: MetricsTarget) -> None:
    rel = f"web-{secrets.token_hex(3)}"
    metrics_target.set("app_error_ratio", 0.02, labels={"release": rel})
    metrics_target.inc("app_requests", 5, labels={"release": rel, "code": "200"})
    assert metrics_target.inc("app_requests_total", 2, labels={"release": rel, "code": "200"}) == 7
    samples = exposed(metrics_target)
    assert samples[("app_error_ratio", (("release", rel),))] == 0.02
    assert samples[("app_requests_total", (("code", "200"), ("release", rel)))] == 7

    metrics_target.remove("app_error_ratio", labels={"release": rel})
    assert ("app_error_ratio", (("release", rel),)) not in exposed(metrics_target)
    with pytest.raises(ValueError):
        metrics_target.set("app_error_ratio", 1, kind="counter")


def test_prometheus_sees_each_new_value(
    prometheus: Prometheus, metrics_target: MetricsTarget
) -> None:
    rel = f"web-{secrets.token_hex(3)}"
    query = f'app_error_ratio{{release="{rel}"}}'
    assert prometheus.value(query) is None  # not exposed yet: no data

    metrics_target.set("app_error_ratio", 0.02, labels={"release": rel})
    assert prometheus.wait_value(query, lambda v: v == 0.02, timeout=30) == 0.02
    metrics_target.set("app_error_ratio", 0.5, labels={"release": rel})
    assert prometheus.wait_value(query, lambda v: v > 0.1, timeout=30) == 0.5
    assert prometheus.value(f"{query} < bool 0.05") == 0  # a success condition, as PromQL

    metrics_target.inc("app_requests", 10, labels={"release": rel})
    prometheus.wait_value(f'app_requests_total{{release="{rel}"}}', lambda v: v == 10)

    metrics_target.remove("app_error_ratio", labels={"release": rel})  # stale at the next scrape
    prometheus.wait_value(f"absent({query})", lambda v: v == 1, timeout=30)
    assert prometheus.value(query) is None


def test_prometheus_answers_like_the_api(prometheus: Prometheus) -> None:
    up = prometheus.query(f'up{{job="{prometheus.job}"}}')
    assert len(up) == 1 and up[0].value == 1 and up[0].labels["instance"] == prometheus.target
    assert prometheus.value("scalar(vector(3))") == 3
    with pytest.raises(PrometheusError, match=r"400|422|parse"):
        prometheus.query("sum(")  # bad PromQL is an error, not an empty answer
    with urllib.request.urlopen(f"{prometheus.url}/api/v1/status/buildinfo", timeout=10) as r:
        assert json.load(r)["data"]["version"].startswith("3.")
