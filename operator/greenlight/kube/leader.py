"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics.

Every replica runs an `Elector`. A candidate tries to take the Lease every `retry_period`; it
may when the Lease is free, or when the holder's record has not changed for `lease_duration`
by the candidate's own clock (it never compares its clock with the holder's: like client-go it
times how long it has *observed* the same record). The leader renews every `retry_period`; when
no renewal has succeeded for `renew_deadline` (each attempt bounded by what is left of it) it
stops acting (`on_stopped`: the work queue's workers) and becomes a candidate again. As
`renew_deadline < lease_duration`, a leader cut off from the API server stops before any other
replica can take the Lease: the others wait `lease_duration` from the moment *they* saw its last
renewal, which is after the leader sent it, and the leader counts `renew_deadline` from the
moment it sent it. A clean shutdown releases the Lease (holder cleared) so a standby takes over
at its next try instead of after `lease_duration`.

Why our own loop and not kopf's peering: see docs/design.md (The shell: Two replicas).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, Protocol

from greenlight.kube import workqueue
from greenlight.kube.settings import Settings

log = logging.getLogger("greenlight.leader")


class Conflict(Exception):
    """The Lease changed under us (409) or was created by another (409 on create)."""


class Leases(Protocol):
    """The three calls the elector makes (kube.leader.LeaseApi over the API server; a fake in
    the unit tests). `get` returns the Lease's spec as a dict and its resourceVersion, or None."""

    async def get(self) -> tuple[dict[str, Any], str] | None: ...
    async def create(self, spec: dict[str, Any]) -> str: ...
    async def replace(self, spec: dict[str, Any], resource_version: str) -> str: ...


def _now() -> str:
    return _micro_time(datetime.datetime.now(datetime.UTC))


def _micro_time(t: datetime.datetime) -> str:
    """A MicroTime as the API server writes it (always six fractional digits)."""
    return t.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
        self._observed: tuple[str, float] | None = None
        """The resourceVersion of the Lease as we last saw it change, and when (our clock)."""

    async def run(self) -> None:
        """Forever: wait for the Lease, lead until a renewal is overdue, stop, and again."""
        while True:
            while True:
                renewed = self.clock()
                if await self._attempt(self.retry_period):
                    break
                await asyncio.sleep(self.retry_period)
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
        """One try, given up after `seconds` (what is left of the renew deadline)."""
        try:
            return await asyncio.wait_for(self._try_acquire_or_renew(), seconds)
        except (TimeoutError, Conflict):
            return False
        except Exception as e:  # the API server unreachable, a 5xx, a 403: try again later
            log.warning("%s: Lease not renewed: %s", self.identity, e, extra=self._names)
            return False

    async def _try_acquire_or_renew(self) -> bool:
        now = _now()
        found = await self.leases.get()
        if found is None:
            spec = {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": max(1, round(self.lease_duration)),
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            }
            self._observed = (await self.leases.create(spec), self.clock())
            return True
        spec, rv = found
        if self._observed is None or self._observed[0] != rv:
            self._observed = (rv, self.clock())
        holder = spec.get("holderIdentity") or ""
        mine = holder == self.identity
        # the holder's own lease duration, as client-go (a released Lease says 1 s)
        duration = float(str(spec.get("leaseDurationSeconds") or self.lease_duration))
        if holder and not mine and self._observed[1] + duration > self.clock():
            return False  # held, and renewed within its duration of our watching
        new = {
            **spec,
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.lease_duration)),
            "renewTime": now,
        }
        if not mine:
            new["acquireTime"] = now
            new["leaseTransitions"] = int(str(spec.get("leaseTransitions") or 0)) + 1
        self._observed = (await self.leases.replace(new, rv), self.clock())
        return True

    async def release(self) -> None:
        """On a clean shutdown, after `on_stopped`: clear the holder so a standby need not wait
        out `lease_duration`. Best effort (the Lease expires anyway)."""
        try:
            found = await asyncio.wait_for(self.leases.get(), self.retry_period)
            if found is None or found[0].get("holderIdentity") != self.identity:
                return
            spec = {**found[0], "holderIdentity": "", "leaseDurationSeconds": 1,
                    "renewTime": _now()}  # fmt: skip
            await asyncio.wait_for(self.leases.replace(spec, found[1]), self.retry_period)
            log.info("%s released the Lease", self.identity, extra=self._names)
        except Exception as e:
            log.warning("%s: Lease not released: %s", self.identity, e, extra=self._names)


class LeaseApi:
    """`Leases` over the API server (kubernetes.aio CoordinationV1Api)."""

    def __init__(self, api_client: Any, namespace: str, name: str) -> None:
        from kubernetes.aio import client

        self.api: Any = client.CoordinationV1Api(api_client)  # plain dict bodies
        self.namespace, self.name = namespace, name

    async def get(self) -> tuple[dict[str, Any], str] | None:
        from kubernetes.aio.client.exceptions import ApiException

        try:
            lease = await self.api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        s = lease.spec
        spec = {
            "holderIdentity": s.holder_identity,
            "leaseDurationSeconds": s.lease_duration_seconds,
            "acquireTime": _micro_time(s.acquire_time) if s.acquire_time else None,
            "renewTime": _micro_time(s.renew_time) if s.renew_time else None,
            "leaseTransitions": s.lease_transitions,
        }
        return {k: v for k, v in spec.items() if v is not None}, str(
            lease.metadata.resource_version
        )

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

    async def _write(self, call: Awaitable[Any]) -> str:
        from kubernetes.aio.client.exceptions import ApiException

        try:
            lease = await call
        except ApiException as e:
            if e.status in (409, 422):  # changed under us / created by another meanwhile
                raise Conflict(str(e.reason)) from e
            raise
        return str(lease.metadata.resource_version)


@dataclasses.dataclass(frozen=True)
class Lease:
    """Where the replicas meet (`greenlight run --lease-namespace/--lease-name`) and who this
    replica is (POD_ID: the pod's name in the chart; else host name and process id)."""

    namespace: str
    name: str
    identity: str


class Leadership:
    """The work queue runs only while this replica holds the Lease. kopf keeps watching either
    way, so a standby's indexes stay warm and its events still queue keys (without workers);
    on taking the Lease it queues every Release it knows (BULK: anything queued by an event
    keeps its own lane) and starts the workers; on losing it, it stops them."""

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
        self.task = asyncio.create_task(self.elector.run())

    async def _started(self) -> None:
        for key in list(self.known()):
            self.queue.add(key, workqueue.Priority.BULK)
        self.queue.start(self.workers)

    async def _stopped(self) -> None:
        await self.queue.stop()

    async def close(self) -> None:
        """Stop acting, then release the Lease for a standby to take at once."""
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.elector.release()
