"""Metrics: bounded label sets, the MeteredDrive decorator, drive health, the drive monitor and
the S3 request middleware (in-memory twins of drives; a real aiohttp server on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast, get_args
from unittest.mock import AsyncMock, MagicMock

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from gateway.metrics import OPERATION, OPERATIONS, TENANT, GatewayMetrics
from gateway.operations import Operation
from huimin.observability import METRICS_PATH, READY_PATH, Observability
from storage.drive import Drive, DriveInfo
from storage.errors import BitrotError, BucketNotFound, DriveError, DriveNotFound
from storage.heal import HealStats
from storage.metered_drive import MeteredBlockingShardWriter, MeteredDrive, meter
from storage.metrics import (
    DRIVE_OPERATIONS,
    FAILING_AFTER_ERRORS,
    StorageMetrics,
    record_bitrot,
    record_degraded_read,
)
from storage.monitor import DriveMonitor
from storage.sets import ECParams, ErasureSets

# Every label any Huimin metric may carry. Bucket and key names never: unbounded, and private.
ALLOWED_LABELS = {"operation", "status", "tenant", "drive", "set", "node", "le"}
PROCESS_LABELS = {"implementation", "major", "minor", "patchlevel", "version", "generation"}


def sample_value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    assert value is not None, (name, labels)
    return value


def fake_drive(name: str = "d1") -> AsyncMock:
    inner = AsyncMock()
    inner.name = name
    inner.info.return_value = DriveInfo(name=name, total_bytes=1000, free_bytes=250)
    return inner


def drive_methods() -> list[str]:
    """The Drive protocol's methods (``name`` is a property, not IO)."""
    return sorted(
        n for n, v in vars(Drive).items() if not n.startswith("_") and inspect.isfunction(v)
    )


async def call_every_method(drive: MeteredDrive) -> None:
    for method in drive_methods():
        fn = getattr(drive, method)
        args = [MagicMock() for _ in inspect.signature(fn).parameters]
        await fn(*args)


def test_every_drive_method_is_metered_with_a_known_operation_label():
    registry = CollectorRegistry()
    storage = StorageMetrics(registry)
    drive = MeteredDrive(fake_drive(), storage.drive("d1"))
    asyncio.run(call_every_method(drive))
    observed = {
        s.labels["operation"]
        for metric in registry.collect()
        if metric.name == "huimin_drive_io_duration_seconds"
        for s in metric.samples
        if s.name.endswith("_count")
    }
    assert observed == set(drive_methods())
    assert observed <= DRIVE_OPERATIONS
    assert sample_value(registry, "huimin_drive_used_bytes", drive="d1") == 750


def test_label_names_are_bounded():
    """Every metric Huimin defines (exercised or not) uses only the allowed label names, and
    label values stay in closed sets when exercised."""
    obs = Observability()
    registry = obs.registry
    GatewayMetrics(registry)
    storage = obs.storage
    metrics = storage.drive("drive-01")
    for op in DRIVE_OPERATIONS:
        metrics.record(op, 0.001, None)
    metrics.record("read_shard", 0.001, DriveError("drive-01: EIO"))
    metrics.record_degraded_read(BitrotError("drive-01: hash mismatch"))
    metrics.record_capacity(DriveInfo("drive-01", 10, 5))
    storage.watch_heal(HealStats, set_count=1)
    storage.watch_nodes(lambda: {"node-1": True, "node-2": False})

    # Definitions: label names of every prometheus_client metric registered (private
    # attribute, stable for years); the custom collectors are checked by their samples below.
    defined = [c for c in registry._collector_to_names if isinstance(c, MetricWrapperBase)]
    assert len(defined) >= 16  # shards written is a custom collector (checked below)
    for collector in defined:
        names = set(collector._labelnames)
        assert names <= ALLOWED_LABELS, (collector, names)

    # Exposition: what a scrape shows.
    exposed = {m.name for m in registry.collect()}
    assert {"huimin_drive_io_duration_seconds", "huimin_heal_queue_depth"} <= exposed
    assert "huimin_node_reachable" in exposed
    for metric in registry.collect():
        for sample in metric.samples:
            assert sample.name.startswith(("huimin_", "process_", "python_")), sample.name
            if sample.name.startswith("huimin_"):
                assert set(sample.labels) <= ALLOWED_LABELS, sample
            else:
                assert set(sample.labels) <= PROCESS_LABELS, sample
            if "operation" in sample.labels and sample.name.startswith("huimin_drive"):
                assert sample.labels["operation"] in DRIVE_OPERATIONS


def test_operation_label_values_are_the_operation_classes():
    assert {cls.__name__ for cls in get_args(Operation)} | {"Unknown"} == OPERATIONS
    assert len(OPERATIONS) == 22


