"""Process wiring for ``huimin server``: drives + object layer + S3 gateway in one process."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from erasure.codec import get_codec
from erasure.selftest import self_test
from gateway.app import Gateway, make_app
from gateway.context import GatewayConfig
from huimin.logs import setup_logging
from huimin.settings import Settings
from huimin.tuning import tune_malloc
from storage.buckets import ErasureBuckets
from storage.sets import ECParams, ErasureSets
from storage.store import deployment_id, open_local_drives, storage_over
from tenants.credentials import CredentialStore, load_or_create_root

log = logging.getLogger("huimin")


def split_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:9000"`` -> ("127.0.0.1", 9000); ``"[::1]:9000"`` -> ("::1", 9000)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


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
    sets = ErasureSets(
        deployment_id(data_dir, settings.drives, params.k + params.m), list(drives.drives), params
    )
    storage = storage_over(sets, settings.min_part_size_bytes)
    added = await ErasureBuckets(sets).sync()
    if added:
        log.info("gave %d bucket records to drives that lacked them", added)
    config = GatewayConfig(
        region=settings.region,
        owner_id=root.access_key,
        owner_name="root",
        max_object_size_bytes=settings.max_object_size_bytes,
        virtual_host_suffix=settings.virtual_host_suffix,
        max_clock_skew_s=settings.max_clock_skew_s,
    )
    gateway = Gateway(storage, config, CredentialStore([root]).secret_for)
    runner = web.AppRunner(make_app(gateway), access_log=None, handler_cancellation=True)
    await runner.setup()
    host, port = split_listen(settings.listen)
    site = web.TCPSite(runner, host, port, reuse_address=True, backlog=1024)
    await site.start()
    endpoint = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    print(
        f"Huimin S3 endpoint: {endpoint}\n"
        f"  access key: {root.access_key}\n"
        f"  secret key: {root.secret_key}\n"
        f"  region:     {settings.region}\n"
        f"  data:       {data_dir.resolve()} ({settings.drives} drives, "
        f"EC {params.k}+{params.m}, codec {params.codec})",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await runner.cleanup()
    drives.close()


def run(settings: Settings) -> None:
    tune_malloc(settings.block_size_bytes)
    setup_logging(settings.log_level)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; fall back anyway
        pass
    asyncio.run(serve(settings))
