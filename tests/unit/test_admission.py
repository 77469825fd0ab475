"""The pydantic models refuse every invalid Release of tests/admission_cases.py, naming the field,
as the API server does with the CRD rendered from them (tests/e2e/test_admission.py)."""

from __future__ import annotations

import glob
import pathlib
import re
from typing import Any

import cel
import pydantic
import pytest
import yaml

from greenlight.api import checks as api_checks
from greenlight.api import commands
from greenlight.api import group as api_group
from greenlight.api import release as api
from greenlight.engine import naming
from tests.admission_cases import CASES, Case, valid, valid_group

ROOT = pathlib.Path(__file__).resolve().parents[2]


def k8s_path(loc: tuple[Any, ...]) -> str:
    """A pydantic error location the way the API server writes a field path: a.b[0].c"""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("int", "str") or str(part).startswith(("function-after[", "list[", "dict[")):
            continue  # pydantic's validator steps in the location, not fields
        else:
            out += f".{part}" if out else str(part)
    return out


def refusals(body: dict[str, Any]) -> list[str]:
    model = api_group.ReleaseGroup if body.get("kind") == "ReleaseGroup" else api.Release
    try:
        model.model_validate(body)
    except pydantic.ValidationError as e:
        return [f"{k8s_path(err['loc'])}: {err['msg']}" for err in e.errors()]
    return []


def test_the_valid_release_is_accepted() -> None:
    assert refusals(valid()) == []
    assert refusals(valid_group()) == []


def test_there_are_at_least_40_cases() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_models_refuse_it_naming_the_field(case: Case) -> None:
    found = refusals(case.body())
    assert found, f"{case.id}: accepted"
    assert any(case.field in r for r in found), f"{case.id}: {case.field} not named in {found}"


def test_reserved_labels_are_the_ones_greenlight_sets() -> None:
    assert set(api.RESERVED_LABELS) == {
        naming.LABEL_RELEASE,
        naming.LABEL_HASH,
        naming.LABEL_COLOR,
        naming.LABEL_REVISION,
    }


# The models gained types where they passed dicts through (probes, container ports): the template
# hash of an unchanged Release must not change, or an upgrade would re-release everything.
HASHES = {
    "examples/rolling-release.yaml": "2adb10e509",
    "examples/web-release.yaml": "732d48f9ed",
}


@pytest.mark.parametrize("path", sorted(HASHES))
def test_template_hashes_of_existing_releases_are_unchanged(path: str) -> None:
    (doc,) = [
        d for d in yaml.safe_load_all((ROOT / path).read_text()) if d and d["kind"] == "Release"
    ]
    spec = api.ReleaseSpec.model_validate(doc["spec"])
    assert naming.template_hash(naming.effective_template(spec)) == HASHES[path]


def test_a_template_with_probes_and_ports_keeps_its_hash_and_fields() -> None:
    """Hashes computed before the probe and port models existed (at commit 8ada597)."""
    body = valid()
    spec = api.ReleaseSpec.model_validate(body["spec"])
    template = naming.user_template(spec)
    assert template == body["spec"]["template"], "the template is passed on as written"
    assert naming.template_hash(naming.effective_template(spec)) == "e95b6a4363"


def test_the_charts_crds_are_the_generated_ones() -> None:
    """charts/greenlight/crds is a link to crds/ (which test_crd.py keeps fresh): one file."""
    chart_crds = ROOT / "charts" / "greenlight" / "crds"
    assert chart_crds.is_symlink()
    assert chart_crds.resolve() == (ROOT / "crds").resolve()


RICH = """
replicas: 2
template:
  metadata:
    labels: {app: rich, tier: web, example.com/team: a}
    annotations: {example.com/note: "x", prometheus.io/scrape: "true"}
  spec:
    containers:
    - name: web
      image: registry.example/web:1.0
      ports: [{name: http, containerPort: 8080, protocol: TCP}, {containerPort: 9090}]
      readinessProbe:
        httpGet: {path: /ready, port: http, scheme: HTTP, httpHeaders: [{name: X-A, value: b}]}
        periodSeconds: 5
        timeoutSeconds: 2
      env: [{name: A, value: b}]
      resources: {limits: {cpu: 100m}}
    - name: side
      image: registry.example/side:2
      readinessProbe: {tcpSocket: {port: 9000}, initialDelaySeconds: 3}
    - name: third
      image: registry.example/third:3
    volumes: [{name: v, emptyDir: {}}]
healthCheck:
  {grpc: {port: 9000, service: health}, periodSeconds: 3, failureThreshold: 2, successThreshold: 1}
service:
  name: rich
  ports: [{name: http, port: 80, targetPort: http}, {port: 443, targetPort: 8443}]
previewService: {name: rich-preview}
"""


