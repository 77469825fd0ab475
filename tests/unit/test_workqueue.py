"""The work queue with a real event loop and short time scales (as kopf tests its own queueing):
coalescing, a re-run for a key triggered mid-reconcile, timers, backoff.

Time bounds: asyncio never runs a timer early (beyond its clock resolution), so lower bounds are
exact; upper bounds are loose, only tight enough to tell the right delay from the wrong one.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Hashable

import aiohttp
import prometheus_client
import pytest

from greenlight.kube import workqueue
from greenlight.kube.cluster import ApplyError
from greenlight.kube.workqueue import Priority, WorkQueue, unreachable

KEY = ("ns", "web")
EARLY = 0.005  # asyncio may fire a timer up to its clock resolution early


class Recorder:
    """A handler that records (loop time, key) per call; `gate` holds calls while it is clear;
    `fail` makes the next calls raise `error()`."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, Hashable]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()
        self.fail = 0
        self.error: Callable[[], Exception] = lambda: RuntimeError("refused")
        self.changed = asyncio.Condition()

    async def __call__(self, key: Hashable) -> None:
        self.entered.set()
        await self.gate.wait()
        async with self.changed:
            self.calls.append((asyncio.get_running_loop().time(), key))
            self.changed.notify_all()
        if self.fail:
            self.fail -= 1
            raise self.error()

    async def until(self, n: int) -> None:
        async with asyncio.timeout(5), self.changed:
            await self.changed.wait_for(lambda: len(self.calls) >= n)

    def gaps(self) -> list[float]:
        times = [t for t, _ in self.calls]
        return [b - a for a, b in itertools.pairwise(times)]


async def settle(seconds: float = 0.05) -> None:
    """Let the workers run whatever is queued (nothing below waits on it being this long)."""
    await asyncio.sleep(seconds)


@pytest.fixture
async def rec() -> Recorder:
    return Recorder()


async def started(rec: Recorder, workers: int = 2, **kw: float) -> WorkQueue:
    q = WorkQueue(rec, **kw)
    q.start(workers)
    return q


async def test_a_key_added_while_waiting_is_coalesced(rec: Recorder) -> None:
    q = WorkQueue(rec)
    for _ in range(5):
        q.add(KEY)
    q.add(("ns", "other"))
    assert len(q) == 2
    q.start(2)
    await rec.until(2)
    await settle()
    await q.stop()
    assert sorted(k for _, k in rec.calls) == [("ns", "other"), KEY]


async def test_a_key_added_while_reconciled_runs_once_more_after(rec: Recorder) -> None:
    q = await started(rec, workers=4)
    rec.gate.clear()
    q.add(KEY)
    await asyncio.wait_for(rec.entered.wait(), 5)
    for _ in range(3):  # triggered three times while its reconcile is in flight
        q.add(KEY)
    assert len(q) == 0, "a key being reconciled is not queued a second time (no parallel run)"
    rec.gate.set()
    await rec.until(2)
    await settle()
    await q.stop()
    assert [k for _, k in rec.calls] == [KEY, KEY]


async def test_one_key_is_never_reconciled_twice_at_once(rec: Recorder) -> None:
    running = 0
    overlap = []

    async def slow(key: Hashable) -> None:
        nonlocal running
        running += 1
        overlap.append(running)
        await asyncio.sleep(0.01)
        running -= 1
        await rec(key)

    q = WorkQueue(slow)
    q.start(4)
    for _ in range(10):
        q.add(KEY)
        await asyncio.sleep(0.003)
    await rec.until(2)
    await settle()
    await q.stop()
    assert max(overlap) == 1


async def test_the_earliest_timer_wins(rec: Recorder) -> None:
    q = await started(rec)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    q.add_after(KEY, 5.0)
    q.add_after(KEY, 0.05)  # earlier: replaces the 5 s timer
    q.add_after(KEY, 2.0)  # later: ignored
    await rec.until(1)
    fired = rec.calls[0][0] - t0
    await asyncio.sleep(0.1)
    await q.stop()
    assert 0.05 - EARLY <= fired < 1.0
    assert len(rec.calls) == 1, "the replaced timers never fire"


