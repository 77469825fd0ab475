"""Admission is complete: the API server refuses each invalid Release of tests/admission_cases.py
(the CRD rendered from the models), naming the field, and nothing is created for any of them.

The operator runs in the namespace the whole time, so a Release that got past admission would
get its Deployment and Services; a valid Release created last shows that it would have.
"""

from __future__ import annotations

from typing import Any

import yaml

from greenlight.engine import naming
from tests.admission_cases import CASES, valid
from tests.e2e.conftest import KubectlError
from tests.e2e.helpers import wait_for
from tests.e2e.support import Releases


def create(kube: Any, namespace: str, body: dict[str, Any]) -> str:
    """`kubectl create` the Release; the API server's refusal (stderr), or "" when accepted."""
    try:
        kube.kubectl("create", "-n", namespace, "-f", "-", input=yaml.safe_dump(body))
    except KubectlError as e:
        return str(e)
    return ""


def test_every_invalid_release_is_refused_naming_its_field(
    kube: Any, namespace: str, operator: Any, releases: Releases
) -> None:
    by_api = [c for c in CASES if c.by == "api"]
    assert len(by_api) >= 40
    problems = []
    for i, case in enumerate(by_api):
        name = f"bad-{i}"
        body = case.body(name)
        if case.id == "name-too-long":
            name = body["metadata"]["name"]
        refusal = create(kube, namespace, body)
        if not refusal:
            problems.append(f"{case.id}: accepted")
        elif case.field not in refusal:
            problems.append(f"{case.id}: {case.field} not named in: {refusal.strip()}")
        elif "is invalid" not in refusal and "Invalid value" not in refusal:
            problems.append(f"{case.id}: not an admission refusal: {refusal.strip()}")
    assert not problems, "\n".join(problems)

    # nothing exists for any of them: no Release (or group), no Deployment, no Service
    assert releases_in(kube, namespace) == []
    assert releases_in(kube, namespace, "releasegroups") == []
    # the control: a valid Release in the same namespace gets its objects from the operator
    assert create(kube, namespace, valid("good")) == ""
    wait_for(
        lambda: releases.deployments("good"), timeout=60, what="the valid Release's Deployment"
    )
    both = ["good", "good-preview"]
    wait_for(lambda: services_in(kube, namespace) == both, 60, "the valid Release's Services")
    deployments = kube.apps.list_namespaced_deployment(namespace).items
    assert {d.metadata.labels[naming.LABEL_RELEASE] for d in deployments} == {"good"}
    assert services_in(kube, namespace) == both
    assert releases_in(kube, namespace) == ["good"]


def releases_in(kube: Any, namespace: str, plural: str = "releases") -> list[str]:
    found = kube.custom.list_namespaced_custom_object(
        "greenlight.dev", "v1alpha1", namespace, plural
    )
    return sorted(r["metadata"]["name"] for r in found["items"])


def services_in(kube: Any, namespace: str) -> list[str]:
    return sorted(s.metadata.name for s in kube.core.list_namespaced_service(namespace).items)


def test_the_generated_crd_is_within_the_cel_cost_budget(kube: Any, crd: None) -> None:
    """The API server refuses a CRD whose rules it estimates too expensive; `crd` applied ours."""
    out = kube.kubectl("get", "crd", "releases.greenlight.dev", "-o", "yaml")
    served = yaml.safe_load(out)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    rules = yaml.safe_dump(served).count("rule:")
    assert rules >= 20, "the CRD carries the admission rules"


def test_a_template_too_large_for_its_deployment_creates_nothing(
    kube: Any, namespace: str, operator: Any, releases: Releases
) -> None:
    """The one check the CRD cannot make (the template's size as JSON, which each revision's
    Deployment keeps in an annotation): the API server admits the Release, the operator
    refuses it before creating anything and says why."""
    body = valid("big")
    body["spec"]["template"]["metadata"]["annotations"]["example.com/blob"] = "x" * 300_000
    assert create(kube, namespace, body) == ""
    st = releases.wait_phase("big", "Degraded", timeout=30)
    assert "spec.template" in st["message"] and "256 KiB" in st["message"], st["message"]
    assert kube.apps.list_namespaced_deployment(namespace).items == []
    assert services_in(kube, namespace) == []


def test_what_only_the_operator_can_judge_creates_nothing(
    kube: Any, namespace: str, operator: Any, releases: Releases
) -> None:
    """A CEL condition inside a string the API server cannot parse: it admits the Release, and
    the operator refuses it before creating anything, naming the field. Each row of the table
    marked by="operator"."""
    by_operator = [c for c in CASES if c.by == "operator"]
    assert len(by_operator) >= 6
    names = {}
    for i, case in enumerate(by_operator):
        names[case.id] = f"cel-{i}"
        assert create(kube, namespace, case.body(names[case.id])) == "", case.id
    problems = []
    for case in by_operator:
        st = releases.wait_phase(names[case.id], "Degraded", timeout=30)
        if case.field not in st["message"]:
            problems.append(f"{case.id}: {case.field} not named in: {st['message']}")
    assert not problems, "\n".join(problems)
    assert kube.apps.list_namespaced_deployment(namespace).items == []
    assert services_in(kube, namespace) == []
    assert kube.batch.list_namespaced_job(namespace).items == []
