"""Prometheus metrics of the operator (served by `greenlight run --metrics-port`)."""

from __future__ import annotations

import prometheus_client as prom

RECONCILES = prom.Counter(
    "greenlight_reconciles",
    "Reconciles of Releases by result: planned, stale (our status write not yet seen), expecting"
    " (our Deployment writes not yet seen), invalid, gone, error.",
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
QUEUE_DEPTH = prom.Gauge("greenlight_queue_depth", "Releases waiting to be reconciled.")
