"""Observability of a Huimin process: its metrics registry and the unauthenticated endpoints
every process serves.

    /_huimin/metrics        Prometheus text exposition (OpenMetrics when asked for)
    /_huimin/health/live    200 while the process serves HTTP
    /_huimin/health/ready   200 when every erasure set has read and write quorum, else 503

The endpoints expose counts, names of drives and operations, never credentials, bucket or key
names. One ``Observability`` per process, created by the process's composition root:

    obs = Observability()
    sets = ErasureSets(deployment, obs.meter(drives), params)   # MeteredDrive around each
    app = gateway_app(...)
    obs.install_gateway(app, sets, heal_progress)               # endpoints + S3 request metrics

A storage node serves only ``metrics_handler(obs.registry)`` next to its own health routes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder

from gateway.metrics import GatewayMetrics
from storage.drive import Drive
from storage.health import is_ready, readiness_report
from storage.metered_drive import MeteredDrive, meter
from storage.metrics import HealProgress, StorageMetrics
from storage.monitor import DriveMonitor
from storage.sets import ErasureSets

METRICS_PATH = "/_huimin/metrics"
LIVE_PATH = "/_huimin/health/live"
READY_PATH = "/_huimin/health/ready"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Refresh = Callable[[], Awaitable[None]]
ReadyCheck = Callable[[], Awaitable[tuple[bool, Mapping[str, object]]]]


def new_registry() -> CollectorRegistry:
    """A registry with the process collectors (CPU, memory, open fds, GC, Python version)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def metrics_handler(registry: CollectorRegistry, refresh: Refresh | None = None) -> Handler:
    """An aiohttp handler serving ``registry``; ``refresh`` runs first (e.g. probe drives)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if refresh is not None:
            await refresh()
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        # Collecting reads /proc and formats every series: keep it off the event loop.
        body = await asyncio.to_thread(encode, registry)
        return web.Response(body=body, headers={"Content-Type": content_type})

    return handler


def live_handler() -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"})

    return handler


def ready_handler(check: ReadyCheck) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        ready, body = await check()
        return web.json_response(dict(body), status=200 if ready else 503)

    return handler


def endpoints_middleware(
    routes: Mapping[str, Handler],
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Serve ``routes`` (exact paths, GET/HEAD) ahead of an app's own routing.

    The gateway routes every path to its S3 handler; this lets a composition root add the
    observability endpoints without touching the gateway's router.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        own = routes.get(request.path) if request.method in ("GET", "HEAD") else None
        return await (own or handler)(request)

    return middleware


class Observability:
    """The metrics of one process: registry, storage metrics, S3 metrics once a gateway runs."""

    def __init__(self) -> None:
        # Counters' "_created" series double the series count for no dashboard use.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # (untyped upstream)
        self.registry = new_registry()
        self.storage = StorageMetrics(self.registry)
        self.gateway: GatewayMetrics | None = None
        self.monitor: DriveMonitor | None = None

    def meter(self, drives: Sequence[Drive]) -> list[MeteredDrive]:
        """Wrap drives so every call is measured (same order: placement depends on it)."""
        return meter(drives, self.storage)

    def install_gateway(
        self,
        app: web.Application,
        sets: ErasureSets,
        heal: Callable[[], HealProgress] | None = None,
        nodes: Callable[[], Mapping[str, bool]] | None = None,
    ) -> None:
        """Serve the endpoints on a gateway app and measure its S3 requests. Call before the
        app starts (aiohttp freezes the middleware list then).

        ``heal``: the healer's stats; ``nodes``: storage node name -> reachable (distributed
        gateways); both read when scraped.
        """
        self.gateway = GatewayMetrics(self.registry)
        self.monitor = monitor = DriveMonitor(sets.sets, sets.params.k, sets.params.m, self.storage)
        if heal is not None:
            self.storage.watch_heal(heal, len(sets.sets))
        if nodes is not None:
            self.storage.watch_nodes(nodes)

        async def ready() -> tuple[bool, Mapping[str, object]]:
            health = await monitor.check()
            return is_ready(health), readiness_report(health)

        routes = {
            METRICS_PATH: metrics_handler(self.registry, monitor.refresh),
            LIVE_PATH: live_handler(),
            READY_PATH: ready_handler(ready),
        }
        app.middlewares.append(endpoints_middleware(routes))
        app.middlewares.append(self.gateway.middleware)
