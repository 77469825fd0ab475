"""`kubectl greenlight`, found by kubectl on PATH as a plugin, against a real API server."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from greenlight.engine import naming
from tests.e2e.conftest import _kubectl_binary
from tests.e2e.helpers import wait_for
from tests.e2e.support import NEVER_READY, Releases, release_manifest, with_image

pytestmark = pytest.mark.usefixtures("operator")


def plugin_env(releases: Releases) -> dict[str, str]:
    """kubectl finds `kubectl-greenlight` (the venv's console script) on PATH."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "KUBECONFIG": releases.kube.kubeconfig,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "COLUMNS": "200",
    }


def greenlight(releases: Releases, *args: str) -> subprocess.CompletedProcess[str]:
    """`kubectl greenlight <args> -n <test namespace>`."""
    return subprocess.run(
        [_kubectl_binary(), "greenlight", *args, "-n", releases.ns],
        capture_output=True,
        text=True,
        env=plugin_env(releases),
        check=False,
    )


def test_promote_get_and_undo_from_the_plugin(releases: Releases) -> None:
    manifest = release_manifest("web", "example/web:1", blue_green={"autoPromote": False})
    releases.apply(manifest)
    releases.wait_phase("web", "Healthy", liveRevision=1)

    refused = greenlight(releases, "promote", "web")
    assert refused.returncode == 1
    assert "nothing to promote: no release in progress (phase Healthy)" in refused.stderr

    releases.apply(with_image(manifest, "example/web:2"))
    releases.wait_phase("web", "Paused", candidateRevision=2)
    shown = greenlight(releases, "get", "web")
    assert shown.returncode == 0, shown.stderr
    assert "Paused" in shown.stdout and "revision 2 (green)" in shown.stdout

    promoted = greenlight(releases, "promote", "web")
    assert promoted.returncode == 0, promoted.stderr
    releases.wait_phase("web", "Healthy", liveRevision=2)
    annotations = releases.get("web")["metadata"].get("annotations") or {}
    assert naming.COMMAND_PROMOTE not in annotations, "the operator consumes the command"

    unknown = greenlight(releases, "undo", "web", "--to-revision", "7")
    assert unknown.returncode == 1
    assert "revision 7 is not in the history (known: 1, 2)" in unknown.stderr
    undone = greenlight(releases, "undo", "web")
    assert undone.returncode == 0, undone.stderr
    st = releases.wait_phase("web", "Degraded", liveRevision=1)  # warm: at once; then held
    assert st["rolledBackTo"] == st["liveHash"]
    shown = greenlight(releases, "get", "web")
    assert "revision 2 rolled back" in shown.stdout, shown.stdout
    assert greenlight(releases, "retry", "web").returncode == 0  # revision 2 again
    releases.wait_phase("web", "Paused", candidateRevision=2)  # autoPromote: false
    assert greenlight(releases, "promote", "web").returncode == 0
    st = releases.wait_phase("web", "Healthy", liveRevision=2)
    assert "rolledBackTo" not in st


def test_abort_retry_pause_and_resume_from_the_plugin(releases: Releases) -> None:
    manifest = release_manifest("web", "example/web:1")
    releases.apply(manifest)
    releases.wait_phase("web", "Healthy", liveRevision=1)
    assert greenlight(releases, "retry", "web").returncode == 1

    releases.apply(with_image(manifest, "example/web:2", **NEVER_READY))
    releases.wait_phase("web", "Progressing", candidateRevision=2)
    assert greenlight(releases, "abort", "web").returncode == 0
    st = releases.wait_phase("web", "Aborted", liveRevision=1)
    assert st["abortedHash"] is not None

    assert greenlight(releases, "pause", "web").returncode == 0
    assert releases.get("web")["spec"]["paused"] is True
    assert greenlight(releases, "resume", "web").returncode == 0
    assert releases.get("web")["spec"]["paused"] is False

    assert greenlight(releases, "retry", "web").returncode == 0
    releases.wait_phase("web", "Progressing", candidateRevision=2)

    missing = greenlight(releases, "get", "nope")
    assert missing.returncode == 1
    assert f'release "nope" not found in namespace "{releases.ns}"' in missing.stderr


def test_get_watch_prints_each_change(releases: Releases) -> None:
    manifest = release_manifest("web", "example/web:1")
    releases.apply(manifest)
    releases.wait_phase("web", "Healthy", liveRevision=1)
    follower = subprocess.Popen(
        [_kubectl_binary(), "greenlight", "get", "web", "-w", "-n", releases.ns],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=plugin_env(releases),
    )
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(follower.stdout.readline, "")))
    reader.start()
    try:
        wait_for(lambda: any("3 available of 3" in line for line in seen), 30, "the first view")
        releases.apply(with_image(manifest, "example/web:2"))
        wait_for(
            lambda: any("revision 2 (green) is live" in line for line in seen),
            60,
            "a later view showing the flip",
        )
    finally:
        follower.terminate()
        follower.wait(timeout=10)
        reader.join(timeout=10)
    assert not any("Traceback" in line or "Error" in line for line in seen), "".join(seen)
