"""The ``huimin`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from huimin.settings import load_settings

# `huimin bench --workloads` choices (bench.run.WORKLOADS; not imported here: the CLI stays light).
WORKLOAD_NAMES = (
    "large", "small", "mixed", "multipart", "list", "sweep", "small-sweep", "wan", "degraded",
    "profile", "memory", "floor",
)  # fmt: skip

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
    target: Annotated[
        str | None,
        typer.Option(help="embedded (huimin server here) or cluster (huimin cluster up here)"),
    ] = None,
    topology: Annotated[
        Path | None, typer.Option(help="with --target cluster [topologies/local.toml]")
    ] = None,
    gateways: Annotated[int, typer.Option(help="with --target cluster", min=1)] = 1,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="server data / cluster folder, kept (and its LIST bucket) [temp]"),
    ] = None,
    client: Annotated[
        str,
        typer.Option(
            help="HTTP client for small requests and GETs: lean (bench/http1.py) or aiohttp"
        ),
    ] = "lean",
    server_env: Annotated[
        list[str] | None, typer.Option(help="NAME=VALUE for the started server (repeatable)")
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option(help="bench this S3 endpoint instead of starting a server")
    ] = None,
    access_key: Annotated[str | None, typer.Option(help="with --endpoint")] = None,
    secret_key: Annotated[str | None, typer.Option(help="with --endpoint")] = None,
    region: Annotated[str, typer.Option(help="SigV4 region")] = "us-east-1",
    server_pid: Annotated[
        list[int] | None,
        typer.Option(help="with --endpoint: a server process to charge CPU/RSS to (repeatable)"),
    ] = None,
    workloads: Annotated[
        str, typer.Option(help="comma list of: " + ",".join(WORKLOAD_NAMES))
    ] = ",".join(WORKLOAD_NAMES),
    skip: Annotated[str, typer.Option(help="comma list of workloads to leave out")] = "",
    runs: Annotated[int, typer.Option(help="runs; the tables show medians")] = 3,
    verify: Annotated[bool, typer.Option(help="MD5-check every GET body (client CPU)")] = False,
    size: Annotated[str, typer.Option(help="large object size (64MiB, 1MB, 4096)")] = "64MiB",
    count: Annotated[int, typer.Option(help="large objects per run")] = 16,
    concurrency: Annotated[int, typer.Option(help="large requests in flight")] = 8,
    concurrency_sweep: Annotated[
        str, typer.Option(help="in-flight steps of the sweep ('' skips it)")
    ] = "1,4,8,16",
    small_size: Annotated[str, typer.Option(help="small object size")] = "4KiB",
    small_count: Annotated[int, typer.Option(help="small objects per run (0: skip)")] = 2000,
    small_concurrency: Annotated[int, typer.Option(help="small requests in flight")] = 8,
    small_concurrency_sweep: Annotated[
        str, typer.Option(help="in-flight steps of the small-operation sweep ('' skips it)")
    ] = "8,16,32",
    mixed_seconds: Annotated[float, typer.Option(help="mixed run length")] = 30.0,
    mixed_size: Annotated[str, typer.Option(help="mixed object size")] = "1MiB",
    mixed_read_fraction: Annotated[float, typer.Option(help="share of GETs")] = 0.7,
    mixed_concurrency: Annotated[int, typer.Option(help="mixed requests in flight")] = 8,
    list_keys: Annotated[int, typer.Option(help="keys in the LIST bucket")] = 1_000_000,
    list_pages: Annotated[int, typer.Option(help="timed pages of each kind per run")] = 200,
    list_populate_concurrency: Annotated[int, typer.Option(help="PUTs in flight")] = 64,
    list_seed: Annotated[
        bool,
        typer.Option(help="cluster: bulk-load the LIST bucket's index rows (bench/seed.py)"),
    ] = False,
    multipart_size: Annotated[str, typer.Option(help="multipart object size")] = "1GiB",
    part_size: Annotated[str, typer.Option(help="multipart part size")] = "16MiB",
    part_concurrency: Annotated[int, typer.Option(help="parts in flight")] = 4,
    degraded_count: Annotated[int, typer.Option(help="objects (of --size) read degraded")] = 8,
    wan_slow_clients: Annotated[int, typer.Option(help="slow-link clients")] = 20,
    wan_slow_mbps: Annotated[float, typer.Option(help="slow link, Mbit/s")] = 10.0,
    wan_fast_clients: Annotated[int, typer.Option(help="fast-link clients")] = 4,
    wan_fast_mbps: Annotated[float, typer.Option(help="fast link, Mbit/s")] = 100.0,
    wan_seconds: Annotated[float, typer.Option(help="WAN run length")] = 60.0,
    mem_uploads: Annotated[int, typer.Option(help="concurrent uploads (memory check)")] = 100,
    mem_size: Annotated[
        list[str] | None,
        typer.Option(help="upload size(s) of the memory check (repeatable or comma list)"),
    ] = None,
    profile_rate: Annotated[int, typer.Option(help="py-spy samples per second")] = 50,
    floor_size: Annotated[
        str, typer.Option(help="floor: bytes per transfer, hashed and coded per repeat")
    ] = "1GiB",
    results: Annotated[
        Path | None, typer.Option(help="results folder [bench/results/<timestamp>/]")
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="also write results.json here")
    ] = None,
    progress: Annotated[bool, typer.Option(help="progress bar on stderr")] = True,
    plots: Annotated[bool, typer.Option(help="PNG plots (needs matplotlib)")] = True,
    rerender: Annotated[
        Path | None,
        typer.Option(help="only rewrite report.md and plots of this results folder, then exit"),
    ] = None,
) -> None:
    """Benchmark throughput, ops/s, latency, server CPU-s/GB and RSS against PERF.md's targets."""
    from bench.config import build_config
    from bench.run import main as bench_main

    if rerender is not None:
        from bench.run import rerender as rerender_folder

        typer.echo(f"wrote {', '.join(rerender_folder(rerender))} in {rerender}")
        return

    try:
        config = build_config(
            target=target,
            endpoint=endpoint,
            server_env=server_env or [],
            mem_sizes=mem_size or ["64MiB,256MiB"],
            concurrency_sweep=concurrency_sweep,
            small_concurrency_sweep=small_concurrency_sweep,
            workloads=workloads,
            skip=skip,
            topology=topology,
            gateways=gateways,
            data_dir=data_dir,
            client=client,
            access_key=access_key,
            secret_key=secret_key,
            region=region,
            server_pid=server_pid or [],
            runs=runs,
            verify=verify,
            size=size,
            count=count,
            concurrency=concurrency,
            small_size=small_size,
            small_count=small_count,
            small_concurrency=small_concurrency,
            mixed_seconds=mixed_seconds,
            mixed_size=mixed_size,
            mixed_read_fraction=mixed_read_fraction,
            mixed_concurrency=mixed_concurrency,
            list_keys=list_keys,
            list_pages=list_pages,
            list_populate_concurrency=list_populate_concurrency,
            list_seed=list_seed,
            multipart_size=multipart_size,
            part_size=part_size,
            part_concurrency=part_concurrency,
            degraded_count=degraded_count,
            wan_slow_clients=wan_slow_clients,
            wan_slow_mbps=wan_slow_mbps,
            wan_fast_clients=wan_fast_clients,
            wan_fast_mbps=wan_fast_mbps,
            wan_seconds=wan_seconds,
            mem_uploads=mem_uploads,
            profile_rate=profile_rate,
            floor_size=floor_size,
            results=results,
            json_path=json_path,
            progress=progress,
            plots=plots,
        )
    except ValueError as exc:
        typer.echo(f"huimin bench: {exc}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(bench_main(config))


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
