"""The resource metrics API (metrics.k8s.io/v1beta1) served by the test: the real
HorizontalPodAutoscaler controller of the local control plane reads pod memory from it, and the
test decides what it says.

kwok's fake pods use nothing, and metrics-server would scrape kubelets that do not exist (kwok can
emulate their /metrics/resource, but behind addresses only kwok's own server answers on). The API
server's aggregator proxies the group to this server like to metrics-server: an APIService names a
Service, and an ExternalName Service `localhost` makes the aggregator dial this host (only where
the API server runs on this host: the local kwok cluster). TLS with a throwaway self-signed
certificate (the APIService skips verification); the aggregator's client certificate is not
checked (the server listens on 127.0.0.1 only).
"""

from __future__ import annotations

import datetime
import json
import re
import ssl
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

GROUP_VERSION = "metrics.k8s.io/v1beta1"
APISERVICE = "v1beta1.metrics.k8s.io"
RESOURCES = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": GROUP_VERSION,
    "resources": [
        {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics",
         "verbs": ["get", "list"]},
        {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics",
         "verbs": ["get", "list"]},
    ],
}  # fmt: skip
PODS = re.compile(r"^/apis/metrics\.k8s\.io/v1beta1/namespaces/([^/]+)/pods(?:/([^/]+))?$")


class MetricsAPI:
    """Pod metrics: `memory[namespace]` for every container of every pod there (cpu: 1m)."""

    def __init__(self, kube: Any) -> None:
        self.kube = kube
        self.memory: dict[str, str] = {}
        self.requests: list[str] = []
        """Paths asked for, decoded (the HPA's label selector readable)."""
        self._dir = tempfile.TemporaryDirectory(prefix="greenlight-metrics-")
        cert, key = Path(self._dir.name, "tls.crt"), Path(self._dir.name, "tls.key")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                api.requests.append(unquote(self.path))
                status, body = api.answer(url.path, parse_qs(url.query))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        if path == f"/apis/{GROUP_VERSION}":
            return 200, RESOURCES
        if path in ("/healthz", "/readyz", "/livez"):
            return 200, "ok"
        if path == f"/apis/{GROUP_VERSION}/nodes":
            return 200, {"kind": "NodeMetricsList", "apiVersion": GROUP_VERSION, "items": []}
        m = PODS.match(path)
        if m is None:
            return 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}
        namespace, name = m.groups()
        selector = (query.get("labelSelector") or [""])[0]
        pods = self.kube.core.list_namespaced_pod(namespace, label_selector=selector).items
        items = [self._pod(p) for p in pods if p.metadata.name == name or name is None]
        items = [i for i in items if i is not None]
        if name is not None:
            if not items:
                return 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}
            return 200, items[0]
        return 200, {"kind": "PodMetricsList", "apiVersion": GROUP_VERSION, "items": items}

    def _pod(self, pod: Any) -> dict[str, Any] | None:
        memory = self.memory.get(pod.metadata.namespace)
        if memory is None or pod.status.phase != "Running":
            return None
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "kind": "PodMetrics",
            "apiVersion": GROUP_VERSION,
            "metadata": {
                "name": pod.metadata.name,
                "namespace": pod.metadata.namespace,
                "labels": pod.metadata.labels or {},
            },
            "timestamp": now,
            "window": "15s",
            "containers": [
                {"name": c.name, "usage": {"cpu": "1m", "memory": memory}}
                for c in pod.spec.containers
            ],
        }

    def register(self, namespace: str) -> None:
        """An ExternalName Service `metrics-api` in `namespace` and the APIService naming it."""
        self._thread.start()
        self.kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "metrics-api", "namespace": namespace},
                "spec": {"type": "ExternalName", "externalName": "localhost"},
            }
        )
        self.kube.apply(
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": APISERVICE, "labels": {"greenlight.dev/e2e": "true"}},
                "spec": {
                    "group": "metrics.k8s.io",
                    "version": "v1beta1",
                    "service": {"namespace": namespace, "name": "metrics-api", "port": self.port},
                    "insecureSkipTLSVerify": True,
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100,
                },
            }
        )

    def available(self) -> bool:
        body = json.loads(self.kube.kubectl("get", "apiservice", APISERVICE, "-o", "json"))
        conditions = body.get("status", {}).get("conditions") or []
        return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)

    def close(self) -> None:
        """Unregister first: an APIService nobody answers breaks discovery for everyone."""
        try:
            self.kube.kubectl("delete", "apiservice", APISERVICE, "--ignore-not-found")
        finally:
            self.server.shutdown()
            self.server.server_close()
            self._dir.cleanup()
