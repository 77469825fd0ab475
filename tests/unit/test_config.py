"""Config per revision: the ConfigMaps and Secrets a pod template references are part of its
revision (hashed, copied, pointed at), so an edit in place is released, gated and undone like an
image (engine/config.py)."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import pytest

from greenlight.api import release as api
from greenlight.engine import actions as act
from greenlight.engine import config, group, lanes, naming, plan
from greenlight.engine.reasons import Reason
from tests.unit.world import World, hash_of, spec

pytestmark = pytest.mark.unit

CM = ("ConfigMap", "app-config")
SECRET = ("Secret", "db")


def referencing(image: str = "app:1", **kw: Any) -> api.ReleaseSpec:
    """`spec(image)` whose container reads ConfigMap app-config (envFrom), Secret db (a key,
    and a projected volume) and, optionally, ConfigMap extra."""
    body = spec(image).model_dump(by_alias=True, exclude_none=True)
    pod = body["template"]["spec"]
    pod["containers"][0]["envFrom"] = [{"configMapRef": {"name": "app-config"}}]
    pod["containers"][0]["env"] = [
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}
    ]
    pod["volumes"] = [
        {"name": "all", "projected": {"sources": [{"secret": {"name": "db"}}]}},
        {"name": "extra", "configMap": {"name": "extra", "optional": True}},
    ]
    body.update(kw)
    return api.ReleaseSpec.model_validate(body)


def world() -> World:
    w = World(referencing())
    w.objects[CM] = {"GREETING": "hello"}
    w.objects[SECRET] = {"password": b64("s3cr3t-one")}
    return w


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def names(template: dict[str, Any]) -> set[tuple[str, str]]:
    """(kind, name) of every ConfigMap and Secret a pod template points at."""
    return {(r.kind, r.name) for r in config.references(template)}


def deployment_of(w: World, template_hash: str) -> str:
    return naming.deployment_name(w.name, template_hash)


def test_no_reference_keeps_the_hash_it_had() -> None:
    """No mass re-release on upgrade: a Release that references no ConfigMap or Secret (or only
    shared ones, or a missing optional one) keeps the hash it had before config was hashed."""
    assert config.revision("web", spec(), ()).hash == "9f0319dbbe"
    body = spec().model_dump(by_alias=True, exclude_none=True)
    body["template"]["spec"]["containers"][0]["envFrom"] = [
        {"configMapRef": {"name": "app-config"}}
    ]
    shared = api.ReleaseSpec.model_validate(body)
    seen = (config.snapshot.ConfigView("ConfigMap", "app-config", "d1", shared=True),)
    assert config.revision("web", shared, seen).hash == "6ca41a76ae"
    optional = body["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]
    optional["optional"] = True
    missing = api.ReleaseSpec.model_validate(body)
    assert config.revision("web", missing, ()).hash == naming.template_hash(
        naming.effective_template(missing)
    )


def test_references_in_every_place_a_pod_names_them() -> None:
    template = {
        "spec": {
            "initContainers": [{"envFrom": [{"secretRef": {"name": "init"}}]}],
            "containers": [
                {
                    "env": [
                        {"valueFrom": {"configMapKeyRef": {"name": "a", "key": "k"}}},
                        {"valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    ],
                    "envFrom": [{"configMapRef": {"name": "b", "optional": True}}],
                }
            ],
            "volumes": [
                {"name": "v1", "secret": {"secretName": "s"}},
                {"name": "v2", "configMap": {"name": "b"}},
                {"name": "v3", "projected": {"sources": [{"configMap": {"name": "p"}}]}},
                {"name": "v4", "emptyDir": {}},
            ],
        }
    }
    assert config.references(template) == (
        config.Ref("ConfigMap", "a", False),
        config.Ref("ConfigMap", "b", False),  # one required reference makes it required
        config.Ref("ConfigMap", "p", False),
        config.Ref("Secret", "init", False),
        config.Ref("Secret", "s", False),
    )


def test_edit_in_place_is_a_new_revision_blue_keeps_its_copy_undo_restores_it() -> None:
    w = world().go_live()
    blue = w.live_hash()
    assert blue is not None and blue == hash_of(w.spec, w)
    blue_name = deployment_of(w, blue)
    # the Deployment points at its own immutable copies; the recorded template is the user's
    assert names(w.pod_templates[blue_name]) == {
        ("ConfigMap", f"app-config-{blue}"),
        ("Secret", f"db-{blue}"),
        ("ConfigMap", "extra"),  # missing and optional: left as it is
    }
    assert names(json.loads(w.deployments[blue_name].template or "")) == {
        CM,
        SECRET,
        ("ConfigMap", "extra"),
    }
    assert w.copied[("ConfigMap", f"app-config-{blue}")] == {"GREETING": "hello"}
    assert {c.deployment for c in w.copies.values()} == {blue_name}

    w.objects[CM] = {"GREETING": "bye"}  # kubectl edit configmap app-config
    w.reconcile()
    green = w.status.candidate_hash
    assert green is not None and green != blue, "an edit in place is a new revision"
    assert w.live_hash() == blue, "released like an image: blue serves until the flip"
    assert w.copied[("ConfigMap", f"app-config-{green}")] == {"GREETING": "bye"}
    w.go_live()
    assert w.live_hash() == green
    assert w.copied[("ConfigMap", f"app-config-{blue}")] == {"GREETING": "hello"}, "blue's own"
    assert ("ConfigMap", f"app-config-{blue}") in names(w.pod_templates[blue_name])

    w.annotations[naming.COMMAND_UNDO] = ""
    w.reconcile()
    assert w.live_hash() == blue, "undo goes back to blue's Deployment, with blue's config"
    assert w.status.aborted_hash == green and w.status.rolled_back_to == blue
    w.settle()
    w.reconcile()
    assert w.live_hash() == blue and w.status.phase == "Degraded"  # the spec's revision held
    assert w.last is not None
    assert not any(isinstance(a, act.CreateDeployment) for a in w.last.writes)

    w.objects[CM] = {"GREETING": "hello"}  # the config put back: that is blue, live: at rest
    w.tick(60)
    w.reconcile()
    assert w.live_hash() == blue and w.status.phase == "Healthy"


def test_undo_that_writes_the_spec_holds_when_only_the_config_changed() -> None:
    """Writing the template back cannot bring back a ConfigMap's data: the spec is held."""
    w = World(referencing(undoWritesSpec=True))
    w.objects[CM], w.objects[SECRET] = {"GREETING": "hello"}, {"password": b64("x")}
    w.go_live()
    blue = w.live_hash()
    w.objects[CM] = {"GREETING": "bye"}
    w.go_live()
    w.annotations[naming.COMMAND_UNDO] = ""
    w.reconcile()
    assert w.live_hash() == blue
    assert not any(isinstance(a, act.RestoreTemplate) for a in w.log)


