"""Takes the measurements the engine asks for (`act.Measure`), off the work queue's workers.

Each measurement runs as its own task with its own timeout, so a slow endpoint never holds a
worker; its result waits here until a reconcile has recorded it in the Release's status
(`consumed`), and the Release is woken when it lands. A measurement is never taken twice for
the same (check, revision, stage, sequence number). Header values from Secrets are read when
the request is sent and appear nowhere else.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import logging
import math
import os
from collections.abc import Callable, Hashable
from typing import Any

import aiohttp

from greenlight.api import checks as api_checks
from greenlight.engine import actions as act
from greenlight.engine import snapshot
from greenlight.kube import observe, rest

log = logging.getLogger("greenlight.checks")

Key = tuple[str, str, str, int]
Window = tuple[datetime.datetime, datetime.datetime]


class ProviderError(Exception):
    """The provider could not answer (refused, timed out, bad query, bad JSON)."""


class Runner:
    def __init__(self, core: rest.CoreV1 | None, wake: Callable[[Hashable], None]) -> None:
        self._core = core
        self._wake = wake
        self._results: dict[Hashable, dict[Key, snapshot.CheckResult]] = {}
        self._running: dict[Hashable, set[Key]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def results(self, release: Hashable) -> tuple[snapshot.CheckResult, ...]:
        return tuple(self._results.get(release, {}).values())

    def consumed(self, release: Hashable, used: tuple[snapshot.CheckResult, ...]) -> None:
        """The status that records these was written: forget them."""
        held = self._results.get(release, {})
        for r in used:
            held.pop((r.stage, r.name, r.template_hash, r.seq), None)
        if not held:
            self._results.pop(release, None)

    def forget(self, release: Hashable) -> None:
        self._results.pop(release, None)

    def start(self, release: Hashable, namespace: str, m: act.Measure) -> None:
        running = self._running.setdefault(release, set())
        if m.key in running or m.key in self._results.get(release, {}):
            return
        running.add(m.key)
        task = asyncio.create_task(self._run(release, namespace, m))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def record_error(self, release: Hashable, m: act.CreateJob, message: str) -> None:
        """A check Job the API server refused counts as an error of that check."""
        result = snapshot.CheckResult(
            m.stage, m.check, m.template_hash, -1, observe.now(), error=message
        )
        self._results.setdefault(release, {})[(m.stage, m.check, m.template_hash, -1)] = result
        self._wake(release)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _run(self, release: Hashable, namespace: str, m: act.Measure) -> None:
        try:
            async with asyncio.timeout(m.check.timeout_seconds):  # (not wait_for: leader.py)
                value = await self._measure(namespace, m)
            result = snapshot.CheckResult(
                m.stage, m.name, m.template_hash, m.seq, observe.now(), value=value
            )
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            result = self._error(m, f"no answer in timeoutSeconds={m.check.timeout_seconds}")
        except Exception as e:  # every provider failure is a measurement error, never a pass
            result = self._error(m, _describe(e))
        finally:
            self._running.get(release, set()).discard(m.key)
        self._results.setdefault(release, {})[m.key] = result
        self._wake(release)

    @staticmethod
    def _error(m: act.Measure, message: str) -> snapshot.CheckResult:
        return snapshot.CheckResult(
            m.stage, m.name, m.template_hash, m.seq, observe.now(), error=message
        )

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            proxies = any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY"))
            self._session = aiohttp.ClientSession(trust_env=proxies)
        return self._session

    async def _headers(self, namespace: str, headers: list[api_checks.Header]) -> dict[str, str]:
        return await resolve_headers(self._core, namespace, headers)

    async def _measure(self, namespace: str, m: act.Measure) -> Any:
        check = m.check
        if check.http is not None:
            spec = check.http
            headers = await self._headers(namespace, spec.headers)
            return await self._request(spec.method, spec.url, headers, data=spec.body)
        if check.webhook is not None:
            headers = await self._headers(namespace, check.webhook.headers)
            return await self._request("POST", check.webhook.url, headers, json_body=m.release)
        if check.prometheus is not None:
            spec_p = check.prometheus
            headers = await self._headers(namespace, spec_p.headers)
            if spec_p.range is not None and m.windows:
                (start, end), step = m.windows[0], spec_p.step_seconds()
                series = await self._range(spec_p.address, spec_p.query, start, end, step, headers)
                return None if not series else series[0] if len(series) == 1 else series
            return await self._prometheus(spec_p.address, spec_p.query, headers)
        if check.compare is not None:
            return await self._compare(namespace, check.compare, m.windows)
        raise ProviderError(f"check {check.name}: no provider the operator runs")

    async def _compare(
        self, namespace: str, spec: api_checks.CompareCheck, windows: tuple[Window, ...]
    ) -> dict[str, dict[str, list[float]]]:
        """Each metric's samples of both sides: mannWhitney, every value of every series in
        the side's window; proportion, [events, trials] summed over the window. All queries
        at once."""
        headers = await self._headers(namespace, spec.headers)
        step = api_checks.seconds(spec.step)
        candidate, baseline = windows

        async def values(query: str, window: Window) -> list[float]:
            series = await self._range(spec.address, query, *window, step, headers)
            return [v for s in series for v in s]

        asks = []
        for metric in spec.metrics:
            asks.append(values(metric.query, candidate))
            asks.append(values(metric.baseline_query, baseline))
            if metric.test == "proportion":
                assert metric.total_query and metric.baseline_total_query
                asks.append(values(metric.total_query, candidate))
                asks.append(values(metric.baseline_total_query, baseline))
        answers = iter(await asyncio.gather(*asks))
        out = {}
        for metric in spec.metrics:
            c, b = next(answers), next(answers)
            if metric.test == "proportion":
                c_total, b_total = next(answers), next(answers)
                out[metric.name] = {
                    "candidate": [sum(c), sum(c_total)],
                    "baseline": [sum(b), sum(b_total)],
                }
            else:
                out[metric.name] = {"candidate": c, "baseline": b}
        return out

    async def _range(
        self,
        address: str,
        query: str,
        start: datetime.datetime,
        end: datetime.datetime,
        step: float,
        headers: dict[str, str],
    ) -> list[list[float]]:
        """A range query: each series' values (NaN and infinities dropped)."""
        url = address.rstrip("/") + "/api/v1/query_range"
        params = {
            "query": query,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": f"{step:g}",
        }
        data = await self._ask_prometheus(url, params, headers)
        if data.get("resultType") != "matrix":
            raise ProviderError(f"Prometheus: a range query gave {data.get('resultType')}")
        out = []
        for series in data.get("result") or []:
            values = [float(v) for _, v in series.get("values") or []]
            out.append([v for v in values if math.isfinite(v)])
        return out

    async def _ask_prometheus(
        self, url: str, params: dict[str, str], headers: dict[str, str]
    ) -> dict[str, Any]:
        async with self._http().get(url, params=params, headers=headers) as response:
            try:
                answer = await response.json(content_type=None)
            except ValueError as e:
                raise ProviderError(f"Prometheus answered {response.status}, not JSON") from e
        if answer.get("status") != "success":
            raise ProviderError(
                f"Prometheus: {answer.get('errorType', 'error')}: {answer.get('error', '?')}"
            )
        data: dict[str, Any] = answer.get("data") or {}
        return data

    async def _request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        data: str | None = None,
        json_body: Any = None,
    ) -> dict[str, Any]:
        async with self._http().request(
            method, url, headers=headers, data=data, json=json_body, allow_redirects=False
        ) as response:
            text = await response.text(errors="replace")
            try:
                body: Any = json.loads(text)
            except ValueError:
                body = text[:4096]
            return {"status": response.status, "body": body, "headers": dict(response.headers)}

    async def _prometheus(self, address: str, query: str, headers: dict[str, str]) -> Any:
        url = address.rstrip("/") + "/api/v1/query"
        data = await self._ask_prometheus(url, {"query": query}, headers)
        if data.get("resultType") == "scalar":
            return float(data["result"][1])
        values = [float(s["value"][1]) for s in data.get("result") or [] if "value" in s]
        if not values:
            return None
        return values[0] if len(values) == 1 else values


async def resolve_headers(
    core: rest.CoreV1 | None, namespace: str, headers: list[api_checks.Header]
) -> dict[str, str]:
    """Header values, those from Secrets read now (and shown nowhere else)."""
    out = {}
    for h in headers:
        if h.value is not None:
            out[h.name] = h.value
            continue
        assert h.value_from is not None and core is not None
        ref = h.value_from.secret_key_ref
        secret = await core.read_namespaced_secret(ref.name, namespace)
        data = (secret.get("data") or {}).get(ref.key)
        if data is None:
            raise ProviderError(f"Secret {ref.name} has no key {ref.key}")
        out[h.name] = base64.b64decode(data).decode()
    return out


def _describe(e: Exception) -> str:
    if isinstance(e, aiohttp.ClientConnectorError):
        return f"connection failed: {e.os_error or e}"
    if isinstance(e, aiohttp.ClientError | ProviderError):
        return str(e) or type(e).__name__
    return f"{type(e).__name__}: {e}"
