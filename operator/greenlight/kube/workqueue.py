"""A keyed work queue: one reconcile per Release at a time, coalesced triggers, timed requeues,
and three lanes so user intent is never stuck behind bulk churn.

Triggers (Release events, child Deployment events, due times) only add a key; a key already
waiting is not added twice, and a key triggered while being reconciled runs once more after.
Each trigger has a priority (`engine/lanes.py` decides it where the event is known): TRAFFIC
keys (a command such as undo or abort, a candidate that just became ready to flip, a live
Service to repair) go first, then URGENT keys (a changed spec, a timer that is due), then BULK
keys (status-only events, Deployment progress). Within a lane, namespaces take turns (round
robin), and a namespace's keys are served first come first served: one team re-releasing a
thousand apps delays another team's release by one reconcile, not by a thousand. So a storm of
new specs (each one creates Deployments: slow) never delays a flip or an undo, which are one
Service write each. A key waiting in a lower lane that is triggered with a higher
priority moves up; a re-run after a trigger mid-reconcile gets the highest priority of those
triggers. Timers fire URGENT (the earliest wins); a failed reconcile is retried, at the
priority it ran with, after a delay that doubles with each failure in a row, up to a cap; a
reconcile that starts meanwhile (any trigger) replaces the pending retry. A failure because the
API server could not be reached (`unreachable`: refused, reset, disconnected) is retried every
`retry_delay` without backing off further: the first retry after the API server's return comes
within that much of it (a connection refused costs the API server nothing meanwhile).
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Hashable

import aiohttp

from greenlight import metrics
from greenlight.kube.settings import Settings

log = logging.getLogger("greenlight.queue")


class Priority(enum.IntEnum):
    """Which lane a trigger queues a key in; the lower is served first."""

    TRAFFIC = 0
    """A decision that moves live traffic now, one Service write: a command waiting (undo,
    abort, promote), a candidate (or rolling batch) that settled, a finished check Job, a live
    Service that drifted."""
    URGENT = 1
    """User intent and due times: a spec not acted on yet, a deletion, a timer that is due, a
    check's measurement."""
    BULK = 2
    """Churn: status-only events, a new leader's catch-up of every key (and, `add_progress`,
    Deployment progress)."""


PROGRESS_SECONDS = 1.0
"""How long Deployment progress (`engine/lanes.py`: pods coming up or going, nothing settled)
waits before its Release is reconciled, in the bulk lane: the events of that second make one
reconcile and at most one status write of counts."""


