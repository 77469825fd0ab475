"""The strategy interface. A strategy is one module that defines `STRATEGY`, plus one line in
`plan.STRATEGIES`; everything else (commands, deadline, history, Services) is shared."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from greenlight.engine.draft import StrategyName, Work


@dataclasses.dataclass(frozen=True)
class Strategy:
    name: StrategyName
    release: Callable[[Work, str | None, str, dict[str, Any]], None]
    """One safe step of releasing revision `desired` (with its effective pod template) while
    `live` serves (None: an adopted Service that selects no revision of ours)."""
    return_to_live: Callable[[Work, str], bool]
    """The spec went back to the live revision mid-release: move pods back to it; True when
    nothing is left to move."""
    verify_live: Callable[[Work, str], None] = lambda w, live: None
    """Nothing in flight, the live revision steady: checks that run after a flip."""
