"""Log formats of `greenlight run`: every line about a Release names it (`namespace/name`).

A record is about a Release when it carries kopf's object reference (`k8s_ref`, set by kopf's
per-object loggers) or our own extras (`namespace`, `release`, optionally `reason`, as
kube/reconcile.py and kube/workqueue.py log them). Call sites pass the extras; the format is
decided once, here.

plain: `2026-11-24T22:50:01.123Z INFO    greenlight.reconcile [shop/web] revision 2 (green) is live`
json:  `{"timestamp": ..., "severity": "info", "logger": ..., "namespace": "shop", "name": "web",
        "reason": "Promoted", "message": ...}`
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

import kopf
from kopf._core.actions import loggers as kopf_loggers


def release_of(record: logging.LogRecord) -> tuple[str, str] | None:
    """(namespace, name) of the Release a record is about, if any."""
    ref = getattr(record, "k8s_ref", None)
    if isinstance(ref, dict) and ref.get("name"):
        return str(ref.get("namespace") or ""), str(ref["name"])
    name = getattr(record, "release", None)
    if name:
        return str(getattr(record, "namespace", "") or ""), str(name)
    return None


def _ref(namespace: str, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


class PlainFormatter(logging.Formatter):
    """time (UTC, ISO 8601), level, logger, [namespace/name], message."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(release_ref)s%(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        when = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def format(self, record: logging.LogRecord) -> str:
        found = release_of(record)
        record.release_ref = f"[{_ref(*found)}] " if found else ""
        return super().format(record)


class JsonFormatter(kopf_loggers.ObjectJsonFormatter):
    """kopf's JSON format (timestamp, severity, message, object) plus logger, namespace, name."""

    def __init__(self) -> None:
        super().__init__()

    def add_fields(
        self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_record, record, message_dict)
        log_record.pop("release", None)
        log_record.pop("release_ref", None)
        log_record["logger"] = record.name
        found = release_of(record)
        if found:
            log_record["namespace"], log_record["name"] = found


def configure(*, json: bool, verbose: bool) -> None:
    """kopf's logging set-up (levels, its stream handler), with our formatter on it."""
    kopf.configure(
        verbose=verbose, log_format=kopf.LogFormat.JSON if json else kopf.LogFormat.PLAIN
    )
    formatter: logging.Formatter = JsonFormatter() if json else PlainFormatter()
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
    if not verbose:  # kopf logs every handler call ("Handler 'child_changed' succeeded.")
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
