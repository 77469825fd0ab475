"""e2e fixtures: a real Kubernetes API, a client for it, and a fresh namespace per test.

Cluster choice: $KUBECONFIG when set (any cluster); else the local cluster of hack/cluster, reused
when it is up, otherwise brought up for this session and torn down at its end (keep it with
GREENLIGHT_KEEP_CLUSTER=1). GREENLIGHT_KEEP_NAMESPACES=1 keeps test namespaces for debugging.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.e2e.helpers import wait_for

E2E_DIR = Path(__file__).resolve().parent
ROOT = E2E_DIR.parents[1]
CLUSTER = ROOT / "hack" / "cluster"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(E2E_DIR):
            item.add_marker(pytest.mark.e2e)


def _kubectl_binary() -> str:
    venv = Path(sys.executable).parent / "kubectl"
    found = str(venv) if venv.exists() else shutil.which("kubectl")
    if not found:
        raise RuntimeError("kubectl not found: run `make venv`")
    return found


class KubectlError(RuntimeError):
    pass


@dataclass
class Kube:
    """Sync kubernetes client APIs for one kubeconfig, plus kubectl."""

    kubeconfig: str
    api: client.ApiClient
    core: client.CoreV1Api
    apps: client.AppsV1Api
    batch: client.BatchV1Api
    custom: client.CustomObjectsApi
    discovery: client.DiscoveryV1Api

    def kubectl(self, *args: str, input: str | None = None) -> str:
        cmd = [_kubectl_binary(), *args]
        env = {**os.environ, "KUBECONFIG": self.kubeconfig}
        proc = subprocess.run(
            cmd, input=input, capture_output=True, text=True, env=env, check=False
        )
        if proc.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc.stdout

    def apply(self, manifests: Any, namespace: str | None = None) -> str:
        """`kubectl apply` a YAML string, a dict, or a list of dicts."""
        if not isinstance(manifests, str):
            docs = manifests if isinstance(manifests, list) else [manifests]
            manifests = yaml.safe_dump_all(docs)
        ns = ["-n", namespace] if namespace else []
        return self.kubectl("apply", *ns, "-f", "-", input=manifests)


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[str]:
    given = os.environ.get("KUBECONFIG")
    if given:
        yield given
        return
    env_line = subprocess.run(
        [CLUSTER, "env"], check=True, capture_output=True, text=True
    ).stdout.strip()
    path = env_line.removeprefix("export KUBECONFIG=")
    started = subprocess.run([CLUSTER, "status"], capture_output=True, check=False).returncode != 0
    if started:
        subprocess.run([CLUSTER, "up"], check=True, stdout=subprocess.DEVNULL)
    os.environ["KUBECONFIG"] = path
    try:
        yield path
    finally:
        os.environ.pop("KUBECONFIG", None)
        if started and os.environ.get("GREENLIGHT_KEEP_CLUSTER") != "1":
            subprocess.run([CLUSTER, "down"], check=False)


@pytest.fixture(scope="session")
def kube(kubeconfig: str) -> Iterator[Kube]:
    api = config.new_client_from_config(config_file=kubeconfig)  # may list several files, a:b
    yield Kube(
        kubeconfig=kubeconfig,
        api=api,
        core=client.CoreV1Api(api),
        apps=client.AppsV1Api(api),
        batch=client.BatchV1Api(api),
        custom=client.CustomObjectsApi(api),
        discovery=client.DiscoveryV1Api(api),
    )
    api.close()


@pytest.fixture
def namespace(kube: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace `t-<test name>-<4 hex>` with its default ServiceAccount; deleted after."""
    suffix = secrets.token_hex(2)
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower().removeprefix("test_"))
    name = f"t-{slug[: 63 - 7].strip('-')}-{suffix}"
    kube.core.create_namespace(
        {"metadata": {"name": name, "labels": {"greenlight.dev/e2e": "true"}}}
    )
    wait_for(
        lambda: kube.core.read_namespaced_service_account("default", name),
        timeout=30,
        what=f"ServiceAccount {name}/default",
    )
    yield name
    if os.environ.get("GREENLIGHT_KEEP_NAMESPACES") == "1":
        return
    try:
        kube.core.delete_namespace(name, propagation_policy="Background")
    except ApiException as e:
        if e.status != 404:
            raise


# Real servers for promotion-gate checks: an HTTP server per test; a metrics target and a real
# Prometheus (hack/prometheus) scraping it, both for the session.
# The real gateway (Traefik, hack/gateway) for Releases with spec.traffic.gatewayAPI.
# A real Redis (hack/redis) for queue workers, up for the session.
from tests.e2e.gateway import gateway  # noqa: E402, F401
from tests.e2e.queue import redis  # noqa: E402, F401
from tests.e2e.servers import http_server, metrics_target, prometheus  # noqa: E402, F401

# Release fixtures: the CRD, the operator in-process, Release helpers, the zero-downtime watcher.
from tests.e2e.support import crd, operator, releases, zero_downtime  # noqa: E402, F401
