"""The real gateway of the e2e tests: Traefik (hack/gateway), in front of real-node pods, and
seed 004's front end, a real nginx with upstream keep-alive (hack/nginx), in front of it.

    def test_x(gateway: Gateway, ...):
        with KeepAliveProbe(gateway.host, gateway.port, headers={"Host": HOST}) as probe: ...
        with nginx_front(gateway.port) as port: ...   # nginx on 127.0.0.1:port -> the gateway

The `gateway` fixture (tests/e2e/conftest.py) brings it up once per session: skipped when the
real node is not required (routes reach only real-node pods), failed when it is and cannot.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from tests.e2e.realnode import required

ROOT = pathlib.Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class Gateway:
    host: str
    port: int
    name: str
    """The Gateway a Release's spec.traffic.gatewayAPI.parentRefs names."""
    namespace: str
    api: str
    """Traefik's API (what its data plane applied): http://127.0.0.1:<port + 1>."""

    @property
    def parent_ref(self) -> dict[str, str]:
        return {"name": self.name, "namespace": self.namespace}


def up() -> Gateway:
    """hack/gateway up (a no-op when it runs), then where it listens."""
    done = subprocess.run(
        [str(ROOT / "hack" / "gateway"), "up"], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        why = f"hack/gateway up failed:\n{done.stderr[-3000:]}"
        if required():
            pytest.fail(why)
        pytest.skip(why)
    port = int(os.environ.get("GREENLIGHT_GATEWAY_PORT", "18480"))
    return Gateway(
        "127.0.0.1", port, "greenlight", "greenlight-gateway", f"http://127.0.0.1:{port + 1}"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def nginx_front(upstream_port: int, host_header: str | None = None) -> Iterator[int]:
    """A real nginx, as seed 004 runs it in front of its app (`upstream { server ...;
    keepalive 32; }`, HTTP/1.1 to the upstream with the Connection header cleared), here in
    front of the gateway on 127.0.0.1:`upstream_port`; yields the port it listens on."""
    nginx = subprocess.run(
        [str(ROOT / "hack" / "nginx")], capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    port = _free_port()
    host = host_header or "$host"
    with tempfile.TemporaryDirectory(prefix="greenlight-nginx-") as tmp:
        conf = pathlib.Path(tmp, "nginx.conf")
        conf.write_text(
            f"""daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  upstream app {{ server 127.0.0.1:{upstream_port}; keepalive 32; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host {host};
    }}
  }}
}}
"""
        )
        proc = subprocess.Popen(
            [nginx, "-c", str(conf), "-p", tmp, "-e", f"{tmp}/error.log"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", port), 0.2),
                ):
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = pathlib.Path(tmp, "error.log")
                    raise RuntimeError(
                        f"nginx did not start: {log.read_text() if log.exists() else ''}"
                    )
                time.sleep(0.05)
            yield port
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def gateway(kube: object) -> Gateway:
    """Traefik in front of the real node, up for the session (hack/cluster down stops it)."""
    from tests.e2e.realnode import require_real_node

    require_real_node(kube)
    return up()
