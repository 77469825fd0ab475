"""e2e support for Releases: the operator in-process, Release manifests, and the watcher that
fails a test when live traffic drops or a flip selects a revision that is not fully available."""

from __future__ import annotations

import asyncio
import copy
import pathlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import kopf
import pytest
import urllib3
import yaml
from kubernetes import client, watch
from kubernetes.aio.config import kube_config
from kubernetes.client.exceptions import ApiException

from greenlight.api import group as api_group
from greenlight.api import release as api
from greenlight.engine import naming
from tests.e2e.helpers import is_ready, wait_for

NEVER_READY = {"greenlight.dev/test-readiness": "never"}
READY_AFTER = "greenlight.dev/test-ready-after"  # hack/kwok-stages.yaml


def release_manifest(
    name: str,
    image: str,
    replicas: int = 3,
    *,
    blue_green: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    deadline: int = 600,
    rolling: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": f"{api.GROUP}/{api.VERSION}",
        "kind": api.KIND,
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "template": {
                "metadata": {
                    "labels": {"app": name, **(labels or {})},
                    "annotations": annotations or {},
                },
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            "healthCheck": {"httpGet": {"path": "/healthz", "port": 8080}},
            "service": {"name": name, "ports": [{"port": 80, "targetPort": 8080}]},
            "previewService": {"name": f"{name}-preview"},
            "strategy": (
                {"rolling": rolling}
                if rolling is not None
                else {"blueGreen": {"scaleDownDelaySeconds": 30, **(blue_green or {})}}
            ),
            "progressDeadlineSeconds": deadline,
            **spec,
        },
    }
    return body


def with_image(
    manifest: dict[str, Any], image: str, ready_after: str | None = None, **template_labels: str
) -> dict[str, Any]:
    """A copy with a new image; `ready_after` (e.g. "5s") delays the new pods' readiness."""
    body = copy.deepcopy(manifest)
    template = body["spec"]["template"]
    template["spec"]["containers"][0]["image"] = image
    template["metadata"]["labels"].update(template_labels)
    if ready_after is not None:
        template["metadata"]["annotations"][READY_AFTER] = ready_after
    return body