def test_metric_names_follow_prometheus_conventions():
    obs = Observability()
    registry = obs.registry
    GatewayMetrics(registry)
    obs.storage.watch_heal(HealStats, set_count=1)
    obs.storage.drive("d1").record("info", 0.001, None)
    for metric in registry.collect():
        if not metric.name.startswith("huimin_"):
            continue
        if metric.type == "counter":
            # prometheus-client strips "_total" from the family name; samples carry it.
            assert all(s.name.endswith("_total") for s in metric.samples), metric.name
        if metric.type == "histogram":
            assert metric.name.endswith("_seconds"), metric.name
        if "bytes" in metric.name:
            assert metric.name.endswith(("_bytes", "_bytes_total")), metric.name


# --- drive health ---------------------------------------------------------------------------


def test_drive_fails_after_consecutive_errors_and_recovers():
    registry = CollectorRegistry()
    inner = fake_drive()
    drive = MeteredDrive(inner, StorageMetrics(registry).drive("d1"))

    async def scenario() -> list[float]:
        seen = []
        inner.get_bucket.side_effect = DriveError("d1: EIO")
        for _ in range(FAILING_AFTER_ERRORS):
            seen.append(sample_value(registry, "huimin_drive_healthy", drive="d1"))
            with pytest.raises(DriveError):
                await drive.get_bucket("b")
        seen.append(sample_value(registry, "huimin_drive_healthy", drive="d1"))
        # Answers that are not drive failures do not heal or hurt it ...
        inner.get_bucket.side_effect = DriveNotFound("b")
        with pytest.raises(DriveNotFound):
            await drive.get_bucket("b")
        inner.get_bucket.side_effect = BucketNotFound("b")
        with pytest.raises(BucketNotFound):
            await drive.get_bucket("b")
        seen.append(sample_value(registry, "huimin_drive_healthy", drive="d1"))
        # ... a success does.
        inner.get_bucket.side_effect = None
        await drive.get_bucket("b")
        seen.append(sample_value(registry, "huimin_drive_healthy", drive="d1"))
        return seen

    assert asyncio.run(scenario()) == [1.0] * FAILING_AFTER_ERRORS + [0.0, 0.0, 1.0]
    assert sample_value(registry, "huimin_drive_io_errors_total", drive="d1") == 3


def test_cancelled_calls_do_not_count_against_the_drive():
    registry = CollectorRegistry()
    inner = fake_drive()
    drive = MeteredDrive(inner, StorageMetrics(registry).drive("d1"))
    inner.read_shard.side_effect = asyncio.CancelledError()

    async def scenario() -> None:
        for _ in range(FAILING_AFTER_ERRORS + 1):
            with pytest.raises(asyncio.CancelledError):
                await drive.read_shard("id", 0, 1)

    asyncio.run(scenario())
    assert drive.drive_metrics.healthy
    assert sample_value(registry, "huimin_drive_io_errors_total", drive="d1") == 0


def test_shard_writer_keeps_the_blocking_path_and_counts_shards():
    registry = CollectorRegistry()
    inner = fake_drive()
    local_writer = MagicMock()  # write_blocking is synchronous, the rest async
    local_writer.write = AsyncMock()
    local_writer.finish = AsyncMock()
    inner.create_shard.return_value = local_writer
    drive = MeteredDrive(inner, StorageMetrics(registry).drive("d1"))

    async def scenario() -> None:
        writer = await drive.create_shard("id")
        assert isinstance(writer, MeteredBlockingShardWriter)
        writer.write_blocking([b"x"])
        await writer.write([b"y"])
        await writer.finish()
        record = MagicMock()
        record.parts = (1, 2)
        await drive.commit_object(record, ["id"])
        await drive.commit_part(MagicMock())

    asyncio.run(scenario())
    assert sample_value(registry, "huimin_erasure_shards_written_total") == 3
    count = "huimin_drive_io_duration_seconds_count"
    assert sample_value(registry, count, drive="d1", operation="shard_write") == 2
    inner.create_shard.return_value = AsyncMock(spec=["write", "finish", "abort"])
    writer = asyncio.run(drive.create_shard("id2"))
    assert not hasattr(writer, "write_blocking")  # remote writers stay non-blocking


