"""Process wiring for ``huimin gateway``: the S3 gateway over the remote drives of a topology."""

from __future__ import annotations

import logging

from erasure.selftest import self_test
from huimin import process
from huimin.observability import Observability
from huimin.process import (
    gateway_app,
    healing,
    node_client_tls,
    print_endpoint,
    server_tls,
    start_site,
    wait_for_stop,
)
from huimin.settings import Settings
from huimin.topology import erasure_set_drives, load_topology, pool_set_drives
from storage.buckets import ErasureBuckets
from storage.errors import StorageError
from storage.node_protocol import ClusterIdentity
from storage.remote_drive import NodeClient, RemoteDrive, Timeouts
from storage.sets import ECParams, ErasureSets
from storage.store import storage_over
from tenants.credentials import load_or_create_root

log = logging.getLogger("huimin.gateway")


async def serve(settings: Settings) -> None:
    self_test()
    if not (settings.topology and settings.deployment_id and settings.cluster_secret):
        raise SystemExit("huimin gateway: topology, deployment_id and cluster_secret are required")
    topology = load_topology(settings.topology)
    root = load_or_create_root(
        settings.data_dir, settings.root_access_key, settings.root_secret_key
    )
    identity = ClusterIdentity(settings.deployment_id, topology.version, settings.cluster_secret)
    tls = node_client_tls(settings)
    client = NodeClient(
        identity,
        Timeouts(rpc_s=settings.node_timeout_s),
        tls=tls,
        tcp_congestion=settings.node_tcp_congestion,
    )
    address = {n.name: n.address for n in topology.nodes}
    drives = [
        RemoteDrive(client, address[ref.node], ref.node, ref.drive)
        for drive_set in erasure_set_drives(topology)
        for ref in drive_set
    ]
    erasure = topology.erasure
    params = ECParams(
        codec=erasure.codec,
        k=erasure.data_shards,
        m=erasure.parity_shards,
        block_size=erasure.block_size_bytes,
        inline_threshold=settings.inline_threshold_bytes,
    )
    obs = Observability()
    pool_sizes = [sum(len(s) for s in pool) for pool in pool_set_drives(topology)]
    sets = ErasureSets(settings.deployment_id, obs.meter(drives), params, pool_sizes)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    healer, heal_service = healing(sets, settings, settings.data_dir)
    storage = storage_over(sets, settings.min_part_size_bytes, missed=healer.enqueue)
    client.on_recovered.append(ErasureBuckets(sets).sync)  # nodes back: buckets they missed
    try:
        added = await ErasureBuckets(sets).sync()
        if added:
            log.info("gave %d bucket records to drives that lacked them", added)
    except StorageError as exc:  # nodes still starting: the next start-up syncs
        log.warning("bucket sync skipped: %s", exc)
    app = gateway_app(storage, settings, root, heal_service.routes())
    obs.install_gateway(
        app, sets, lambda: healer.stats, lambda: {d.node: d.base not in client.down for d in drives}
    )
    runner, endpoint = await start_site(
        app, settings.listen, server_tls(settings), settings.s3_tcp_congestion
    )
    print_endpoint(
        endpoint,
        root,
        settings,
        f"topology:   {topology.name} v{topology.version}: {len(topology.nodes)} nodes, "
        f"{len(drives)} drives, EC {params.k}+{params.m}",
    )
    heal_service.start()
    await wait_for_stop()
    await heal_service.stop()
    await runner.cleanup()
    await storage.objects.settle()
    await client.close()


def run(settings: Settings) -> None:
    process.run(serve(settings), settings)
