"""A real Redis for the e2e tests of queue workers (hack/redis), and what the workers recorded.

    def test_x(redis: Redis, ...):
        queue = redis.new_queue("jobs")          # a fresh list name, deleted after the session
        env = {"WORKER_QUEUE": queue, "REDIS_ADDR": redis.addr}   # a pod's sample-app
        redis.client.rpush(queue, "m1", "m2")    # the test's own client, on 127.0.0.1
        redis.done(queue)                        # [Done("m1", "v1", "web-v1-x", "live"), ...]

The `redis` fixture (session, tests/e2e/conftest.py) runs `hack/redis up` (a no-op when it
runs) and `hack/redis down` at the end only if it started it. Pods reach Redis on this host's
primary address (`redis.host`, the real node's node IP); host processes use `redis.local_addr`.
The sample app's worker mode (hack/images/sample-app: WORKER_QUEUE) records each message it
consumes by RPUSH to `<queue>:done` as "<message> <version> <pod> <role>".
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis import Redis as Client

SCRIPT = Path(__file__).resolve().parents[2] / "hack" / "redis"


@dataclass(frozen=True)
class Done:
    """One message a worker consumed, as it recorded it in `<queue>:done`."""

    message: str
    version: str
    pod: str
    role: str
    """The worker's role when its pop returned the message ("none" without ROLE_FILE)."""

    @classmethod
    def parse(cls, record: str) -> Done:
        message, version, pod, role = record.rsplit(" ", 3)  # the message may hold spaces
        return cls(message, version, pod, role)


@dataclass(frozen=True)
class Redis:
    host: str
    """The address pods use: this host's primary IPv4 address (the real node's node IP)."""
    port: int
    client: Client
    """The test's client, on 127.0.0.1 (answers str, not bytes)."""
    _keys: list[str] = field(default_factory=list)

    @property
    def addr(self) -> str:
        """REDIS_ADDR for a pod."""
        return f"{self.host}:{self.port}"

    @property
    def local_addr(self) -> str:
        """REDIS_ADDR for a process on this host."""
        return f"127.0.0.1:{self.port}"

    def new_queue(self, name: str = "jobs") -> str:
        """A list name no other test uses: `<name>-<6 hex>` (it and its `:done` list are deleted
        when the session ends)."""
        queue = f"{name}-{secrets.token_hex(3)}"
        self._keys.extend([queue, f"{queue}:done"])
        return queue

    def done(self, queue: str) -> list[Done]:
        """What the workers recorded for `queue`, oldest first."""
        return [Done.parse(r) for r in self.client.lrange(f"{queue}:done", 0, -1)]


def _script(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCRIPT, command], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session")
def redis() -> Iterator[Redis]:
    started = _script("status").returncode != 0
    if started:
        up = _script("up")
        if up.returncode != 0:
            pytest.fail(f"hack/redis up failed (exit {up.returncode}):\n{up.stderr[-3000:]}")
    exports = _script("env").stdout.split("export ", 1)[1].split()
    values = dict(e.split("=", 1) for e in exports)
    port = int(values["GREENLIGHT_REDIS_PORT"])
    client = Client(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=10)
    bed = Redis(values["GREENLIGHT_REDIS_HOST"], port, client)
    try:
        client.ping()
        yield bed
    finally:
        if bed._keys and not started:
            client.delete(*bed._keys)
        client.close()
        if started:
            _script("down")
