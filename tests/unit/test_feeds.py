"""handlers.Feeds: each watched change into the indexes and a wake-up in its lane."""

from __future__ import annotations

import copy
from typing import Any, cast

from greenlight import handlers
from greenlight.engine import naming, snapshot
from greenlight.kube import reconcile
from greenlight.kube.workqueue import Priority, WorkQueue

KEY = ("ns", "web")
RELEASE: dict[str, Any] = {
    "metadata": {"name": "web", "namespace": "ns", "uid": "u-1", "generation": 2,
                 "resourceVersion": "300"},
    "spec": {
        "replicas": 2,
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "web", "image": "app:1"}]}},
        "healthCheck": {"httpGet": {"path": "/healthz", "port": 8080}},
        "service": {"name": "web", "ports": [{"port": 80, "targetPort": 8080}]},
    },
    "status": {"observedGeneration": 2, "phase": "Healthy", "liveHash": "aaa", "liveRevision": 1},
}  # fmt: skip


async def nothing(key: Any) -> None:
    pass


def feeds() -> handlers.Feeds:
    return handlers.Feeds(reconcile.Reconciler(cast(Any, None)), WorkQueue(nothing), ["ns"])


def release(rv: int, **status: Any) -> dict[str, Any]:
    body = copy.deepcopy(RELEASE)
    body["metadata"]["resourceVersion"] = str(rv)
    body["status"].update(status)
    return body


def deployment(h: str, available: int, uid: str = "d-1") -> dict[str, Any]:
    labels = {naming.LABEL_RELEASE: "web", naming.LABEL_HASH: h}
    return {
        "metadata": {"name": f"web-{h}", "namespace": "ns", "uid": uid, "generation": 1,
                     "labels": labels},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2,
                   "readyReplicas": available, "availableReplicas": available},
    }  # fmt: skip


def replicaset(h: str, available: int) -> dict[str, Any]:
    labels = {naming.LABEL_RELEASE: "web", naming.LABEL_HASH: h}
    return {
        "metadata": {"name": f"web-{h}-x", "namespace": "ns", "uid": f"rs-{h}", "generation": 1,
                     "labels": labels, "ownerReferences": [
                         {"kind": "Deployment", "name": f"web-{h}", "controller": True}]},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 1, "replicas": 2, "readyReplicas": available,
                   "availableReplicas": available},
    }  # fmt: skip


def indexed_rv(f: handlers.Feeds) -> int:
    return next(iter(f.releases[KEY])).resource_version


def test_an_older_event_never_replaces_our_own_newer_write() -> None:
    f = feeds()
    f.release("ADDED", release(300))
    f.written(release(400, phase="Progressing"))
    f.release("MODIFIED", release(350))  # the watch catching up with an earlier change
    assert indexed_rv(f) == 400
    f.release("MODIFIED", release(400, phase="Progressing"))
    f.release("DELETED", release(400))
    assert KEY not in f.releases


def test_the_echo_of_our_write_is_not_parsed_again_and_still_wakes_the_release() -> None:
    f = feeds()
    f.written(release(400, phase="Progressing"))
    entry = next(iter(f.releases[KEY]))
    f.release("MODIFIED", release(400, phase="Progressing"))  # its echo: the same version
    assert next(iter(f.releases[KEY])) is entry
    assert f.queue.depth(Priority.BULK) == 1
    f.release("MODIFIED", release(401, phase="Healthy"))  # a newer one is parsed
    newer = next(iter(f.releases[KEY]))
    assert newer.resource_version == 401 and newer.view is not None
    assert newer.view.status.phase == "Healthy"


def test_our_write_is_queued_only_when_its_next_step_moves_traffic() -> None:
    f = feeds()
    f.written(release(400))  # an ordinary status write: its watch event wakes it, BULK
    assert len(f.queue) == 0
    f.release("ADDED", release(401))
    assert f.queue.depth(Priority.BULK) == 1
    # an undo: the spec is set back to a revision whose pods are all available
    body = release(402)
    body["metadata"]["generation"] = 3
    view = reconcile.index_release(body).view
    assert view is not None
    warm = naming.template_hash(naming.effective_template(view.spec))
    f.deployment("ADDED", deployment(warm, available=2))
    f.written(body)
    assert f.queue.depth(Priority.TRAFFIC) == 1


def test_a_replicaset_wakes_a_candidate_before_its_deployment_says_it_is_available() -> None:
    f = feeds()
    f.release("ADDED", release(300, candidateHash="bbb", phase="Progressing"))
    f.deployment("ADDED", deployment("bbb", available=0))
    assert f.queue.depth(Priority.TRAFFIC) == 0
    f.replicaset("ADDED", replicaset("bbb", available=2))
    assert f.queue.depth(Priority.TRAFFIC) == 1
    (d,) = f.reconciler.deployments(KEY)
    assert d.fully_available(2)


def endpointslice(service: str, ready: list[bool | None], uid: str) -> dict[str, Any]:
    labels = {naming.LABEL_RELEASE: "web", handlers.SERVICE_NAME: service}
    endpoints = [{"conditions": {} if r is None else {"ready": r}} for r in ready]
    return {"metadata": {"name": uid, "namespace": "ns", "uid": uid, "labels": labels},
            "endpoints": endpoints}  # fmt: skip


