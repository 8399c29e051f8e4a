"""The object layer over real local drives in temp folders (no HTTP): quorum, rollback, listing
across several erasure sets, multipart. Faults are injected by a wrapper around real drives."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from storage.api import BytesBody, Storage
from storage.buckets import ErasureBuckets
from storage.drive import Drive
from storage.errors import (
    BucketNotEmpty,
    BucketNotFound,
    DriveError,
    IncompleteUpload,
    ObjectNotFound,
    PartTooSmall,
    QuorumNotReached,
)
from storage.local_drive import LocalDrive
from storage.sets import ECParams, ErasureSets
from storage.store import LocalDrives, build_storage, open_local_drives, storage_over

PARAMS = ECParams(codec="isal", k=4, m=2, block_size=64 * 1024, inline_threshold=16 * 1024)


Body = BytesBody


class Faulty:
    """A drive that fails the named methods while ``broken`` is set."""

    def __init__(self, inner: Drive) -> None:
        self.inner = inner
        self.broken: set[str] = set()
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            if name in self.broken or "*" in self.broken:
                raise DriveError(f"injected failure in {name}")
            return await attr(*args, **kwargs)

        return call


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Storage, list[Faulty], LocalDrives]]:
    local = open_local_drives(tmp_path, 12, 4)  # 12 drives = two sets of 4+2
    drives = [Faulty(d) for d in local.drives]
    storage = build_storage("test-deployment", drives, PARAMS, min_part_size=64 * 1024)  # type: ignore[arg-type]
    yield storage, drives, local
    local.close()


async def read_all(storage: Storage, bucket: str, key: str) -> bytes:
    reader = await storage.objects.open_object(bucket, key)
    return b"".join([bytes(c) async for c in reader.stream(0, reader.info.size - 1)])


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def set_drives(storage: Storage, drives: list[Faulty], bucket: str, key: str) -> list[Faulty]:
    oset = storage.objects.sets.for_object(bucket, key)  # type: ignore[attr-defined]
    return [d for d in drives if any(d is x for x in oset.drives)]


@pytest.mark.parametrize("size", [0, 1, 16 * 1024, 16 * 1024 + 1, 64 * 1024, 300_000])
def test_round_trip_and_degraded_reads(env: Any, size: int) -> None:
    storage, drives, _ = env
    data = os.urandom(size)

    async def go() -> None:
        await storage.buckets.create_bucket("bkt", "me", "us-east-1")
        info = await storage.objects.put_object("bkt", "k", Body(data), size, {})
        assert info.etag == hashlib.md5(data).hexdigest()
        assert await read_all(storage, "bkt", "k") == data
        for d in set_drives(storage, drives, "bkt", "k")[:2]:  # m = 2 drives fail
            d.broken = {"open_shard", "get_versions"}
        assert await read_all(storage, "bkt", "k") == data

    run(go())


@pytest.mark.parametrize("size", [1000, 300_000])  # inline, shard files
def test_reads_start_from_the_k_data_drives(env: Any, size: int) -> None:
    """k drives agreeing on the newest version decide a read (k + write quorum > k + m); the
    parity drives are asked only when a data shard turns out unreadable."""
    storage, _, _ = env
    data = os.urandom(size)

    async def go() -> None:
        await storage.buckets.create_bucket("bkt", "me", "us-east-1")
        await storage.objects.put_object("bkt", "k", Body(data), size, {})
        oset = storage.objects.sets.for_object("bkt", "k")
        by_shard = {oset.shard_of(p): d for p, d in enumerate(oset.drives)}
        for d in oset.drives:
            d.calls.clear()
        assert await read_all(storage, "bkt", "k") == data
        assert [by_shard[s].calls["get_versions"] for s in range(6)] == [1, 1, 1, 1, 0, 0]
        # Two data shards unreadable (shard files gone, inline rows unreadable): the parity
        # drives are asked and the read still succeeds.
        broken = "open_shard" if size > PARAMS.inline_threshold else "get_versions"
        for s in (0, 1):
            by_shard[s].broken = {broken}
        assert await read_all(storage, "bkt", "k") == data
        assert by_shard[4].calls["get_versions"] == 1

    run(go())


def test_head_reads_the_records_without_their_inline_shards(env: Any, monkeypatch: Any) -> None:
    """HEAD needs the version, not its bytes: the drives leave an inline shard unread (up to
    1/k of the inline threshold per drive); GET reads them."""
    storage, drives, _ = env
    data = os.urandom(10_000)
    asked: list[bool] = []

    async def go() -> None:
        await storage.buckets.create_bucket("bkt", "me", "us-east-1")
        info = await storage.objects.put_object("bkt", "k", Body(data), len(data), {})
        for d in set_drives(storage, drives, "bkt", "k"):
            get_versions = d.inner.get_versions

            async def spy(
                bucket: str, key: str, inline: bool = True, real: Any = get_versions
            ) -> Any:
                asked.append(inline)
                return await real(bucket, key, inline)

            monkeypatch.setattr(d.inner, "get_versions", spy)
        head = await storage.objects.head_object("bkt", "k")
        assert (head.etag, head.size, head.version_id) == (info.etag, 10_000, info.version_id)
        assert asked and not any(asked)
        asked.clear()
        assert await read_all(storage, "bkt", "k") == data
        assert asked and all(asked)

    run(go())


def roots(local: LocalDrives) -> list[Path]:
    return [d.root for d in local.drives if isinstance(d, LocalDrive)]


def shard_files(local: LocalDrives) -> list[Path]:
    return [f for r in roots(local) for f in (r / "data").rglob("*") if f.is_file()]


def staged_files(local: LocalDrives) -> list[Path]:
    return [f for r in roots(local) for f in (r / "tmp").iterdir()]


@pytest.mark.parametrize("size", [16 * 1024 + 1, 64 * 1024])  # above inline, one block
def test_one_block_parts_go_with_the_commit(env: Any, size: int) -> None:
    """A part of one block is encoded in memory and each drive's shard file travels with its
    commit (no shard stream): shard files in data/, nothing left staged. It is read back with
    one read per shard (no stream either)."""
    storage, drives, local = env
    data = os.urandom(size)

    async def go() -> None:
        await storage.buckets.create_bucket("bkt", "me", "us-east-1")
        await storage.objects.put_object("bkt", "k", Body(data), size, {})
        assert sum(d.calls["create_shard"] for d in drives) == 0
        assert len(shard_files(local)) == 6 and staged_files(local) == []
        versions = await set_drives(storage, drives, "bkt", "k")[0].get_versions("bkt", "k")
        assert versions[0].inline is None and versions[0].parts[0].data_id is not None
        assert await read_all(storage, "bkt", "k") == data
        # Read back in one call per shard, not a stream; two data shards lost: still read.
        assert sum(d.calls["read_shard"] for d in drives) == 4
        assert sum(d.calls["open_shard"] for d in drives) == 0
        oset = storage.objects.sets.for_object("bkt", "k")
        for p in (0, 1):
            oset.drives[p].broken = {"read_shard"}
        assert await read_all(storage, "bkt", "k") == data

    run(go())


def test_a_failed_one_round_commit_leaves_no_shard(env: Any, monkeypatch: Any) -> None:
    """A drive that staged the shard but failed the index write removes the shard; with too
    few drives committed the write is rolled back everywhere."""
    storage, drives, local = env
    data = os.urandom(40_000)

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise sqlite3.OperationalError("injected: disk I/O error")

    async def go() -> None:
        await storage.buckets.create_bucket("bkt", "me", "us-east-1")
        members = set_drives(storage, drives, "bkt", "k")
        monkeypatch.setattr(cast(LocalDrive, members[0].inner)._index, "insert_object", failing)
        await storage.objects.put_object("bkt", "k", Body(data), len(data), {})
        assert len(shard_files(local)) == 5 and staged_files(local) == []
        for d in members[1:3]:  # now more than m drives fail: rolled back
            monkeypatch.setattr(cast(LocalDrive, d.inner)._index, "insert_object", failing)
        with pytest.raises(QuorumNotReached):
            await storage.objects.put_object("bkt", "k", Body(os.urandom(40_000)), 40_000, {})
        assert len(shard_files(local)) == 5 and staged_files(local) == []
        assert await read_all(storage, "bkt", "k") == data

    run(go())


def test_failed_write_keeps_the_previous_version(env: Any) -> None:
    storage, drives, _ = env
    old, new = os.urandom(200_000), os.urandom(200_000)

    async def go() -> None:
        await storage.buckets.create_bucket("bkt", "me", "us-east-1")
        await storage.objects.put_object("bkt", "k", Body(old), len(old), {})
        members = set_drives(storage, drives, "bkt", "k")
        for d in members[:3]:  # more than m drives refuse the commit
            d.broken = {"commit_object"}
        with pytest.raises(QuorumNotReached):
            await storage.objects.put_object("bkt", "k", Body(new), len(new), {})
        for d in members:
            d.broken = set()
        assert await read_all(storage, "bkt", "k") == old

    run(go())


@pytest.mark.parametrize("size", [1000, 200_000])  # inline, shard files
def test_an_overwrite_answers_before_its_prune_which_then_lands(
    env: Any, monkeypatch: Any, size: int
) -> None:
    """The superseded version goes from every drive after the write's answer: held prunes do
    not hold up the PUT, the new version is what reads see meanwhile, and once they run each
    drive keeps one version (and the new version's shard files only)."""
    storage, drives, local = env
    old, new = os.urandom(size), os.urandom(size)
    gate = asyncio.Event()

    async def go() -> None:
        await storage.buckets.create_bucket("bkt", "me", "us-east-1")
        await storage.objects.put_object("bkt", "k", Body(old), size, {})
        members = set_drives(storage, drives, "bkt", "k")
        for d in members:
            prune = d.inner.prune_versions

            async def held(*args: Any, prune: Any = prune) -> None:
                await gate.wait()
                await prune(*args)

            monkeypatch.setattr(d.inner, "prune_versions", held)
        await storage.objects.put_object("bkt", "k", Body(new), size, {})
        assert await read_all(storage, "bkt", "k") == new
        assert [len(await d.get_versions("bkt", "k")) for d in members] == [2] * 6
        gate.set()
        await storage.objects.settle()
        assert [len(await d.get_versions("bkt", "k")) for d in members] == [1] * 6
        assert len(shard_files(local)) == (6 if size > PARAMS.inline_threshold else 0)
        assert await read_all(storage, "bkt", "k") == new

    run(go())


def test_write_with_m_drives_down_succeeds_and_reads_back(env: Any) -> None:
    storage, drives, _ = env
    data = os.urandom(150_000)

    async def go() -> None:
        await storage.buckets.create_bucket("bkt", "me", "us-east-1")
        members = set_drives(storage, drives, "bkt", "k")
        for d in members[:2]:
            d.broken = {"*"}
        await storage.objects.put_object("bkt", "k", Body(data), len(data), {})
        for d in members[:2]:  # they come back without the object (healing is separate)
            d.broken = set()
        assert await read_all(storage, "bkt", "k") == data
        assert (await storage.listing.list_objects("bkt", "", "", "", 10)).objects[0].key == "k"

    run(go())


def test_short_body_stores_nothing(env: Any) -> None:
    storage, _, local = env

    async def go() -> None:
        await storage.buckets.create_bucket("bkt", "me", "us-east-1")
        with pytest.raises(IncompleteUpload):
            await storage.objects.put_object("bkt", "k", Body(b"x" * 1000), 200_000, {})
        with pytest.raises(ObjectNotFound):
            await storage.objects.head_object("bkt", "k")

    run(go())
    for drive in local.drives:
        assert list((drive.root / "tmp").iterdir()) == []


def test_delete_and_bucket_rules(env: Any) -> None:
    storage, _, _ = env

    async def go() -> None:
        with pytest.raises(BucketNotFound):
            await storage.objects.put_object("nope", "k", Body(b"x"), 1, {})
        await storage.buckets.create_bucket("bkt", "me", "us-east-1")
        await storage.objects.put_object("bkt", "k", Body(b"x"), 1, {})
        with pytest.raises(BucketNotEmpty):
            await storage.buckets.delete_bucket("bkt")
        await storage.objects.delete_object("bkt", "k")
        await storage.objects.delete_object("bkt", "k")  # idempotent
        with pytest.raises(ObjectNotFound):
            await storage.objects.head_object("bkt", "k")
        await storage.buckets.delete_bucket("bkt")
        with pytest.raises(BucketNotFound):
            await storage.buckets.head_bucket("bkt")

    run(go())


def test_listing_merges_sets_with_prefixes_and_pages(env: Any) -> None:
    storage, drives, _ = env
    keys = sorted(
        [f"a/{i:03d}" for i in range(40)] + [f"b/{i}/x" for i in range(15)] + ["c", "d/e"]
    )

    async def go() -> None:
        await storage.buckets.create_bucket("bkt", "me", "us-east-1")
        await asyncio.gather(
            *(storage.objects.put_object("bkt", k, Body(b"v"), 1, {}) for k in keys)
        )
        drives[0].broken = {"list_versions", "list_page"}  # one drive of one set is down
        seen: list[str] = []
        after = ""
        while True:
            page = await storage.listing.list_objects("bkt", "", "", after, 7)
            seen += [o.key for o in page.objects]
            if not page.is_truncated:
                break
            assert page.next_marker is not None
            after = page.next_marker
        assert seen == keys
        page = await storage.listing.list_objects("bkt", "", "/", "", 1000)
        assert page.common_prefixes == ["a/", "b/", "d/"]
        assert [o.key for o in page.objects] == ["c"]
        page = await storage.listing.list_objects("bkt", "b/", "/", "", 1000)
        assert page.common_prefixes == [f"b/{i}/" for i in sorted(range(15), key=str)]
        page = await storage.listing.list_objects("bkt", "", "/", "", 2)
        assert (page.common_prefixes, page.is_truncated, page.next_marker) == (
            ["a/", "b/"],
            True,
            "b/",
        )
        page = await storage.listing.list_objects("bkt", "", "/", "b/", 10)
        assert (page.common_prefixes, [o.key for o in page.objects]) == (["d/"], ["c"])

    run(go())


def test_multipart(env: Any) -> None:
    storage, _, _ = env
    part1, part2 = os.urandom(64 * 1024), os.urandom(1000)

    async def go() -> None:
        await storage.buckets.create_bucket("bkt", "me", "us-east-1")
        mp = storage.multipart
        upload = await mp.create_upload("bkt", "k", {"content-type": "a/b"}, None)
        p1 = await mp.upload_part("bkt", "k", upload, 1, Body(part1), len(part1))
        p2 = await mp.upload_part("bkt", "k", upload, 2, Body(part2), len(part2))
        small = await mp.upload_part("bkt", "k", upload, 3, Body(b"x"), 1)
        with pytest.raises(PartTooSmall):
            await mp.complete_upload("bkt", "k", upload, [(2, p2.etag), (3, small.etag)], {})
        assert [p.number for p in await mp.list_parts("bkt", "k", upload)] == [1, 2, 3]
        info = await mp.complete_upload("bkt", "k", upload, [(1, p1.etag), (2, p2.etag)], {})
        assert info.etag.endswith("-2")
        assert info.metadata["content-type"] == "a/b"
        assert await read_all(storage, "bkt", "k") == part1 + part2
        reader = await storage.objects.open_object("bkt", "k")
        mid = b"".join([bytes(c) async for c in reader.stream(60_000, 66_000)])
        assert mid == (part1 + part2)[60_000:66_001]

    run(go())


def test_pools_new_keys_go_to_the_emptiest_pool_old_keys_stay(tmp_path: Path) -> None:
    local = open_local_drives(tmp_path, 18, 4)  # pool 0: 12 drives (2 sets), pool 1: 6 drives
    try:
        sets = ErasureSets("test-deployment", list(local.drives), PARAMS, [12, 6])
        storage = storage_over(sets, min_part_size=64 * 1024)
        old, new = os.urandom(100_000), os.urandom(100_000)

        async def go() -> None:
            await storage.buckets.create_bucket("bkt", "me", "us-east-1")
            for i in range(10):
                await storage.objects.put_object("bkt", f"old-{i}", Body(old), len(old), {})

            async def pool_one() -> int:
                return 1

            sets.emptiest_pool = pool_one  # type: ignore[method-assign]
            for i in range(10):
                await storage.objects.put_object("bkt", f"new-{i}", Body(new), len(new), {})
            # An existing key is overwritten where it lives, not duplicated in the new pool.
            await storage.objects.put_object("bkt", "old-3", Body(new), len(new), {})
            upload = await storage.multipart.create_upload("bkt", "mp", {}, None)
            part = await storage.multipart.upload_part("bkt", "mp", upload, 1, Body(new), len(new))
            await storage.multipart.complete_upload("bkt", "mp", upload, [(1, part.etag)], {})

            pool1 = [d for s in sets.pools[1] for d in s]
            in_pool1 = {r.key for r in await pool1[0].list_versions("bkt", "", "", 100)}
            assert in_pool1 == {f"new-{i}" for i in range(10)} | {"mp"}
            assert await read_all(storage, "bkt", "old-3") == new
            assert await read_all(storage, "bkt", "old-4") == old
            assert await read_all(storage, "bkt", "new-4") == new
            assert await read_all(storage, "bkt", "mp") == new
            page = await storage.listing.list_objects("bkt", "", "", "", 1000)
            assert len(page.objects) == 21
            await storage.objects.delete_object("bkt", "new-4")
            await storage.objects.delete_object("bkt", "old-4")
            page = await storage.listing.list_objects("bkt", "", "", "", 1000)
            assert {"new-4", "old-4"}.isdisjoint(o.key for o in page.objects)

        run(go())
    finally:
        local.close()


def test_a_new_pool_as_large_as_the_old_learns_the_buckets(tmp_path: Path) -> None:
    local = open_local_drives(tmp_path, 24, 4)
    try:
        old = ErasureSets("dep", list(local.drives[:12]), PARAMS)
        grown = ErasureSets("dep", list(local.drives), PARAMS, [12, 12])

        async def go() -> None:
            await storage_over(old, 64 * 1024).buckets.create_bucket("bkt", "me", "us-east-1")
            assert await ErasureBuckets(grown).sync() == 12
            storage = storage_over(grown, 64 * 1024)
            assert (await storage.buckets.head_bucket("bkt")).name == "bkt"
            assert [b.name for b in await storage.buckets.list_buckets()] == ["bkt"]

        run(go())
    finally:
        local.close()
