"""Tests that run a real tool built by hack/ (promtool: minutes on first use, then instant) on
the project's files; no cluster. Marked e2e so that `make test` runs them in its e2e stage
(`pytest -m e2e`), where first-use builds belong, and `pytest -m unit` stays fast."""

from pathlib import Path

import pytest

TOOLS_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(TOOLS_DIR):
            item.add_marker(pytest.mark.e2e)
