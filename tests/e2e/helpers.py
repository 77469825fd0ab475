"""Waiting helpers for e2e tests: they observe outcomes and fail with the last value they saw."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

T = TypeVar("T")


def stop_process(proc: subprocess.Popen[Any], timeout: float) -> int:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds; its exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """Call `predicate` until it returns something truthy and return that.

    An exception from `predicate` counts as "not yet" (e.g. a 404 before the object exists) and
    becomes the last value reported on timeout, so a predicate may `assert` with a message.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except Exception as e:
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def watch_for(
    list_fn: Callable[..., Any],
    *args: Any,
    predicate: Callable[[Any], bool],
    timeout: float,
    what: str,
    summary: Callable[[Any], Any] = lambda obj: getattr(obj, "status", obj),
    **kwargs: Any,
) -> Any:
    """The first object listed, then watched, by `list_fn(*args, **kwargs)` matching `predicate`.

    `list_fn` is a kubernetes client list call, e.g. `core.list_namespaced_pod, "ns"`, narrowed by
    `field_selector="metadata.name=x"` or `label_selector=...`. On timeout the AssertionError shows
    `summary(last object seen)`.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while (remaining := deadline - time.monotonic()) > 0:
        listing = list_fn(*args, **kwargs)
        for obj in listing.items:
            last = summary(obj)
            if predicate(obj):
                return obj
        w = watch.Watch()
        try:
            for event in w.stream(
                list_fn,
                *args,
                resource_version=listing.metadata.resource_version,
                timeout_seconds=max(1, int(remaining)),
                _request_timeout=remaining + 5,
                **kwargs,
            ):
                obj = event["object"]
                last = summary(obj)
                if event["type"] in ("ADDED", "MODIFIED") and predicate(obj):
                    return obj
                if time.monotonic() >= deadline:
                    break
        except ApiException as e:
            if e.status != 410:  # 410 Gone: resourceVersion too old, list again
                raise
        finally:
            w.stop()
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def condition(obj: Any, type_: str) -> Any:
    """The status condition of `type_` of a kubernetes client object, or None."""
    for c in (obj.status and obj.status.conditions) or []:
        if c.type == type_:
            return c
    return None


def is_ready(pod: Any) -> bool:
    c = condition(pod, "Ready")
    return c is not None and c.status == "True"
