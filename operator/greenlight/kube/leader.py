"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics.

Every replica runs an `Elector`. A candidate may take the Lease when it is free, or when the
holder's record has not changed for `lease_duration` by the candidate's own clock (it never
compares its clock with the holder's: like client-go it times how long it has *observed* the same
record). Unlike client-go, which sees the record only when it polls (every `retry_period`: the
last renewal is then timed up to one period late and the expiry acted on up to one period late),
the candidate also watches the Lease: it times a renewal when the watch delivers it and tries
at the very moment the record it saw expires (and at least every `retry_period`, a read, in case
the watch stalls). A failover after a leader's crash is then `lease_duration` after its last
renewal, i.e. `lease_duration - retry_period` to `lease_duration` after the crash, plus one
request. The leader renews every `retry_period`; when no renewal has succeeded for
`renew_deadline` (each attempt bounded by what is left of it) it stops acting (`on_stopped`: the
work queue's workers) and becomes a candidate again. As `renew_deadline < lease_duration`, a
leader cut off from the API server stops before any other replica can take the Lease: the others
wait `lease_duration` from the moment *they* saw its last renewal, which is after the leader sent
it, and the leader counts `renew_deadline` from the moment it sent it. A clean shutdown
(SIGTERM: client-go's ReleaseOnCancel) stops the workers, then releases the Lease (holder
cleared): the standby's watch sees it and takes over at once instead of after `lease_duration`.

Why our own loop and not kopf's peering: see docs/design.md (The shell: Two replicas).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable
from typing import Any, Protocol

from greenlight import metrics
from greenlight.kube import workqueue
from greenlight.kube.settings import Settings

log = logging.getLogger("greenlight.leader")


class Conflict(Exception):
    """The Lease changed under us (409) or was created by another (409 on create)."""


class Leases(Protocol):
    """The calls the elector makes (kube.leader.LeaseApi over the API server; a fake in the unit
    tests). `get` returns the Lease's spec as a dict and its resourceVersion, or None; `watch`
    yields the same for every change from its start (the Lease as it is first), until the
    connection ends."""

    async def get(self) -> tuple[dict[str, Any], str] | None: ...
    async def create(self, spec: dict[str, Any]) -> str: ...
    async def replace(self, spec: dict[str, Any], resource_version: str) -> str: ...
    def watch(self) -> AsyncIterator[tuple[dict[str, Any], str] | None]: ...


_MARGIN = 0.001
"""Seconds past the computed expiry a candidate tries at (a timer may fire a hair early)."""


def _now() -> str:
    return _micro_time(datetime.datetime.now(datetime.UTC))


def _micro_time(t: datetime.datetime) -> str:
    """A MicroTime as the API server writes it (always six fractional digits)."""
    return t.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclasses.dataclass(frozen=True)
class _Seen:
    """The Lease as this replica last saw it change."""

    version: str
    """Its resourceVersion ("" when there is no Lease)."""
    at: float
    """When we first saw this version, by our own clock (never the holder's renewTime)."""
    holder: str
    duration: float
    """The holder's leaseDurationSeconds (a released Lease says 1 s, with no holder)."""


class Elector:
    def __init__(
        self,
        leases: Leases,
        identity: str,
        on_started: Callable[[], Awaitable[None]],
        on_stopped: Callable[[], Awaitable[None]],
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not lease_duration > renew_deadline > retry_period > 0:
            raise ValueError("need lease_duration > renew_deadline > retry_period > 0")
        self.leases, self.identity = leases, identity
        self.on_started, self.on_stopped = on_started, on_stopped
        self.lease_duration, self.renew_deadline = lease_duration, renew_deadline
        self.retry_period, self.clock = retry_period, clock
        self.leading = False
        self._names = {"replica": identity}
        """Log extras: these lines are about this replica, not a Release."""
        self._seen: _Seen | None = None
        self._changed = asyncio.Event()
        """Set whenever `_seen` changes (a watch event or one of our own reads and writes)."""

    async def run(self) -> None:
        """Forever: wait for the Lease, lead until a renewal is overdue, stop, and again."""
        follow = asyncio.create_task(self._follow())
        try:
            while True:
                while True:
                    renewed = self.clock()
                    if await self._attempt(self.retry_period):
                        break
                    await self._next_try()
                self.leading = True
                log.info("%s leads (Lease acquired)", self.identity, extra=self._names)
                try:
                    await self.on_started()
                    await self._renew(renewed)
                finally:
                    self.leading = False
                    await self.on_stopped()  # also on cancellation: never act after we stop
                log.warning("%s stopped leading: no renewal for %.1fs", self.identity,
                            self.renew_deadline, extra=self._names)  # fmt: skip
        finally:
            follow.cancel()
            await asyncio.gather(follow, return_exceptions=True)

    def expires_in(self) -> float | None:
        """Seconds until the Lease as last seen may be taken (<= 0: now; None: not seen yet).
        Free or ours: now. Held by another: `leaseDurationSeconds` after we first saw its
        current version, by our clock."""
        seen = self._seen
        if seen is None:
            return None
        if not seen.holder or seen.holder == self.identity:
            return 0.0
        return seen.at + seen.duration - self.clock()

    async def _next_try(self) -> None:
        """A candidate's wait before its next try: until the Lease as seen expires (to the
        moment: a watch keeps `_seen` current, so the last renewal is timed when it lands, not
        at our next poll), and at most `retry_period` (client-go's poll: a read also catches a
        renewal a stalled watch missed). A change seen meanwhile recomputes the expiry."""
        deadline = self.clock() + self.retry_period
        while True:
            self._changed.clear()
            left = self.expires_in()
            if left is not None and left <= 0:
                return
            wait = deadline - self.clock()
            if left is not None:
                wait = min(wait, left + _MARGIN)
            if wait <= 0:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):  # (not wait_for: see _attempt)
                    await self._changed.wait()

    def _see(self, found: tuple[dict[str, Any], str] | None) -> None:
        spec: dict[str, Any] = {}
        version = ""
        if found is not None:
            spec, version = found
        if self._seen is not None and self._seen.version == version:
            return
        holder = str(spec.get("holderIdentity") or "")
        # the holder's own lease duration, as client-go (a released Lease says 1 s)
        duration = float(str(spec.get("leaseDurationSeconds") or self.lease_duration))
        self._seen = _Seen(version, self.clock(), holder, duration)
        self._changed.set()

    async def _follow(self) -> None:
        """Keep `_seen` current from a watch of the Lease (restarted after any failure)."""
        while True:
            try:
                async for found in self.leases.watch():
                    self._see(found)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the polls in _attempt still see the Lease
                log.debug("%s: Lease watch failed: %s", self.identity, e, extra=self._names)
            await asyncio.sleep(self.retry_period)

    async def _renew(self, renewed: float) -> None:
        """Returns once `renew_deadline` has passed since the last renewal that succeeded."""
        while True:
            await asyncio.sleep(self.retry_period)
            while True:
                sent = self.clock()
                left = renewed + self.renew_deadline - sent
                if left <= 0:
                    return
                if await self._attempt(left):
                    renewed = sent
                    break
                left = renewed + self.renew_deadline - self.clock()
                await asyncio.sleep(min(self.retry_period, max(0.0, left)))

    async def _attempt(self, seconds: float) -> bool:
        """One try, given up after `seconds` (what is left of the renew deadline).

        Timeouts here are `asyncio.timeout`, never Python 3.11's `asyncio.wait_for`: that one
        swallows a cancellation that lands as the awaited call completes (CPython gh-86296),
        and the elector, a loop, would then never stop: a shutdown hung on it."""
        try:
            async with asyncio.timeout(seconds):
                return await self._try_acquire_or_renew()
        except (TimeoutError, Conflict):
            return False
        except Exception as e:  # the API server unreachable, a 5xx, a 403: try again later
            log.warning("%s: Lease not renewed: %s", self.identity, e, extra=self._names)
            return False

    async def _try_acquire_or_renew(self) -> bool:
        now = _now()
        found = await self.leases.get()
        self._see(found)
        if found is None:
            spec = {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": max(1, round(self.lease_duration)),
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            }
            self._see((spec, await self.leases.create(spec)))
            return True
        spec, rv = found
        left = self.expires_in()
        if left is not None and left > 0:
            return False  # held, and renewed within its duration of our watching
        mine = spec.get("holderIdentity") == self.identity
        new = {
            **spec,
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.lease_duration)),
            "renewTime": now,
        }
        if not mine:
            new["acquireTime"] = now
            new["leaseTransitions"] = int(str(spec.get("leaseTransitions") or 0)) + 1
        self._see((new, await self.leases.replace(new, rv)))
        return True

    async def release(self) -> None:
        """On a clean shutdown, after `on_stopped`: clear the holder so a standby need not wait
        out `lease_duration`. Best effort (the Lease expires anyway)."""
        try:
            async with asyncio.timeout(self.retry_period):
                found = await self.leases.get()
            if found is None or found[0].get("holderIdentity") != self.identity:
                return
            spec = {**found[0], "holderIdentity": "", "leaseDurationSeconds": 1,
                    "renewTime": _now()}  # fmt: skip
            async with asyncio.timeout(self.retry_period):
                await self.leases.replace(spec, found[1])
            log.info("%s released the Lease", self.identity, extra=self._names)
        except Exception as e:
            log.warning("%s: Lease not released: %s", self.identity, e, extra=self._names)


