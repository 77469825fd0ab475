"""The operator's tunables, in one place: `greenlight run` flags, environment variables and chart
values all land here (as kopf's OperatorSettings does, each field says why it exists).

No kopf or kubernetes import: the CLI builds these before it imports the operator.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any


def _field(default: float, env: str, flag: str, help: str) -> Any:
    """A setting: its default, environment variable, `greenlight run` flag and one-line help
    (the docstring below each field says why it exists and what a change costs)."""
    return dataclasses.field(default=default, metadata={"env": env, "flag": flag, "help": help})


@dataclasses.dataclass(frozen=True)
class Settings:
    workers: int = _field(
        10, "GREENLIGHT_WORKERS", "--workers", "Releases reconciled at the same time."
    )
    """Releases reconciled at the same time. A reconcile mostly waits on the API server, so
    workers hide its latency: a burst of flips, or an undo arriving while every worker waits on a
    slow create, needs enough of them (10, as Argo Rollouts' rollout threads). More mean more
    concurrent API requests when many Releases change at once (the API server's priority and
    fairness queues them). One Release is never reconciled by two workers at once, whatever
    this is."""

    expectation_timeout: float = _field(
        15.0,
        "GREENLIGHT_EXPECTATION_TIMEOUT",
        "--expectation-timeout",
        "Seconds to wait for the Deployment cache to show our own writes before deciding anyway.",
    )
    """Seconds to wait for the Deployment cache (kopf's index) to show the replicas we just wrote
    before deciding again. Deciding on a cache that has not seen our own writes could scale twice
    and break maxSurge/maxUnavailable; the wait ends early on the Deployment event that shows them.
    It only ends by time when an event was lost or someone else changed the Deployment meanwhile:
    then we decide anyway on what the cache shows."""

    retry_delay: float = _field(
        1.0,
        "GREENLIGHT_RETRY_DELAY",
        "--retry-delay",
        "Seconds before the first retry of a failed reconcile (doubled per failure in a row).",
    )
    """Seconds before the first retry of a failed reconcile (an API error, a refused step). Each
    further failure in a row doubles it, up to max_backoff; a success resets it."""

    max_backoff: float = _field(
        60.0,
        "GREENLIGHT_MAX_BACKOFF",
        "--max-backoff",
        "Longest wait between retries of a Release that keeps failing.",
    )
    """Longest wait between retries of a Release that keeps failing (e.g. a quota refusing its
    Deployment). Lower: the Release recovers sooner once the cause is fixed, at the cost of
    more requests while it is not. Any change to the Release or its Deployments retries at once."""

    watch_server_timeout: int = _field(
        300,
        "GREENLIGHT_WATCH_SERVER_TIMEOUT",
        "--watch-server-timeout",
        "Seconds the API server keeps one watch open before the informer re-opens it.",
    )
    """Seconds the API server keeps one watch request open before the informer re-opens it (from
    the last resourceVersion seen, no relist). Without a limit a watch silently stalled by a
    proxy or load balancer can go unnoticed."""

    request_timeout: float = _field(
        30.0,
        "GREENLIGHT_REQUEST_TIMEOUT",
        "--request-timeout",
        "Seconds an informer waits for a list page, or beyond a watch's end, before retrying.",
    )
    """Seconds before an informer gives up on one list page, or on a watch that outlived the
    server's timeout by this much. A hung connection then fails and is retried (re-listed if
    its resourceVersion is too old by then) instead of stalling the operator."""

    lease_duration: float = _field(
        15.0,
        "GREENLIGHT_LEASE_DURATION",
        "--lease-duration",
        "Seconds a standby waits after the leader's last renewal before taking the Lease.",
    )
    """Seconds a standby replica waits, from the last renewal of the leader's Lease it saw,
    before it takes the Lease (client-go's LeaseDuration). It bounds a failover after the leader
    dies without releasing it (a crash, a lost node): the new leader acts after at most this
    plus retry_period. Lower: faster failover, but a leader slowed down (CPU starved, a slow API
    server) loses the Lease more easily. A clean shutdown releases the Lease: no wait then."""

    renew_deadline: float = _field(
        10.0,
        "GREENLIGHT_RENEW_DEADLINE",
        "--renew-deadline",
        "Seconds the leader keeps acting without a successful renewal of its Lease.",
    )
    """Seconds the leader keeps acting after its last successful Lease renewal (client-go's
    RenewDeadline); then it stops its workers, before any standby may take the Lease. Must be
    below lease_duration: the gap is the margin for clock-rate differences and for stopping."""

    retry_period: float = _field(
        2.0,
        "GREENLIGHT_RETRY_PERIOD",
        "--retry-period",
        "Seconds between attempts to take or renew the Lease.",
    )
    """Seconds between a replica's attempts to take the Lease, and between the leader's
    renewals (client-go's RetryPeriod): one small write per period by the leader, one read by
    each standby. Must be below renew_deadline (several attempts fit in it)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Defaults, overridden by the environment variables of each field (GREENLIGHT_WORKERS,
        ...): what `kopf run -m greenlight.handlers` gets, without the CLI."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f.metadata["env"])
            if raw:
                values[f.name] = int(raw) if isinstance(f.default, int) else float(raw)
        return cls(**values)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if getattr(self, f.name) <= 0:
                raise ValueError(f"{f.metadata['flag']} ({f.metadata['env']}): must be > 0")
        if self.retry_delay > self.max_backoff:
            raise ValueError("--retry-delay must not exceed --max-backoff")
        if not self.lease_duration > self.renew_deadline > self.retry_period:
            raise ValueError("need --lease-duration > --renew-deadline > --retry-period")

    @classmethod
    def describe(cls, name: str) -> dict[str, Any]:
        """A field's env, flag and help (for the CLI and the README's table)."""
        return dict(next(f for f in dataclasses.fields(cls) if f.name == name).metadata)
