"""The read path over inline objects (shards in the records agree() fetched): the direct path
verifies every block and reads around a bad or missing data shard like the streaming path."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from storage.api import BytesBody, Storage
from storage.drive import Drive
from storage.objects import ErasureObjects, ErasureReader
from storage.records import ObjectRecord
from storage.sets import ECParams
from storage.store import build_storage, open_local_drives

# 4 KiB blocks: an inline object of up to 16 KiB has several blocks.
PARAMS = ECParams(codec="isal", k=4, m=2, block_size=4096, inline_threshold=16 * 1024)


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    local = open_local_drives(tmp_path, 6, 3)
    drives: list[Drive] = list(local.drives)
    yield build_storage("test-deployment", drives, PARAMS, min_part_size=64 * 1024)
    local.close()


def flipped(record: ObjectRecord, at: int) -> ObjectRecord:
    assert record.inline is not None
    damaged = bytearray(record.inline)
    damaged[at] ^= 0xFF
    return record.for_shard(record.shard_index, bytes(damaged))


async def put_and_agree(
    storage: Storage, data: bytes
) -> tuple[ErasureObjects, ObjectRecord, Sequence[ObjectRecord | None]]:
    await storage.buckets.create_bucket("bkt", "me", "us-east-1")
    await storage.objects.put_object("bkt", "k", BytesBody(data), len(data), {})
    objects = storage.objects
    assert isinstance(objects, ErasureObjects)
    _, agreement = await objects.agree("bkt", "k")
    # The data shards' drives were asked (they agreed); parity copies come on demand.
    assert sorted(c.shard_index for c in agreement.copies if c is not None) == [0, 1, 2, 3]
    return objects, agreement.version, agreement.copies


async def read(
    objects: ErasureObjects,
    record: ObjectRecord,
    copies: Sequence[ObjectRecord | None],
    start: int,
    end: int,
) -> bytes:
    oset = objects.sets.for_object("bkt", "k")
    chunks = ErasureReader(record, oset.drives, copies).stream(start, end)
    return b"".join([bytes(c) async for c in chunks])


@pytest.mark.parametrize("size", [1, 4096, 10_000, 16 * 1024])
def test_inline_reads_whole_and_ranges(storage: Storage, size: int) -> None:
    data = os.urandom(size)

    async def go() -> None:
        objects, record, copies = await put_and_agree(storage, data)
        assert await read(objects, record, copies, 0, size - 1) == data
        for start, end in [(0, 0), (size // 3, size - 1), (size - 1, size - 1)]:
            assert await read(objects, record, copies, start, end) == data[start : end + 1]

    asyncio.run(go())


@pytest.mark.parametrize("size", [4096, 10_000])
def test_inline_bad_or_missing_data_shards_are_read_around(
    storage: Storage, size: int, caplog: pytest.LogCaptureFixture
) -> None:
    data = os.urandom(size)

    async def go() -> None:
        objects, record, copies = await put_and_agree(storage, data)
        by_shard = {c.shard_index: p for p, c in enumerate(copies) if c is not None}
        damaged = list(copies)
        # Shard 0: a payload byte of its last block flipped; shard 1: no copy at all.
        first = copies[by_shard[0]]
        assert first is not None and first.inline is not None
        damaged[by_shard[0]] = flipped(first, len(first.inline) - 1)
        damaged[by_shard[1]] = None
        with caplog.at_level(logging.WARNING, logger="storage.part_reader"):
            assert await read(objects, record, damaged, 0, size - 1) == data
        assert any("degraded read: shard 0" in r.getMessage() for r in caplog.records)

    asyncio.run(go())


def test_inline_with_too_many_bad_shards_is_refused(storage: Storage) -> None:
    data = os.urandom(5000)

    async def go() -> None:
        objects, record, copies = await put_and_agree(storage, data)
        damaged: list[ObjectRecord | None] = list(copies)
        for p, c in enumerate(copies):
            if c is not None and c.shard_index in (0, 1, 2):  # m + 1 = 3 shards bad
                damaged[p] = flipped(c, len(c.inline or b"") - 1)
        with pytest.raises(Exception, match="shards readable"):
            await read(objects, record, damaged, 0, len(data) - 1)

    asyncio.run(go())


class RottenReads:
    """A drive whose shard reads come back with one byte flipped (bitrot on the way)."""

    def __init__(self, inner: Drive) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def read_shard(self, data_id: str, offset: int, length: int) -> bytes:
        data = bytearray(await self.inner.read_shard(data_id, offset, length))
        data[-1] ^= 0xFF
        return bytes(data)


@pytest.mark.parametrize("rotten", [(), (0,), (1, 3)])
def test_one_block_shard_files_are_verified_and_read_around(
    tmp_path: Path, rotten: tuple[int, ...]
) -> None:
    """A one-block object in shard files: each shard's block read whole (no stream), every
    block verified, up to m bad ones read around."""
    local = open_local_drives(tmp_path, 6, 3)
    params = ECParams(codec="isal", k=4, m=2, block_size=64 * 1024, inline_threshold=1024)
    drives: list[Drive] = list(local.drives)
    storage = build_storage("test-deployment", drives, params, min_part_size=64 * 1024)
    data = os.urandom(10_000)

    async def go() -> None:
        objects, record, copies = await put_and_agree(storage, data)
        assert all(c is None or c.inline is None for c in copies)
        oset = objects.sets.for_object("bkt", "k")
        readers: list[Drive] = [
            cast(Drive, RottenReads(d)) if oset.shard_of(p) in rotten else d
            for p, d in enumerate(oset.drives)
        ]
        chunks = ErasureReader(record, readers, copies).stream(0, len(data) - 1)
        assert b"".join([bytes(c) async for c in chunks]) == data

    try:
        asyncio.run(go())
    finally:
        local.close()
