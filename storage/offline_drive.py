"""A drive that could not be opened: every call fails, so quorum logic counts it as down.

Lets a process start with a broken drive folder (a dead disk, a folder replaced by a file) as
long as the sets keep their quorum, instead of refusing to start at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

from storage.drive import DriveInfo, ListRow, RowPage, ShardReader, ShardWriter
from storage.errors import DriveError
from storage.records import BucketRecord, ObjectRecord, PartRecord, UploadRecord


class OfflineDrive:
    def __init__(self, name: str, reason: str) -> None:
        self._name = name
        self.reason = reason

    @property
    def name(self) -> str:
        return self._name

    def close(self) -> None:
        pass

    def _fail(self) -> NoReturn:
        raise DriveError(f"{self._name}: offline: {self.reason}")

    async def info(self) -> DriveInfo:
        self._fail()

    async def make_bucket(self, bucket: BucketRecord) -> None:
        self._fail()

    async def get_bucket(self, name: str) -> BucketRecord:
        self._fail()

    async def list_buckets(self) -> list[BucketRecord]:
        self._fail()

    async def delete_bucket(self, name: str) -> None:
        self._fail()

    async def create_shard(self, data_id: str, size_bytes: int | None = None) -> ShardWriter:
        self._fail()

    async def read_shard(self, data_id: str, offset: int, length: int) -> bytes:
        self._fail()

    async def open_shard(self, data_id: str, offset: int, length: int) -> ShardReader:
        self._fail()

    async def commit_object(
        self, record: ObjectRecord, staged: Sequence[str], shard: bytes | None = None
    ) -> bool:
        self._fail()

    async def get_versions(self, bucket: str, key: str, inline: bool = True) -> list[ObjectRecord]:
        self._fail()

    async def prune_versions(
        self, bucket: str, key: str, before: tuple[int, str], durable: bool
    ) -> None:
        self._fail()

    async def delete_version(self, bucket: str, key: str, version_id: str) -> None:
        self._fail()

    async def list_versions(
        self, bucket: str, prefix: str, after: str, limit: int
    ) -> list[ListRow]:
        self._fail()

    async def list_page(
        self, bucket: str, prefix: str, after: str, limit: int, rows: bool, delimiter: str = ""
    ) -> RowPage:
        self._fail()

    async def put_upload(self, upload: UploadRecord) -> None:
        self._fail()

    async def get_upload(self, upload_id: str) -> UploadRecord:
        self._fail()

    async def list_uploads(
        self, bucket: str, prefix: str, after: tuple[str, str], limit: int
    ) -> list[UploadRecord]:
        self._fail()

    async def commit_part(self, part: PartRecord) -> None:
        self._fail()

    async def list_parts(self, upload_id: str) -> list[PartRecord]:
        self._fail()

    async def complete_upload(self, record: ObjectRecord, upload_id: str) -> bool:
        self._fail()

    async def abort_upload(self, upload_id: str) -> None:
        self._fail()
