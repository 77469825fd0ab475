"""`kubectl greenlight status`, the CI line after `kubectl apply`, against a real API server:
its exit code says how the release ended (README: Integrations)."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from greenlight.cli.commands import status
from tests.e2e.conftest import _kubectl_binary
from tests.e2e.support import NEVER_READY, Releases, release_manifest, with_image
from tests.e2e.test_groups import PAIR, pair
from tests.e2e.test_plugin import plugin_env

pytestmark = pytest.mark.usefixtures("operator")


def wait_status(releases: Releases, *args: str) -> subprocess.Popen[str]:
    """`kubectl greenlight status <args>` started in the background, stdout a pipe (as in CI)."""
    return subprocess.Popen(
        [_kubectl_binary(), "greenlight", "status", *args, "-n", releases.ns],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=plugin_env(releases),
    )


def ended(proc: subprocess.Popen[str], timeout: float = 90) -> tuple[int, list[str]]:
    out, err = proc.communicate(timeout=timeout)
    assert "Traceback" not in err, err
    assert "\x1b" not in out, "no ANSI codes when stdout is not a terminal"
    return proc.returncode, out.splitlines()


def test_status_exits_0_once_the_new_revision_is_live(releases: Releases) -> None:
    manifest = release_manifest("web", "example/web:1")
    releases.apply(manifest)
    releases.wait_phase("web", "Healthy", liveRevision=1)
    code, lines = ended(wait_status(releases, "web", "--timeout", "10s"))
    assert code == status.EXIT_HEALTHY, lines
    assert len(lines) == 1 and "web: Healthy: live revision 1 (blue) 3/3" in lines[0], lines

    # As in a pipeline: apply, then wait at once (the operator has not seen the change yet).
    releases.apply(with_image(manifest, "example/web:2", ready_after="3s"))
    code, lines = ended(wait_status(releases, "web", "--timeout", "2m"))
    assert code == status.EXIT_HEALTHY, lines
    assert any("candidate revision 2 (green)" in line for line in lines), lines
    assert "web: Healthy: live revision 2 (green) 3/3" in lines[-1], lines
    assert len(lines) == len(set(lines)), "one line per change"
    assert releases.status("web")["liveRevision"] == 2


def test_status_exits_with_the_degraded_code_for_a_candidate_never_ready(
    releases: Releases,
) -> None:
    manifest = release_manifest("web", "example/web:1", deadline=5)
    releases.apply(manifest)
    releases.wait_phase("web", "Healthy", liveRevision=1)
    releases.apply(with_image(manifest, "example/web:2", **NEVER_READY))
    code, lines = ended(wait_status(releases, "web", "--timeout", "2m"))
    assert code == status.EXIT_DEGRADED, lines
    assert "web: Degraded" in lines[-1] and "live revision 1 (blue)" in lines[-1], lines
    assert releases.status("web")["phase"] == "Degraded"


def test_status_times_out_then_exits_with_the_aborted_code_on_an_abort(
    releases: Releases,
) -> None:
    manifest = release_manifest("web", "example/web:1")
    releases.apply(manifest)
    releases.wait_phase("web", "Healthy", liveRevision=1)
    releases.apply(with_image(manifest, "example/web:2", **NEVER_READY))
    releases.wait_phase("web", "Progressing", candidateRevision=2)
    code, lines = ended(wait_status(releases, "web", "--timeout", "2s"))
    assert code == status.EXIT_TIMEOUT, lines
    assert "timed out after 2s: still Progressing" in lines[-1], lines

    waiting = wait_status(releases, "web", "--timeout", "2m")
    abort = subprocess.run(
        [_kubectl_binary(), "greenlight", "abort", "web", "-n", releases.ns],
        capture_output=True,
        text=True,
        env=plugin_env(releases),
        check=False,
    )
    assert abort.returncode == 0, abort.stderr
    code, lines = ended(waiting)
    assert code == status.EXIT_ABORTED, lines
    assert "web: Aborted" in lines[-1], lines


def test_status_of_a_group_waits_for_every_member(
    releases: Releases, kube: Any, namespace: str
) -> None:
    manifests = pair(releases, kube, namespace)
    releases.apply(with_image(manifests["django"], "example/django:2"))
    releases.apply(with_image(manifests["fastapi"], "example/fastapi:2", ready_after="3s"))
    code, lines = ended(wait_status(releases, "group/shop", "--timeout", "2m"))
    assert code == status.EXIT_HEALTHY, lines
    assert lines[-1].split(" ", 1)[1].startswith("group shop: Healthy"), lines
    for n in PAIR:
        assert f"{n}: Healthy: live revision 2 (green)" in lines[-1], lines
        assert releases.status(n)["liveRevision"] == 2
    assert any("fastapi: Progressing" in line for line in lines), lines

    missing = wait_status(releases, "group/nope", "--timeout", "5s")
    code, _ = ended(missing)
    assert code == status.EXIT_ERROR
