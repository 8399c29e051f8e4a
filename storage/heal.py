"""Healing: give every drive of a set its shard of every object again.

Two ways in: a queue of keys whose write missed drives (fed by the object layer), and a
scanner that walks every key of every set (after a crash, a replaced drive, or bitrot). For
one key, ``heal_object`` finds the newest readable version, decides which drives lack it or
hold a shard that fails its hashes, rebuilds those shards from k good ones (decode, re-encode,
frame) and commits them on the drive exactly as the original write would have. Bounded by a
byte-rate limit; progress is kept in memory and in a small JSON file, so a restarted scan
resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

from erasure import framing
from erasure.codec import get_codec
from erasure.layout import Layout
from storage.drive import Drive, ListRow, ShardWriter
from storage.errors import DriveNotFound, ObjectNotFound, QuorumNotReached, StorageError
from storage.metrics import record_bitrot
from storage.quorum import Agreement, pick_readable
from storage.records import ObjectRecord
from storage.sets import ErasureSets, ObjectSet, each
from storage.streams import ShardSource

log = logging.getLogger(__name__)

SCAN_BATCH = 500
QUEUE_LIMIT = 10_000
# A version held by fewer than k drives is an interrupted write; once this old it is garbage.
ABANDONED_AFTER_NS = 3600 * 10**9


@dataclass
class HealStats:
    """Counters a status call reports (also the scanner's resumable cursor)."""

    objects_checked: int = 0
    objects_healed: int = 0
    shards_rebuilt: int = 0
    bytes_rebuilt: int = 0  # shard bytes written by healing
    bytes_verified: int = 0  # shard bytes read to check hashes (deep scans)
    errors: int = 0
    queue_depth: int = 0
    scans_completed: int = 0
    scan_running: bool = False
    scan_set: int = 0
    scan_bucket: str = ""
    scan_key: str = ""
    scan_started: float = 0.0
    last_scan_seconds: float = 0.0
    rebuild_seconds: float = 0.0  # time spent rebuilding (for the MB/s figure)
    recent: list[str] = field(default_factory=list)


class RateLimit:
    """A byte budget per second; ``spend`` sleeps when healing runs ahead of it."""

    def __init__(self, bytes_per_s: float | None) -> None:
        self.bytes_per_s = bytes_per_s
        self._start = time.monotonic()
        self._spent = 0

    async def spend(self, n: int) -> None:
        if not self.bytes_per_s:
            return
        self._spent += n
        ahead = self._spent / self.bytes_per_s - (time.monotonic() - self._start)
        if ahead > 0:
            await asyncio.sleep(ahead)


class Healer:
    def __init__(
        self,
        sets: ErasureSets,
        rate_bytes_per_s: float | None = None,
        state_path: Path | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.sets = sets
        self.stats = HealStats()
        self.rate = RateLimit(rate_bytes_per_s)
        self.state_path = state_path
        self.clock = clock
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(QUEUE_LIMIT)
        self._scan_lock = asyncio.Lock()
        if state_path is not None and state_path.exists():
            saved = json.loads(state_path.read_text())
            self.stats.scan_set = saved.get("scan_set", 0)
            self.stats.scan_bucket = saved.get("scan_bucket", "")
            self.stats.scan_key = saved.get("scan_key", "")

    # The queue ------------------------------------------------------------------------------

    def enqueue(self, bucket: str, key: str) -> None:
        """A write reached quorum but missed drives: heal it soon (dropped when the queue is
        full; the scanner finds it later)."""
        try:
            self._queue.put_nowait((bucket, key))
        except asyncio.QueueFull:
            log.warning("heal queue full; %s/%s left to the scanner", bucket, key)
        self.stats.queue_depth = self._queue.qsize()

    async def run_queue(self, retry_after_s: float = 5.0) -> None:
        """Forever: heal queued keys; keys whose drives are still down are retried later."""
        while True:
            bucket, key = await self._queue.get()
            self.stats.queue_depth = self._queue.qsize()
            try:
                complete = await self.heal_object(bucket, key)
            except StorageError as exc:  # a drive failed or went away again: retried, no bug
                log.warning("healing %s/%s failed: %s", bucket, key, exc)
                self.stats.errors += 1
                complete = False
            except Exception:
                log.exception("healing %s/%s failed", bucket, key)
                self.stats.errors += 1
                complete = False
            if not complete:
                await asyncio.sleep(retry_after_s)
                self.enqueue(bucket, key)

    # One object -----------------------------------------------------------------------------

    async def heal_object(self, bucket: str, key: str, deep: bool = False) -> bool:
        """Rebuild what the drives of ``bucket/key``'s set (in every pool) miss. True when every
        drive now holds the readable version (False: some drive is still unreachable)."""
        complete = True
        for oset in self.sets.all_for_object(bucket, key):
            complete &= await self._heal_in(oset, bucket, key, deep)
        return complete

    async def _heal_in(self, oset: ObjectSet, bucket: str, key: str, deep: bool) -> bool:
        results = await each(oset.drives, lambda d: d.get_versions(bucket, key))
        per_drive = [None if isinstance(r, BaseException) else r for r in results]
        self.stats.objects_checked += 1
        try:
            agreement = pick_readable(per_drive, self.sets.params.k)
        except ObjectNotFound:
            await self._drop_abandoned(oset, bucket, key, per_drive)
            return all(v is not None for v in per_drive)
        except QuorumNotReached:
            return False
        targets = [
            p
            for p, (versions, copy) in enumerate(zip(per_drive, agreement.copies, strict=True))
            if versions is not None and copy is None
        ]
        if deep:
            targets += await self._corrupt(oset, agreement)
        if targets:
            await self._give_bucket(oset, bucket, targets)
            if not await self._rebuild(oset, agreement, sorted(set(targets))):
                return False  # a commit failed: the queue tries again
        return all(v is not None for v in per_drive)

    async def _give_bucket(self, oset: ObjectSet, bucket: str, targets: list[int]) -> None:
        """A drive that was unreachable when the bucket was created lacks its record and
        refuses the bucket's shards (BucketNotFound): give it the buckets a majority holds."""
        results = await each([oset.drives[p] for p in targets], lambda d: d.get_bucket(bucket))
        if any(isinstance(r, DriveNotFound) for r in results):
            from storage.buckets import ErasureBuckets

            added = await ErasureBuckets(self.sets).sync()
            log.info("gave %d bucket records to drives that lacked them", added)

    async def _drop_abandoned(
        self,
        oset: ObjectSet,
        bucket: str,
        key: str,
        per_drive: Sequence[Sequence[ObjectRecord] | None],
    ) -> None:
        """Versions no quorum holds (interrupted writes, deletes a drive missed), once old."""
        cutoff = self.clock() - ABANDONED_AFTER_NS
        for drive, versions in zip(oset.drives, per_drive, strict=True):
            for v in versions or ():
                if v.mod_time_ns < cutoff:
                    await drive.delete_version(bucket, key, v.version_id)

    async def _corrupt(self, oset: ObjectSet, agreement: Agreement[ObjectRecord]) -> list[int]:
        """Positions whose shard of the version fails its hashes anywhere."""
        record = agreement.version
        layout = Layout(record.codec, record.k, record.m, record.block_size)
        bad: list[int] = []
        for position, copy in enumerate(agreement.copies):
            if copy is None:
                continue
            for index, part in enumerate(record.parts):
                if part.size == 0:
                    continue
                source = ShardSource(oset.drives, agreement.copies, index, layout, part.size)
                last = layout.block_count(part.size) - 1
                try:
                    for first in range(0, last + 1, 4):
                        end = min(first + 3, last)
                        await source.fetch(copy.shard_index, first, end)
                        start, stop = source.span(first, end)
                        self.stats.bytes_verified += stop - start
                        await self.rate.spend(stop - start)
                except StorageError as exc:
                    log.warning("scrub: %s shard %d: %s", record.key, copy.shard_index, exc)
                    record_bitrot(oset.drives[position], exc)
                    bad.append(position)
                    break
        return bad

    async def _rebuild(
        self, oset: ObjectSet, agreement: Agreement[ObjectRecord], positions: list[int]
    ) -> bool:
        """Rebuild the shards of ``positions``; True when every one was committed."""
        record = agreement.version
        layout = Layout(record.codec, record.k, record.m, record.block_size)
        codec = get_codec(record.codec, record.k, record.m)
        started = time.monotonic()
        # Corrupt copies must not serve as sources for their own rebuild.
        sources = [None if p in positions else c for p, c in enumerate(agreement.copies)]
        shard_of = {p: oset.shard_of(p) for p in positions}
        writers: dict[int, dict[str, ShardWriter]] = {p: {} for p in positions}
        inline: dict[int, bytearray] = {
            p: bytearray(framing.shard_header(layout, shard_of[p])) for p in positions
        }
        try:
            for index, part in enumerate(record.parts):
                if part.data_id is not None:
                    for p in positions:
                        w = await oset.drives[p].create_shard(
                            part.data_id, layout.shard_file_size(part.size)
                        )
                        writers[p][part.data_id] = w
                        await w.write([framing.shard_header(layout, shard_of[p])])
                if part.size == 0:
                    continue
                source = ShardSource(oset.drives, sources, index, layout, part.size)
                last = layout.block_count(part.size) - 1
                for first in range(0, last + 1, 4):
                    blocks = await source.blocks(first, min(first + 3, last))
                    for offset, block in enumerate(blocks):
                        b = first + offset
                        shards = await asyncio.to_thread(codec.encode, block)
                        for p in positions:
                            payload = shards[shard_of[p]]
                            digest = framing.frame_hash(
                                payload, shard_index=shard_of[p], block_index=b
                            )
                            if part.data_id is None:
                                inline[p] += digest + payload
                            else:
                                await writers[p][part.data_id].write([digest, payload])
                            self.stats.bytes_rebuilt += len(payload) + len(digest)
                            await self.rate.spend(len(payload))
            for p in positions:
                for w in writers[p].values():
                    await w.finish()
        except BaseException:
            for p in positions:
                for w in writers[p].values():
                    await w.abort()
            raise

        async def commit(p: int) -> None:
            inline_bytes = bytes(inline[p]) if record.inline is not None else None
            staged = list(writers[p])
            drive: Drive = oset.drives[p]
            older = await drive.commit_object(record.for_shard(shard_of[p], inline_bytes), staged)
            if older:
                await drive.prune_versions(record.bucket, record.key, record.order, False)

        results = await asyncio.gather(*(commit(p) for p in positions), return_exceptions=True)
        healed = 0
        for p, result in zip(positions, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("heal commit on %s failed: %s", oset.drives[p].name, result)
                self.stats.errors += 1
                for w in writers[p].values():
                    await w.abort()
            else:
                healed += 1
        self.stats.rebuild_seconds += time.monotonic() - started
        if healed:
            self.stats.objects_healed += 1
            self.stats.shards_rebuilt += healed
            note = f"{record.bucket}/{record.key}: rebuilt {healed} shard(s)"
            log.info("healed %s", note)
            self.stats.recent = [*self.stats.recent[-19:], note]
        return healed == len(positions)

    # The scanner ----------------------------------------------------------------------------

    async def scan(self, deep: bool = False) -> HealStats:
        """Walk every key of every set once (resuming a stopped scan) and heal each."""
        async with self._scan_lock:
            s = self.stats
            s.scan_running, s.scan_started = True, time.time()
            try:
                from storage.buckets import ErasureBuckets

                await ErasureBuckets(self.sets).sync()
                buckets = sorted(b.name for b in await ErasureBuckets(self.sets).list_buckets())
                for set_index in range(s.scan_set, len(self.sets.sets)):
                    s.scan_set = set_index
                    for bucket in buckets:
                        if (set_index, bucket) < (s.scan_set, s.scan_bucket):
                            continue
                        if bucket != s.scan_bucket:
                            s.scan_bucket, s.scan_key = bucket, ""
                        await self._scan_bucket(set_index, bucket, deep)
                    s.scan_bucket, s.scan_key = "", ""
                s.scan_set = 0
                s.scans_completed += 1
                s.last_scan_seconds = time.time() - s.scan_started
            finally:
                s.scan_running = False
                self._save()
            return s

    async def _scan_bucket(self, set_index: int, bucket: str, deep: bool) -> None:
        drives = self.sets.sets[set_index]
        while True:
            results = await each(drives, partial(_list_page, bucket, self.stats.scan_key))
            rows = [r for r in results if isinstance(r, list)]
            keys = sorted({row.key for listing in rows for row in listing})
            if not keys:
                return
            # Keys up to the smallest last key of a full page are complete on every drive.
            full = [listing[-1].key for listing in rows if len(listing) >= SCAN_BATCH]
            horizon = min(full) if full else keys[-1]
            for key in keys:
                if key > horizon:
                    break
                try:
                    await self.heal_object(bucket, key, deep)
                except StorageError as exc:  # a drive failed: the next scan tries again
                    log.warning("healing %s/%s failed: %s", bucket, key, exc)
                    self.stats.errors += 1
                except Exception:
                    log.exception("healing %s/%s failed", bucket, key)
                    self.stats.errors += 1
                self.stats.scan_key = key
            self._save()
            if not full:
                return

    def _save(self) -> None:
        if self.state_path is None:
            return
        s = self.stats
        doc = {"scan_set": s.scan_set, "scan_bucket": s.scan_bucket, "scan_key": s.scan_key}
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(self.state_path)

    def status(self) -> dict[str, object]:
        doc = asdict(self.stats)
        secs = self.stats.rebuild_seconds
        doc["rebuild_mb_per_s"] = round(self.stats.bytes_rebuilt / secs / 1e6, 1) if secs else None
        return doc


async def _list_page(bucket: str, after: str, drive: Drive) -> list[ListRow]:
    return await drive.list_versions(bucket, "", after, SCAN_BATCH)