async def test_deployment_progress_is_one_bulk_reconcile_a_moment_later(
    rec: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pods coming up one by one make one reconcile (one status write of counts), not one per
    event; a reconcile for another reason before then reads the same progress and takes the
    timer's place."""
    monkeypatch.setattr(workqueue, "PROGRESS_SECONDS", 0.1)
    q = await started(rec)
    t0 = asyncio.get_running_loop().time()
    for _ in range(5):
        q.add_progress(KEY)
        await asyncio.sleep(0.01)
    assert len(q) == 0, "nothing queued yet"
    await rec.until(1)
    assert rec.calls[0][0] - t0 >= 0.1 - EARLY, "from the first event"
    other = ("ns", "other")
    q.add_progress(other)
    q.add(other, Priority.URGENT)  # (its own event: its reconcile reads the progress too)
    await rec.until(2)
    await asyncio.sleep(0.2)
    await q.stop()
    assert [k for _, k in rec.calls] == [KEY, other], "once each"


async def test_backoff_doubles_and_is_capped(rec: Recorder) -> None:
    q = await started(rec, retry_delay=0.1, max_backoff=0.25)
    assert [q.backoff(n) for n in range(1, 6)] == [0.1, 0.2, 0.25, 0.25, 0.25]
    rec.fail = 5
    q.add(KEY)
    await rec.until(6)  # the first call, five retries; the last succeeds
    await settle(0.3)
    await q.stop()
    gaps = rec.gaps()
    assert len(rec.calls) == 6, "no retry after the success"
    assert 0.1 - EARLY <= gaps[0] < 0.2
    assert 0.2 - EARLY <= gaps[1] < 0.4
    for gap in gaps[2:]:  # uncapped they would be 0.4, 0.8, 1.6
        assert 0.25 - EARLY <= gap < 0.4


def _caused(error: Exception, cause: Exception) -> Exception:
    error.__cause__ = cause
    return error


def test_unreachable_is_a_connection_that_failed_not_an_answer_or_a_timeout() -> None:
    refused = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("127.0.0.1", 1, True, None, None, None, None),
        ConnectionRefusedError(111, "Connection refused"),
    )
    for error in (
        refused,
        aiohttp.ServerDisconnectedError(),
        ConnectionResetError(),
        _caused(ApplyError("create Deployment web-1: Server disconnected"), refused),
        _caused(RuntimeError("reporting it failed too"), _caused(ApplyError("x"), refused)),
    ):
        assert unreachable(error), error
    for error in (
        ApplyError("create Deployment web-1: exceeded quota (403)"),
        aiohttp.ServerTimeoutError(),
        TimeoutError(),
        RuntimeError("refused"),
    ):
        assert not unreachable(error), error


async def test_an_unreachable_api_server_is_retried_without_backing_off(rec: Recorder) -> None:
    """Retried every retry_delay while it is unreachable, so the first retry after its return
    comes within retry_delay of it (doubling, a 5 s outage was retried 2 s after it ended)."""
    q = await started(rec, retry_delay=0.1, max_backoff=10)
    assert q.backoff(6, aiohttp.ServerDisconnectedError()) == 0.1
    rec.error = aiohttp.ServerDisconnectedError
    rec.fail = 5
    q.add(KEY)
    await rec.until(6)
    await q.stop()
    for gap in rec.gaps():  # doubling: 0.1, 0.2, 0.4, 0.8, 1.6
        assert 0.1 - EARLY <= gap < 0.2


async def test_a_success_resets_the_backoff(rec: Recorder) -> None:
    q = await started(rec, retry_delay=0.1, max_backoff=10)
    rec.fail = 2
    q.add(KEY)
    await rec.until(3)  # fail, retry 0.1 s later fails, retry 0.2 s later succeeds
    rec.fail = 1
    q.add(KEY)
    await rec.until(5)  # fails again: the retry comes after the first delay, not a doubled one
    await q.stop()
    assert 0.1 - EARLY <= rec.gaps()[3] < 0.2


async def test_a_failures_retry_is_replaced_by_a_success(rec: Recorder) -> None:
    q = await started(rec, retry_delay=0.5, max_backoff=10)
    rec.fail = 1
    q.add(KEY)
    await rec.until(1)  # failed: a retry is due in 0.5 s
    await settle(0.02)
    q.add(KEY)  # an event first: this reconcile succeeds and replaces the retry
    await rec.until(2)
    await asyncio.sleep(0.7)  # past the retry's due time
    await q.stop()
    assert len(rec.calls) == 2, rec.calls
    assert rec.gaps()[0] < 0.5