class LeaseApi:
    """`Leases` over the API server (kube/rest.py CoordinationV1)."""

    def __init__(self, api_client: Any, namespace: str, name: str) -> None:
        from greenlight.kube import rest

        self.api = rest.CoordinationV1(api_client)
        self.namespace, self.name = namespace, name

    async def get(self) -> tuple[dict[str, Any], str] | None:
        from kubernetes.aio.client.exceptions import ApiException

        try:
            lease = await self.api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        spec = {k: v for k, v in (lease.get("spec") or {}).items() if v is not None}
        return spec, str(lease["metadata"]["resourceVersion"])

    async def create(self, spec: dict[str, Any]) -> str:
        body = {"metadata": {"name": self.name, "namespace": self.namespace}, "spec": spec}
        return await self._write(self.api.create_namespaced_lease(self.namespace, body))

    async def replace(self, spec: dict[str, Any], resource_version: str) -> str:
        body = {
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "resourceVersion": resource_version,
            },
            "spec": spec,
        }
        return await self._write(self.api.replace_namespaced_lease(self.name, self.namespace, body))

    async def watch(self) -> AsyncIterator[tuple[dict[str, Any], str] | None]:
        """One watch connection (the server ends it after a minute; the elector reconnects),
        read as plain JSON lines: the Lease as it is, then each change (None: deleted)."""
        from kubernetes.aio.client.exceptions import ApiException

        response = await self.api.list_namespaced_lease_without_preload_content(
            self.namespace,
            field_selector=f"metadata.name={self.name}",
            watch=True,
            timeout_seconds=60,
        )
        try:
            while line := await response.content.readline():
                event = json.loads(line)
                lease = event.get("object") or {}
                if event.get("type") == "ERROR":
                    raise ApiException(status=lease.get("code"), reason=lease.get("message"))
                if event.get("type") == "DELETED":
                    yield None
                elif event.get("type") in ("ADDED", "MODIFIED"):
                    spec = {k: v for k, v in (lease.get("spec") or {}).items() if v is not None}
                    yield spec, str(lease["metadata"]["resourceVersion"])
        finally:
            response.close()

    async def _write(self, call: Awaitable[Any]) -> str:
        from kubernetes.aio.client.exceptions import ApiException

        try:
            lease = await call
        except ApiException as e:
            if e.status in (409, 422):  # changed under us / created by another meanwhile
                raise Conflict(str(e.reason)) from e
            raise
        return str(lease["metadata"]["resourceVersion"])


