"""Process wiring for ``huimin node``: this node's drive folders served over the node protocol."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from huimin import process
from huimin.observability import METRICS_PATH, metrics_handler, new_registry
from huimin.process import server_tls, start_site, wait_for_stop
from huimin.settings import Settings
from huimin.topology import load_topology
from storage.local_drive import LocalDrive
from storage.node_protocol import ClusterIdentity
from storage.node_server import NodeServer

log = logging.getLogger("huimin.node")


def _required(settings: Settings) -> tuple[str, str, str]:
    missing = [
        name
        for name in ("topology", "name", "drive_root", "deployment_id", "cluster_secret")
        if getattr(settings, name) is None
    ]
    if missing:
        raise SystemExit(f"huimin node: missing settings: {', '.join(missing)}")
    assert settings.name and settings.deployment_id and settings.cluster_secret
    return settings.name, settings.deployment_id, settings.cluster_secret


async def serve(settings: Settings) -> None:
    name, deployment, secret = _required(settings)
    assert settings.topology is not None and settings.drive_root is not None
    topology = load_topology(settings.topology)
    node = next((n for n in topology.nodes if n.name == name), None)
    if node is None:
        raise SystemExit(f"huimin node: {name!r} is not a node of {settings.topology}")
    executor = ThreadPoolExecutor(max_workers=settings.io_threads, thread_name_prefix="drive-io")
    drives = {d.name: LocalDrive(settings.drive_root / d.name, executor) for d in node.drives}
    identity = ClusterIdentity(deployment, topology.version, secret)
    app = NodeServer(name, drives, identity).app()
    app.router.add_get(METRICS_PATH, metrics_handler(new_registry()))  # process metrics
    runner, endpoint = await start_site(
        app, settings.listen, server_tls(settings), settings.node_tcp_congestion
    )
    print(f"Huimin node {name}: {endpoint} ({len(drives)} drives)", flush=True)
    await wait_for_stop()
    await runner.cleanup()
    for drive in drives.values():
        drive.close()
    executor.shutdown()


def run(settings: Settings) -> None:
    process.run(serve(settings), settings)
