"""Leader election (kube/leader.py) on an in-memory Lease, with a real event loop and short
durations: one leader at a time, a cut-off leader stops before another takes over, a released
Lease is taken at once, the Leadership glue starts and stops the work queue."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any

import pytest

from greenlight.kube import leader, workqueue
from greenlight.kube.settings import Settings

DURATION, DEADLINE, PERIOD = 0.6, 0.4, 0.1


class Store:
    """One Lease on a pretend API server: optimistic concurrency by resourceVersion."""

    def __init__(self) -> None:
        self.spec: dict[str, Any] | None = None
        self.rv = 0
        self.cut_off: set[str] = set()
        """Identities whose requests hang (a partitioned replica)."""


class FakeLeases:
    def __init__(self, store: Store, identity: str) -> None:
        self.store, self.identity = store, identity

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
        self.store.spec, self.store.rv = dict(spec), self.store.rv + 1
        return str(self.store.rv)

    async def replace(self, spec: dict[str, Any], resource_version: str) -> str:
        await self._reach()
        if resource_version != str(self.store.rv):
            raise leader.Conflict("changed")
        self.store.spec, self.store.rv = dict(spec), self.store.rv + 1
        return str(self.store.rv)


class Replica:
    def __init__(self, store: Store, name: str, log: list[tuple[float, str, str]]) -> None:
        self.name, self.log = name, log
        self.elector = leader.Elector(
            FakeLeases(store, name), name, self._started, self._stopped, DURATION, DEADLINE, PERIOD
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


async def test_a_released_lease_is_taken_at_the_next_try() -> None:
    store, log = Store(), []
    a = Replica(store, "a", log)
    await until(lambda: a.elector.leading)
    b = Replica(store, "b", log)
    await asyncio.sleep(2 * PERIOD)
    await a.crash()  # a clean shutdown: stop, then release
    await a.elector.release()
    released = asyncio.get_running_loop().time()
    await until(lambda: b.elector.leading)
    took = next(t for t, who, what in log if (who, what) == ("b", "start"))
    assert took - released < DURATION, "no wait for the lease duration after a release"
    await b.crash()


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


async def test_leadership_runs_the_queue_only_while_leading() -> None:
    """The standby's events queue keys without a worker; on taking the Lease every known key
    is queued and served; on losing it the workers stop."""
    seen: list[Hashable] = []

    async def handler(key: Hashable) -> None:
        seen.append(key)

    queue = workqueue.WorkQueue(handler)
    store = Store()
    store.spec = {"holderIdentity": "other", "leaseDurationSeconds": 1, "renewTime": "x"}
    settings = Settings(lease_duration=DURATION, renew_deadline=DEADLINE, retry_period=PERIOD)
    lease = leader.Lease("ns", "greenlight", "me")
    known = lambda: [("ns", "a"), ("ns", "b")]  # noqa: E731
    ship = leader.Leadership(FakeLeases(store, "me"), lease, settings, queue, known)
    queue.add(("ns", "b"), workqueue.Priority.URGENT)  # an event while standing by
    await asyncio.sleep(0.2)
    assert seen == [], "a standby reconciles nothing"
    await until(lambda: len(seen) == 2)  # "other" never renews: after its 1 s, ours
    assert seen == [("ns", "b"), ("ns", "a")], "the event's lane first, then the catch-up"
    store.cut_off.add("me")
    await until(lambda: not ship.elector.leading)
    queue.add(("ns", "c"))
    await asyncio.sleep(0.1)
    assert ("ns", "c") not in seen, "no worker after the Lease is lost"
    await ship.close()
