"""The real gateway of the e2e tests: Traefik (hack/gateway), in front of real-node pods, and
seed 004's front end, a real nginx with upstream keep-alive (hack/nginx), in front of it.

    def test_x(gateway: Gateway, ...):
        with KeepAliveProbe(gateway.host, gateway.port, headers={"Host": HOST}) as probe: ...
        with nginx_front(gateway.host, gateway.port, HOST) as port: ...  # nginx -> the gateway
        gateway.applied_weights(namespace, "web")   # {"web-v1": 90, "web-v2": 10}: applied

The `gateway` fixture (tests/e2e/conftest.py) brings it up once per session: skipped when the
real node is off and not required (routes reach only real-node pods), failed when it is required
(GREENLIGHT_REAL_NODE=1 or CI) and the gateway cannot come up. tests/e2e/test_gateway_testbed.py
shows each piece working without the operator.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.helpers import stop_process

ROOT = pathlib.Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class AppliedRule:
    """One rule of an HTTPRoute as Traefik's data plane has it (its API, not the route)."""

    match: str
    """Traefik's router rule: `Host("web.ns.test") && PathPrefix("/") && Header("x-canary","1")`"""
    weights: dict[str, int]
    """Backend Service name -> weight."""
    servers: dict[str, int]
    """Backend Service name -> how many of its endpoints Traefik sends to (0: its share of
    requests answers 503 "no available server")."""


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
    def url(self) -> str:
        """Where requests go: http://127.0.0.1:<port> (send the route's hostname as Host)."""
        return f"http://{self.host}:{self.port}"

    @property
    def parent_ref(self) -> dict[str, str]:
        return {"name": self.name, "namespace": self.namespace}

    def applied_rules(self, route_namespace: str, route_name: str) -> list[AppliedRule]:
        """The route's rules that Traefik's data plane serves now, each with its backends'
        weights (read from its API, /api/http/routers and /api/http/services); [] until it
        has loaded the route. The route's status says only that the route was accepted."""
        prefix = f"httproute-{route_namespace}-{route_name}-gw-"
        routers, services = self._get("routers"), self._get("services")
        weighted = {
            s["name"].removesuffix("@kubernetesgateway"): s["weighted"].get("services") or []
            for s in services
            if "weighted" in s and s["name"].startswith(prefix)
        }
        up = {
            s["name"].removesuffix("@kubernetesgateway"): sum(
                v == "UP" for v in (s.get("serverStatus") or {}).values()
            )
            for s in services
            if "loadBalancer" in s and s["name"].startswith(prefix)
        }
        rules = []
        for r in routers:
            backends = weighted.get(r.get("service", ""))
            if not r["name"].startswith(prefix) or backends is None:
                continue
            marker = f"{r['service'].removesuffix('-wrr')}-svc-{route_namespace}-"
            weights: dict[str, int] = {}
            servers: dict[str, int] = {}
            for b in backends:  # <rule>-svc-<namespace>-<service>-<index in the rule>
                svc = b["name"].removeprefix(marker).rpartition("-")[0]
                weights[svc] = weights.get(svc, 0) + int(b.get("weight", 1))
                servers[svc] = servers.get(svc, 0) + up.get(b["name"], 0)
            rules.append(AppliedRule(r.get("rule", ""), weights, servers))
        return rules

    def applied_rule(
        self, route_namespace: str, route_name: str, header: str | None = None
    ) -> AppliedRule | None:
        """The route's rule without a header match (header=None: the live rule) as Traefik
        applied it, or its rule matching on `header` (e.g. "x-canary": the preview rule); None
        until it has loaded the route. Raises ValueError when several rules fit (use
        applied_rules)."""

        def fits(match: str) -> bool:
            if header is None:
                return "Header(" not in match and "HeaderRegexp(" not in match
            return f'Header("{header}"' in match or f'HeaderRegexp("{header}"' in match

        rules = [r for r in self.applied_rules(route_namespace, route_name) if fits(r.match)]
        if len(rules) > 1:
            raise ValueError(f"{len(rules)} rules of {route_namespace}/{route_name} fit: {rules}")
        return rules[0] if rules else None

    def applied_weights(
        self, route_namespace: str, route_name: str, header: str | None = None
    ) -> dict[str, int]:
        """Backend Service name -> weight that Traefik applied for the route's rule without a
        header match (header=None: the live rule), or for its rule matching on `header`; {}
        until it has loaded the route (see applied_rule)."""
        rule = self.applied_rule(route_namespace, route_name, header)
        return rule.weights if rule else {}

    def _get(self, what: str) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.api}/api/http/{what}?per_page=10000", timeout=5) as r:
            return list(json.load(r))


def up() -> Gateway:
    """hack/gateway up (a no-op when it runs already), then where it listens. Fails the test
    when it cannot come up (the `gateway` fixture calls it only when the real node is there)."""
    done = subprocess.run(
        [str(ROOT / "hack" / "gateway"), "up"], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        pytest.fail(f"hack/gateway up failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    port = int(os.environ.get("GREENLIGHT_GATEWAY_PORT", "18480"))
    return Gateway(
        "127.0.0.1", port, "greenlight", "greenlight-gateway", f"http://127.0.0.1:{port + 1}"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def nginx_front(
    upstream_host: str | int, upstream_port: int | None = None, host_header: str | None = None
) -> Iterator[int]:
    """A real nginx, as seed 004 runs it in front of its app (`upstream { server ...;
    keepalive 32; }`, HTTP/1.1 to the upstream with the Connection header cleared), here in
    front of the gateway on `upstream_host`:`upstream_port` (`nginx_front(port)`: on
    127.0.0.1); yields the loopback port it listens on. It passes the client's Host header on,
    or `host_header` instead (a route's hostname, for clients that send none). A child process
    (`daemon off`), its pid, logs and temp files in a temporary directory; stopped at exit."""
    host_port = (
        ("127.0.0.1", upstream_host)
        if isinstance(upstream_host, int)  # nginx_front(port)
        else (upstream_host, upstream_port)
    )
    if host_port[1] is None:
        raise TypeError("nginx_front(upstream_host, upstream_port): no port")
    upstream = f"{host_port[0]}:{host_port[1]}"
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
  upstream app {{ server {upstream}; keepalive 32; }}
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
        stderr = pathlib.Path(tmp, "stderr.log")
        with stderr.open("wb") as err:
            proc = subprocess.Popen(
                [nginx, "-c", str(conf), "-p", tmp, "-e", f"{tmp}/error.log"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
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
                    logs = [pathlib.Path(tmp, "error.log"), stderr]
                    text = "".join(f.read_text() for f in logs if f.exists())
                    raise RuntimeError(f"nginx did not start on 127.0.0.1:{port}:\n{text}")
                time.sleep(0.05)
            yield port
        finally:
            stop_process(proc, timeout=10)


@pytest.fixture(scope="session")
def gateway(kube: object) -> Gateway:
    """Traefik in front of the real node, up for the session (left running: later sessions
    reuse it; hack/gateway down or hack/cluster down stops it). Skipped when the real node is
    off (unless required: GREENLIGHT_REAL_NODE=1 or CI), failed when it is on and the gateway
    cannot come up."""
    from tests.e2e.realnode import require_real_node

    require_real_node(kube)
    return up()
