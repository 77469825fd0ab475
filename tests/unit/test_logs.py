"""Log lines about a Release name it (namespace/name) and carry a time: plain and JSON."""

from __future__ import annotations

import ast
import asyncio
import io
import json
import logging
import pathlib
import re
from collections.abc import Iterator

import pytest

from greenlight.cli import logs
from greenlight.kube import workqueue

PLAIN_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def record(msg: str = "revision 2 (green) is live", **extra: object) -> logging.LogRecord:
    r = logging.LogRecord("greenlight.reconcile", logging.INFO, __file__, 1, msg, (), None)
    r.__dict__.update(extra)
    return r


def test_plain_names_the_release_and_carries_a_timestamp() -> None:
    line = logs.PlainFormatter().format(record(namespace="shop", release="web", reason="Promoted"))
    assert re.fullmatch(
        PLAIN_TIME + r" INFO +greenlight\.reconcile \[shop/web\] revision 2 \(green\) is live",
        line,
    ), line


def test_plain_names_kopfs_object_too() -> None:
    line = logs.PlainFormatter().format(
        record("Handler 'x' failed", k8s_ref={"namespace": "shop", "name": "web"})
    )
    assert "[shop/web] Handler 'x' failed" in line


def test_plain_without_a_release_has_no_brackets() -> None:
    line = logs.PlainFormatter().format(record("Starting the operator"))
    assert re.fullmatch(PLAIN_TIME + r" INFO +greenlight\.reconcile Starting the operator", line)


def test_json_carries_namespace_name_reason_and_time() -> None:
    fields = json.loads(
        logs.JsonFormatter().format(record(namespace="shop", release="web", reason="Promoted"))
    )
    assert fields["namespace"] == "shop"
    assert fields["name"] == "web"
    assert fields["reason"] == "Promoted"
    assert fields["message"] == "revision 2 (green) is live"
    assert fields["logger"] == "greenlight.reconcile"
    assert fields["severity"] == "info"
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", fields["timestamp"])
    assert "release" not in fields


def test_json_without_a_reason_has_no_reason() -> None:
    fields = json.loads(logs.JsonFormatter().format(record(namespace="shop", release="web")))
    assert "reason" not in fields
    assert (fields["namespace"], fields["name"]) == ("shop", "web")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The root logger as `greenlight run` configures it, writing into a buffer."""
    root = logging.getLogger()
    before = (root.handlers[:], root.level)
    logs.configure(json=False, verbose=False)
    out = io.StringIO()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(out)
    yield out
    root.handlers[:], root.level = before


async def test_a_failing_reconcile_is_logged_with_its_release(captured: io.StringIO) -> None:
    async def fail(key: object) -> None:
        raise RuntimeError("quota exceeded")

    q = workqueue.WorkQueue(fail, retry_delay=10, max_backoff=10)
    q.start(1)
    q.add(("shop", "web"))
    for _ in range(100):
        if "quota exceeded" in captured.getvalue():
            break
        await asyncio.sleep(0.01)
    await q.stop()
    first = captured.getvalue().splitlines()[0]
    assert re.match(PLAIN_TIME + r" ERROR +greenlight\.queue \[shop/web\] reconcile failed", first)


def test_every_operator_log_call_names_its_release() -> None:
    """Each log call of the operator passes the Release as extras (namespace, release; leader
    election's lines name the replica instead): a new one without them would print a line that
    cannot be attributed among 100 Releases."""
    root = pathlib.Path(workqueue.__file__).resolve().parents[1]
    calls = []
    for path in [*root.glob("kube/*.py"), root / "handlers.py", *root.glob("engine/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in ("log", "logger")
                and node.func.attr in ("debug", "info", "warning", "error", "exception")
            ):
                calls.append((path.name, node.lineno, any(k.arg == "extra" for k in node.keywords)))
    assert len(calls) >= 3, calls
    assert [c for c in calls if not c[2]] == []
