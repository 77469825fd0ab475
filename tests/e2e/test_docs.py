"""Every manifest in the docs is one the API server accepts.

Each YAML code block of README.md and docs/guide/*.md with an `apiVersion` and a `kind`, and each
file in examples/ (the guide links them), is applied with `kubectl apply --dry-run=server
--validate=strict` into the test's namespace, with the CRDs installed: the Release schema, its
validation rules and the admission policy judge it, and an unknown field fails. Blocks without
`apiVersion` and `kind` are fragments of a larger object and are left out.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```ya?ml[^\n]*\n(.*?)^```", re.M | re.S)


def _manifests() -> list[Any]:
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs" / "guide").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for block in FENCE.finditer(text):
            docs = [d for d in yaml.safe_load_all(block.group(1)) if isinstance(d, dict)]
            if any("apiVersion" in d and "kind" in d for d in docs):
                line = text.count("\n", 0, block.start()) + 1
                where = f"{page.relative_to(ROOT)}:{line}"
                found.append(pytest.param(block.group(1), id=where))
    for example in sorted((ROOT / "examples").glob("*.yaml")):
        found.append(
            pytest.param(example.read_text(encoding="utf-8"), id=f"examples/{example.name}")
        )
    return found


MANIFESTS = _manifests()


def test_docs_have_manifests() -> None:
    assert len(MANIFESTS) >= 10, [p.id for p in MANIFESTS]


@pytest.mark.parametrize("manifest", MANIFESTS)
def test_manifest_is_valid(kube: Any, namespace: str, crd: None, manifest: str) -> None:
    out = kube.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-n", namespace, "-f", "-",
        input=manifest,
    )  # fmt: skip
    assert "(server dry run)" in out, out
