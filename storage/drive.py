"""The Drive protocol: what the object layer needs from one drive, local or remote.

Every method returns an awaitable (a coroutine, or a remote drive's future as it is: no
coroutine of its own per call) and raises ``DriveError`` (or a subclass) on failure; the
object layer reduces per-drive outcomes with ``storage.quorum``. A drive never decides
anything about other drives: it stores shards and index rows atomically and answers for itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from storage.api import ListedObject
from storage.records import BucketRecord, ObjectRecord, PartRecord, UploadRecord

# A drive's listing row is the object a page lists: one class, so a page is the rows the
# merge picked, not a copy of each.
ListRow = ListedObject


@dataclass(frozen=True, slots=True)
class RowPage:
    """One drive's listing page in wire form, or only its digest.

    ``fields`` is the rows flattened (key, version id, mod time, size, etag, key, ...) or None
    when only the digest was asked for. ``digest`` is the SHA-256 of the page's versions in
    order (``storage.index.page_digest``): equal digests mean equal pages, so a set whose
    drives agree needs the rows of one drive only.
    """

    digest: str
    count: int  # rows in the page (a skip-scan page has one row per entry)
    last_key: str | None
    fields: list[str | int] | None

    def rows(self) -> list[ListRow]:
        f = self.fields or []
        # One column slice each, not a slice per row.
        return list(map(ListRow, f[0::5], f[1::5], f[2::5], f[3::5], f[4::5]))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class DriveInfo:
    name: str
    total_bytes: int
    free_bytes: int


class ShardWriter(Protocol):
    """A shard being written to a temp location; invisible until the drive commits it."""

    async def write(self, pieces: Sequence[bytes | memoryview]) -> None: ...

    async def finish(self) -> None:
        """Flush and fsync; the shard stays staged until commit."""
        ...

    async def abort(self) -> None: ...


@runtime_checkable
class BlockingShardWriter(ShardWriter, Protocol):
    """A shard writer whose writes may also run synchronously in a worker thread (a local file,
    a plain-socket upload to a node): the object layer then writes all such shards of a block
    from the thread that encoded it, in one thread hop."""

    def write_blocking(self, pieces: Sequence[bytes | memoryview]) -> None:
        """Write now; raise DriveError on failure."""
        ...


class ShardReader(Protocol):
    """One shard range read front to back (``Drive.open_shard``): a GET streams each shard of
    a part through one of these instead of asking for every batch of blocks."""

    async def read(self, n: int) -> bytes | memoryview:
        """The next ``n`` bytes of the range, exactly; DriveError if the drive fails or the
        range ends first."""
        ...

    async def close(self) -> None:
        """Stop reading (idempotent); what was not read is dropped."""
        ...


class Drive(Protocol):
    @property
    def name(self) -> str: ...

    def info(self) -> Awaitable[DriveInfo]: ...

    # Buckets (replicated to every drive).
    def make_bucket(self, bucket: BucketRecord) -> Awaitable[None]: ...
    def get_bucket(self, name: str) -> Awaitable[BucketRecord]: ...
    def list_buckets(self) -> Awaitable[list[BucketRecord]]: ...
    def delete_bucket(self, name: str) -> Awaitable[None]: ...

    # Shards.
    async def create_shard(self, data_id: str, size_bytes: int | None = None) -> ShardWriter:
        """A staged shard; ``size_bytes``, when known, is exactly what will be written."""
        ...

    async def read_shard(self, data_id: str, offset: int, length: int) -> bytes: ...

    async def open_shard(self, data_id: str, offset: int, length: int) -> ShardReader:
        """A reader of bytes [offset, offset + length) of a committed shard, read in order:
        DriveNotFound if there is no such shard. Memory stays bounded whatever the length."""
        ...

    # Object versions.
    def commit_object(
        self, record: ObjectRecord, staged: Sequence[str], shard: bytes | None = None
    ) -> Awaitable[bool]:
        """Move the staged shards (data ids) into place and insert the version, atomically.
        Returns whether other versions of the key remain on the drive (worth a prune).

        ``shard``: the whole shard file of ``staged``'s one data id, staged (and fsync'd) by
        this call instead of through ``create_shard``: a small part in one round trip."""
        ...

    def get_versions(
        self, bucket: str, key: str, inline: bool = True
    ) -> Awaitable[list[ObjectRecord]]:
        """All versions of a key on this drive, newest first; with their inline shards unless
        ``inline`` is False (then ``inline`` is None in every record: HEAD needs no shard)."""
        ...

    def prune_versions(
        self, bucket: str, key: str, before: tuple[int, str], durable: bool
    ) -> Awaitable[None]:
        """Delete versions ordered before ``before`` (mod_time_ns, version_id) and their shards.

        ``durable=False`` may skip the fsync: used when pruning what a committed version
        supersedes (losing that prune in a crash only leaves an older version behind)."""
        ...

    def delete_version(self, bucket: str, key: str, version_id: str) -> Awaitable[None]: ...

    def list_versions(
        self, bucket: str, prefix: str, after: str, limit: int
    ) -> Awaitable[list[ListRow]]:
        """Rows with key > after and key starting with prefix, by key then newest first:
        ``limit`` rows, plus the older versions of the last key (a key is never cut)."""
        ...

    def list_page(
        self, bucket: str, prefix: str, after: str, limit: int, rows: bool, delimiter: str = ""
    ) -> Awaitable[RowPage]:
        """The rows ``list_versions`` would return, as a RowPage: its digest always, its
        rows only when ``rows`` is set. With a ``delimiter``, a skip-scan page: up to ``limit``
        entries, each the newest row of a key, where a common prefix (``prefix`` + anything +
        ``delimiter``) is one entry, its first key, and its other keys are skipped."""
        ...

    # Multipart uploads.
    def put_upload(self, upload: UploadRecord) -> Awaitable[None]: ...
    def get_upload(self, upload_id: str) -> Awaitable[UploadRecord]: ...
    def list_uploads(
        self, bucket: str, prefix: str, after: tuple[str, str], limit: int
    ) -> Awaitable[list[UploadRecord]]: ...
    def commit_part(self, part: PartRecord) -> Awaitable[None]:
        """Move the part's staged shard into place and upsert the part row (replacing its shard)."""
        ...

    def list_parts(self, upload_id: str) -> Awaitable[list[PartRecord]]: ...

    def complete_upload(self, record: ObjectRecord, upload_id: str) -> Awaitable[bool]:
        """Insert the version, drop the upload and its part rows, delete unused part shards.
        Returns whether other versions of the key remain on the drive (worth a prune)."""
        ...

    def abort_upload(self, upload_id: str) -> Awaitable[None]: ...