def test_degraded_reads_and_bitrot_are_counted_by_drive():
    registry = CollectorRegistry()
    drive = MeteredDrive(fake_drive("d7"), StorageMetrics(registry).drive("d7"))
    record_degraded_read(drive, DriveError("d7: gone"))
    record_degraded_read(drive, BitrotError("d7: hash mismatch"))
    record_degraded_read(fake_drive("unmetered"), BitrotError("x"))  # ignored, no error
    assert sample_value(registry, "huimin_erasure_degraded_reads_total", drive="d7") == 2
    assert sample_value(registry, "huimin_erasure_bitrot_detected_total", drive="d7") == 1
    # The scrubber: bitrot counts, a drive that did not answer does not.
    record_bitrot(drive, BitrotError("d7: hash mismatch"))
    record_bitrot(drive, DriveError("d7: gone"))
    assert sample_value(registry, "huimin_erasure_bitrot_detected_total", drive="d7") == 2
    assert sample_value(registry, "huimin_erasure_degraded_reads_total", drive="d7") == 2


# --- drive monitor --------------------------------------------------------------------------


def test_monitor_probes_drives_and_reports_set_quorum():
    registry = CollectorRegistry()
    storage = StorageMetrics(registry)
    inner = [fake_drive(f"d{i}") for i in range(1, 7)]
    drives = meter(inner, storage)

    async def hang() -> DriveInfo:
        await asyncio.sleep(10)
        raise AssertionError("not reached")

    inner[0].info.side_effect = DriveError("d1: gone")
    inner[1].info.side_effect = hang
    monitor = DriveMonitor([drives[:3], drives[3:]], k=2, m=1, metrics=storage, probe_timeout_s=0.1)
    sets = asyncio.run(monitor.check())
    assert [(s.healthy, s.readable, s.writable) for s in sets] == [
        (1, False, False),
        (3, True, True),
    ]
    assert sample_value(registry, "huimin_drive_healthy", drive="d1") == 0
    assert sample_value(registry, "huimin_drive_healthy", drive="d2") == 0
    assert sample_value(registry, "huimin_erasure_set_drives_healthy", set="0") == 1
    assert sample_value(registry, "huimin_erasure_set_write_quorum_drives", set="1") == 2
    assert sample_value(registry, "huimin_drive_free_bytes", drive="d3") == 250


def test_a_scrape_does_not_wait_for_a_hanging_drive():
    registry = CollectorRegistry()
    storage = StorageMetrics(registry)
    inner = fake_drive()
    released = asyncio.Event()

    async def hang() -> DriveInfo:
        await released.wait()
        return DriveInfo("d1", 1, 1)

    inner.info.side_effect = hang
    monitor = DriveMonitor(
        [meter([inner], storage)], k=1, m=0, metrics=storage, refresh_budget_s=0.05
    )

    async def scenario() -> float:
        start = asyncio.get_running_loop().time()
        await monitor.refresh()
        took = asyncio.get_running_loop().time() - start
        released.set()
        await monitor.check()  # the same probe, still running, completes
        return took

    assert asyncio.run(scenario()) < 1
    assert inner.info.await_count == 1


def test_monitor_shares_one_probe_and_caches_it():
    registry = CollectorRegistry()
    storage = StorageMetrics(registry)
    inner = fake_drive()
    monitor = DriveMonitor([meter([inner], storage)], k=1, m=0, metrics=storage, max_age_s=60)

    async def scenario() -> None:
        await asyncio.gather(monitor.check(), monitor.check(), monitor.check())
        await monitor.check()

    asyncio.run(scenario())
    assert inner.info.await_count == 1


# --- S3 request middleware and endpoints ----------------------------------------------------


async def with_client(
    app: web.Application, body: Callable[[TestClient[Any, Any]], Awaitable[None]]
) -> None:
    async with TestClient(TestServer(app)) as client:
        await body(client)


def gateway_app(obs: Observability, drives: Sequence[Drive]) -> web.Application:
    async def s3(request: web.Request) -> web.StreamResponse:
        if request.path == "/bucket/key":
            request[OPERATION] = "PutObject"
            request[TENANT] = "root"
            await request.read()
            return web.Response(body=b"done")
        if request.path == "/weird":
            request[OPERATION] = "/weird/bucket-name"  # never becomes a label value
        return web.Response(status=403, body=b"<Error/>")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", s3)
    params = ECParams("isal", 2, 1, 1024 * 1024, 0)
    obs.install_gateway(app, ErasureSets("dep", drives, params))
    return app


