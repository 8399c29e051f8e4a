"""The seam between the gateway and storage: small protocols, split by client.

The gateway imports only this module (and storage.errors). The erasure-coded implementation lives
in storage.objects / storage.multipart / storage.listing / storage.buckets.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol


def ns_to_datetime(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


@dataclass(frozen=True, slots=True)
class BucketInfo:
    name: str
    created: datetime
    owner: str
    region: str


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    bucket: str
    key: str
    version_id: str
    size: int
    etag: str  # without quotes
    last_modified: datetime
    metadata: Mapping[str, str] = field(default_factory=dict)
    checksums: Mapping[str, str] = field(default_factory=dict)
    part_sizes: tuple[int, ...] = ()  # multipart objects: the size of every part, in order

    @property
    def parts_count(self) -> int:
        return max(len(self.part_sizes), 1)


@dataclass(frozen=True, slots=True)
class BodyDigest:
    """What a finished upload body produced: the MD5 (ETag) and the checksums to store."""

    md5_hex: str
    checksums: Mapping[str, str]


class UploadBody(Protocol):
    """An upload body as the object layer consumes it.

    ``read`` returns exactly ``size`` bytes unless the body ends (then fewer; b"" at the end).
    ``update`` is called from a worker thread with every block in order (hashing releases the
    GIL there). ``finish`` runs after the last block, before anything is committed: it verifies
    Content-MD5 / checksums / payload signatures and raises an S3 error to abort the write.
    """

    async def read(self, size: int) -> bytes | bytearray | memoryview: ...

    def update(self, block: bytes | bytearray | memoryview) -> None: ...

    async def finish(self) -> BodyDigest: ...


class BytesBody:
    """An UploadBody over bytes in memory (tools and tests; S3 bodies stream from the socket).

    >>> import asyncio
    >>> asyncio.run(BytesBody(b"abc").read(2))
    b'ab'
    """

    def __init__(self, data: bytes) -> None:
        self.data, self.pos, self.md5 = data, 0, hashlib.md5()

    async def read(self, size: int) -> bytes:
        out = self.data[self.pos : self.pos + size]
        self.pos += len(out)
        return out

    def update(self, block: bytes | bytearray | memoryview) -> None:
        self.md5.update(block)

    async def finish(self) -> BodyDigest:
        return BodyDigest(md5_hex=self.md5.hexdigest(), checksums={})


class ObjectReader(Protocol):
    @property
    def info(self) -> ObjectInfo: ...

    def stream(self, start: int, end_inclusive: int) -> AsyncGenerator[bytes | memoryview, None]:
        """The object's bytes in [start, end_inclusive], verified, in bounded memory; ``aclose``
        it when stopping early (it holds shard streams open)."""
        ...


@dataclass(frozen=True, slots=True)
class ListedObject:
    """One version as listing sees it (no inline data, no user metadata): a drive's listing
    row (``storage.drive.ListRow``), and an object of a page, which lists the rows it picked."""

    key: str
    version_id: str
    mod_time_ns: int
    size: int
    etag: str

    @property
    def order(self) -> tuple[int, str]:
        """Last-writer-wins order of versions: newer mod time, then larger version id."""
        return (self.mod_time_ns, self.version_id)

    @property
    def last_modified(self) -> datetime:
        return ns_to_datetime(self.mod_time_ns)


@dataclass(frozen=True, slots=True)
class ListPage:
    objects: list[ListedObject]
    common_prefixes: list[str]
    is_truncated: bool
    next_marker: str | None  # last key or prefix returned, when truncated


@dataclass(frozen=True, slots=True)
class UploadInfo:
    bucket: str
    key: str
    upload_id: str
    initiated: datetime
    metadata: Mapping[str, str]
    checksum_algorithm: str | None


@dataclass(frozen=True, slots=True)
class PartInfo:
    number: int
    size: int
    etag: str
    last_modified: datetime
    checksums: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class UploadsPage:
    uploads: list[UploadInfo]
    common_prefixes: list[str]
    is_truncated: bool
    next_key_marker: str | None
    next_upload_id_marker: str | None


class Buckets(Protocol):
    async def create_bucket(self, name: str, owner: str, region: str) -> None: ...
    async def head_bucket(self, name: str) -> BucketInfo: ...
    async def list_buckets(self) -> list[BucketInfo]: ...
    async def delete_bucket(self, name: str) -> None: ...


class Objects(Protocol):
    async def put_object(
        self,
        bucket: str,
        key: str,
        body: UploadBody,
        size: int,
        metadata: Mapping[str, str],
    ) -> ObjectInfo: ...

    async def open_object(self, bucket: str, key: str) -> ObjectReader: ...

    async def head_object(self, bucket: str, key: str) -> ObjectInfo: ...

    async def delete_object(self, bucket: str, key: str) -> None:
        """Idempotent: deleting a missing key succeeds (S3 answers 204)."""
        ...

    async def settle(self) -> None:
        """Wait for what finished writes left running (their prunes): before shutting down."""
        ...


class Listing(Protocol):
    async def list_objects(
        self, bucket: str, prefix: str, delimiter: str, after: str, max_keys: int
    ) -> ListPage: ...


class Multipart(Protocol):
    async def create_upload(
        self, bucket: str, key: str, metadata: Mapping[str, str], checksum_algorithm: str | None
    ) -> str: ...

    async def get_upload(self, bucket: str, key: str, upload_id: str) -> UploadInfo: ...

    async def upload_part(
        self, bucket: str, key: str, upload_id: str, number: int, body: UploadBody, size: int
    ) -> PartInfo: ...

    async def list_parts(self, bucket: str, key: str, upload_id: str) -> list[PartInfo]: ...

    async def complete_upload(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[tuple[int, str]],
        checksums: Mapping[str, str],
    ) -> ObjectInfo: ...

    async def abort_upload(self, bucket: str, key: str, upload_id: str) -> None: ...

    async def list_uploads(
        self,
        bucket: str,
        prefix: str,
        delimiter: str,
        key_marker: str,
        upload_id_marker: str,
        max_uploads: int,
    ) -> UploadsPage: ...


@dataclass(frozen=True, slots=True)
class Storage:
    """What the gateway is given: one implementation per protocol."""

    buckets: Buckets
    objects: Objects
    listing: Listing
    multipart: Multipart
