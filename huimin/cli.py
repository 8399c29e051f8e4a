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
def capacity(
    topology: Annotated[Path, typer.Option(help="topology file (TOML)")],
    rebuild_rate_mb_s: Annotated[
        float, typer.Option(help="rebuilt shard data per second (MB = 10^6 bytes)", min=0.001)
    ] = 200,
    json_output: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Print raw/usable capacity, failure tolerance and one drive's rebuild time."""
    import json

    from huimin.reports import capacity_json, capacity_text
    from huimin.topology import TopologyError, capacity_report, load_topology

    try:
        report = capacity_report(load_topology(topology), rebuild_rate_mb_s)
    except TopologyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(
        json.dumps(capacity_json(report), indent=1) if json_output else capacity_text(report)
    )


cluster_app = typer.Typer(
    no_args_is_help=True, help="Run a topology's nodes and gateways as local processes"
)
app.add_typer(cluster_app, name="cluster")


@cluster_app.command("up")
def cluster_up(
    topology: Annotated[Path, typer.Option(help="topology file (TOML)")],
    data: Annotated[Path, typer.Option(help="cluster folder: configs, drives, logs, state")],
    gateways: Annotated[int, typer.Option(help="gateway processes to start", min=1)] = 1,
    timeout_s: Annotated[float, typer.Option(help="seconds to wait for readiness")] = 60,
) -> None:
    """Start the nodes and gateway(s); return once every gateway serves S3."""
    from huimin.cluster import ClusterError, up
    from huimin.settings import Settings
    from huimin.topology import TopologyError
    from tenants.credentials import Credential

    settings = Settings()  # HUIMIN_ROOT_ACCESS_KEY / HUIMIN_ROOT_SECRET_KEY, as for `server`
    root = None
    if settings.root_access_key and settings.root_secret_key:
        root = Credential(settings.root_access_key, settings.root_secret_key)
    try:
        state = up(data, topology, gateways=gateways, root=root, ready_timeout_s=timeout_s)
    except (ClusterError, TopologyError) as exc:
        typer.echo(f"cluster up failed: {exc}", err=True)
        raise typer.Exit(1) from None
    endpoints = ", ".join(g.endpoint for g in state.gateways)
    typer.echo(
        f"Huimin S3 endpoint: {endpoints}\n"
        f"  access key: {state.root_access_key}\n"
        f"  secret key: {state.root_secret_key}\n"
        f"  region:     {settings.region}\n"
        f"  nodes:      {len(state.nodes)} ({', '.join(n.name for n in state.nodes)})\n"
        f"  data:       {state.data_dir}"
    )


@cluster_app.command("status")
def cluster_status(
    data: Annotated[Path, typer.Option(help="cluster folder given to `cluster up`")],
    json_output: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show each gateway and node (pid, address, alive) and the nodes' drives."""
    import json

    from huimin.cluster import ClusterError, status
    from huimin.reports import status_text

    try:
        state = status(data)
    except ClusterError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(state.status()) if json_output else status_text(state))


@cluster_app.command("down")
def cluster_down(
    data: Annotated[Path, typer.Option(help="cluster folder given to `cluster up`")],
) -> None:
    """Stop every process (SIGTERM, SIGKILL after 10 s); data and configs stay."""
    from huimin.cluster import ClusterError, down

    try:
        stopped = down(data)
    except ClusterError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"stopped {len(stopped)} process(es)" if stopped else "nothing was running")


heal_app = typer.Typer(no_args_is_help=True, help="Healing: rebuild missing or corrupt shards")
app.add_typer(heal_app, name="heal")


def _admin_target(
    endpoint: str | None, data: Path | None, access_key: str | None, secret_key: str | None
) -> tuple[str, str, str]:
    """Endpoint and credentials: given, or read from a `huimin cluster`/`server` data folder."""
    import json

    from tenants.credentials import load_or_create_root

    if data is not None and endpoint is None:
        state = data / "cluster.json"
        if state.exists():
            endpoint = json.loads(state.read_text())["gateways"][0]["endpoint"]
    if data is not None and not (access_key and secret_key):
        root = (
            load_or_create_root(data, None, None)
            if (data / "root-credentials.json").exists()
            else None
        )
        if root is not None:
            access_key, secret_key = root.access_key, root.secret_key
    if not (endpoint and access_key and secret_key):
        raise typer.BadParameter("give --endpoint with --access-key/--secret-key, or --data")
    return endpoint, access_key, secret_key


EndpointOpt = Annotated[str | None, typer.Option(help="gateway URL, e.g. http://127.0.0.1:9000")]
DataOpt = Annotated[Path | None, typer.Option(help="data folder of `huimin server`/`cluster up`")]
KeyOpt = Annotated[str | None, typer.Option(envvar="HUIMIN_ROOT_ACCESS_KEY")]
SecretOpt = Annotated[str | None, typer.Option(envvar="HUIMIN_ROOT_SECRET_KEY")]


@heal_app.command("status")
def heal_status(
    endpoint: EndpointOpt = None,
    data: DataOpt = None,
    access_key: KeyOpt = None,
    secret_key: SecretOpt = None,
) -> None:
    """Print the heal queue, scanner progress and rebuild counters (JSON)."""
    import json

    from huimin.admin_client import call

    target = _admin_target(endpoint, data, access_key, secret_key)
    typer.echo(json.dumps(call("GET", target[0], "heal/status", *target[1:]), indent=2))


@heal_app.command("start")
def heal_start(
    deep: Annotated[
        bool, typer.Option(help="also re-read every shard and verify its hashes")
    ] = False,
    endpoint: EndpointOpt = None,
    data: DataOpt = None,
    access_key: KeyOpt = None,
    secret_key: SecretOpt = None,
) -> None:
    """Start a scan of every object now (in the background; see `huimin heal status`)."""
    import json

    from huimin.admin_client import call

    target = _admin_target(endpoint, data, access_key, secret_key)
    path = "heal/start?deep=true" if deep else "heal/start"
    typer.echo(json.dumps(call("POST", target[0], path, *target[1:]), indent=2))


@app.command()
def version() -> None:
    """Print the version."""
    from importlib.metadata import version as dist_version

    typer.echo(dist_version("huimin"))


def main() -> None:
    app()
