"""What every Huimin process does the same way: start-up tuning, logging, event loop, HTTP
site, and waiting for SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.app import AdminHandler, Gateway, make_app
from gateway.context import GatewayConfig
from huimin.healing import HealService
from huimin.logs import setup_logging
from huimin.settings import Settings
from huimin.tuning import tune_gc, tune_malloc, tune_scheduling
from storage.api import Storage
from storage.heal import Healer
from storage.sets import ErasureSets
from storage.tcp import listening_sockets
from tenants.credentials import Credential, CredentialStore

log = logging.getLogger("huimin")
BACKLOG = 1024  # connections waiting to be accepted (100 uploads may connect at once)


def split_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:9000"`` -> ("127.0.0.1", 9000); ``"[::1]:9000"`` -> ("::1", 9000)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def url_of(host: str, port: int, tls: bool = False) -> str:
    return f"{'https' if tls else 'http'}://{host if ':' not in host else f'[{host}]'}:{port}"


def server_tls(settings: Settings) -> ssl.SSLContext | None:
    """The listener's TLS context (TLS 1.2+), or None for plain HTTP."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    return context


def node_client_tls(settings: Settings) -> ssl.SSLContext | None:
    """How a gateway verifies nodes over TLS, or None for plain HTTP to nodes."""
    if settings.node_tls_ca_file is None:
        return None
    context = ssl.create_default_context(cafile=str(settings.node_tls_ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


async def start_site(
    app: web.Application,
    listen: str,
    tls: ssl.SSLContext | None = None,
    tcp_congestion: str = "",
) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on ``listen``; the connections it accepts use the TCP congestion control
    ``tcp_congestion`` ("" the system's default)."""
    host, port = split_listen(listen)
    sockets = listening_sockets(host, port, tcp_congestion, backlog=BACKLOG)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    try:
        await runner.setup()
        for sock in sockets:
            await web.SockSite(runner, sock, ssl_context=tls, backlog=BACKLOG).start()
    except BaseException:
        await runner.cleanup()
        for sock in sockets:
            sock.close()
        raise
    return runner, url_of(host, port, tls is not None)


async def wait_for_stop() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")


def gateway_app(
    storage: Storage,
    settings: Settings,
    root: Credential,
    admin_routes: Mapping[str, AdminHandler] | None = None,
) -> web.Application:
    config = GatewayConfig(
        region=settings.region,
        owner_id=root.access_key,
        owner_name="root",
        max_object_size_bytes=settings.max_object_size_bytes,
        virtual_host_suffix=settings.virtual_host_suffix,
        max_clock_skew_s=settings.max_clock_skew_s,
    )
    return make_app(Gateway(storage, config, CredentialStore([root]).secret_for, admin_routes))


def healing(sets: ErasureSets, settings: Settings, state_dir: Path) -> tuple[Healer, HealService]:
    """The heal queue + scanner of this process, configured from settings."""
    healer = Healer(
        sets,
        rate_bytes_per_s=settings.heal_rate_mb_s * 1e6 or None,
        state_path=state_dir / "heal-state.json",
    )
    return healer, HealService(healer, settings.heal_scan_interval_s, settings.scrub_interval_s)


def print_endpoint(endpoint: str, root: Credential, settings: Settings, detail: str) -> None:
    print(
        f"Huimin S3 endpoint: {endpoint}\n"
        f"  access key: {root.access_key}\n"
        f"  secret key: {root.secret_key}\n"
        f"  region:     {settings.region}\n"
        f"  {detail}",
        flush=True,
    )


def run(main: Coroutine[Any, Any, None], settings: Settings) -> None:
    """Run a process's main coroutine with the process-wide set-up applied first."""
    tune_scheduling(settings.sched_policy)  # before any thread starts: they inherit it
    tune_malloc(settings.block_size_bytes)
    setup_logging(settings.log_level)
    import uvloop

    uvloop.install()
    tune_gc()
    asyncio.run(main)
