"""The plugin's consoles, colours and failure: what every `kubectl greenlight` command prints with.

`fail` prints `error: <why>` on stderr and raises `Refused`: the CLI exits 1 once it has printed
it; the dashboard answers the click with its message.
"""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

console = Console()
errors = Console(stderr=True)

PHASE_STYLE = {
    "Healthy": "green",
    "Progressing": "yellow",
    "Paused": "cyan",
    "Degraded": "red",
    "Aborted": "red",
}
CHECK_STYLE = {"Passed": "green", "Running": "yellow", "Failed": "red", "Inconclusive": "red"}
METRIC_STYLE = {"Pass": "green", "Fail": "red", "Inconclusive": "yellow"}


class Refused(typer.Exit):
    """A command refused, or an API error, with its message: the CLI exits 1 once it has
    printed it; the dashboard answers the click with it."""

    def __init__(self, message: str) -> None:
        super().__init__(1)
        self.message = message


def fail(message: str) -> NoReturn:
    errors.print(f"[red]error:[/red] {message}", highlight=False)
    raise Refused(message)
