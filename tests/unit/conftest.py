import os

import pytest
from hypothesis import settings

# `make test` (and CI) runs the property tests derandomized: the same examples every run, so a
# green tree stays green. HYPOTHESIS_PROFILE=explore draws new examples (run it while changing
# the engine; a failure it finds becomes an @example).
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/unit/" in str(item.fspath):
            item.add_marker(pytest.mark.unit)
