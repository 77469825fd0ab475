"""A keyed work queue: one reconcile per Release at a time, coalesced triggers, timed requeues.

Triggers (Release events, child Deployment events, due times) only add a key; a key already
waiting is not added twice, and a key triggered while being reconciled runs once more after.
A failed reconcile is retried after a delay that doubles with each failure in a row, up to a cap;
a reconcile that starts meanwhile (any trigger) replaces the pending retry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable

from greenlight.kube.settings import Settings

log = logging.getLogger("greenlight.queue")


class WorkQueue:
    def __init__(
        self,
        handler: Callable[[Hashable], Awaitable[None]],
        retry_delay: float = Settings.retry_delay,
        max_backoff: float = Settings.max_backoff,
    ) -> None:
        self._handler = handler
        self.retry_delay, self.max_backoff = retry_delay, max_backoff
        self._queue: asyncio.Queue[Hashable] = asyncio.Queue()
        self._waiting: set[Hashable] = set()
        self._active: set[Hashable] = set()
        self._dirty: set[Hashable] = set()
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}
        self._retries: dict[Hashable, asyncio.TimerHandle] = {}
        self._failures: dict[Hashable, int] = {}
        self._workers: list[asyncio.Task[None]] = []

    def add(self, key: Hashable) -> None:
        if key in self._active:
            self._dirty.add(key)
        elif key not in self._waiting:
            self._waiting.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: Hashable, delay: float) -> None:
        """Reconcile `key` in `delay` seconds; an earlier timer for the key wins."""
        loop = asyncio.get_running_loop()
        when = loop.time() + max(delay, 0.0)
        timer = self._timers.get(key)
        if timer is not None and not timer.cancelled() and timer.when() <= when:
            return
        if timer is not None:
            timer.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def _retry(self, key: Hashable) -> None:
        self._retries.pop(key, None)
        self.add(key)

    def backoff(self, failures: int) -> float:
        """Seconds before the retry after `failures` failures in a row."""
        return min(self.retry_delay * 2.0 ** (failures - 1), self.max_backoff)

    def start(self, workers: int) -> None:
        self._workers = [asyncio.create_task(self._work()) for _ in range(workers)]

    async def stop(self) -> None:
        for timer in (*self._timers.values(), *self._retries.values()):
            timer.cancel()
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    def __len__(self) -> int:
        return self._queue.qsize()

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._waiting.discard(key)
            self._active.add(key)
            retry = self._retries.pop(key, None)
            if retry is not None:  # this run is the retry; a failure schedules a new one
                retry.cancel()
            try:
                await self._handler(key)
                self._failures.pop(key, None)
            except Exception as e:
                failures = self._failures[key] = self._failures.get(key, 0) + 1
                delay = self.backoff(failures)
                log.error(
                    "reconcile failed (%d in a row): %s; retry in %.1fs",
                    failures, e, delay,
                    exc_info=failures == 1,  # the traceback once, not on every retry
                    extra=_names(key),
                )  # fmt: skip
                loop = asyncio.get_running_loop()
                self._retries[key] = loop.call_later(delay, self._retry, key)
            finally:
                self._active.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.add(key)


def _names(key: Hashable) -> dict[str, str]:
    """Log extras naming the Release of a key (`namespace`, `release`: see cli/logs.py)."""
    if isinstance(key, tuple) and len(key) == 2:
        return {"namespace": str(key[0]), "release": str(key[1])}
    return {"release": str(key)}
