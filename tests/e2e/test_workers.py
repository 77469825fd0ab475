"""Queue workers with no Service, released by their pods' roles (issue: pod roles): the sample
app in worker mode on the real node consumes a real Redis list only while its pod's
greenlight.dev/role, read from a Downward API volume, says `live`. Messages are published all
the time; each worker records which version consumed each message and in which role."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from greenlight.engine import naming
from tests.e2e.helpers import wait_for
from tests.e2e.queue import Done, Redis
from tests.e2e.realnode import on_real_node, require_real_node, sample_release, with_role_file
from tests.e2e.support import Releases

pytestmark = [pytest.mark.realnode, pytest.mark.usefixtures("real_node")]

RATE = 40  # messages per second


@pytest.fixture(scope="module")
def real_node(kube: Any) -> None:
    require_real_node(kube)


def report(text: str) -> None:
    print(f"\n[workers] {text}", file=sys.__stdout__, flush=True)


def worker(
    name: str, version: str, queue: str, redis: Redis, handover: dict[str, Any] | None = None,
    **env: str,
) -> dict[str, Any]:  # fmt: skip
    """A worker Release: no Service; the role file is the pod's labels (Downward API)."""
    body = with_role_file(
        on_real_node(
            sample_release(name, version, replicas=2), version, WORKER_QUEUE=queue,
            REDIS_ADDR=redis.addr, **env,
        )
    )  # fmt: skip
    spec = body["spec"]
    del spec["service"]
    spec.pop("previewService", None)
    blue_green = {"scaleDownDelaySeconds": 60}
    if handover is not None:
        blue_green["handover"] = handover
    spec["strategy"] = {"blueGreen": blue_green}
    spec["progressDeadlineSeconds"] = 60
    return body


class Publisher:
    """Pushes `m-<n>` onto the queue at RATE per second until stopped."""

    def __init__(self, redis: Redis, queue: str) -> None:
        self.redis, self.queue, self.sent = redis, queue, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Publisher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.redis.client.rpush(self.queue, f"m-{self.sent}")
            self.sent += 1
            self._stop.wait(1 / RATE)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def drained(redis: Redis, queue: str, sent: int, timeout: float = 60) -> list[Done]:
    """Every message sent was consumed: the queue is empty and `sent` are recorded."""
    wait_for(
        lambda: redis.client.llen(queue) == 0 and redis.client.llen(f"{queue}:done") >= sent,
        timeout=timeout,
        what=f"all {sent} messages consumed",
    )
    return redis.done(queue)


def exactly_once(done: list[Done], sent: int) -> None:
    counts = collections.Counter(d.message for d in done)
    twice = [m for m, n in counts.items() if n > 1]
    lost = [f"m-{i}" for i in range(sent) if f"m-{i}" not in counts]
    assert not twice and not lost, f"consumed twice: {twice[:10]}; lost: {lost[:10]}"


def only_live_consumed(done: list[Done]) -> None:
    """No message was taken by a candidate; a worker that turns draining may finish the one
    pop already under way when its role file changed (at most one per pod)."""
    by_role = collections.Counter(d.role for d in done)
    assert by_role["candidate"] == 0 and by_role["none"] == 0, by_role
    late = collections.Counter(d.pod for d in done if d.role == "draining")
    assert all(n <= 1 for n in late.values()), late


@pytest.fixture
def queue(redis: Redis) -> Iterator[str]:
    yield redis.new_queue("jobs")


@pytest.mark.usefixtures("operator")
@pytest.mark.parametrize("policy", ["overlap", "handover"])
def test_a_worker_release_hands_the_queue_over_losing_and_repeating_no_message(
    releases: Releases, redis: Redis, queue: str, policy: str, kube: Any, namespace: str
) -> None:
    handover = {"policy": policy}
    if policy == "handover":
        handover["timeoutSeconds"] = 3
    releases.apply(worker("jobs", "v1", queue, redis, handover))
    releases.wait_phase("jobs", "Healthy", liveRevision=1, timeout=120)
    with Publisher(redis, queue) as publisher:
        wait_for(
            lambda: any(d.version == "v1" for d in redis.done(queue)), timeout=30,
            what="v1 consuming",
        )  # fmt: skip
        began = time.monotonic()
        releases.apply(worker("jobs", "v2", queue, redis, handover))
        releases.wait_phase("jobs", "Healthy", liveRevision=2, timeout=120)
        took = time.monotonic() - began
        since = len(redis.done(queue))
        wait_for(
            lambda: any(d.version == "v2" for d in redis.done(queue)[since:]), timeout=30,
            what="v2 consuming",
        )  # fmt: skip
        time.sleep(2)  # (keep publishing a moment while v2 alone consumes)
        publisher.stop()
    done = drained(redis, queue, publisher.sent)
    exactly_once(done, publisher.sent)
    only_live_consumed(done)
    # once v2 consumes, v1 does not any more (it is draining): the last messages are v2's
    last_v1 = max(i for i, d in enumerate(done) if d.version == "v1")
    first_v2 = min(i for i, d in enumerate(done) if d.version == "v2")
    assert all(d.version == "v2" for d in done[last_v1 + 1 :]) and done[-1].version == "v2"
    overlap = sum(1 for d in done[first_v2:last_v1] if d.version == "v1")
    report(
        f"{policy}: {publisher.sent} messages, 0 lost, 0 twice; release took {took:.1f} s;"
        f" {overlap} messages taken by v1 after v2's first"
    )
    # the role changed in place: v1's pods consumed as live, then stopped, never restarted
    pods = kube.core.list_namespaced_pod(
        namespace, label_selector=f"{naming.LABEL_RELEASE}=jobs"
    ).items
    roles = {p.metadata.name: p.metadata.labels.get(naming.LABEL_ROLE) for p in pods}
    assert sorted(roles.values()) == ["draining", "draining", "live", "live"], roles
    assert all(c.restart_count == 0 for p in pods for c in p.status.container_statuses or [])


