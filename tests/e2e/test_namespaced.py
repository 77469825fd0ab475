"""A namespace-scoped install: with `watchNamespaces` the chart grants the operator a Role in
each watched namespace and nothing cluster-wide, and the operator works with exactly that.

As in test_install.py, the operator runs as a subprocess with a kubeconfig holding only its
ServiceAccount's token; the Deployment is checked by a server-side dry run (its image is not
built here).
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from greenlight.engine import naming
from tests.e2e.conftest import KubectlError
from tests.e2e.support import Releases, release_manifest, with_image
from tests.e2e.test_install import render, service_account_kubeconfig

CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "Namespace", "CustomResourceDefinition"}


@pytest.fixture
def operator_namespace(kube: Any) -> Iterator[str]:
    """Where the chart is installed (its ServiceAccount, Deployment): not a watched one."""
    name = f"t-greenlight-op-{secrets.token_hex(2)}"
    kube.core.create_namespace(
        {"metadata": {"name": name, "labels": {"greenlight.dev/e2e": "true"}}}
    )
    yield name
    kube.core.delete_namespace(name, propagation_policy="Background")


def test_a_namespace_scoped_install_releases_with_only_its_roles(
    kube: Any, crd: None, releases: Releases, operator_namespace: str, tmp_path: Path
) -> None:
    watched = releases.ns
    rendered = render(
        "--namespace", operator_namespace, "--set", f"watchNamespaces={{{watched}}}",
        "--set", "aggregateToDefaultRoles=false",
    )  # fmt: skip
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    assert not CLUSTER_SCOPED & {d["kind"] for d in docs}, [d["kind"] for d in docs]
    for doc in docs:
        ns = doc["metadata"].get("namespace")
        if doc["kind"] in ("Role", "RoleBinding"):  # the Lease's own Role: its namespace
            where = operator_namespace if "leader-election" in doc["metadata"]["name"] else watched
            assert ns == where, doc["metadata"]
        body = yaml.safe_dump(doc)
        if doc["kind"] == "Deployment":
            kube.kubectl("apply", "--dry-run=server", "-f", "-", input=body)
        else:
            kube.kubectl("apply", "-f", "-", input=body)

    account = f"--as=system:serviceaccount:{operator_namespace}:greenlight"

    def can(*args: str) -> str:
        try:
            return kube.kubectl("auth", "can-i", *args, account).strip()
        except KubectlError:
            return "no"

    assert can("patch", "releases.greenlight.dev", "-n", watched) == "yes"
    assert can("list", "releases.greenlight.dev", "--all-namespaces") == "no"
    assert can("list", "deployments.apps", "-n", "default") == "no"
    assert can("list", "namespaces") == "no"

    kubeconfig = service_account_kubeconfig(kube, tmp_path / "sa.kubeconfig", operator_namespace)
    log_path = tmp_path / "operator.log"
    command = [str(Path(sys.executable).parent / "greenlight"), "run", "-n", watched]
    with log_path.open("w") as log:
        env = {"KUBECONFIG": str(kubeconfig), "PATH": "", "POD_NAMESPACE": operator_namespace}
        operator = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        manifest = release_manifest("web", "example/web:1")
        releases.apply(manifest)
        releases.wait_phase("web", "Healthy", liveRevision=1, timeout=60)
        releases.apply(with_image(manifest, "example/web:2"))
        st = releases.wait_phase("web", "Healthy", liveRevision=2, timeout=60)
        assert releases.selector("web") == naming.pod_labels("web", st["liveHash"])
        assert {"FirstRelease", "Promoted"} <= set(releases.events("web"))
    finally:
        operator.terminate()
        operator.wait(timeout=30)
    log = log_path.read_text()
    assert "Forbidden" not in log and "(403)" not in log, log[-3000:]
    assert "Not enough permissions" not in log, log[-3000:]