async def test_a_failing_key_does_not_hold_up_others(rec: Recorder) -> None:
    seen: list[Hashable] = []

    async def handler(key: Hashable) -> None:
        seen.append(key)
        if key == KEY:
            raise RuntimeError("refused")

    q = WorkQueue(handler, retry_delay=5, max_backoff=5)
    q.start(1)
    q.add(KEY)
    q.add(("ns", "b"))
    await settle()
    await q.stop()
    assert seen == [KEY, ("ns", "b")]


async def test_stop_cancels_timers_and_retries(rec: Recorder) -> None:
    q = await started(rec, retry_delay=0.05, max_backoff=0.05)
    rec.fail = 1
    q.add(KEY)
    q.add_after(("ns", "later"), 0.05)
    await rec.until(1)
    await q.stop()
    await asyncio.sleep(0.15)
    assert len(rec.calls) == 1


# Priorities: user intent and due decisions before bulk churn.

TRAFFIC, URGENT, BULK = Priority.TRAFFIC, Priority.URGENT, Priority.BULK


async def test_urgent_keys_are_served_before_bulk_ones_each_lane_in_order(rec: Recorder) -> None:
    q = WorkQueue(rec)
    for i in range(3):
        q.add(("bulk", i), BULK)
    q.add(("urgent", 0), URGENT)
    q.add(("bulk", 3), BULK)
    q.add(("urgent", 1), URGENT)
    assert (len(q), q.depth(URGENT), q.depth(BULK)) == (6, 2, 4)
    q.start(1)
    await rec.until(6)
    await q.stop()
    assert [k for _, k in rec.calls] == [
        ("urgent", 0), ("urgent", 1), ("bulk", 0), ("bulk", 1), ("bulk", 2), ("bulk", 3),
    ]  # fmt: skip


async def test_a_flip_or_undo_goes_ahead_of_a_storm_of_new_specs(rec: Recorder) -> None:
    """1,000 releases of a new image (URGENT: each creates Deployments) are waiting; an undo or
    a due flip (TRAFFIC) added after them is the next one served, then the specs in order."""
    q = WorkQueue(rec)
    q.start(1)
    rec.gate.clear()
    for i in range(1000):
        q.add(("spec", i), URGENT)
    await asyncio.wait_for(rec.entered.wait(), 5)  # the worker holds ("spec", 0)
    q.add(("ns", "undo"), TRAFFIC)
    q.add(("spec", 5), TRAFFIC)  # its candidate became ready: it moves up, once
    rec.gate.set()
    await rec.until(5)
    await q.stop()
    assert [k for _, k in rec.calls[:5]] == [
        ("spec", 0), ("ns", "undo"), ("spec", 5), ("spec", 1), ("spec", 2),
    ]  # fmt: skip


async def test_namespaces_take_turns_within_a_lane(rec: Recorder) -> None:
    """One team re-releases 1,000 apps (URGENT, namespace "storm"); another team's release
    added after them is served next, not a thousand reconciles later; within a namespace, first
    come first served."""
    q = WorkQueue(rec)
    q.start(1)
    rec.gate.clear()
    for i in range(1000):
        q.add(("storm", str(i)), URGENT)
    await asyncio.wait_for(rec.entered.wait(), 5)  # the worker holds ("storm", "0")
    q.add(("shop", "cart"), URGENT)
    q.add(("blog", "web"), URGENT)
    q.add(("shop", "pay"), URGENT)
    q.add(("group", "blog", "site"), URGENT)  # a group's key counts for its namespace
    rec.gate.set()
    await rec.until(8)
    await q.stop()
    assert [k for _, k in rec.calls[:8]] == [
        ("storm", "0"), ("storm", "1"), ("shop", "cart"), ("blog", "web"),
        ("storm", "2"), ("shop", "pay"), ("group", "blog", "site"), ("storm", "3"),
    ]  # fmt: skip


async def test_a_bulk_key_triggered_urgently_moves_ahead_and_still_runs_once(
    rec: Recorder,
) -> None:
    q = WorkQueue(rec)
    for i in range(3):
        q.add(("ns", str(i)), BULK)
    q.add(("ns", "2"), URGENT)  # e.g. its spec changed while its status churn waited
    q.add(("ns", "2"), BULK)  # a later status event: coalesced, it stays urgent
    q.add(("ns", "0"), BULK)
    assert len(q) == 3
    q.start(1)
    await rec.until(3)
    await settle()
    await q.stop()
    assert [k for _, k in rec.calls] == [("ns", "2"), ("ns", "0"), ("ns", "1")]


