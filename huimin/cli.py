"""The ``huimin`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from huimin.settings import load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Huimin object store")


@app.command()
def server(
    data_dir: Annotated[
        Path | None,
        typer.Argument(help="data folder (drive folders live here) [default: ./data]"),
    ] = None,
    listen: Annotated[str | None, typer.Option(help="HOST:PORT to serve S3 on")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML settings file")] = None,
    drives: Annotated[int | None, typer.Option(help="drive folders to lay out")] = None,
) -> None:
    """Run the embedded store: S3 gateway + drive folders under DATA_DIR, one process."""
    from huimin.server import run

    run(load_settings(config, data_dir=data_dir, listen=listen, drives=drives))


@app.command()
def bench(
    size: Annotated[str, typer.Option(help="large object size (64MiB, 1MB, 4096)")] = "64MiB",
    count: Annotated[int, typer.Option(help="large objects per run")] = 16,
    concurrency: Annotated[int, typer.Option(help="large requests in flight")] = 8,
    small_size: Annotated[str, typer.Option(help="small object size")] = "4KiB",
    small_count: Annotated[int, typer.Option(help="small objects per run (0: skip)")] = 2000,
    small_concurrency: Annotated[int, typer.Option(help="small requests in flight")] = 8,
    runs: Annotated[int, typer.Option(help="runs; the table shows medians")] = 3,
    verify: Annotated[bool, typer.Option(help="MD5-check every GET body (client CPU)")] = False,
    data_dir: Annotated[
        Path | None, typer.Option(help="embedded server's data folder (default: temp, removed)")
    ] = None,
    server_env: Annotated[
        list[str] | None, typer.Option(help="NAME=VALUE for the embedded server (repeatable)")
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option(help="bench this S3 endpoint instead of starting a server")
    ] = None,
    access_key: Annotated[str | None, typer.Option(help="with --endpoint")] = None,
    secret_key: Annotated[str | None, typer.Option(help="with --endpoint")] = None,
    region: Annotated[str, typer.Option(help="SigV4 region")] = "us-east-1",
    server_pid: Annotated[
        int | None, typer.Option(help="with --endpoint: pid whose process tree's CPU is charged")
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="write results (medians and every run) here")
    ] = None,
) -> None:
    """Benchmark PUT/GET throughput, latency and server CPU-s/GB against PERF.md's targets."""
    from bench.run import main as bench_main

    status = bench_main(
        size=size,
        count=count,
        concurrency=concurrency,
        small_size=small_size,
        small_count=small_count,
        small_concurrency=small_concurrency,
        runs=runs,
        verify=verify,
        data_dir=data_dir,
        server_env=server_env or [],
        endpoint=endpoint,
        access_key=access_key,
        secret_key=secret_key,
        region=region,
        server_pid=server_pid,
        json_path=json_path,
    )
    raise typer.Exit(status)


@app.command()
def node(
    config: Annotated[Path, typer.Option(help="the node's TOML settings (see huimin cluster up)")],
) -> None:
    """Run a storage node: serve this node's drive folders over the node protocol."""
    from huimin.node import run

    run(load_settings(config))


@app.command()
def gateway(
    config: Annotated[Path, typer.Option(help="the gateway's TOML settings")],
) -> None:
    """Run an S3 gateway over the storage nodes of a topology."""
    from huimin.gateway_main import run

    run(load_settings(config))


@app.command()
def version() -> None:
    """Print the version."""
    from importlib.metadata import version as dist_version

    typer.echo(dist_version("huimin"))


def main() -> None:
    app()
