"""Process wiring for ``huimin server``: drives + object layer + S3 gateway in one process."""

from __future__ import annotations

import logging

from erasure.codec import get_codec
from erasure.selftest import self_test
from huimin import process
from huimin.observability import Observability
from huimin.process import (
    gateway_app,
    healing,
    print_endpoint,
    server_tls,
    start_site,
    wait_for_stop,
)
from huimin.settings import Settings
from storage.buckets import ErasureBuckets
from storage.sets import ECParams, ErasureSets
from storage.store import deployment_id, open_local_drives, storage_over
from tenants.credentials import load_or_create_root

log = logging.getLogger("huimin")


async def serve(settings: Settings) -> None:
    self_test()
    get_codec(settings.codec, settings.ec_data_shards, settings.ec_parity_shards)  # fail fast
    data_dir = settings.data_dir
    root = load_or_create_root(data_dir, settings.root_access_key, settings.root_secret_key)
    drives = open_local_drives(data_dir, settings.drives, settings.io_threads)
    params = ECParams(
        codec=settings.codec,
        k=settings.ec_data_shards,
        m=settings.ec_parity_shards,
        block_size=settings.block_size_bytes,
        inline_threshold=settings.inline_threshold_bytes,
    )
    obs = Observability()
    sets = ErasureSets(
        deployment_id(data_dir, settings.drives, params.k + params.m),
        obs.meter(drives.drives),
        params,
    )
    healer, heal_service = healing(sets, settings, data_dir)
    storage = storage_over(sets, settings.min_part_size_bytes, missed=healer.enqueue)
    added = await ErasureBuckets(sets).sync()
    if added:
        log.info("gave %d bucket records to drives that lacked them", added)
    app = gateway_app(storage, settings, root, heal_service.routes())
    obs.install_gateway(app, sets, lambda: healer.stats)
    runner, endpoint = await start_site(
        app, settings.listen, server_tls(settings), settings.s3_tcp_congestion
    )
    print_endpoint(
        endpoint,
        root,
        settings,
        f"data:       {data_dir.resolve()} ({settings.drives} drives, "
        f"EC {params.k}+{params.m}, codec {params.codec})",
    )
    heal_service.start()
    await wait_for_stop()
    await heal_service.stop()
    await runner.cleanup()
    await storage.objects.settle()
    drives.close()


def run(settings: Settings) -> None:
    process.run(serve(settings), settings)