def test_a_backends_ready_endpoints_are_summed_over_its_slices_and_wake_a_candidate() -> None:
    f = feeds()
    f.release("ADDED", release(300, candidateHash="bbb", phase="Progressing"))
    f.deployment("ADDED", deployment("bbb", available=2))
    while f.queue._pop() is not None:  # those events, reconciled
        pass
    f.endpointslice("ADDED", endpointslice("web-aaa", [True, True], "s-1"))
    assert len(f.queue) == 0, "the live revision's: nothing waits for them"
    f.endpointslice("ADDED", endpointslice("web-bbb", [True, False], "s-2"))
    assert len(f.queue) == 0, "one of the two available candidate pods listed: not yet"
    f.endpointslice("ADDED", endpointslice("web-bbb", [None], "s-3"))  # unset: ready
    assert f.queue.depth(Priority.TRAFFIC) == 1, "both listed: it may flip now"
    assert sorted(f.endpoints.get(("ns", "web-bbb"), ())) == [1, 1]
    f.endpointslice("DELETED", endpointslice("web-bbb", [None], "s-3"))
    assert sorted(f.endpoints.get(("ns", "web-bbb"), ())) == [1]


def test_a_backends_endpoints_wake_no_release_at_rest() -> None:
    f = feeds()
    traffic = {"route": "web", "weights": [{"revision": 1, "templateHash": "aaa", "weight": 100}]}
    f.release("ADDED", release(300, traffic=traffic))
    while f.queue._pop() is not None:  # the Release's own event, reconciled
        pass
    f.endpointslice("MODIFIED", endpointslice("web-aaa", [True], "s-1"))
    assert len(f.queue) == 0
    f.endpointslice("MODIFIED", endpointslice("web-bbb", [True], "s-2"))  # a new revision's
    assert len(f.queue) == 0
    assert list(f.endpoints.get(("ns", "web-aaa"), ())) == [1], "indexed all the same"


def config_meta(name: str, rv: str, uid: str, **labels: str) -> dict[str, Any]:
    """A ConfigMap as the metadata-only watch sends it (no data)."""
    return {"metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": rv,
                         "labels": labels}}  # fmt: skip


def test_an_edit_of_a_referenced_configmap_wakes_its_release_and_drops_its_digest() -> None:
    f = feeds()
    body = release(300)
    body["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [
        {"configMapRef": {"name": "app-config"}}
    ]
    f.release("ADDED", body)
    while f.queue._pop() is not None:
        pass
    f.config("ConfigMap", "MODIFIED", config_meta("other", "5", "c-0"))
    assert len(f.queue) == 0, "not referenced: dropped"
    key = ("ns", "ConfigMap", "app-config")
    f.reconciler.config[key] = ("7", snapshot.ConfigView("ConfigMap", "app-config", "d"))
    f.config("ConfigMap", "MODIFIED", config_meta("app-config", "7", "c-1"))
    assert len(f.queue) == 0, "the version whose digest is cached: no change"
    f.config("ConfigMap", "MODIFIED", config_meta("app-config", "8", "c-1"))
    assert f.queue.depth(Priority.URGENT) == 1 and key not in f.reconciler.config
    # a revision's copy: indexed by name; deleted by hand, its Release makes it again
    copy_labels = {naming.LABEL_RELEASE: "web", naming.LABEL_HASH: "aaa"}
    f.config("ConfigMap", "ADDED", config_meta("app-config-aaa", "9", "c-2", **copy_labels))
    assert list(f.copies[KEY]) == [("ConfigMap", "app-config-aaa")]
    while f.queue._pop() is not None:
        pass
    f.config("ConfigMap", "DELETED", config_meta("app-config-aaa", "9", "c-2", **copy_labels))
    assert KEY not in f.copies and f.queue.depth(Priority.BULK) == 1
    # the reference removed from the spec: its cached digest goes
    f.reconciler.config[key] = ("8", snapshot.ConfigView("ConfigMap", "app-config", "d"))
    f.release("MODIFIED", release(301))
    assert key not in f.reconciler.config and key not in f.referenced


def httproute(rv: str, accepted: bool = False) -> dict[str, Any]:
    labels = {naming.LABEL_RELEASE: "web"}
    parents = [{"parentRef": {"name": "gw"}, "conditions": [
        {"type": t, "status": "True", "observedGeneration": 1}
        for t in ("Accepted", "ResolvedRefs")]}] if accepted else []  # fmt: skip
    return {"metadata": {"name": "web", "namespace": "ns", "uid": "r-1", "generation": 1,
                         "resourceVersion": rv, "labels": labels},
            "spec": {"parentRefs": [{"name": "gw"}], "rules": []},
            "status": {"parents": parents}}  # fmt: skip


def test_our_own_route_write_and_its_echo_wake_nothing_the_gateways_status_does() -> None:
    f = feeds()
    f.release("ADDED", release(300))
    while f.queue._pop() is not None:
        pass
    f.route_written(httproute("7"))
    f.route("MODIFIED", httproute("7"))  # the watch's echo of it
    assert len(f.queue) == 0
    f.route("MODIFIED", httproute("8", accepted=True))  # the gateway accepted it
    assert len(f.queue) == 1


def test_the_gateways_status_seen_first_is_not_replaced_by_our_writes_older_answer() -> None:
    """With the event loop busy, the watch may bring the gateway's status on our write before
    the write's own answer is read: the index keeps the newer one (else: never accepted)."""
    f = feeds()
    f.route("MODIFIED", httproute("7"))  # our write, as the watch brought it
    f.route("MODIFIED", httproute("8", accepted=True))  # the gateway accepted it
    f.route_written(httproute("7"))  # then our write's answer is read
    (record,) = f.routes.get(("ns", "web"), ())
    assert record["metadata"]["resourceVersion"] == "8"
