"""api/base.py `Model`: the set of fields given is shared between models given the same fields
(memory: every Release in the index is parsed), and stays each model's own in what it says."""

from __future__ import annotations

import pydantic
import pytest

from greenlight.api import release as api

CONDITION = {
    "type": "Ready",
    "status": "True",
    "reason": "ReleaseComplete",
    "message": "revision 1 (blue) is live",
    "lastTransitionTime": "2026-01-01T00:00:00Z",
}


def test_models_given_the_same_fields_share_one_set() -> None:
    a, b = (api.Condition.model_validate(CONDITION) for _ in range(2))
    assert a.model_fields_set is b.model_fields_set
    fewer = api.Condition.model_validate({k: v for k, v in CONDITION.items() if k != "message"})
    assert fewer.model_fields_set == {"type", "status", "reason", "last_transition_time"}
    assert fewer.model_fields_set is not a.model_fields_set


def test_a_copy_with_changes_has_its_own_set_and_leaves_the_others_alone() -> None:
    a, b = (api.Condition.model_validate(CONDITION) for _ in range(2))
    given = set(a.model_fields_set)
    partial = api.Condition.model_validate({k: v for k, v in CONDITION.items() if k != "message"})
    other = api.Condition.model_validate({k: v for k, v in CONDITION.items() if k != "message"})
    assert partial.model_fields_set is other.model_fields_set
    changed = partial.model_copy(update={"message": "changed"})
    assert changed.model_fields_set == given
    assert partial.model_fields_set == other.model_fields_set == given - {"message"}
    assert a.model_fields_set == b.model_fields_set == given
    assert "message" not in other.model_dump(exclude_unset=True)
    assert changed.model_dump(exclude_unset=True)["message"] == "changed"


def test_the_models_stay_frozen() -> None:
    a = api.Condition.model_validate(CONDITION)
    with pytest.raises(pydantic.ValidationError):
        a.message = "edited"  # type: ignore[misc]
    assert a.model_fields_set == set(api.Condition.model_validate(CONDITION).model_fields_set)
