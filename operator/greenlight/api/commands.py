"""Command annotations and the values each command takes (engine/commands.py reads them).

A CRD's CEL rules cannot read `metadata.annotations`, so the API server judges these with the
ValidatingAdmissionPolicy `greenlight-commands` (charts/greenlight/templates/
admission-policy.yaml, the same table); the models here say the same for the operator's own
validation and the tests.
"""

from __future__ import annotations

import re
from typing import Any

PROMOTE = "greenlight.dev/promote"
ABORT = "greenlight.dev/abort"
RETRY = "greenlight.dev/retry"
UNDO = "greenlight.dev/undo"
COMMANDS = (PROMOTE, ABORT, RETRY, UNDO)

VALUES: dict[tuple[str, str], tuple[str, str]] = {
    # (kind, annotation): (regex of the values it takes, what they are)
    ("Release", PROMOTE): (r"^(|true|skip-checks)$", "true or skip-checks (empty: true)"),
    ("Release", ABORT): (r"^(|true)$", "true (or empty)"),
    ("Release", RETRY): (r"^(|true)$", "true (or empty)"),
    ("Release", UNDO): (
        r"^([1-9][0-9]{0,9})?$",
        "a revision number, or empty for the previous live revision",
    ),
    ("ReleaseGroup", PROMOTE): (r"^(|true|skip-checks)$", "true or skip-checks (empty: true)"),
    ("ReleaseGroup", ABORT): (r"^(|true)$", "true (or empty)"),
    ("ReleaseGroup", RETRY): (r"^(|true)$", "true (or empty)"),
    ("ReleaseGroup", UNDO): (r"^$", "nothing: a group goes back to its previous group entry"),
}


def error(kind: str, metadata: dict[str, Any]) -> str | None:
    """Why a command annotation of this Release or ReleaseGroup cannot be carried out, or None."""
    annotations = metadata.get("annotations") or {}
    for key in COMMANDS:
        value = annotations.get(key)
        if value is None or (kind, key) not in VALUES:
            continue
        regex, takes = VALUES[(kind, key)]
        if not isinstance(value, str) or re.fullmatch(regex, value) is None:
            command = key.rpartition("/")[2]
            return f"metadata.annotations[{key}]: {value!r} is not a value {command} takes: {takes}"
    return None
