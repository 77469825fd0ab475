"""The arguments and options every `kubectl greenlight` command shares."""

from __future__ import annotations

from typing import Annotated

import typer

Name = Annotated[str, typer.Argument(help="The Release's name.")]
Namespace = Annotated[
    str | None,
    typer.Option("--namespace", "-n", help="Default: the kubeconfig context's namespace."),
]
Context = Annotated[str | None, typer.Option("--context", help="kubeconfig context to use.")]