def test_a_template_with_every_modelled_field_keeps_its_hash() -> None:
    """Probes, container ports, volumes: hash computed before they were modelled."""
    spec = api.ReleaseSpec.model_validate(yaml.safe_load(RICH))
    assert naming.template_hash(naming.effective_template(spec)) == "1ac08057f1"


def test_every_example_is_valid() -> None:
    for path in glob.glob(str(ROOT / "examples" / "*.yaml")):
        for doc in yaml.safe_load_all(pathlib.Path(path).read_text()):
            if doc and doc.get("kind") == "Release":
                assert refusals(doc) == [], path


def test_a_template_too_large_for_its_deployments_annotation_is_refused() -> None:
    """Not measurable in the CRD: the operator refuses it with these models (e2e: nothing is
    created and the Release says why)."""
    body = valid()
    annotations = body["spec"]["template"]["metadata"]["annotations"]
    annotations["example.com/blob"] = "x" * (api.MAX_TEMPLATE_BYTES - 1000)
    assert refusals(body) == []
    annotations["example.com/blob"] = "x" * api.MAX_TEMPLATE_BYTES
    found = refusals(body)
    assert len(found) == 1 and "spec.template" in found[0] and "256 KiB" in found[0], found


def test_command_annotations_are_the_ones_the_engine_reads() -> None:
    assert commands.COMMANDS == naming.COMMANDS


def test_the_known_variables_are_the_ones_checks_expand() -> None:
    from greenlight.engine import checks as engine_checks
    from greenlight.engine.draft import Work
    from tests.unit.world import World, spec

    known = engine_checks.variables(Work(World(spec()).snapshot()), "abc", 1)
    assert set(known) == set(api_checks.VARIABLES)


def _policy() -> dict[str, Any]:
    """The chart's policy, as manifests/greenlight.yaml renders it (kept fresh by
    tests/e2e/test_install.py)."""
    docs = yaml.safe_load_all((ROOT / "manifests" / "greenlight.yaml").read_text())
    (policy,) = [d for d in docs if d and d["kind"] == "ValidatingAdmissionPolicy"]
    return policy


def policy_refusals(body: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    """The chart's ValidatingAdmissionPolicy, evaluated here with the `cel` library."""
    spec = _policy()["spec"]
    context: dict[str, Any] = {"object": body, "oldObject": old, "variables": {}}
    for v in spec["variables"]:
        context["variables"][v["name"]] = cel.evaluate(v["expression"], context)
    return [
        cel.evaluate(check["messageExpression"], context)
        for check in spec["validations"]
        if not cel.evaluate(check["expression"], context)
    ]


def test_the_admission_policy_judges_command_values_as_the_models_do() -> None:
    """The policy the chart ships (the API server runs it; tests/e2e/test_admission.py) and
    api/commands.py say the same: every value the models take, it takes; each row it refuses."""
    for kind, base in (("Release", valid()), ("ReleaseGroup", valid_group())):
        for (k, key), (regex, _) in commands.VALUES.items():
            if k != kind:
                continue
            for value in ("", "true", "skip-checks", "1", "12", "0", "false", "x", " true"):
                body = {**base, "metadata": {"name": "x", "annotations": {key: value}}}
                by_models = refusals(body) != []
                assert (policy_refusals(body) != []) == by_models, (kind, key, value)
                assert by_models == (re.fullmatch(regex, value) is None), (kind, key, value)
    rows = [c for c in CASES if c.id.startswith(("command-", "group-command-"))]
    assert len(rows) >= 8
    for case in rows:
        found = policy_refusals(case.body())
        assert len(found) == 1 and case.field in found[0], (case.id, found)


def test_the_admission_policy_does_not_judge_a_command_already_there_again() -> None:
    """An update that leaves a command as it was (one set before the policy existed) passes, so
    the operator's own writes never trip on it; a changed one is judged."""
    old = valid()
    old["metadata"]["annotations"] = {commands.UNDO: "previous"}
    assert policy_refusals(old, old) == []
    new = {**old, "metadata": {"name": "web", "annotations": {commands.UNDO: "later"}}}
    assert len(policy_refusals(new, old)) == 1
    cleared = {**old, "metadata": {"name": "web"}}
    assert policy_refusals(cleared, old) == []