def test_shared_config_is_referenced_as_it_is_and_its_edit_is_no_revision() -> None:
    w = world()
    w.shared.add(CM)
    w.go_live()
    live = w.live_hash()
    assert live is not None
    template = w.pod_templates[deployment_of(w, live)]
    assert CM in names(template) and ("Secret", f"db-{live}") in names(template)
    assert set(w.copies) == {("Secret", f"db-{live}")}, "only what is not shared is copied"
    w.objects[CM] = {"GREETING": "bye"}
    result = w.reconcile()
    assert w.live_hash() == live and w.status.phase == "Healthy"
    assert not result.writes and w.status.candidate_hash is None


def test_a_missing_required_reference_holds_the_release_before_anything_is_created() -> None:
    w = World(referencing())
    w.objects[CM] = {"GREETING": "hello"}  # Secret db missing
    result = w.reconcile()
    assert not result.writes, "nothing created: no Deployment, no copy, no Service"
    assert w.status.phase == "Progressing" and "Secret db" in w.status.message
    progressing = next(c for c in w.status.conditions if c.type == "Progressing")
    assert progressing.reason == Reason.CONFIG_MISSING

    w.objects[SECRET] = {"password": b64("x")}  # created: the release goes on
    w.go_live()

    w.set_spec(referencing(image="app:2"))
    del w.objects[SECRET]  # a new revision needs it again: live untouched
    w.reconcile()
    assert w.last is not None and not w.last.writes
    assert w.status.phase == "Progressing" and w.status.candidate_hash is None
    assert "Secret db" in w.status.message


def test_a_copy_deleted_by_hand_is_made_again() -> None:
    w = world().go_live()
    live = w.live_hash()
    assert live is not None
    del w.copies[("ConfigMap", f"app-config-{live}")]
    result = w.reconcile()
    assert [a.name for a in result.writes if isinstance(a, act.CopyConfig)] == [
        f"app-config-{live}"
    ]


def test_a_secret_s_data_is_never_in_a_plan() -> None:
    """Not in writes, Events, status or notifications: names and digests only."""
    w = world()
    plans: list[plan.Plan] = []
    for value in ("s3cr3t-one", "s3cr3t-two"):
        w.objects[SECRET] = {"password": b64(value)}
        for _ in range(4):
            plans.append(w.reconcile())
            w.settle()
    assert any(
        isinstance(a, act.CopyConfig) and a.kind == "Secret" for p in plans for a in p.writes
    )
    digest = config.digest(w.objects[SECRET])
    for p in plans:
        text = repr(p)
        for value in ("s3cr3t-one", "s3cr3t-two"):
            assert value not in text and b64(value) not in text
        public = repr((p.status, p.events, p.notifications))
        assert digest not in public


def test_lanes_and_groups_see_the_revision_with_its_config() -> None:
    w = world().go_live()
    view = w.snapshot().release
    seen = w.snapshot().config
    assert lanes.release(view, w.deployments.values(), seen) == "bulk"
    w.objects[CM] = {"GREETING": "bye"}
    member = group.Member("web", dataclasses.replace(view), config=w.snapshot().config)
    assert group._state(member).desired == hash_of(w.spec, w) != w.live_hash()


def test_a_workload_refs_template_config_is_copied_per_revision_too() -> None:
    """spec.workloadRef: the Deployment's template is released, with the config it names."""
    from greenlight.engine import snapshot

    template = referencing().template
    assert template is not None
    w = World(spec(adopt=True, workload="web"))
    w.workload = snapshot.WorkloadView(
        "web", template.model_dump(by_alias=True, exclude_none=True), spec_replicas=3,
        available_replicas=3,
    )  # fmt: skip
    w.objects[CM] = {"GREETING": "hello"}
    w.objects[SECRET] = {"password": b64("s3cr3t-one")}
    for _ in range(3):
        w.reconcile()
        w.settle()
    assert w.status.phase != "Degraded" and "ConfigMissing" not in w.events(), w.status.message
    (rev1,) = w.deployments
    assert {c.source for c in w.copies.values()} == {"app-config", "db"}
    assert all(c.deployment == rev1 for c in w.copies.values())
