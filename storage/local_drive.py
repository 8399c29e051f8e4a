"""A drive folder on this machine: shard files plus its SQLite index.

Layout of a drive folder::

    huimin-drive.json        format version and drive id
    index.sqlite3            metadata index (WAL)
    tmp/<data_id>            shards being written (removed at start-up: nothing there was committed)
    data/<ab>/<data_id>      committed shard files, <ab> = first two chars of the data id

Blocking work runs in a small thread pool shared by the drives of a process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from storage.direct_file import DirectFile
from storage.drive import DriveInfo, ListRow, RowPage
from storage.errors import DriveError, DriveNotFound, StorageError
from storage.group_commit import PendingWrite
from storage.index import Index
from storage.records import (
    BucketRecord,
    ObjectRecord,
    PartRecord,
    UploadRecord,
    object_row_from_values,
)

DRIVE_FORMAT_VERSION = 1
READ_AHEAD_BYTES = 2 * 1024 * 1024  # one pread per this much of a streamed shard range
_T = TypeVar("_T")


def _file_id(path: Path | str) -> tuple[int, int]:
    st = os.stat(path)  # noqa: PTH116 - called per write: Path.stat() costs more
    return st.st_dev, st.st_ino


def _nothing(_: object) -> None:
    pass


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalShardWriter:
    """A shard being written into tmp/, around the page cache (storage.direct_file)."""

    def __init__(self, drive: LocalDrive, path: Path, file: DirectFile) -> None:
        self._drive = drive
        self._path = path
        self._file = file

    async def write(self, pieces: Sequence[bytes | memoryview]) -> None:
        await self._drive._run(self.write_blocking, pieces)

    def write_blocking(self, pieces: Sequence[bytes | memoryview]) -> None:
        try:
            self._file.write(pieces)
        except (OSError, ValueError) as exc:
            raise DriveError(f"{self._drive.name}: {exc}") from exc

    def receive_from(self, sock_fd: int, count: int, idle_s: float) -> int:
        """Blocking: append ``count`` more bytes read from socket ``sock_fd`` (see
        ``DirectFile.receive``); the bytes received. Owns ``sock_fd`` (closes it)."""
        try:
            return self._file.receive(sock_fd, count, idle_s)
        except TimeoutError:
            raise
        except (OSError, ValueError) as exc:
            raise DriveError(f"{self._drive.name}: {exc}") from exc

    async def finish(self) -> None:
        await self._drive._run(self._file.finish)

    async def abort(self) -> None:
        def remove() -> None:
            self._file.close()
            self._path.unlink(missing_ok=True)

        await self._drive._run(remove, cleanup=True)


class LocalShardReader:
    """A shard range read with ``pread`` in the drive's thread pool, ahead of the caller by up
    to ``READ_AHEAD_BYTES`` (equal-sized reads, a GET's framed blocks, then come from one
    ``pread`` without a copy). ``length`` is what the file holds of the range asked for."""

    def __init__(self, drive: LocalDrive, fd: int, offset: int, length: int) -> None:
        self._drive = drive
        self._fd: int | None = fd
        self._position = offset
        self._end = offset + length
        self.length = length
        self._ahead = memoryview(b"")

    @property
    def fd(self) -> int | None:
        """The open file (for ``os.sendfile``); None once closed."""
        return self._fd

    @property
    def position(self) -> int:
        """File offset of the next byte not read ahead yet."""
        return self._position

    def advance(self, n: int) -> None:
        """Skip ``n`` bytes (sent by the caller straight from ``fd``)."""
        self._position += n

    async def read(self, n: int) -> bytes | memoryview:
        if len(self._ahead) >= n:
            out, self._ahead = self._ahead[:n], self._ahead[n:]
            return out
        need = n - len(self._ahead)
        if self._position + need > self._end:
            raise DriveError(f"{self._drive.name}: shard ended before the range did")
        size = min(max(need, n * max(1, READ_AHEAD_BYTES // n)), self._end - self._position)
        data = await self._drive._run(self._pread, size, self._position)
        if len(data) < need:
            raise DriveError(f"{self._drive.name}: shard shorter than its size")
        self._position += len(data)
        if self._ahead:  # only when the reads are not all the same size
            joined = memoryview(bytes(self._ahead) + data)
            out, self._ahead = joined[:n], joined[n:]
            return out
        view = memoryview(data)
        self._ahead = view[n:]
        return data if len(data) == n else view[:n]

    def _pread(self, size: int, offset: int) -> bytes:
        if self._fd is None:
            raise DriveError(f"{self._drive.name}: shard reader closed")
        return os.pread(self._fd, size, offset)

    async def close(self) -> None:
        fd, self._fd = self._fd, None
        self._ahead = memoryview(b"")
        if fd is not None:
            os.close(fd)  # no IO to wait for: a read-only descriptor


class LocalDrive:
    def __init__(self, root: Path, executor: ThreadPoolExecutor) -> None:
        self.root = root
        self._executor = executor
        self._tmp = root / "tmp"
        self._data = root / "data"
        root.mkdir(parents=True, exist_ok=True)
        stamp = root / "huimin-drive.json"
        if stamp.exists():
            fmt = json.loads(stamp.read_text())["format"]
            if fmt != DRIVE_FORMAT_VERSION:
                raise RuntimeError(f"{root}: drive format {fmt} is not {DRIVE_FORMAT_VERSION}")
        else:
            stamp.write_text(json.dumps({"format": DRIVE_FORMAT_VERSION}))
        shutil.rmtree(self._tmp, ignore_errors=True)  # staged, never committed: garbage
        self._tmp.mkdir()
        self._data.mkdir(exist_ok=True)
        self._index_path = root / "index.sqlite3"
        # Index writes check the folder once per group commit, in the committer thread.
        self._index = Index(self._index_path, before_commit=self._check_present)
        self._index_id = _file_id(self._index_path)
        self._index_file = str(self._index_path)  # os.stat(str) is cheaper than Path.stat()
        self._present_checked = 0.0

    @property
    def name(self) -> str:
        return self.root.name

    def _present(self, fn: Callable[..., _T], *args: object) -> _T:
        """Run ``fn`` only while the folder still holds the index opened at start-up.

        An open SQLite connection keeps reading and writing the unlinked files of a deleted or
        replaced folder: without this check a write to a vanished drive would be acknowledged
        and then lost at the next restart.
        """
        self._check_present()
        return fn(*args)

    def _check_present(self) -> None:
        if _file_id(self._index_file) != self._index_id:
            raise DriveError(f"{self.name}: drive folder was removed or replaced")

    def close(self) -> None:
        self._index.close()

    async def _run(self, fn: Callable[..., _T], *args: object, cleanup: bool = False) -> _T:
        """Run blocking ``fn`` in the pool; ``cleanup`` work runs even on a vanished drive."""
        loop = asyncio.get_running_loop()
        try:
            if cleanup:
                return await loop.run_in_executor(self._executor, fn, *args)
            return await loop.run_in_executor(self._executor, self._present, fn, *args)
        except StorageError:
            raise
        except (
            OSError,
            ValueError,
            sqlite3.Error,
        ) as exc:  # IO errors, closed index, broken records
            raise DriveError(f"{self.name}: {exc}") from exc

    def _lookup(self, fn: Callable[..., _T], *args: object) -> _T:
        """A point read of the index, run right here on the event loop: a primary-key lookup
        in a warm SQLite page cache costs ~20 µs, less than handing it to a thread. (The drive
        folder's presence is re-checked at most once a second for reads; writes always check.)"""
        try:
            now = time.monotonic()
            if now - self._present_checked > 1.0:
                self._present(lambda: None)
                self._present_checked = now
            return fn(*args)
        except StorageError:
            raise
        except (OSError, ValueError, sqlite3.Error) as exc:
            raise DriveError(f"{self.name}: {exc}") from exc

    async def _write(self, submit: Callable[[], PendingWrite[_T]]) -> _T:
        """Queue an index write for the drive's next group commit and wait until it is durable
        (the committer checks the folder is still there before each commit)."""
        return await self.written(submit())

    async def written(self, pending: PendingWrite[_T]) -> _T:
        """Wait for a queued index write (``start_*``) to be durable; its result, or its
        error as the drive's coroutines raise it."""
        try:
            return await pending
        except StorageError:
            raise
        except (OSError, ValueError, sqlite3.Error) as exc:
            raise DriveError(f"{self.name}: {exc}") from exc

    def _data_path(self, data_id: str) -> Path:
        return self._data / data_id[:2] / data_id

    async def info(self) -> DriveInfo:
        usage = await self._run(shutil.disk_usage, self.root)
        return DriveInfo(name=self.name, total_bytes=usage.total, free_bytes=usage.free)

    # Buckets ---------------------------------------------------------------------------------

    async def make_bucket(self, bucket: BucketRecord) -> None:
        await self._write(lambda: self._index.make_bucket(bucket))

    async def get_bucket(self, name: str) -> BucketRecord:
        return self.lookup_bucket(name)

    def lookup_bucket(self, name: str) -> BucketRecord:
        """``get_bucket`` without a coroutine: a point read, done before this returns."""
        return self._lookup(self._index.get_bucket, name)

    async def list_buckets(self) -> list[BucketRecord]:
        return await self._run(self._index.list_buckets)

    async def delete_bucket(self, name: str) -> None:
        await self._write(lambda: self._index.delete_bucket(name))

    # Shards ----------------------------------------------------------------------------------

    async def create_shard(self, data_id: str, size_bytes: int | None = None) -> LocalShardWriter:
        path = self._tmp / data_id
        return LocalShardWriter(self, path, await self._run(DirectFile, str(path)))

    async def discard_staged(self, data_id: str) -> None:
        """Remove a staged (never committed) shard, if it is still there."""
        await self._run((self._tmp / data_id).unlink, True, cleanup=True)

    def _open_data(self, data_id: str) -> int:
        """A read-only descriptor of a committed shard file; DriveNotFound if there is none."""
        try:
            return os.open(self._data_path(data_id), os.O_RDONLY)
        except FileNotFoundError as exc:
            raise DriveNotFound(data_id) from exc

    async def read_shard(self, data_id: str, offset: int, length: int) -> bytes:
        def read() -> bytes:
            fd = self._open_data(data_id)
            try:
                return os.pread(fd, length, offset)
            finally:
                os.close(fd)

        return await self._run(read)

    async def open_shard(self, data_id: str, offset: int, length: int) -> LocalShardReader:
        def open_range() -> LocalShardReader:
            fd = self._open_data(data_id)
            try:
                held = max(0, min(length, os.fstat(fd).st_size - offset))
            except OSError:
                os.close(fd)
                raise
            return LocalShardReader(self, fd, offset, held)

        if offset < 0 or length < 0:
            raise DriveError(f"{self.name}: bad shard range {offset}+{length}")
        return await self._run(open_range)

    def _publish(self, staged: Sequence[str]) -> None:
        """Move staged shards into data/ and make the renames durable."""
        parents = set()
        for data_id in staged:
            target = self._data_path(data_id)
            target.parent.mkdir(exist_ok=True)
            (self._tmp / data_id).rename(target)
            parents.add(target.parent)
        for parent in parents:
            _fsync_dir(parent)

    def _unlink(self, data_ids: Sequence[str]) -> None:
        for data_id in data_ids:
            with contextlib.suppress(FileNotFoundError):
                self._data_path(data_id).unlink()

    # Object versions -------------------------------------------------------------------------

    def start_commit_inline(self, record: ObjectRecord) -> PendingWrite[bool]:
        """``commit_object(record, [])`` (a small object: its shard is ``record.inline``, no
        file to publish or clean up), queued now without a coroutine: ``written`` waits."""
        return self._index.insert_object(record, None, None)

    def start_commit_values(self, values: Any) -> PendingWrite[bool]:
        """``start_commit_inline`` of a record given as its fields by name, as a channel
        message carries it (``records.object_row_from_values``: no dataclass in between)."""
        return self._index.insert_row(object_row_from_values(values))

    def start_prune_versions(
        self, bucket: str, key: str, before: tuple[int, str], durable: bool
    ) -> PendingWrite[list[str]]:
        """``prune_versions`` queued now without a coroutine: ``written`` waits."""
        return self._index.prune_versions(bucket, key, before, durable, self._unlink)

    async def commit_object(
        self, record: ObjectRecord, staged: Sequence[str], shard: bytes | None = None
    ) -> bool:
        try:
            if shard is not None:
                if len(staged) != 1:
                    raise DriveError(f"{self.name}: one shard comes with one staged data id")
                await self._run(self._stage, staged[0], shard)
            elif not staged:
                return await self.written(self.start_commit_inline(record))
            return await self._write(
                lambda: self._index.insert_object(record, lambda: self._publish(staged), _nothing)
            )
        except BaseException:
            if staged:  # published into data/ inside a transaction that did not commit
                await self._run(self._unlink, staged, cleanup=True)
                if shard is not None:  # or still staged (the index write failed)
                    await self.discard_staged(staged[0])
            raise

    def _stage(self, data_id: str, shard: bytes) -> None:
        """Write a whole shard file into tmp/, durably."""
        file = DirectFile(str(self._tmp / data_id))
        try:
            file.write([shard])
        except BaseException:
            file.close()
            raise
        file.finish()

    async def get_versions(self, bucket: str, key: str, inline: bool = True) -> list[ObjectRecord]:
        return self.lookup_versions(bucket, key, inline)

    def lookup_versions(self, bucket: str, key: str, inline: bool = True) -> list[ObjectRecord]:
        """``get_versions`` without a coroutine (the node answers a GET's batch without a task
        per call): a point read, done before this returns."""
        return self._lookup(self._index.get_versions, bucket, key, inline)

    def lookup_version_values(self, bucket: str, key: str, inline: bool = True) -> list[list[Any]]:
        """``lookup_versions`` as lists of the records' field values (``records.object_values``),
        ready for a channel message."""
        return self._lookup(self._index.get_version_values, bucket, key, inline)

    async def prune_versions(
        self, bucket: str, key: str, before: tuple[int, str], durable: bool
    ) -> None:
        await self.written(self.start_prune_versions(bucket, key, before, durable))

    async def delete_version(self, bucket: str, key: str, version_id: str) -> None:
        await self._write(lambda: self._index.delete_version(bucket, key, version_id, self._unlink))

    async def list_versions(
        self, bucket: str, prefix: str, after: str, limit: int
    ) -> list[ListRow]:
        return await self._run(self._index.list_versions, bucket, prefix, after, limit)

    async def insert_objects(self, records: list[ObjectRecord]) -> None:
        """Bulk-load versions of new keys, inline shards only (Index.insert_objects)."""
        if any(r.inline is None for r in records):
            raise ValueError("bulk loading takes inline objects only")
        await self._write(lambda: self._index.insert_objects(records))

    async def list_page(
        self, bucket: str, prefix: str, after: str, limit: int, rows: bool, delimiter: str = ""
    ) -> RowPage:
        return await self._run(self._index.list_page, bucket, prefix, after, limit, rows, delimiter)

    # Multipart -------------------------------------------------------------------------------

    async def put_upload(self, upload: UploadRecord) -> None:
        await self._write(lambda: self._index.put_upload(upload))

    async def get_upload(self, upload_id: str) -> UploadRecord:
        return self._lookup(self._index.get_upload, upload_id)

    async def list_uploads(
        self, bucket: str, prefix: str, after: tuple[str, str], limit: int
    ) -> list[UploadRecord]:
        return await self._run(self._index.list_uploads, bucket, prefix, after, limit)

    async def commit_part(self, part: PartRecord) -> None:
        staged = [part.data_id]
        try:
            await self._write(
                lambda: self._index.upsert_part(part, lambda: self._publish(staged), self._unlink)
            )
        except BaseException:
            await self._run(self._unlink, staged, cleanup=True)
            raise

    async def list_parts(self, upload_id: str) -> list[PartRecord]:
        return self._lookup(self._index.list_parts, upload_id)

    async def complete_upload(self, record: ObjectRecord, upload_id: str) -> bool:
        return await self._write(
            lambda: self._index.complete_upload(record, upload_id, self._unlink)
        )

    async def abort_upload(self, upload_id: str) -> None:
        await self._write(lambda: self._index.abort_upload(upload_id, self._unlink))
