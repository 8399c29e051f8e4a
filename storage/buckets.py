"""Bucket operations. Bucket records are replicated to every drive of every set."""

from __future__ import annotations

import time
from collections import Counter

from storage.api import BucketInfo, ns_to_datetime
from storage.drive import Drive
from storage.errors import (
    BucketExists,
    BucketNotEmpty,
    BucketNotFound,
    DriveNotFound,
    QuorumNotReached,
)
from storage.quorum import reduce_write
from storage.records import BucketRecord
from storage.sets import ErasureSets, each, outcomes


def _info(record: BucketRecord) -> BucketInfo:
    return BucketInfo(
        name=record.name,
        created=ns_to_datetime(record.created_ns),
        owner=record.owner,
        region=record.region,
    )


class ErasureBuckets:
    def __init__(self, sets: ErasureSets) -> None:
        self.sets = sets

    @property
    def drives(self) -> list[Drive]:
        return self.sets.drives

    @property
    def quorum(self) -> int:
        """A majority of all drives: two bucket operations can never both win."""
        return len(self.drives) // 2 + 1

    async def create_bucket(self, name: str, owner: str, region: str) -> None:
        record = BucketRecord(name=name, created_ns=time.time_ns(), owner=owner, region=region)
        results = outcomes(await each(self.drives, lambda d: d.make_bucket(record)))
        if sum(isinstance(o, BucketExists) for o in results) >= self.quorum:
            raise BucketExists(name)
        # A drive that already had it (an earlier, partly failed create) counts as success.
        reduce_write([None if isinstance(o, BucketExists) else o for o in results], self.quorum)

    async def head_bucket(self, name: str) -> BucketInfo:
        results = await each(self.drives, lambda d: d.get_bucket(name))
        found = [r for r in results if isinstance(r, BucketRecord)]
        absent = sum(isinstance(r, DriveNotFound) for r in results)
        if len(found) >= self.quorum:
            return _info(found[0])
        if len(found) + absent < self.quorum:
            raise QuorumNotReached(f"{len(found) + absent} drives answered for bucket {name}")
        raise BucketNotFound(name)

    async def list_buckets(self) -> list[BucketInfo]:
        results = await each(self.drives, lambda d: d.list_buckets())
        answered = [r for r in results if isinstance(r, list)]
        if len(answered) < self.quorum:
            raise QuorumNotReached(f"{len(answered)} drives answered")
        counts: Counter[str] = Counter()
        records: dict[str, BucketRecord] = {}
        for listing in answered:
            for record in listing:
                counts[record.name] += 1
                records.setdefault(record.name, record)
        return [_info(records[n]) for n in sorted(records) if counts[n] >= self.quorum]

    async def sync(self) -> int:
        """Give every answering drive the buckets a majority holds (a replaced, empty drive
        learns the buckets at start-up). Returns how many bucket rows were added."""
        results = await each(self.drives, lambda d: d.list_buckets())
        counts: Counter[str] = Counter()
        records: dict[str, BucketRecord] = {}
        for listing in results:
            for record in listing if isinstance(listing, list) else ():
                counts[record.name] += 1
                records.setdefault(record.name, record)
        # Drives with no bucket at all are new (a replaced drive, a freshly added pool): the
        # majority is counted among the drives that have history, or a pool as large as the
        # existing ones could never learn their buckets.
        seasoned = sum(1 for r in results if isinstance(r, list) and r)
        quorum = seasoned // 2 + 1
        added = 0
        for drive, listing in zip(self.drives, results, strict=True):
            if not isinstance(listing, list):
                continue
            have = {r.name for r in listing}
            for name, count in counts.items():
                if count >= quorum and name not in have:
                    await drive.make_bucket(records[name])
                    added += 1
        return added

    async def delete_bucket(self, name: str) -> None:
        await self.head_bucket(name)
        # Check emptiness everywhere first, so a refusal never leaves the bucket half deleted.
        listings = await each(self.drives, lambda d: d.list_versions(name, "", "", 1))
        uploads = await each(self.drives, lambda d: d.list_uploads(name, "", ("", ""), 1))
        if any(isinstance(r, list) and r for r in (*listings, *uploads)):
            raise BucketNotEmpty(name)
        results = outcomes(await each(self.drives, lambda d: d.delete_bucket(name)))
        reduce_write([None if isinstance(o, DriveNotFound) else o for o in results], self.quorum)
