"""The sample app (hack/images/sample-app) built for host processes, without the cluster."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.helpers import stop_process, wait_for

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class App:
    """One sample-app process on 127.0.0.1, named like a pod (HOSTNAME, and APP_VERSION unless
    `env` gives one), its output in a log."""

    def __init__(self, binary: Path, workdir: Path, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log = workdir / f"{name}.log"
        environ = {
            "PATH": os.environ.get("PATH", ""),
            "PORT": str(self.port),
            "APP_VERSION": name,
            "HOSTNAME": name,
            **env,
        }
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [binary], env=environ, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )

    def url(self, path: str, scheme: str = "http") -> str:
        return f"{scheme}://{self.address}{path}"

    def get(self, path: str) -> str:
        with urllib.request.urlopen(self.url(path), timeout=5) as r:
            return str(r.read().decode().strip())

    def wait_ready(self) -> None:
        def ready() -> bool:
            assert self.proc.poll() is None, f"exited {self.proc.returncode}: {self.log_text()}"
            return self.get("/healthz") == "ok"

        wait_for(ready, timeout=10, what=f"{self.name} ready", interval=0.05)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after 10 s; its exit code."""
        return stop_process(self.proc, timeout=10)
