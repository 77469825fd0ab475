"""Check templates on a real API server: a Release naming a missing CheckTemplate (or missing
an argument) is refused before anything is created and goes on once it can; a running check
keeps the template generation it started with; a ClusterCheckTemplate serves any namespace."""

from __future__ import annotations

from typing import Any

import pytest

from greenlight.api import release as api
from tests.e2e.helpers import wait_for
from tests.e2e.servers import HttpServer
from tests.e2e.support import Releases, release_manifest

pytestmark = pytest.mark.usefixtures("operator")

FIELD = "spec.strategy.blueGreen.prePromotion[0]"


def template(kube: Any, namespace: str | None, path: str, count: int = 1) -> None:
    """`smoke`: an http check of `$(args.base)` + path, passing `count` times."""
    body = {
        "apiVersion": "greenlight.dev/v1alpha1",
        "kind": "CheckTemplate" if namespace else "ClusterCheckTemplate",
        "metadata": {"name": "smoke"},
        "spec": {
            "args": [{"name": "base"}, {"name": "count", "type": "number", "default": "1"}],
            "check": {
                "http": {"url": f"$(args.base){path}"},
                "count": "$(args.count)",
                "interval": "500ms",
            },
        },
    }
    if namespace:
        body["metadata"]["namespace"] = namespace
    kube.apply(body, namespace=namespace)


def using(base: str | None, image: str = "example/web:1", **args: str) -> dict[str, Any]:
    given = [{"name": k, "value": v} for k, v in args.items()]
    if base is not None:
        given.append({"name": "base", "value": base})
    check = {"name": "smoke", "templateRef": {"name": "smoke"}, "args": given}
    blue_green = {"firstReleaseChecks": True, "prePromotion": [check]}
    return release_manifest("web", image, blue_green=blue_green)


def nothing_made(releases: Releases) -> bool:
    return not releases.deployments("web")


def test_a_missing_template_refuses_the_release_until_it_exists(
    kube: Any, namespace: str, releases: Releases, http_server: HttpServer
) -> None:
    http_server.route("/ok", json={"ok": True})
    releases.apply(using(http_server.url("")))
    st = releases.wait_phase("web", "Degraded", timeout=60)
    assert FIELD in st["message"] and "CheckTemplate smoke: not found" in st["message"], st
    assert nothing_made(releases), "refused before anything is created"
    template(kube, namespace, "/ok")
    st = releases.wait_phase("web", "Healthy", liveRevision=1, timeout=60)
    [check] = st["checks"]
    assert check["phase"] == "Passed" and check["template"] == "CheckTemplate/smoke@1"
    assert http_server.requests("/ok"), "the check called the URL the template made"


def test_a_missing_argument_is_refused_naming_it(
    kube: Any, namespace: str, releases: Releases
) -> None:
    template(kube, namespace, "/ok")
    releases.apply(using(None))
    st = releases.wait_phase("web", "Degraded", timeout=60)
    assert f"{FIELD}: args: base is required" in st["message"], st["message"]
    assert nothing_made(releases)


def test_a_running_check_keeps_the_template_it_started_with(
    kube: Any, namespace: str, releases: Releases, http_server: HttpServer
) -> None:
    http_server.route("/ok", json={"ok": True})
    http_server.route("/gone", status=500)
    template(kube, namespace, "/ok")
    releases.apply(using(http_server.url("")))
    releases.wait_phase("web", "Healthy", liveRevision=1, timeout=60)
    before = len(http_server.requests("/ok"))
    releases.apply(using(http_server.url(""), "example/web:2", count="20"))
    wait_for(lambda: len(http_server.requests("/ok")) >= before + 3, 60, "v2's check measuring")
    template(kube, namespace, "/gone")  # generation 2 would fail every measurement
    stored = kube.custom.get_namespaced_custom_object(
        api.GROUP, api.VERSION, namespace, "checktemplates", "smoke"
    )
    assert stored["metadata"]["generation"] == 2
    st = releases.wait_phase("web", "Healthy", liveRevision=2, timeout=120)
    [v2] = [c for c in st["checks"] if c["successes"] == 20]
    assert v2["template"] == "CheckTemplate/smoke@1", st["checks"]
    assert not http_server.requests("/gone"), "the running check never used generation 2"


def test_a_cluster_check_template_serves_every_namespace(
    kube: Any, namespace: str, releases: Releases, http_server: HttpServer
) -> None:
    http_server.route("/ok", json={"ok": True})
    template(kube, None, "/ok")
    try:
        manifest = using(http_server.url(""))
        manifest["spec"]["strategy"]["blueGreen"]["prePromotion"][0]["templateRef"]["kind"] = (
            "ClusterCheckTemplate"
        )
        releases.apply(manifest)
        st = releases.wait_phase("web", "Healthy", liveRevision=1, timeout=60)
        assert st["checks"][0]["template"] == "ClusterCheckTemplate/smoke@1"
    finally:
        kube.kubectl("delete", "clusterchecktemplate", "smoke", "--ignore-not-found")