@dataclasses.dataclass(frozen=True)
class Lease:
    """Where the replicas meet (`greenlight run --lease-namespace/--lease-name`) and who this
    replica is (POD_ID: the pod's name in the chart; else host name and process id)."""

    namespace: str
    name: str
    identity: str


class Leadership:
    """The work queue runs only while this replica holds the Lease. The informers watch either
    way, so a standby's indexes stay warm and its events still queue keys (without workers);
    on taking the Lease it queues every Release it knows (BULK: anything queued by an event
    keeps its own lane) and starts the workers; on losing it, it stops them and drops the
    per-Release phase gauges it exported (the next leader exports its own; a stale copy here
    would keep an alert firing). `greenlight_leader` says which replica leads."""

    def __init__(
        self,
        leases: Leases,
        lease: Lease,
        settings: Settings,
        queue: workqueue.WorkQueue,
        known: Callable[[], Iterable[Hashable]],
    ) -> None:
        self.queue, self.known, self.workers = queue, known, settings.workers
        self.elector = Elector(
            leases,
            lease.identity,
            self._started,
            self._stopped,
            settings.lease_duration,
            settings.renew_deadline,
            settings.retry_period,
        )
        metrics.LEADER.set(0)
        self.task = asyncio.create_task(self.elector.run())

    async def _started(self) -> None:
        metrics.LEADER.set(1)
        for key in list(self.known()):
            self.queue.add(key, workqueue.Priority.BULK)
        self.queue.start(self.workers)

    async def _stopped(self) -> None:
        await self.queue.stop()  # no reconcile runs past here: none sets a phase again
        metrics.forget_phases()
        metrics.QUEUE_DEPTH.set(0)  # the queue dropped what waited
        metrics.LEADER.set(0)

    async def close(self) -> None:
        """Stop acting, then release the Lease for a standby to take at once."""
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.elector.release()