def test_requests_are_measured_and_endpoints_served():
    obs = Observability()
    drives = obs.meter([fake_drive(f"d{i}") for i in range(3)])
    registry = obs.registry

    async def body(client: TestClient[Any, Any]) -> None:
        resp = await client.put("/bucket/key", data=b"x" * 1000)
        assert (resp.status, await resp.read()) == (200, b"done")
        assert (await client.get("/other")).status == 403
        assert (await client.get("/weird")).status == 403
        ready = await client.get(READY_PATH)
        assert ready.status == 200
        assert (await ready.json())["status"] == "ready"
        text = await (await client.get(METRICS_PATH)).text()
        assert "huimin_s3_requests_total" in text
        assert "bucket-name" not in text

    asyncio.run(with_client(gateway_app(obs, drives), body))
    requests = "huimin_s3_requests_total"
    assert sample_value(registry, requests, operation="PutObject", status="200", tenant="root") == 1
    assert (
        sample_value(registry, requests, operation="Unknown", status="403", tenant="anonymous") == 2
    )
    received = "huimin_s3_received_bytes_total"
    assert sample_value(registry, received, operation="PutObject", tenant="root") == 1000
    sent = "huimin_s3_sent_bytes_total"
    assert sample_value(registry, sent, operation="PutObject", tenant="root") == 4
    assert sample_value(registry, "huimin_s3_requests_in_flight") == 0
    # Scrapes and health checks are not S3 requests.
    total = sum(
        s.value for m in registry.collect() if m.name == "huimin_s3_requests" for s in m.samples
    )
    assert total == 3


def test_not_ready_without_quorum():
    obs = Observability()
    inner = [fake_drive(f"d{i}") for i in range(3)]
    inner[0].info.side_effect = DriveError("d0: gone")
    inner[1].info.side_effect = DriveError("d1: gone")

    async def body(client: TestClient[Any, Any]) -> None:
        resp = await client.get(READY_PATH)
        assert resp.status == 503
        doc = await resp.json()
        assert doc["status"] == "unavailable"
        assert doc["sets"][0]["healthy"] == 1

    asyncio.run(with_client(gateway_app(obs, obs.meter(inner)), body))


def test_client_going_away_is_recorded_as_499():
    obs = Observability()

    async def slow(request: web.Request) -> web.StreamResponse:
        request[OPERATION] = "GetObject"
        await asyncio.sleep(10)
        return web.Response()

    app = web.Application(middlewares=[GatewayMetrics(obs.registry).middleware])
    app.router.add_get("/{tail:.*}", slow)

    async def body(client: TestClient[Any, Any]) -> None:
        with pytest.raises(asyncio.TimeoutError):
            await client.get("/b/k", timeout=aiohttp.ClientTimeout(total=0.2))
        for _ in range(100):
            if obs.registry.get_sample_value(
                "huimin_s3_requests_total",
                {"operation": "GetObject", "status": "499", "tenant": "anonymous"},
            ):
                return
            await asyncio.sleep(0.02)
        raise AssertionError("no 499 recorded")

    async def run() -> None:
        server = TestServer(app, handler_cancellation=True)
        async with TestClient(server) as client:
            await body(client)

    asyncio.run(run())


class FutureCalls:
    """A drive whose calls are futures the test settles (as a remote drive's are)."""

    name = "d1"

    def __init__(self) -> None:
        self.futures: list[asyncio.Future[Any]] = []

    def _call(self, *args: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future

    get_versions = commit_object = prune_versions = _call


def test_futures_are_metered_by_callback_and_returned_as_they_are():
    registry = CollectorRegistry()
    inner = FutureCalls()
    # A partial Drive: the three methods the scenario calls, each answering with a future.
    drive = MeteredDrive(cast(Drive, inner), StorageMetrics(registry).drive("d1"))
    count = "huimin_drive_io_duration_seconds_count"

    async def scenario() -> None:
        ok = drive.get_versions("b", "k")
        assert ok is inner.futures[0]  # no coroutine around it
        inner.futures[0].set_result([])
        assert await ok == []
        for _ in range(FAILING_AFTER_ERRORS):
            failing = drive.prune_versions("b", "k", (0, ""), True)
            inner.futures[-1].set_exception(DriveError("d1: EIO"))
            with pytest.raises(DriveError):
                await failing
        # A cancelled call (a client went away) says nothing about the drive.
        drive.get_versions("b", "k")
        inner.futures[-1].cancel()  # the call's own future, as returned
        record = MagicMock()
        record.parts = (1, 2)
        committed = drive.commit_object(record, [])
        inner.futures[-1].set_result(True)
        assert await committed is True
        refused = drive.commit_object(record, [])
        inner.futures[-1].set_exception(BucketNotFound("b"))
        with pytest.raises(BucketNotFound):
            await refused
        await asyncio.sleep(0)  # done callbacks run

    asyncio.run(scenario())
    assert sample_value(registry, count, drive="d1", operation="get_versions") == 1
    assert sample_value(registry, count, drive="d1", operation="prune_versions") == 3
    assert sample_value(registry, count, drive="d1", operation="commit_object") == 2
    assert sample_value(registry, "huimin_drive_io_errors_total", drive="d1") == 3
    assert sample_value(registry, "huimin_drive_healthy", drive="d1") == 1.0  # the commit healed it
    assert sample_value(registry, "huimin_erasure_shards_written_total") == 2  # the one commit
