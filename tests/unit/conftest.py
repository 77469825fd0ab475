"""Every test in tests/unit/ is marked here, by directory, as tests/e2e/ is in its conftest:
`unit` (so `pytest -m unit` selects exactly this directory), a per-test timeout, and the event
loop's fake clock (looptime): an async test's sleeps, timeouts and timers take no wall-clock
time, so a test written in seconds runs in milliseconds and asserts the same timings exactly.
Code under test must then time by the running loop (`loop.time()`), not `time.monotonic()`."""

import os
from pathlib import Path

import pytest
from hypothesis import settings

UNIT_DIR = Path(__file__).resolve().parent

TIMEOUT = 60
"""Seconds a unit test may take (setup and teardown included): a hang fails the test, not CI."""

TICK = 2**-20
"""The fake clock's resolution: a binary fraction (about 1 µs), so that every time the loop
reports is an exact float. With looptime's default (1e-6) a deadline computed as `now + d` can
stay 1e-17 s ahead of the clock forever, and code that waits for it would spin."""

WALL_CLOCK = {"test_workqueue.py", "test_reconciler.py"}
"""Files still on the wall clock: the code they test times by `time.perf_counter()` (the
queue's wait metric) and `time.monotonic()` (the reconciler's expectation timeout), which the
fake clock does not move. They join once that code times by the loop."""

# `make test` (and CI) runs the property tests derandomized: the same examples every run, so a
# green tree stays green. HYPOTHESIS_PROFILE=explore draws new examples (run it while changing
# the engine; a failure it finds becomes an @example).
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(UNIT_DIR):
            item.add_marker(pytest.mark.unit)
            item.add_marker(pytest.mark.timeout(TIMEOUT))
            if item.path.name not in WALL_CLOCK:
                item.add_marker(pytest.mark.looptime(resolution=TICK))
