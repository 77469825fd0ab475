"""The `ReleaseGroup` API (greenlight.dev/v1alpha1): several Releases released as one.

Each member keeps its own Release (its own file, its own team); the group only says that
their candidates flip together: none before every member with a candidate is ready (and its
gates passed), then all in one reconcile; one fails, all abort; undo takes all back.
"""

from __future__ import annotations

from typing import Literal

import pydantic

from greenlight.api import commands
from greenlight.api.base import Model, Time, _rules
from greenlight.api.release import Condition

KIND = "ReleaseGroup"
PLURAL = "releasegroups"
MAX_MEMBERS = 50
MAX_HISTORY = 10


class GroupSpec(Model):
    model_config = pydantic.ConfigDict(
        json_schema_extra=_rules(
            (
                "self.members.all(m, self.members.exists_one(n, n == m))",
                "spec.members: each Release at most once",
                ".members",
            )
        )
    )
    members: list[str] = pydantic.Field(
        min_length=1,
        max_length=MAX_MEMBERS,
        description="Names of the member Releases, in the group's namespace.",
        json_schema_extra={"items": {"type": "string", "maxLength": 52}},
    )
    settle_seconds: int = pydantic.Field(
        default=5,
        ge=0,
        le=3600,
        description="After a member's new revision starts, wait this long for the other"
        " members' changes (one `kubectl apply -f dir/` applies them one by one) before any"
        " flip.",
    )
    failure_policy: Literal["AbortAll", "Continue"] = pydantic.Field(
        default="AbortAll",
        description="AbortAll: a member that fails (deadline, abort, a failed gate) aborts"
        " every candidate of the group. Continue: the others still flip together.",
    )
    paused: bool = pydantic.Field(default=False, description="No group flip while set.")

    @pydantic.field_validator("members")
    @classmethod
    def _unique(cls, members: list[str]) -> list[str]:
        twice = sorted({m for m in members if members.count(m) > 1})
        if twice:
            raise ValueError(f"spec.members: each Release at most once ({', '.join(twice)})")
        return members


GroupPhase = Literal["Healthy", "Progressing", "Paused", "Degraded"]


class MemberStatus(Model):
    name: str
    live_revision: int | None = None
    candidate_revision: int | None = None
    ready: bool = False
    """The candidate is fully available and its pre-promotion gates passed."""
    phase: str | None = None


class GroupEntry(Model):
    """Member revisions that went live together."""

    at: Time
    revisions: dict[str, int]


class GroupStatus(Model):
    phase: GroupPhase | None = None
    message: str = ""
    observed_generation: int | None = None
    members: list[MemberStatus] = pydantic.Field(default_factory=list)
    waiting_for: list[str] = pydantic.Field(
        default_factory=list, description="Members whose candidates are not ready yet."
    )
    history: list[GroupEntry] = pydantic.Field(default_factory=list)
    last_flip_spread_ms: float | None = pydantic.Field(
        default=None, description="First to last live Service moved in the last group flip."
    )
    conditions: list[Condition] = pydantic.Field(
        default_factory=list, description="Ready, Reconciling, Stalled (kstatus conventions)."
    )


class ReleaseGroup(Model):
    """Releases whose new revisions go live together (frontend + API, django + fastapi)."""

    api_version: Literal["greenlight.dev/v1alpha1"] = "greenlight.dev/v1alpha1"
    kind: Literal["ReleaseGroup"] = "ReleaseGroup"
    metadata: dict[str, object] = pydantic.Field(default_factory=dict)
    spec: GroupSpec
    status: GroupStatus = pydantic.Field(default_factory=GroupStatus)

    @pydantic.field_validator("metadata")
    @classmethod
    def _command_values(cls, metadata: dict[str, object]) -> dict[str, object]:
        """What the policy greenlight-commands refuses at the API server (api/commands.py)."""
        error = commands.error(KIND, metadata)
        if error is not None:
            raise ValueError(error)
        return metadata
