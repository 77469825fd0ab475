"""The reason vocabulary (engine/reasons.py): every reason is spelled once, with its meaning."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

from greenlight.api import checks as api_checks
from greenlight.api import release as api
from greenlight.engine import reasons
from greenlight.engine.reasons import Reason

PACKAGE = Path(reasons.__file__).resolve().parents[1]
OTHER_WORDS = {
    *typing.get_args(api.Phase),
    *typing.get_args(api.Outcome),
    *typing.get_args(api_checks.NotifyEvent),
    "Available", "Progressing", "Ready", "Reconciling", "Stalled", "ReconcileError",  # types
}  # fmt: skip
"""API values that happen to be spelled like a reason (a phase, an outcome, a condition type,
a notification's name): those words may appear elsewhere, meaning the API value."""
EMITTERS = [*(PACKAGE / "engine").glob("*.py"), *(PACKAGE / "kube").glob("*.py"),
            PACKAGE / "handlers.py"]  # fmt: skip
"""Where Events and conditions are written (the CLI may print the same words as titles)."""


def test_every_reason_has_a_one_line_meaning() -> None:
    tree = ast.parse((PACKAGE / "engine" / "reasons.py").read_text())
    [enum] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Reason"]
    body = enum.body
    meanings = {}
    for i, node in enumerate(body):
        if isinstance(node, ast.Assign):
            doc = body[i + 1] if i + 1 < len(body) else None
            assert isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant), (
                f"{ast.unparse(node)} has no meaning under it"
            )
            meanings[ast.unparse(node.targets[0])] = doc.value.value
    assert set(meanings) == set(Reason.__members__)
    assert all(m.strip() for m in meanings.values())


def test_no_reason_is_spelled_outside_the_vocabulary() -> None:
    spelled = {r.value for r in Reason} - OTHER_WORDS
    found = []
    for path in EMITTERS:
        if path.name == "reasons.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in spelled:
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {node.value!r}")
            if isinstance(node, ast.JoinedStr) and ast.unparse(node).startswith("f'Check"):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: a reason built")
    assert found == [], "use engine.reasons.Reason"


def test_an_entry_from_before_reasons_and_messages_were_apart_is_not_parsed() -> None:
    assert reasons.known("PrePromotionCheckFailed: check smoke failed") is None
    assert reasons.known("RolledBack") is Reason.ROLLED_BACK
