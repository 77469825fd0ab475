"""manifests/: the operator works with exactly the permissions it installs, nothing more.

The operator runs as a subprocess with a kubeconfig holding only the token of the manifests'
ServiceAccount. The Deployment is checked by a server-side dry run: its image is not built here.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from greenlight.engine import naming
from tests.e2e.conftest import KubectlError
from tests.e2e.helpers import wait_for
from tests.e2e.support import Releases, release_manifest, with_image

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests" / "greenlight.yaml"
SYSTEM_NS = "greenlight-system"


def _ref(doc: dict[str, Any]) -> list[str]:
    kind, meta = doc["kind"].lower(), doc["metadata"]
    ns = ["-n", meta["namespace"]] if "namespace" in meta else []
    return [*ns, f"{kind}.{doc['apiVersion'].split('/')[0]}/{meta['name']}".replace(".v1/", "/")]


@pytest.fixture(scope="module")
def installed(kube: Any, crd: None) -> Iterator[None]:
    """Everything in manifests/ except the operator Deployment (dry-run only); objects this
    fixture created are deleted after, waiting for them to go (a terminating namespace would
    refuse the next run's ServiceAccount)."""
    docs = [d for d in yaml.safe_load_all(MANIFESTS.read_text()) if d]
    created = []
    for doc in docs:
        body = yaml.safe_dump(doc)
        if doc["kind"] == "Deployment":
            kube.kubectl("apply", "--dry-run=server", "-f", "-", input=body)
            continue
        try:
            kube.kubectl("get", *_ref(doc))
        except KubectlError:
            created.append(doc)
        kube.kubectl("apply", "-f", "-", input=body)
    yield
    for doc in reversed(created):
        kube.kubectl("delete", "--ignore-not-found", "--wait=true", "--timeout=120s", *_ref(doc))


def service_account_kubeconfig(kube: Any, path: Path, namespace: str = SYSTEM_NS) -> Path:
    """The current cluster, authenticated only as the ServiceAccount `namespace`/greenlight."""
    token = kube.kubectl("create", "token", "greenlight", "-n", namespace, "--duration=1h")
    current = yaml.safe_load(kube.kubectl("config", "view", "--raw", "--minify", "-o", "yaml"))
    cluster = current["clusters"][0]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "greenlight", "user": {"token": token.strip()}}],
                "contexts": [
                    {"name": "sa", "context": {"cluster": cluster["name"], "user": "greenlight"}}
                ],
                "current-context": "sa",
            }
        )
    )
    return path


def test_the_operator_needs_no_more_than_its_cluster_role(
    kube: Any, installed: None, releases: Releases, tmp_path: Path
) -> None:
    kubeconfig = service_account_kubeconfig(kube, tmp_path / "sa.kubeconfig")
    log_path = tmp_path / "operator.log"
    with log_path.open("w") as log:
        operator = subprocess.Popen(
            [str(Path(sys.executable).parent / "greenlight"), "run", "-n", releases.ns],
            # the Lease where the chart's Role allows it (in a pod: the downward API sets it)
            env={"KUBECONFIG": str(kubeconfig), "PATH": "", "POD_NAMESPACE": SYSTEM_NS},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        manifest = release_manifest("web", "example/web:1")
        releases.apply(manifest)
        releases.wait_phase("web", "Healthy", liveRevision=1, timeout=60)
        releases.apply(with_image(manifest, "example/web:2"))
        st = releases.wait_phase("web", "Healthy", liveRevision=2, timeout=60)
        assert releases.selector("web") == naming.pod_labels("web", st["liveHash"])
        releases.annotate("web", naming.COMMAND_UNDO, "")
        releases.wait_phase("web", "Degraded", liveRevision=1, timeout=60)  # held: git says 2
        assert {"FirstRelease", "Promoted", "Undo", "RolledBack"} <= set(releases.events("web"))
    finally:
        operator.terminate()
        operator.wait(timeout=30)
    log = log_path.read_text()
    assert "Forbidden" not in log and "(403)" not in log, log[-3000:]


def test_edit_and_view_roles_include_releases(kube: Any, installed: None, namespace: str) -> None:
    for role in ("edit", "view"):
        kube.kubectl(
            "create", "serviceaccount", role, "-n", namespace
        )  # fmt: skip
        kube.kubectl(
            "create", "rolebinding", role, f"--clusterrole={role}",
            f"--serviceaccount={namespace}:{role}", "-n", namespace,
        )  # fmt: skip

    def can(role: str, verb: str) -> str:
        user = f"--as=system:serviceaccount:{namespace}:{role}"
        try:
            return kube.kubectl(
                "auth", "can-i", verb, "releases.greenlight.dev", "-n", namespace, user
            ).strip()
        except KubectlError:
            return "no"

    wait_for(lambda: can("edit", "patch") == "yes", 30, "edit may patch Releases (aggregated)")
    wait_for(lambda: can("view", "list") == "yes", 30, "view may list Releases (aggregated)")
    assert can("view", "patch") == "no"


def render(*helm_args: str) -> str:
    script = ROOT / "hack" / "render-manifests.sh"
    if not helm_args:
        return subprocess.run([script], check=True, capture_output=True, text=True).stdout
    helm = subprocess.run(
        [ROOT / "hack" / "helm.sh"], check=True, capture_output=True, text=True
    ).stdout.strip()
    chart = str(ROOT / "charts" / "greenlight")
    return subprocess.run(
        [helm, "template", "greenlight", chart, *helm_args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def test_manifests_are_the_chart_rendered_with_its_defaults() -> None:
    assert MANIFESTS.read_text() == render(), "manifests/ is stale: run `make manifests`"


def test_chart_values_reach_the_operator_and_the_api_server_accepts_them(kube: Any) -> None:
    rendered = render(
        "--namespace", "default", "--set", "image.tag=9.9.9",
        "--set", "watchNamespaces={default,kube-public}", "--set", "aggregateToDefaultRoles=false",
        "--set", "settings.workers=8", "--set", "settings.maxBackoff=2.5",
        "--include-crds",
    )  # fmt: skip
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    kinds = [d["kind"] for d in docs]
    assert "ClusterRole" not in kinds and "ClusterRoleBinding" not in kinds, kinds
    roles = [
        (d["kind"], d["metadata"]["namespace"])
        for d in docs
        if d["kind"].startswith("Role") and d["metadata"]["name"] == "greenlight-operator"
    ]
    assert sorted(roles) == [
        ("Role", "default"), ("Role", "kube-public"),
        ("RoleBinding", "default"), ("RoleBinding", "kube-public"),
    ]  # fmt: skip
    assert "CustomResourceDefinition" in kinds and "Namespace" not in kinds
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "ghcr.io/greenlight-dev/greenlight:9.9.9"
    assert container["args"][-2:] == ["--namespace=default", "--namespace=kube-public"]
    assert {"--workers=8", "--max-backoff=2.5", "--retry-delay=1"} <= set(container["args"])
    kube.kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", input=rendered)


def test_every_example_is_accepted_by_the_api_server(kube: Any, crd: None, namespace: str) -> None:
    examples = sorted((ROOT / "examples").glob("*.yaml"))
    assert len(examples) >= 2
    for path in examples:
        kube.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(path))