class Releases:
    """Read and change Releases in one namespace."""

    def __init__(self, kube: Any, namespace: str) -> None:
        self.kube, self.ns = kube, namespace

    def get(self, name: str) -> dict[str, Any]:
        return dict(
            self.kube.custom.get_namespaced_custom_object(
                api.GROUP, api.VERSION, self.ns, api.PLURAL, name
            )
        )

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def apply(self, manifest: dict[str, Any]) -> None:
        self.kube.apply(manifest, namespace=self.ns)

    def annotate(self, name: str, key: str, value: str = "true") -> None:
        self.kube.kubectl(
            "annotate", "-n", self.ns, "release", name, f"{key}={value}", "--overwrite"
        )

    def wait_phase(
        self, name: str, phase: str, timeout: float = 60, **fields: Any
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            st = self.status(name)
            ok = st.get("phase") == phase and all(st.get(k) == v for k, v in fields.items())
            assert ok, {k: st.get(k) for k in ("phase", "message", *fields)}
            return st

        return wait_for(reached, timeout, f"Release {name} phase {phase} {fields}")

    def selector(self, service: str) -> dict[str, str]:
        return dict(self.kube.core.read_namespaced_service(service, self.ns).spec.selector or {})

    def deployments(self, name: str) -> dict[str, Any]:
        found = self.kube.apps.list_namespaced_deployment(
            self.ns, label_selector=f"{naming.LABEL_RELEASE}={name}"
        )
        return {d.metadata.labels[naming.LABEL_HASH]: d for d in found.items}

    def events(self, name: str) -> list[str]:
        found = self.kube.core.list_namespaced_event(
            self.ns, field_selector=f"involvedObject.name={name},involvedObject.kind=Release"
        )
        return [e.reason for e in sorted(found.items, key=lambda e: e.metadata.creation_timestamp)]

    def event_messages(self, name: str) -> list[str]:
        """The Release's Events, oldest first: "Reason: message"."""
        found = self.kube.core.list_namespaced_event(
            self.ns, field_selector=f"involvedObject.name={name},involvedObject.kind=Release"
        )
        ordered = sorted(found.items, key=lambda e: e.metadata.creation_timestamp)
        return [f"{e.reason}: {e.message}" for e in ordered]

    def ready_endpoints(self, service: str) -> int:
        slices = self.kube.discovery.list_namespaced_endpoint_slice(
            self.ns, label_selector=f"kubernetes.io/service-name={service}"
        )
        return sum(_ready(s) for s in slices.items)

    def pod_names(self) -> set[str]:
        return {p.metadata.name for p in self.kube.core.list_namespaced_pod(self.ns).items}


def pods(kube: Any, namespace: str, selector: str) -> list[Any]:
    """The pods a label selector matches, except those being deleted."""
    found = kube.core.list_namespaced_pod(namespace, label_selector=selector).items
    return [p for p in found if p.metadata.deletion_timestamp is None]


def set_pod_ready(kube: Any, namespace: str, name: str, ready: bool) -> None:
    """Make a pod on a fake node Ready or not Ready (hack/kwok-stages.yaml: kwok follows the
    never-ready label at once)."""
    labels = {key: None for key in NEVER_READY} if ready else NEVER_READY
    kube.core.patch_namespaced_pod(name, namespace, {"metadata": {"labels": labels}})


def _ready(endpoint_slice: Any) -> int:
    return sum(
        1 for e in endpoint_slice.endpoints or [] if e.conditions is None or e.conditions.ready
    )


class Operator:
    """The operator, in-process (kopf in a thread, as `greenlight run -n NAMESPACE` runs it).

    `kubeconfig`: another kubeconfig than $KUBECONFIG (e.g. one whose server is a proxy)."""

    def __init__(self, namespace: str, kubeconfig: str | None = None) -> None:
        self.namespace = namespace
        self.kubeconfig = kubeconfig
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        import greenlight.handlers  # noqa: F401  (registers the handlers)

        self._stop = threading.Event()
        ready = threading.Event()
        memo = kopf.Memo(namespaces=[self.namespace])

        def main() -> None:
            try:
                operator = kopf.operator(
                    standalone=True, clusterwide=True, memo=memo, stop_flag=self._stop,
                    ready_flag=ready,
                )  # fmt: skip
                asyncio.run(operator)
            except BaseException as e:  # re-raised by stop(): the test fails
                self.error = e
                ready.set()

        self.thread = threading.Thread(target=main, daemon=True)
        # cluster.connect() loads the default kubeconfig (read at import from $KUBECONFIG) in
        # the start-up handler, which has run when `ready` is set
        default = kube_config.KUBE_CONFIG_DEFAULT_LOCATION
        if self.kubeconfig is not None:
            kube_config.KUBE_CONFIG_DEFAULT_LOCATION = self.kubeconfig
        try:
            self.thread.start()
            ready.wait(60)
        finally:
            kube_config.KUBE_CONFIG_DEFAULT_LOCATION = default

    def stop(self) -> None:
        if self.thread is None:
            return
        self._stop.set()
        self.thread.join(60)
        alive, self.thread = self.thread.is_alive(), None
        if self.error is not None:
            raise RuntimeError("the operator failed") from self.error
        assert not alive, "the operator did not stop within 60 s"


@pytest.fixture(scope="session")
def crd(kube: Any) -> None:
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", "crds/")

    def established() -> bool:
        # Not `kubectl wait`: on a CRD created a moment ago it fails at once ("status.conditions
        # accessor error") instead of waiting for the status to appear.
        api = client.ApiextensionsV1Api(kube.api)
        for name in ("releases.greenlight.dev", "releasegroups.greenlight.dev"):
            status = api.read_custom_resource_definition(name).status
            conditions = (status.conditions if status else None) or []
            if not any(c.type == "Established" and c.status == "True" for c in conditions):
                return False
        return True

    wait_for(established, 60, "the CRDs Established")
    # The admission policy for command annotations (CRD rules cannot read annotations): the
    # chart's, as manifests/greenlight.yaml renders it
    rendered = pathlib.Path(__file__).resolve().parents[2] / "manifests" / "greenlight.yaml"
    policy = [
        d
        for d in yaml.safe_load_all(rendered.read_text())
        if d and d["kind"].startswith("ValidatingAdmissionPolicy")
    ]
    # server-side, as the chart's install and its test apply it (a client-side apply here
    # would own the fields and make theirs conflict)
    docs = yaml.safe_dump_all(policy)
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=docs)
    bad = {
        "apiVersion": f"{api.GROUP}/{api.VERSION}",
        "kind": api_group.KIND,
        "metadata": {"name": "policy-probe", "annotations": {naming.COMMAND_UNDO: "probe"}},
        "spec": {"members": ["probe"]},
    }

    def enforced() -> bool:  # a new policy takes a moment to reach the API server's admission
        try:
            kube.kubectl("create", "--dry-run=server", "-n", "default", "-f", "-",
                         input=yaml.safe_dump(bad))  # fmt: skip
        except Exception as e:  # KubectlError (tests/e2e/conftest.py imports this module)
            return "greenlight-commands" in str(e)
        return False

    wait_for(enforced, 60, "the greenlight-commands admission policy enforced")


@pytest.fixture
def operator(crd: None, namespace: str) -> Iterator[Operator]:
    op = Operator(namespace)
    op.start()
    try:
        yield op
    finally:
        op.stop()


@pytest.fixture
def releases(kube: Any, namespace: str) -> Releases:
    return Releases(kube, namespace)