class WorkQueue:
    def __init__(
        self,
        handler: Callable[[Hashable], Awaitable[None]],
        retry_delay: float = Settings.retry_delay,
        max_backoff: float = Settings.max_backoff,
    ) -> None:
        self._handler = handler
        self.retry_delay, self.max_backoff = retry_delay, max_backoff
        self._lanes: tuple[collections.OrderedDict[str, collections.deque[Hashable]], ...] = tuple(
            collections.OrderedDict() for _ in Priority
        )
        """Per priority, each namespace's keys in arrival order; the namespaces in the order of
        their turns (a served namespace with keys left goes to the back). An entry whose key
        has since moved to a better lane (or was served) is stale and skipped: `_waiting` is
        the truth."""
        self._waiting: dict[Hashable, Priority] = {}
        self._since: dict[Hashable, float] = {}
        """When each waiting key was first triggered (moving up a lane keeps it)."""
        self._tokens = asyncio.Semaphore(0)
        """One per lane entry added: a worker takes one, then the best waiting key (a token
        whose entry went stale finds nothing, or a later key: never a missed wake-up)."""
        self._active: dict[Hashable, Priority] = {}
        self._dirty: dict[Hashable, Priority] = {}
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}
        self._retries: dict[Hashable, asyncio.TimerHandle] = {}
        self._progress: dict[Hashable, asyncio.TimerHandle] = {}
        self._failures: dict[Hashable, int] = {}
        self._workers: list[asyncio.Task[None]] = []

    def add(self, key: Hashable, priority: Priority = Priority.URGENT) -> None:
        if key in self._active:
            self._dirty[key] = min(priority, self._dirty.get(key, priority))
            return
        waiting = self._waiting.get(key)
        if waiting is not None and waiting <= priority:
            return  # coalesced: it waits once, in the better lane
        self._waiting[key] = priority
        self._since.setdefault(key, time.perf_counter())
        lane = self._lanes[priority]
        namespace = _namespace(key)
        if namespace not in lane:
            lane[namespace] = collections.deque()
        lane[namespace].append(key)
        self._tokens.release()

    def add_after(self, key: Hashable, delay: float) -> None:
        """Reconcile `key` in `delay` seconds, URGENT; an earlier timer for the key wins."""
        loop = asyncio.get_running_loop()
        when = loop.time() + max(delay, 0.0)
        timer = self._timers.get(key)
        if timer is not None and not timer.cancelled() and timer.when() <= when:
            return
        if timer is not None:
            timer.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def add_progress(self, key: Hashable) -> None:
        """Deployment progress: reconcile `key` in the bulk lane PROGRESS_SECONDS from the
        first such event, once. A key already waiting will see it anyway; a reconcile that
        starts before then sees it too, and drops the timer."""
        if key in self._progress or key in self._waiting:
            return
        loop = asyncio.get_running_loop()
        self._progress[key] = loop.call_later(PROGRESS_SECONDS, self._fire_progress, key)

    def _fire_progress(self, key: Hashable) -> None:
        self._progress.pop(key, None)
        self.add(key, Priority.BULK)

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        self.add(key, Priority.URGENT)

    def _retry(self, key: Hashable, priority: Priority) -> None:
        self._retries.pop(key, None)
        self.add(key, priority)

    def backoff(self, failures: int, error: BaseException | None = None) -> float:
        """Seconds before the retry after `failures` failures in a row, the last one `error`."""
        if error is not None and unreachable(error):
            return self.retry_delay  # to be back within retry_delay of the API server's return
        return min(self.retry_delay * 2.0 ** (failures - 1), self.max_backoff)

    def start(self, workers: int) -> None:
        self._workers = [asyncio.create_task(self._work()) for _ in range(workers)]

    async def stop(self) -> None:
        """Stop the workers (a reconcile in flight is cancelled) and every timer and retry;
        waiting keys are dropped. The queue can be started again (a new leader term)."""
        for timer in (*self._timers.values(), *self._retries.values(), *self._progress.values()):
            timer.cancel()
        self._timers.clear()
        self._retries.clear()
        self._progress.clear()
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        self._waiting.clear()
        self._since.clear()
        self._dirty.clear()
        self._active.clear()
        self._failures.clear()
        for lane in self._lanes:
            lane.clear()
        self._tokens = asyncio.Semaphore(0)

    def __len__(self) -> int:
        return len(self._waiting)

    def depth(self, priority: Priority) -> int:
        return sum(1 for p in self._waiting.values() if p == priority)

    def _pop(self) -> tuple[Hashable, Priority] | None:
        for priority, lane in zip(Priority, self._lanes, strict=True):
            while lane:
                namespace, keys = lane.popitem(last=False)
                while keys:
                    key = keys.popleft()
                    if self._waiting.get(key) == priority:
                        del self._waiting[key]
                        waited = time.perf_counter() - self._since.pop(key)
                        metrics.QUEUE_WAIT.labels(priority.name.lower()).observe(waited)
                        if keys:
                            lane[namespace] = keys  # its next turn: after the others'
                        return key, priority
        return None

    async def _next(self) -> tuple[Hashable, Priority]:
        while True:
            await self._tokens.acquire()
            found = self._pop()
            if found is not None:
                return found

    async def _work(self) -> None:
        while True:
            key, priority = await self._next()
            self._active[key] = priority
            retry = self._retries.pop(key, None)
            if retry is not None:  # this run is the retry; a failure schedules a new one
                retry.cancel()
            progress = self._progress.pop(key, None)
            if progress is not None:  # this run reads the progress it was waiting for
                progress.cancel()
            try:
                await self._handler(key)
                self._failures.pop(key, None)
            except Exception as e:
                failures = self._failures[key] = self._failures.get(key, 0) + 1
                delay = self.backoff(failures, e)
                log.error(
                    "reconcile failed (%d in a row): %s; retry in %.1fs",
                    failures, e, delay,
                    exc_info=failures == 1,  # the traceback once, not on every retry
                    extra=_names(key),
                )  # fmt: skip
                loop = asyncio.get_running_loop()
                self._retries[key] = loop.call_later(delay, self._retry, key, priority)
            finally:
                self._active.pop(key, None)
                again = self._dirty.pop(key, None)
                if again is not None:
                    self.add(key, again)


def unreachable(error: BaseException) -> bool:
    """The request never got an answer because the API server could not be reached (connection
    refused or reset, the server gone mid-request), here or in what caused it; not a timeout
    (a server that is there but slow is not asked again sooner)."""
    seen: BaseException | None = error
    for _ in range(8):  # ApplyError from aiohttp's error; an error while reporting it
        if seen is None:
            return False
        if isinstance(seen, aiohttp.ClientConnectionError | ConnectionError) and not isinstance(
            seen, TimeoutError
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _namespace(key: Hashable) -> str:
    """The namespace of a Release key (namespace, name) or a group key ("group", ns, name)."""
    if isinstance(key, tuple) and len(key) in (2, 3):
        return str(key[-2])
    return ""


def _names(key: Hashable) -> dict[str, str]:
    """Log extras naming the Release of a key (`namespace`, `release`: see cli/logs.py)."""
    if isinstance(key, tuple) and len(key) == 2:
        return {"namespace": str(key[0]), "release": str(key[1])}
    return {"release": str(key)}
