"""`kubectl greenlight` (the console script `kubectl-greenlight`): the app and its commands.

Each group of commands is a module of `cli.commands` that renders `cli.view`; this module only
registers them, in the order `--help` lists them.
"""

from __future__ import annotations

from importlib import metadata

import typer

from greenlight.cli.commands import control, dashboard, get, status
from greenlight.cli.console import console

app: typer.Typer = typer.Typer(
    help="kubectl greenlight: show Releases; promote, abort, retry, undo, pause, resume and"
    " restart them.",
    no_args_is_help=True,
)


def version() -> None:
    """Print the version."""
    console.print(f"kubectl-greenlight {metadata.version('greenlight')}")


app.command()(get.get)
for command in control.COMMANDS:
    app.command()(command)
app.command()(version)
app.command()(status.status)
app.command()(dashboard.dashboard)
