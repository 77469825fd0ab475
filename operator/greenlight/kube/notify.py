"""Sends the engine's Notify actions: in the background, retried, never holding a release."""

from __future__ import annotations

import asyncio
import logging
import os

import aiohttp

from greenlight import metrics
from greenlight.engine import actions as act
from greenlight.kube import measure, rest

log = logging.getLogger("greenlight.notify")

ATTEMPTS = 3
TIMEOUT = 10.0


class Notifier:
    def __init__(self, core: rest.CoreV1 | None, backoff: float = 1.0) -> None:
        self._core = core
        self._backoff = backoff
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def send(self, namespace: str, n: act.Notify) -> None:
        task = asyncio.create_task(self._send(namespace, n))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _send(self, namespace: str, n: act.Notify) -> None:
        spec = n.notification
        body = n.payload
        if spec.format == "slack":
            body = {"text": f"[{namespace}/{n.payload['release']}] {n.event}: {n.message}"}
        names = {"namespace": namespace, "release": n.payload["release"]}
        for attempt in range(1, ATTEMPTS + 1):
            try:
                headers = await measure.resolve_headers(self._core, namespace, spec.webhook.headers)
                async with self._http().post(
                    spec.webhook.url, json=body, headers=headers,
                    timeout=aiohttp.ClientTimeout(total=TIMEOUT),
                ) as response:  # fmt: skip
                    if 200 <= response.status < 300:
                        metrics.NOTIFICATIONS.labels(n.event, "sent").inc()
                        return
                    problem = f"answered {response.status}"
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a notification never fails a release
                problem = str(e) or type(e).__name__
            if attempt < ATTEMPTS:
                await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
        metrics.NOTIFICATIONS.labels(n.event, "failed").inc()
        log.warning(
            "notification %s (%s) not delivered after %d attempts: %s",
            spec.name, n.event, ATTEMPTS, problem, extra=names,
        )  # fmt: skip

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            proxies = any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY"))
            self._session = aiohttp.ClientSession(trust_env=proxies)
        return self._session