async def test_a_storm_never_delays_an_urgent_key_behind_it(rec: Recorder) -> None:
    """1,000 bulk keys queued; an urgent one added after them is the next one served."""
    q = WorkQueue(rec)
    q.start(2)
    rec.gate.clear()
    for i in range(1000):
        q.add(("storm", i), BULK)
    await asyncio.wait_for(rec.entered.wait(), 5)  # two workers hold two storm keys
    q.add(KEY, URGENT)
    rec.gate.set()
    await rec.until(3)
    await q.stop()
    assert KEY in [k for _, k in rec.calls[:3]]


async def test_a_rerun_after_a_trigger_mid_reconcile_takes_the_best_priority(
    rec: Recorder,
) -> None:
    q = WorkQueue(rec)
    q.start(1)
    rec.gate.clear()
    q.add(KEY, BULK)
    await asyncio.wait_for(rec.entered.wait(), 5)
    q.add(KEY, BULK)
    q.add(KEY, URGENT)  # triggered urgently while it runs
    q.add(KEY, BULK)
    for i in range(3):
        q.add(("storm", i), BULK)
    rec.gate.set()
    await rec.until(5)
    await q.stop()
    assert [k for _, k in rec.calls][:2] == [KEY, KEY], "the re-run goes ahead of the storm"
    assert len(rec.calls) == 5, "the mid-reconcile triggers coalesce into one re-run"


async def test_a_due_timer_is_urgent(rec: Recorder) -> None:
    q = WorkQueue(rec)
    for i in range(3):
        q.add(("storm", i), BULK)
    q.add_after(KEY, 0.0)
    await asyncio.sleep(0.01)  # the timer fires before any worker runs
    q.start(1)
    await rec.until(4)
    await q.stop()
    assert rec.calls[0][1] == KEY


async def test_a_retry_keeps_the_priority_it_ran_with(rec: Recorder) -> None:
    q = WorkQueue(rec, retry_delay=0.01, max_backoff=0.01)
    rec.fail = 1
    q.add(KEY, URGENT)
    q.start(1)
    await rec.until(1)
    rec.gate.clear()  # hold the worker while the retry comes due and the storm queues
    for i in range(3):
        q.add(("storm", i), BULK)
    await asyncio.sleep(0.05)
    rec.gate.set()
    await rec.until(5)
    await q.stop()
    order = [k for _, k in rec.calls]
    assert order[:3] == [KEY, ("storm", 0), KEY], order  # storm 0 was already in the worker


async def test_stop_then_start_again_serves_new_keys_only(rec: Recorder) -> None:
    """A leader that lost its lease stops its queue; in a new term it starts afresh."""
    q = WorkQueue(rec)
    q.add(("old", 1), BULK)
    q.add_after(("old", 2), 0.01)
    await q.stop()
    q.start(1)
    q.add(KEY, BULK)
    await rec.until(1)
    await asyncio.sleep(0.05)
    await q.stop()
    assert [k for _, k in rec.calls] == [KEY]


async def test_the_wait_counts_from_the_first_trigger_in_the_lane_that_served_it(
    rec: Recorder,
) -> None:
    """`greenlight_queue_wait_seconds{lane}`: a key waiting in BULK, then triggered for a flip,
    is one wait, observed in the traffic lane, as long as the key has waited since first."""

    def sample(suffix: str, lane: str) -> float:
        name = f"greenlight_queue_wait_seconds_{suffix}"
        return prometheus_client.REGISTRY.get_sample_value(name, {"lane": lane}) or 0.0

    before = {(s, lane): sample(s, lane) for s in ("count", "sum") for lane in ("traffic", "bulk")}
    q = WorkQueue(rec)
    q.add(KEY, BULK)
    await asyncio.sleep(0.05)
    q.add(KEY, TRAFFIC)
    q.start(1)
    await rec.until(1)
    await q.stop()
    assert sample("count", "traffic") - before[("count", "traffic")] == 1
    assert sample("count", "bulk") == before[("count", "bulk")], "not counted twice"
    assert sample("sum", "traffic") - before[("sum", "traffic")] >= 0.05 - EARLY
