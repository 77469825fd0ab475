"""Prometheus metrics of the operator (served by `greenlight run --metrics-port`)."""

from __future__ import annotations

import prometheus_client as prom

RECONCILES = prom.Counter(
    "greenlight_reconciles",
    "Reconciles of Releases by result: planned, stale (our status write not yet seen), expecting"
    " (our Deployment writes not yet seen), invalid, gone, finalizing (a deleted Release's"
    " adopted Service being restored), deleting, error.",
    ["result"],
)
RECONCILE_SECONDS = prom.Histogram(
    "greenlight_reconcile_seconds",
    "Time to observe, plan and apply one reconcile.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
TRANSITIONS = prom.Counter(
    "greenlight_transitions",
    "Release transitions (the reasons of the Events they record): Promoted, Aborted, ...",
    ["reason"],
)
CHECK_MEASUREMENTS = prom.Counter(
    "greenlight_check_measurements",
    "Promotion-gate measurements recorded, by check name and verdict (Successful, Failed,"
    " Inconclusive, Error).",
    ["check", "verdict"],
)
GROUP_FLIP_SPREAD = prom.Histogram(
    "greenlight_group_flip_spread_seconds",
    "A group flip: from its first member's live Service moved to its last.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
NOTIFICATIONS = prom.Counter(
    "greenlight_notifications",
    "Notifications by transition and result (sent, failed after its retries).",
    ["event", "result"],
)
LEADER = prom.Gauge(
    "greenlight_leader",
    "1 while this replica acts (holds the Lease, or runs without leader election), else 0.",
)
LEADER.set(1)  # without leader election nothing else sets it; kube.leader.Leadership sets 0
WRITES = prom.Counter(
    "greenlight_writes",
    "Writes to the API server by kind (CreateDeployment, ScaleDeployment, ApplyService,"
    " ApplyBackend, ApplyRoute, ReleaseStatus, ...).",
    ["kind"],
)
WATCH_EVENTS = prom.Counter(
    "greenlight_watch_events",
    "Objects the informers received (listed or watched), by informer (releases, deployments,"
    " services, routes, endpointslices, ...): the operator's CPU follows them.",
    ["informer"],
)
QUEUE_DEPTH = prom.Gauge("greenlight_queue_depth", "Releases waiting to be reconciled.")
QUEUE_WAIT = prom.Histogram(
    "greenlight_queue_wait_seconds",
    "Time from a Release's first trigger to its reconcile's start, by the work queue's lane it"
    " was served from (traffic, urgent, bulk).",
    ["lane"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
RELEASE_PHASE = prom.Gauge(
    "greenlight_release_phase",
    '1 for each Release\'s current phase (alert on phase="Degraded"); gone with the Release,'
    " and exported by the leader only.",
    ["namespace", "name", "phase"],
)
_phases: dict[tuple[str, str], str] = {}


def set_phase(namespace: str, name: str, phase: str | None) -> None:
    """Record a Release's phase (None: the Release is gone)."""
    before = _phases.pop((namespace, name), None)
    if before is not None and before != phase:
        RELEASE_PHASE.remove(namespace, name, before)
    if phase is not None:
        _phases[(namespace, name)] = phase
        RELEASE_PHASE.labels(namespace, name, phase).set(1)


def forget_phases() -> None:
    """Drop every Release's phase: this replica stopped leading (the new leader exports them)."""
    for (namespace, name), phase in _phases.items():
        RELEASE_PHASE.remove(namespace, name, phase)
    _phases.clear()
