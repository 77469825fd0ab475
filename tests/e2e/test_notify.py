"""Notifications on a real API server, received by a real HTTP server."""

from __future__ import annotations

from typing import Any

import pytest

from greenlight.engine import naming
from tests.e2e.servers import HttpServer
from tests.e2e.support import Releases, release_manifest, with_image

pytestmark = pytest.mark.usefixtures("operator")


def test_webhooks_hear_of_transitions_json_and_slack(
    kube: Any, namespace: str, releases: Releases, http_server: HttpServer
) -> None:
    http_server.route("/json", status=200)
    http_server.route("/slack", status=200)
    kube.core.create_namespaced_secret(
        namespace, {"metadata": {"name": "hook"}, "stringData": {"token": "s3cret"}}
    )
    manifest = release_manifest("web", "example/web:1")
    manifest["spec"]["notifications"] = [
        {
            "name": "audit",
            "webhook": {
                "url": http_server.url("/json"),
                "headers": [
                    {
                        "name": "Authorization",
                        "valueFrom": {"secretKeyRef": {"name": "hook", "key": "token"}},
                    }
                ],
            },
        },
        {
            "name": "chat",
            "format": "slack",
            "on": ["Promoted"],
            "webhook": {"url": http_server.url("/slack")},
        },
    ]
    releases.apply(manifest)
    releases.wait_phase("web", "Healthy", liveRevision=1)
    releases.apply(with_image(manifest, "example/web:2"))
    releases.wait_phase("web", "Healthy", liveRevision=2)
    got = http_server.wait_requests("/json", count=2)
    events = [r.json["event"] for r in got]
    assert events[:2] == ["Started", "Promoted"]
    assert got[1].json["liveRevision"] == 2 and got[1].json["namespace"] == namespace
    assert got[0].headers["authorization"] == "s3cret"
    [slack] = http_server.wait_requests("/slack", count=1)
    assert "Promoted" in slack.json["text"] and f"{namespace}/web" in slack.json["text"]
    assert "s3cret" not in str(releases.status("web")), "never in status"


def test_an_unreachable_webhook_never_holds_a_release(
    releases: Releases, http_server: HttpServer
) -> None:
    http_server.route("/down", status=503)
    manifest = release_manifest("web", "example/web:1", blue_green={"autoPromote": False})
    manifest["spec"]["notifications"] = [
        {"name": "flaky", "webhook": {"url": http_server.url("/down")}}
    ]
    releases.apply(manifest)
    releases.wait_phase("web", "Healthy", liveRevision=1)
    releases.apply(with_image(manifest, "example/web:2"))
    releases.wait_phase("web", "Paused", candidateRevision=2)
    releases.annotate("web", naming.COMMAND_PROMOTE)
    releases.wait_phase("web", "Healthy", liveRevision=2)
    tried = http_server.wait_requests("/down", count=3)
    assert tried[0].json["event"] == "Started"
