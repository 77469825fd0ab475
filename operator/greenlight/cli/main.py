"""Console script `greenlight`: the operator and its tools (`kubectl-greenlight` is plugin.py)."""

from __future__ import annotations

import os
import pathlib
import socket
from importlib import metadata
from typing import Any

import typer

from greenlight.kube.settings import Settings

operator_app = typer.Typer(help="Greenlight: blue-green and rolling releases for Kubernetes.")


def _version() -> str:
    return metadata.version("greenlight")


def _setting(name: str) -> Any:
    """A `greenlight run` option for one Settings field: its flag, env var, default and help."""
    about = Settings.describe(name)
    default = getattr(Settings, name)
    return typer.Option(
        default, about["flag"], envvar=about["env"], help=about["help"], show_envvar=True
    )


@operator_app.command()
def run(
    namespace: list[str] = typer.Option(  # noqa: B008
        [], "--namespace", "-n", help="Watch only these namespaces (default: all)."
    ),
    metrics_port: int = typer.Option(0, help="Serve Prometheus metrics on this port (0: off)."),
    health_port: int = typer.Option(
        0, help="Serve kopf's liveness probe at :PORT/healthz (0: off)."
    ),
    log_json: bool = typer.Option(False, "--log-json", help="Structured JSON logs."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
    workers: int = _setting("workers"),
    expectation_timeout: float = _setting("expectation_timeout"),
    retry_delay: float = _setting("retry_delay"),
    max_backoff: float = _setting("max_backoff"),
    watch_server_timeout: int = _setting("watch_server_timeout"),
    request_timeout: float = _setting("request_timeout"),
    lease_duration: float = _setting("lease_duration"),
    renew_deadline: float = _setting("renew_deadline"),
    retry_period: float = _setting("retry_period"),
    leader_election: bool = typer.Option(
        True,
        envvar="GREENLIGHT_LEADER_ELECTION",
        help="Act only while holding the Lease (replicas: one leader, warm standbys).",
    ),
    lease_namespace: str = typer.Option(
        "",
        envvar="GREENLIGHT_LEASE_NAMESPACE",
        help="The Lease's namespace (default: $POD_NAMESPACE, else the first --namespace, "
        "else default).",
    ),
    lease_name: str = typer.Option("greenlight", envvar="GREENLIGHT_LEASE_NAME"),
) -> None:
    """Run the operator against the current kubeconfig (or in-cluster config).

    The tuning options are documented in kube/settings.py and the README's settings table."""
    try:
        settings = Settings(
            workers=workers,
            expectation_timeout=expectation_timeout,
            retry_delay=retry_delay,
            max_backoff=max_backoff,
            watch_server_timeout=watch_server_timeout,
            request_timeout=request_timeout,
            lease_duration=lease_duration,
            renew_deadline=renew_deadline,
            retry_period=retry_period,
        )
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    if not any(map(os.environ.get, ("POD_ID", "LOGNAME", "USER", "LNAME", "USERNAME"))):
        os.environ["USER"] = f"uid-{os.getuid()}"  # kopf's identity: no passwd lookup needed
    lease = None
    if leader_election:
        from greenlight.kube.leader import Lease

        where = lease_namespace or os.environ.get("POD_NAMESPACE") or next(iter(namespace), "")
        # POD_ID: the pod's name (the chart); else unique per process, also on one host
        identity = os.environ.get("POD_ID") or f"{socket.gethostname()}-{os.getpid()}"
        lease = Lease(where or "default", lease_name, identity)
    import kopf
    import prometheus_client

    import greenlight.handlers  # noqa: F401  (registers the handlers)
    from greenlight.cli import logs

    if metrics_port:
        prometheus_client.start_http_server(metrics_port)
    logs.configure(json=log_json, verbose=verbose)
    kopf.run(
        standalone=True,
        clusterwide=True,  # kopf itself watches nothing: handlers.py's informers do, in these
        liveness_endpoint=f"http://0.0.0.0:{health_port}/healthz" if health_port else None,
        memo=kopf.Memo(settings=settings, lease=lease, namespaces=list(namespace)),
    )


@operator_app.command()
def crd(
    write: pathlib.Path | None = typer.Option(  # noqa: B008
        None, help="Write crds/<name>.yaml into this directory instead of printing it."
    ),
) -> None:
    """Render the CRDs (Release, ReleaseGroup) from the API models."""
    from greenlight.api import crd as crd_module

    for name, text in crd_module.files().items():
        if write is None:
            typer.echo("---\n" + text, nl=False)
            continue
        path = write / name
        path.write_text(text)
        typer.echo(f"wrote {path}")


@operator_app.command()
def version() -> None:
    """Print the version."""
    typer.echo(_version())