@pytest.mark.usefixtures("operator")
def test_an_undo_gives_the_queue_back_to_the_warm_worker_and_an_abort_changes_nothing(
    releases: Releases, redis: Redis, queue: str
) -> None:
    releases.apply(worker("jobs", "v1", queue, redis))
    releases.wait_phase("jobs", "Healthy", liveRevision=1, timeout=120)
    releases.apply(worker("jobs", "v2", queue, redis))
    releases.wait_phase("jobs", "Healthy", liveRevision=2, timeout=120)
    with Publisher(redis, queue) as publisher:
        wait_for(
            lambda: any(d.version == "v2" for d in redis.done(queue)), timeout=30,
            what="v2 consuming",
        )  # fmt: skip
        releases.annotate("jobs", naming.COMMAND_UNDO, "")
        releases.wait_phase("jobs", "Degraded", liveRevision=1, timeout=60)  # the undo holds
        since = len(redis.done(queue))
        wait_for(
            lambda: any(d.version == "v1" for d in redis.done(queue)[since:]), timeout=30,
            what="v1 consuming again",
        )  # fmt: skip
        # a v3 that never becomes ready: it never takes a message, and its abort changes
        # nothing for v1
        releases.apply(worker("jobs", "v3", queue, redis, FAIL_READINESS="true"))
        wait_for(
            lambda: releases.status("jobs").get("candidateRevision") is not None, timeout=30,
            what="v3 in flight",
        )  # fmt: skip
        releases.annotate("jobs", naming.COMMAND_ABORT)
        releases.wait_phase("jobs", "Aborted", liveRevision=1, timeout=60)
        time.sleep(1)
        publisher.stop()
    done = drained(redis, queue, publisher.sent)
    exactly_once(done, publisher.sent)
    only_live_consumed(done)
    assert not any(d.version == "v3" for d in done)
    assert done[-1].version == "v1"


def start_operator(namespace: str, log: Path) -> subprocess.Popen[bytes]:
    """`greenlight run -n NAMESPACE` as a process of its own (so that it can be killed -9)."""
    command = [str(Path(sys.executable).parent / "greenlight"), "run", "-n", namespace]
    with log.open("ab") as out:
        return subprocess.Popen(command, env=dict(os.environ), stdout=out, stderr=out)


def test_an_operator_killed_mid_handover_loses_no_message_and_finishes_it(
    crd: None, releases: Releases, redis: Redis, queue: str, namespace: str, tmp_path: Path
) -> None:
    """kill -9 while the old worker drains and the new one waits: nothing changes while no
    operator runs (nobody consumes), and the next one finishes the handover."""
    log = tmp_path / "operator.log"
    handover = {"policy": "handover", "timeoutSeconds": 8}
    proc = start_operator(namespace, log)
    try:
        releases.apply(worker("jobs", "v1", queue, redis, handover))
        releases.wait_phase("jobs", "Healthy", liveRevision=1, timeout=120)
        with Publisher(redis, queue) as publisher:
            releases.apply(worker("jobs", "v2", queue, redis, handover))
            wait_for(
                lambda: releases.status("jobs").get("candidateHandoverSince"), 120,
                "the handover under way",
            )  # fmt: skip
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            killed = time.monotonic()

            def quiet() -> int | None:  # v1's role file says draining: it stopped consuming
                before = len(redis.done(queue))
                time.sleep(1)
                return before if len(redis.done(queue)) == before else None

            consumed = wait_for(quiet, 15, "v1 to stop consuming")
            time.sleep(3)  # no operator: the roles stay as they were (v1 draining, v2 waiting)
            late = redis.done(queue)[consumed:]
            assert late == [], "a worker consumed while the handover waited"
            proc = start_operator(namespace, log)
            releases.wait_phase("jobs", "Healthy", liveRevision=2, timeout=120)
            took = time.monotonic() - killed
            since = len(redis.done(queue))
            wait_for(
                lambda: any(d.version == "v2" for d in redis.done(queue)[since:]), timeout=30,
                what="v2 consuming",
            )  # fmt: skip
            publisher.stop()
        done = drained(redis, queue, publisher.sent)
        exactly_once(done, publisher.sent)
        only_live_consumed(done)
        report(f"kill -9 mid-handover: v2 live {took:.1f} s after the kill; 0 lost, 0 twice")
    finally:
        proc.kill()
        proc.wait(timeout=10)
