"""A Drive decorator that measures every call: latency by method, drive-level errors, health,
capacity (from ``info``) and shards written. Wraps any Drive (local, remote, offline), so the
object layer and the drives stay free of metrics code (MinIO's disk-id-check wrapper idea).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from functools import partial
from typing import Any, TypeVar, cast

from storage.drive import (
    BlockingShardWriter,
    Drive,
    DriveInfo,
    ListRow,
    RowPage,
    ShardReader,
    ShardWriter,
)
from storage.metrics import DriveMetrics, StorageMetrics
from storage.records import BucketRecord, ObjectRecord, PartRecord, UploadRecord

_T = TypeVar("_T")


def _timed(
    metrics: DriveMetrics, operation: str, call: Awaitable[_T], shards: int = 0
) -> Awaitable[_T]:
    """``call``, recorded when it ends: its latency, its error if any, and ``shards`` shards
    written if it succeeded.

    A future (a remote drive's call) is returned as it is, measured by a done callback: no
    coroutine around every drive call, and ``storage.sets.each`` needs no task for it.
    """
    if isinstance(call, asyncio.Future):
        call.add_done_callback(partial(_record, metrics, operation, time.perf_counter(), shards))
        return call
    return _timed_coroutine(metrics, operation, call, shards)


def _record(
    metrics: DriveMetrics, operation: str, start: float, shards: int, done: asyncio.Future[Any]
) -> None:
    # Cancellation (a client went away, a probe timed out) says nothing about the drive.
    if done.cancelled():
        return
    error = done.exception()
    metrics.record(operation, time.perf_counter() - start, error)
    if error is None and shards:
        metrics.record_shards_written(shards)


async def _timed_coroutine(
    metrics: DriveMetrics, operation: str, call: Awaitable[_T], shards: int
) -> _T:
    start = time.perf_counter()
    try:
        result = await call
    except Exception as exc:
        metrics.record(operation, time.perf_counter() - start, exc)
        raise
    metrics.record(operation, time.perf_counter() - start, None)
    if shards:
        metrics.record_shards_written(shards)
    return result


class MeteredShardWriter:
    def __init__(self, inner: ShardWriter, metrics: DriveMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def write(self, pieces: Sequence[bytes | memoryview]) -> None:
        await _timed(self._metrics, "shard_write", self._inner.write(pieces))

    async def finish(self) -> None:
        await _timed(self._metrics, "shard_finish", self._inner.finish())

    async def abort(self) -> None:
        # Cleanup after a failure; its own failure on a dead drive is expected, not news.
        await self._inner.abort()


class MeteredBlockingShardWriter(MeteredShardWriter):
    """Keeps ``write_blocking`` visible: the object layer writes local shards in one thread hop
    when a writer has it (``storage.streams.ShardWriters``)."""

    def __init__(self, inner: BlockingShardWriter, metrics: DriveMetrics) -> None:
        super().__init__(inner, metrics)
        self._blocking = inner

    def write_blocking(self, pieces: Sequence[bytes | memoryview]) -> None:
        start = time.perf_counter()
        try:
            self._blocking.write_blocking(pieces)
        except Exception as exc:
            self._metrics.record("shard_write", time.perf_counter() - start, exc)
            raise
        self._metrics.record("shard_write", time.perf_counter() - start, None)


class MeteredDrive:
    def __init__(self, inner: Drive, metrics: DriveMetrics) -> None:
        self.inner = inner
        self.drive_metrics = metrics  # read by storage.metrics.record_degraded_read

    @property
    def name(self) -> str:
        return self.inner.name

    async def info(self) -> DriveInfo:
        info = await _timed(self.drive_metrics, "info", self.inner.info())
        self.drive_metrics.record_capacity(info)
        return info

    # Buckets.
    def make_bucket(self, bucket: BucketRecord) -> Awaitable[None]:
        return _timed(self.drive_metrics, "make_bucket", self.inner.make_bucket(bucket))

    def get_bucket(self, name: str) -> Awaitable[BucketRecord]:
        return _timed(self.drive_metrics, "get_bucket", self.inner.get_bucket(name))

    def list_buckets(self) -> Awaitable[list[BucketRecord]]:
        return _timed(self.drive_metrics, "list_buckets", self.inner.list_buckets())

    def delete_bucket(self, name: str) -> Awaitable[None]:
        return _timed(self.drive_metrics, "delete_bucket", self.inner.delete_bucket(name))

    # Shards.
    async def create_shard(self, data_id: str, size_bytes: int | None = None) -> ShardWriter:
        writer = await _timed(
            self.drive_metrics, "create_shard", self.inner.create_shard(data_id, size_bytes)
        )
        # An attribute check, as the object layer does (runtime Protocol checks are slow).
        if hasattr(writer, "write_blocking"):
            return MeteredBlockingShardWriter(cast(BlockingShardWriter, writer), self.drive_metrics)
        return MeteredShardWriter(writer, self.drive_metrics)

    async def read_shard(self, data_id: str, offset: int, length: int) -> bytes:
        return await _timed(
            self.drive_metrics, "read_shard", self.inner.read_shard(data_id, offset, length)
        )

    async def open_shard(self, data_id: str, offset: int, length: int) -> ShardReader:
        # Timed until the stream is open; a stream failing later shows as a degraded read.
        return await _timed(
            self.drive_metrics, "open_shard", self.inner.open_shard(data_id, offset, length)
        )

    # Object versions.
    def commit_object(
        self, record: ObjectRecord, staged: Sequence[str], shard: bytes | None = None
    ) -> Awaitable[bool]:
        return _timed(
            self.drive_metrics,
            "commit_object",
            self.inner.commit_object(record, staged, shard),
            shards=len(record.parts),
        )

    def get_versions(
        self, bucket: str, key: str, inline: bool = True
    ) -> Awaitable[list[ObjectRecord]]:
        return _timed(
            self.drive_metrics, "get_versions", self.inner.get_versions(bucket, key, inline)
        )

    def prune_versions(
        self, bucket: str, key: str, before: tuple[int, str], durable: bool
    ) -> Awaitable[None]:
        return _timed(
            self.drive_metrics,
            "prune_versions",
            self.inner.prune_versions(bucket, key, before, durable),
        )

    def delete_version(self, bucket: str, key: str, version_id: str) -> Awaitable[None]:
        return _timed(
            self.drive_metrics, "delete_version", self.inner.delete_version(bucket, key, version_id)
        )

    def list_versions(
        self, bucket: str, prefix: str, after: str, limit: int
    ) -> Awaitable[list[ListRow]]:
        return _timed(
            self.drive_metrics,
            "list_versions",
            self.inner.list_versions(bucket, prefix, after, limit),
        )

    def list_page(
        self, bucket: str, prefix: str, after: str, limit: int, rows: bool, delimiter: str = ""
    ) -> Awaitable[RowPage]:
        return _timed(
            self.drive_metrics,
            "list_page",
            self.inner.list_page(bucket, prefix, after, limit, rows, delimiter),
        )

    # Multipart uploads.
    def put_upload(self, upload: UploadRecord) -> Awaitable[None]:
        return _timed(self.drive_metrics, "put_upload", self.inner.put_upload(upload))

    def get_upload(self, upload_id: str) -> Awaitable[UploadRecord]:
        return _timed(self.drive_metrics, "get_upload", self.inner.get_upload(upload_id))

    def list_uploads(
        self, bucket: str, prefix: str, after: tuple[str, str], limit: int
    ) -> Awaitable[list[UploadRecord]]:
        return _timed(
            self.drive_metrics,
            "list_uploads",
            self.inner.list_uploads(bucket, prefix, after, limit),
        )

    def commit_part(self, part: PartRecord) -> Awaitable[None]:
        return _timed(self.drive_metrics, "commit_part", self.inner.commit_part(part), shards=1)

    def list_parts(self, upload_id: str) -> Awaitable[list[PartRecord]]:
        return _timed(self.drive_metrics, "list_parts", self.inner.list_parts(upload_id))

    def complete_upload(self, record: ObjectRecord, upload_id: str) -> Awaitable[bool]:
        return _timed(
            self.drive_metrics, "complete_upload", self.inner.complete_upload(record, upload_id)
        )

    def abort_upload(self, upload_id: str) -> Awaitable[None]:
        return _timed(self.drive_metrics, "abort_upload", self.inner.abort_upload(upload_id))


def meter(drives: Sequence[Drive], metrics: StorageMetrics) -> list[MeteredDrive]:
    """Every drive wrapped, in the same order (placement depends on it)."""
    return [MeteredDrive(d, metrics.drive(d.name)) for d in drives]
