"""The sample app (hack/images/sample-app) built for host processes, without the cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

IMAGES = Path(__file__).resolve().parents[2] / "hack" / "images"


def build_sample_app(out: Path) -> Path:
    """`go build` the sample app into `out` with hack/realnode's flags (so its build cache serves
    this one); its path. Fails the test when Go is missing or the build fails."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("Go is missing: install Go >= 1.26 (https://go.dev/dl)")
    built = subprocess.run(
        [go, "build", "-trimpath", "-ldflags", "-s -w", "-o", f"{out}/", "./sample-app"],
        cwd=IMAGES,
        env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if built.returncode != 0:
        pytest.fail(f"go build ./sample-app failed:\n{built.stderr[-3000:]}")
    return out / "sample-app"