class ZeroDowntime:
    """Follows a live Service's selector and EndpointSlices from outside the operator.

    Fails (via `check()`) if, after the Service first had a ready endpoint, ready endpoints ever
    drop to zero, or if the selector ever moves to a revision whose Deployment is not fully
    available at that moment; and if either watcher stopped watching before it was stopped (an
    error its watch got, other than the two a watch legitimately gets: a closed stream, resumed
    from the last resourceVersion seen, and 410 Gone, after which it lists again and checks what
    changed meanwhile), since then it saw nothing after that.
    """

    def __init__(self, kube: Any, namespace: str, service: str) -> None:
        self.kube, self.ns, self.service = kube, namespace, service
        self.problems: list[str] = []
        self.flips: list[str] = []
        self.max_ready = 0
        self.min_ready: int | None = None
        """Fewest ready endpoints seen once the Service first had one (None: not yet)."""
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(follow,), daemon=True, name=follow.__name__)
            for follow in (self._follow_slices, self._follow_selector)
        ]

    def __enter__(self) -> ZeroDowntime:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)

    def check(self) -> None:
        ended = [t.name for t in self._threads if not t.is_alive() and not self._stop.is_set()]
        assert not self.problems and not ended, (self.problems, f"ended: {ended}")

    def _run(self, follow: Any) -> None:
        """One watcher; how it ended, unless stopped, is a problem: it saw nothing after."""
        name = follow.__name__.removeprefix("_follow_")
        try:
            follow()
        except BaseException as e:  # reported by check(), with the test's other failures
            why = f"{type(e).__name__}: {' '.join(str(e).split())}"
            self.problems.append(f"{time.strftime('%X')} the {name} watcher failed: {why}")
            return
        if not self._stop.is_set():
            self.problems.append(f"{time.strftime('%X')} the {name} watcher stopped watching")

    def _stream(self, fn: Any, **kw: Any) -> Iterator[tuple[str, Any]]:
        """Every change of what `fn` lists in the namespace, without a gap: ("LISTED", items)
        for a list, then (type, object) per watch event, each watch resuming from the last
        resourceVersion seen (bookmarks too); a 410 Gone lists again. Any other error ends it."""
        version: str | None = None
        while not self._stop.is_set():
            if version is None:
                listed = fn(self.ns, **kw)
                version = listed.metadata.resource_version
                yield "LISTED", listed.items
            w = watch.Watch()
            try:
                for event in w.stream(
                    fn, self.ns, resource_version=version, allow_watch_bookmarks=True,
                    timeout_seconds=2, **kw,
                ):  # fmt: skip
                    if event["type"] != "BOOKMARK":
                        yield event["type"], event["object"]
                    version = w.resource_version or version
                    if self._stop.is_set():
                        return
            except ApiException as e:
                if e.status != 410:
                    raise
                version = None  # too old: list again
            except urllib3.exceptions.ProtocolError:
                pass  # the stream closed mid-event: resume from the last version seen
            finally:
                w.stop()
            version = w.resource_version or version

    def _follow_slices(self) -> None:
        counts: dict[str, int] = {}
        label = f"kubernetes.io/service-name={self.service}"
        list_fn = self.kube.discovery.list_namespaced_endpoint_slice
        for kind, found in self._stream(list_fn, label_selector=label):
            if kind == "LISTED":  # whatever changed since: the listed state replaces it
                counts = {s.metadata.name: _ready(s) for s in found}
            elif kind == "DELETED":
                counts.pop(found.metadata.name, None)
            else:
                counts[found.metadata.name] = _ready(found)
            total = sum(counts.values())
            if self.max_ready and total == 0:
                self.problems.append(f"{time.strftime('%X')} live Service had 0 ready endpoints")
            self.max_ready = max(self.max_ready, total)
            if self.max_ready:
                self.min_ready = total if self.min_ready is None else min(self.min_ready, total)

    def _follow_selector(self) -> None:
        seen: str | None = None
        field = f"metadata.name={self.service}"
        list_fn = self.kube.core.list_namespaced_service
        for kind, found in self._stream(list_fn, field_selector=field):
            services = found if kind == "LISTED" else [] if kind == "DELETED" else [found]
            for service in services:  # a relist: the flip is checked when it is seen, late
                selected = (service.spec.selector or {}).get(naming.LABEL_HASH)
                if selected and selected != seen:
                    if seen is not None:
                        self._check_flip(selected)
                    seen = selected

    def _check_flip(self, template_hash: str) -> None:
        """At the flip, every pod of the selected revision is Ready (the operator may act on
        its ReplicaSet's status, before the Deployment's own status says so)."""
        self.flips.append(template_hash)
        selector = f"{naming.LABEL_HASH}={template_hash}"
        found = self.kube.apps.list_namespaced_deployment(self.ns, label_selector=selector).items
        if len(found) != 1:
            self.problems.append(f"flip to {template_hash}: {len(found)} Deployments")
            return
        want = found[0].spec.replicas
        running = pods(self.kube, self.ns, selector)
        ready = sum(1 for p in running if is_ready(p))
        if not (ready == len(running) >= want):
            self.problems.append(
                f"flip to {template_hash} while its pods were not all Ready: want {want}, "
                f"{len(running)} pods, {ready} Ready"
            )


@pytest.fixture
def zero_downtime(kube: Any, namespace: str) -> Any:
    watchers: list[ZeroDowntime] = []

    def start(service: str) -> ZeroDowntime:
        w = ZeroDowntime(kube, namespace, service).__enter__()
        watchers.append(w)
        return w

    yield start
    for w in watchers:
        w.__exit__()
    for w in watchers:
        w.check()
