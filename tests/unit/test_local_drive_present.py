"""A local drive refuses index writes once its folder is gone (storage/local_drive.py): an open
SQLite connection would otherwise commit into unlinked files and acknowledge a lost write. The
check runs in the committer, once per group commit; a non-durable write switches the commit's
synchronous mode for that batch only."""

from __future__ import annotations

import asyncio
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from storage.errors import DriveError
from storage.index import Index
from storage.local_drive import LocalDrive
from storage.records import BucketRecord, ObjectRecord, PartRef


def record(key: str) -> ObjectRecord:
    return ObjectRecord(
        bucket="b", key=key, version_id="v1", mod_time_ns=1, size=3, etag="e",
        codec="isal", k=2, m=1, block_size=1024, shard_index=0,
        parts=(PartRef(1, 3, "e", None),), inline=b"abc",
    )  # fmt: skip


def test_writes_fail_once_the_folder_is_removed(tmp_path: Path) -> None:
    async def scenario() -> None:
        with ThreadPoolExecutor(2) as pool:
            drive = LocalDrive(tmp_path / "d1", pool)
            try:
                await drive.make_bucket(BucketRecord("b", 1, "me"))
                assert await drive.commit_object(record("k1"), []) is False
                shutil.rmtree(tmp_path / "d1")
                with pytest.raises(DriveError):
                    await drive.commit_object(record("k2"), [])
                (tmp_path / "d1").mkdir()  # replaced: another index file at the same path
                (tmp_path / "d1" / "index.sqlite3").write_bytes(b"")
                with pytest.raises(DriveError, match="removed or replaced"):
                    await asyncio.gather(
                        drive.commit_object(record("k2"), []),
                        drive.make_bucket(BucketRecord("c", 1, "me")),
                    )
            finally:
                drive.close()

    asyncio.run(scenario())


def test_a_failing_check_fails_the_whole_batch_and_later_ones_commit(tmp_path: Path) -> None:
    broken = [True]

    def check() -> None:
        if broken[0]:
            raise DriveError("gone")

    index = Index(tmp_path / "i.db", before_commit=check)
    try:
        with pytest.raises(DriveError):
            index.make_bucket(BucketRecord("b", 1, "me")).result()
        broken[0] = False
        index.make_bucket(BucketRecord("b", 1, "me")).result()
        index.insert_object(record("k"), lambda: None, lambda _: None).result()
        index.delete_version("b", "k", "v1", lambda _: None).result()  # durable=False
        index.insert_object(record("k"), lambda: None, lambda _: None).result()
        assert index.get_versions("b", "k") == [record("k")]
    finally:
        index.close()
