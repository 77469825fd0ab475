"""The CRD in crds/ is generated from the models, structural, and rejects what it should."""

from __future__ import annotations

import json
import pathlib

from greenlight.api import crd

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_crds_dir_is_not_stale() -> None:
    for name, text in crd.files().items():
        on_disk = (ROOT / "crds" / name).read_text()
        assert on_disk == text, f"crds/{name} is stale: run `make crd`"


def test_schema_is_structural() -> None:
    text = json.dumps(crd.schema())
    assert "$ref" not in text and '"null"' not in text and '"title"' not in text
    spec = crd.schema()["properties"]["spec"]
    surge = spec["properties"]["strategy"]["properties"]["rolling"]["properties"]["maxSurge"]
    assert surge["x-kubernetes-int-or-string"] is True
    assert spec["properties"]["replicas"]["default"] == 1
    assert spec["properties"]["template"]["properties"]["spec"][
        "x-kubernetes-preserve-unknown-fields"
    ]


def test_cel_rules_name_the_field() -> None:
    rules = crd.schema()["properties"]["spec"]["x-kubernetes-validations"]
    assert any("spec.healthCheck" in r["message"] for r in rules)
