"""Leader election (kube/leader.py) on an in-memory Lease, on the event loop's fake clock (every
Elector here times by the loop, so the durations pass without waiting): one leader at a time, a
cut-off leader stops before another takes over, a standby takes an expired Lease at the moment
it expires (timed by its own clock from when it saw the last renewal, not by the holder's
renewTime, and not at its next poll), a released Lease is taken at once, the Leadership glue
starts and stops the work queue and the phase gauges."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Hashable
from typing import Any

import pytest

from greenlight import metrics
from greenlight.kube import leader, workqueue
from greenlight.kube.settings import Settings

DURATION, DEADLINE, PERIOD = 0.6, 0.4, 0.1
WRITTEN = 1.0
"""The leaseDurationSeconds a holder writes (whole seconds, at least 1): a standby waits that."""


class Store:
    """One Lease on a pretend API server: optimistic concurrency by resourceVersion, and
    watches (a queue per watcher, fed on every write)."""

    def __init__(self) -> None:
        self.spec: dict[str, Any] | None = None
        self.rv = 0
        self.cut_off: set[str] = set()
        """Identities whose requests hang (a partitioned replica)."""
        self.watchers: list[asyncio.Queue[tuple[dict[str, Any], str] | None]] = []
        self.writes: list[tuple[float, dict[str, Any]]] = []
        """Every write with the time it landed (the event loop's clock)."""

    def write(self, spec: dict[str, Any]) -> str:
        self.spec, self.rv = dict(spec), self.rv + 1
        self.writes.append((asyncio.get_running_loop().time(), dict(spec)))
        for q in self.watchers:
            q.put_nowait((dict(spec), str(self.rv)))
        return str(self.rv)


class FakeLeases:
    def __init__(self, store: Store, identity: str, watch: bool = True) -> None:
        self.store, self.identity, self.watches = store, identity, watch

    async def _reach(self) -> None:
        await asyncio.sleep(0.001)
        if self.identity in self.store.cut_off:
            await asyncio.Event().wait()  # hangs until the caller gives up

    async def get(self) -> tuple[dict[str, Any], str] | None:
        await self._reach()
        s = self.store
        return None if s.spec is None else (dict(s.spec), str(s.rv))

    async def create(self, spec: dict[str, Any]) -> str:
        await self._reach()
        if self.store.spec is not None:
            raise leader.Conflict("exists")
        return self.store.write(spec)

    async def replace(self, spec: dict[str, Any], resource_version: str) -> str:
        await self._reach()
        if resource_version != str(self.store.rv):
            raise leader.Conflict("changed")
        return self.store.write(spec)

    async def watch(self) -> AsyncIterator[tuple[dict[str, Any], str] | None]:
        """The Lease as it is, then every write; without watches (`watch=False`: a stalled or
        refused watch), it fails at once, every time."""
        await self._reach()
        if not self.watches:
            raise RuntimeError("watch refused")
        q: asyncio.Queue[tuple[dict[str, Any], str] | None] = asyncio.Queue()
        self.store.watchers.append(q)
        try:
            s = self.store
            yield None if s.spec is None else (dict(s.spec), str(s.rv))
            while True:
                found = await q.get()
                await self._reach()
                yield found
        finally:
            self.store.watchers.remove(q)


def loop_clock() -> Callable[[], float]:
    """The running loop's clock, which looptime fakes (time.monotonic would not move)."""
    return asyncio.get_running_loop().time


class Replica:
    def __init__(
        self,
        store: Store,
        name: str,
        log: list[tuple[float, str, str]],
        period: float = PERIOD,
        watch: bool = True,
    ) -> None:
        self.name, self.log = name, log
        leases = FakeLeases(store, name, watch)
        self.elector = leader.Elector(
            leases, name, self._started, self._stopped, DURATION, DEADLINE, period, loop_clock()
        )
        self.task = asyncio.create_task(self.elector.run())

    async def _started(self) -> None:
        self.log.append((asyncio.get_running_loop().time(), self.name, "start"))

    async def _stopped(self) -> None:
        self.log.append((asyncio.get_running_loop().time(), self.name, "stop"))

    async def crash(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def until(predicate: Any) -> None:
    """Poll the replicas' state (their flags have no event to wait on) for up to 5 s."""
    async with asyncio.timeout(5):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def leaders(replicas: list[Replica]) -> list[str]:
    return [r.name for r in replicas if r.elector.leading]


async def test_one_leader_and_a_standby_takes_over_after_the_lease_duration() -> None:
    store, log = Store(), []
    a = Replica(store, "a", log)
    await until(lambda: a.elector.leading)
    b = Replica(store, "b", log)
    await asyncio.sleep(3 * DURATION)  # b watches a renew: it never takes the Lease
    assert leaders([a, b]) == ["a"]
    store.cut_off.add("a")  # a dies silently: no renewal, no release
    await a.crash()
    died = asyncio.get_running_loop().time()
    await until(lambda: b.elector.leading)
    took = next(t for t, who, what in log if (who, what) == ("b", "start"))
    assert took - died >= DURATION - 2 * PERIOD, "not before the Lease could have expired"
    assert store.spec is not None and store.spec["holderIdentity"] == "b"
    assert store.spec["leaseTransitions"] == 1
    await b.crash()


async def test_a_leader_cut_off_stops_acting_before_another_takes_the_lease() -> None:
    store, log = Store(), []
    a = Replica(store, "a", log)
    await until(lambda: a.elector.leading)
    b = Replica(store, "b", log)
    await asyncio.sleep(2 * PERIOD)
    store.cut_off.add("a")  # its renewals hang (a partition): it must give up by itself
    await until(lambda: b.elector.leading)
    events = [(who, what) for _, who, what in sorted(log)]
    assert events == [("a", "start"), ("a", "stop"), ("b", "start")], events
    stopped = next(t for t, who, what in log if (who, what) == ("a", "stop"))
    started = next(t for t, who, what in log if (who, what) == ("b", "start"))
    assert started - stopped >= DURATION - DEADLINE - 2 * PERIOD, (stopped, started)
    assert not a.elector.leading
    await a.crash()
    await b.crash()


def renewals(store: Store, holder: str) -> list[float]:
    """When each write naming `holder` landed."""
    return [t for t, spec in store.writes if spec.get("holderIdentity") == holder]


async def test_a_standby_takes_the_lease_the_moment_it_expires_not_at_its_next_poll() -> None:
    """The standby times the last renewal when its watch delivers it and tries exactly
    `lease_duration` later: never sooner (the guarantee), and not up to two retry periods later
    as a poll every period would (one to see the renewal, one to see the expiry)."""
    period = 0.3  # not a divisor of the 1 s written: a poll would see the expiry late
    store, log = Store(), []
    a = Replica(store, "a", log, period)
    await until(lambda: a.elector.leading)
    await asyncio.sleep(period / 2)  # b's polls would fall between a's renewals
    b = Replica(store, "b", log, period)
    await asyncio.sleep(3 * period)
    store.cut_off.add("a")  # a dies silently: no renewal, no release
    await a.crash()
    await until(lambda: b.elector.leading)
    last = renewals(store, "a")[-1]
    took = renewals(store, "b")[0]
    assert WRITTEN <= took - last < WRITTEN + 0.1, took - last
    await b.crash()


async def test_without_a_watch_the_standby_still_polls_every_retry_period() -> None:
    """A refused or broken watch costs speed, not safety: the reads of each try time it."""
    store, log = Store(), []
    a = Replica(store, "a", log)
    await until(lambda: a.elector.leading)
    b = Replica(store, "b", log, watch=False)
    await asyncio.sleep(3 * DURATION)
    assert leaders([a, b]) == ["a"]
    store.cut_off.add("a")
    await a.crash()
    await until(lambda: b.elector.leading)
    waited = renewals(store, "b")[0] - renewals(store, "a")[-1]
    assert WRITTEN <= waited <= WRITTEN + 2 * PERIOD + 0.1, waited
    await b.crash()


@pytest.mark.parametrize(
    "renew_time", ["2001-01-01T00:00:00.000000Z", "2999-01-01T00:00:00.000000Z"]
)
async def test_the_expiry_is_timed_by_the_standbys_clock_not_the_holders_renew_time(
    renew_time: str,
) -> None:
    """A holder whose clock is far behind (or ahead) wrote renewTime: the standby ignores it and
    waits the holder's leaseDurationSeconds from when it first saw that record."""
    store, log = Store(), []
    store.spec = {"holderIdentity": "other", "leaseDurationSeconds": 1, "renewTime": renew_time}
    started = asyncio.get_running_loop().time()
    b = Replica(store, "b", log)
    await until(lambda: b.elector.leading)
    waited = renewals(store, "b")[0] - started
    assert 1.0 <= waited < 1.0 + 0.1, waited
    await b.crash()


async def test_a_released_lease_is_taken_at_once() -> None:
    """A clean shutdown (SIGTERM) releases the Lease; the standby's watch sees it: no wait for
    the lease duration, nor for its next poll."""
    period = 0.3
    store, log = Store(), []
    a = Replica(store, "a", log, period)
    await until(lambda: a.elector.leading)
    b = Replica(store, "b", log, period)
    await asyncio.sleep(2 * period)
    await a.crash()  # a clean shutdown: stop, then release
    await a.elector.release()
    released = asyncio.get_running_loop().time()
    assert store.spec is not None and store.spec["holderIdentity"] == ""
    await until(lambda: b.elector.leading)
    took = next(t for t, who, what in log if (who, what) == ("b", "start"))
    assert took - released < 0.1, "no wait for the lease duration or a poll after a release"
    await b.crash()


async def test_a_standby_cancelled_as_the_lease_changes_stops() -> None:
    """Cancelled in the very step in which a Lease change wakes it, a standby still stops.
    (With Python 3.11's `asyncio.wait_for` the cancellation was swallowed and the elector
    looped on: a shutdown hung, and this suite once did too.)"""
    store, log = Store(), []
    a = Replica(store, "a", log)
    await until(lambda: a.elector.leading)
    b = Replica(store, "b", log)
    changed = b.elector._changed
    await until(lambda: changed._waiters)  # type: ignore[attr-defined]  # b waits for a change
    changed.set()
    b.task.cancel()
    async with asyncio.timeout(2):
        await asyncio.gather(b.task, return_exceptions=True)
    assert b.task.cancelled()
    await a.crash()


async def test_candidates_racing_for_a_new_lease_elect_one() -> None:
    store, log = Store(), []
    replicas = [Replica(store, name, log) for name in "abcd"]
    await until(lambda: any(r.elector.leading for r in replicas))
    await asyncio.sleep(3 * DURATION)
    assert len(leaders(replicas)) == 1
    assert [what for _, _, what in log] == ["start"]
    for r in replicas:
        await r.crash()


def test_durations_must_nest() -> None:
    with pytest.raises(ValueError):
        leader.Elector(FakeLeases(Store(), "a"), "a", None, None, 10, 10, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Settings(lease_duration=15, renew_deadline=10, retry_period=10)


def phases(namespace: str) -> list[tuple[str, str]]:
    return [
        (sample.labels["name"], sample.labels["phase"])
        for family in metrics.RELEASE_PHASE.collect()
        for sample in family.samples
        if sample.labels["namespace"] == namespace
    ]


def leading_gauge() -> float:
    return float(metrics.LEADER.collect()[0].samples[0].value)


async def test_leadership_runs_the_queue_only_while_leading() -> None:
    """The standby's events queue keys without a worker; on taking the Lease every known key
    is queued and served; on losing it the workers stop, and the phase gauges its reconciles
    set are dropped (a stale Degraded would keep an alert firing); greenlight_leader says
    which replica leads."""
    seen: list[Hashable] = []

    async def handler(key: Hashable) -> None:
        seen.append(key)
        metrics.set_phase("leader-test", str(key[1]), "Degraded")  # type: ignore[index]

    queue = workqueue.WorkQueue(handler)
    store = Store()
    store.spec = {"holderIdentity": "other", "leaseDurationSeconds": 1, "renewTime": "x"}
    settings = Settings(lease_duration=DURATION, renew_deadline=DEADLINE, retry_period=PERIOD)
    lease = leader.Lease("ns", "greenlight", "me")
    known = lambda: [("ns", "a"), ("ns", "b")]  # noqa: E731
    ship = leader.Leadership(FakeLeases(store, "me"), lease, settings, queue, known)
    ship.elector.clock = loop_clock()  # its task has not run yet
    queue.add(("ns", "b"), workqueue.Priority.URGENT)  # an event while standing by
    await asyncio.sleep(0.2)
    assert seen == [], "a standby reconciles nothing"
    assert leading_gauge() == 0
    await until(lambda: len(seen) == 2)  # "other" never renews: after its 1 s, ours
    assert seen == [("ns", "b"), ("ns", "a")], "the event's lane first, then the catch-up"
    assert leading_gauge() == 1
    assert sorted(phases("leader-test")) == [("a", "Degraded"), ("b", "Degraded")]
    store.cut_off.add("me")
    await until(lambda: not ship.elector.leading)
    assert phases("leader-test") == [], "a replica that lost the Lease exports no phase"
    assert leading_gauge() == 0
    queue.add(("ns", "c"))
    await asyncio.sleep(0.1)
    assert ("ns", "c") not in seen, "no worker after the Lease is lost"
    await ship.close()
