"""Object operations over erasure sets: PUT (stream, commit on quorum, prune older versions),
GET/HEAD (newest version held by k drives), DELETE.

Buckets are unversioned for now: a committed write prunes the versions it supersedes, a delete
prunes everything older than itself. Both happen only after the new state reached write quorum,
so a failed or interrupted write leaves the previous version intact and readable. A write's
prune runs after its answer (a delete's is the answer): until it lands, the superseded version
is on the drives but never served, since the newer one wins.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from functools import partial

from erasure.layout import Layout
from storage.api import ObjectInfo, UploadBody, ns_to_datetime
from storage.drive import Drive
from storage.errors import BucketNotFound, DriveError, ObjectNotFound, StorageError
from storage.part_reader import stream_range
from storage.quorum import (
    Agreement,
    pick_readable,
    reads_from_k,
    reduce_write,
    unanimous,
    write_quorum,
)
from storage.records import ObjectRecord
from storage.sets import ECParams, ErasureSets, ObjectSet, each, new_id, outcomes
from storage.streams import StagedShards, part_ref, write_part

log = logging.getLogger(__name__)

Clock = Callable[[], int]


def record_info(record: ObjectRecord) -> ObjectInfo:
    return ObjectInfo(
        bucket=record.bucket,
        key=record.key,
        version_id=record.version_id,
        size=record.size,
        etag=record.etag,
        last_modified=ns_to_datetime(record.mod_time_ns),
        metadata=record.metadata,
        checksums=record.checksums,
        part_sizes=tuple(p.size for p in record.parts) if "-" in record.etag else (),
    )


def _log_prune(drive: str, error: BaseException) -> None:
    if not isinstance(error, BucketNotFound):  # the bucket went: so did the versions
        log.warning("prune on %s failed: %s", drive, error)


class ErasureReader:
    def __init__(
        self,
        record: ObjectRecord,
        drives: Sequence[Drive],
        copies: Sequence[ObjectRecord | None],
    ) -> None:
        self._record = record
        self._drives = drives
        self._copies = copies
        self._info = record_info(record)
        self._rest: asyncio.Future[Sequence[ObjectRecord | None]] | None = None

    @property
    def info(self) -> ObjectInfo:
        return self._info

    def stream(self, start: int, end_inclusive: int) -> AsyncGenerator[bytes | memoryview, None]:
        more = self._more if any(c is None for c in self._copies) else None
        return stream_range(self._drives, self._copies, self._record, start, end_inclusive, more)

    async def _more(self) -> Sequence[ObjectRecord | None]:
        """Every drive's copy: asks the drives the read did not start from (once)."""
        if self._rest is None:
            self._rest = asyncio.ensure_future(
                rest_copies(self._drives, self._copies, self._record)
            )
        return await asyncio.shield(self._rest)


async def rest_copies(
    drives: Sequence[Drive],
    copies: Sequence[ObjectRecord | None],
    record: ObjectRecord,
) -> Sequence[ObjectRecord | None]:
    """``copies`` completed with the version's copy on each drive not asked yet."""
    others = [p for p, c in enumerate(copies) if c is None]
    results = await each(
        [drives[p] for p in others], lambda d: d.get_versions(record.bucket, record.key)
    )
    out = list(copies)
    for p, r in zip(others, results, strict=True):
        if not isinstance(r, BaseException):
            out[p] = next((v for v in r if v.version_id == record.version_id), None)
    return out


class ErasureObjects:
    def __init__(
        self,
        sets: ErasureSets,
        clock: Clock = time.time_ns,
        missed: Callable[[str, str], None] | None = None,
    ) -> None:
        self.sets = sets
        self.clock = clock
        # Told about every write that reached quorum but not every drive (the heal queue).
        self.missed = missed
        self._layout_of: tuple[ECParams, Layout] | None = None
        self._pruning: set[asyncio.Future[None]] = set()  # prunes after writes, in flight

    def _layout(self) -> Layout:
        """The layout new writes use (made once: validating a Layout costs a codec lookup)."""
        p = self.sets.params
        if self._layout_of is None or self._layout_of[0] is not p:
            self._layout_of = (p, Layout(p.codec, p.k, p.m, p.block_size))
        return self._layout_of[1]

    @property
    def write_quorum(self) -> int:
        return write_quorum(self.sets.params.k, self.sets.params.m)

    async def put_object(
        self, bucket: str, key: str, body: UploadBody, size: int, metadata: Mapping[str, str]
    ) -> ObjectInfo:
        oset = await self.write_set(bucket, key)
        layout = self._layout()
        inline_threshold = self.sets.params.inline_threshold
        # An inline part has no shard files, so no data id to name them.
        data_id = new_id() if size > inline_threshold else ""
        staged = await write_part(
            oset, layout, body, size, data_id, self.write_quorum, inline_threshold,
            one_round_bytes=layout.block_size,
        )  # fmt: skip
        try:
            digest = await body.finish()
        except BaseException:
            await staged.discard()
            raise
        record = ObjectRecord(
            bucket=bucket,
            key=key,
            version_id=new_id(),
            mod_time_ns=self.clock(),
            size=size,
            etag=digest.md5_hex,
            codec=layout.codec,
            k=layout.k,
            m=layout.m,
            block_size=layout.block_size,
            shard_index=0,
            parts=(part_ref(1, staged, digest.md5_hex, {}),),
            metadata=dict(metadata),
            checksums=dict(digest.checksums),
        )
        await self.commit(oset, record, staged)
        return record_info(record)

    async def commit(self, oset: ObjectSet, record: ObjectRecord, staged: StagedShards) -> None:
        """Commit a version on every drive holding its staged shards; prune what it supersedes."""

        inline, files = staged.inline, staged.files
        committed = [False] * len(oset.drives)  # staged shards now in place, nothing to discard

        # Plain functions handing over the drive's coroutine: no coroutine of our own per drive.
        def one_inline(position: int) -> Awaitable[bool]:
            assert inline is not None
            shard = oset.shard_of(position)
            return oset.drives[position].commit_object(record.for_shard(shard, inline[shard]), [])

        async def one(position: int) -> bool:
            if not staged.ok[position]:
                raise DriveError("no staged shard")
            shard = oset.shard_of(position)
            others = await oset.drives[position].commit_object(
                record.for_shard(shard, None),
                [staged.data_id],
                files[shard] if files is not None else None,
            )
            committed[position] = True
            return others

        try:
            # Inline shards are staged on every drive by construction (ok is all True).
            await self.commit_on(oset, record, one if inline is None else one_inline)
        finally:
            await staged.discard(committed)

    async def commit_on(
        self,
        oset: ObjectSet,
        record: ObjectRecord,
        one: Callable[[int], Awaitable[bool]],
    ) -> None:
        """Run ``one(position)`` on every drive, require write quorum (else roll back), prune.

        ``one`` answers whether other versions of the key remain on that drive: a new key
        written on every drive needs no prune (one transaction per drive instead of two)."""
        results = await each(range(len(oset.drives)), one)
        done = outcomes(results)
        try:
            reduce_write(done, self.write_quorum)
        except StorageError:
            committed = [d for d, o in zip(oset.drives, done, strict=True) if o is None]
            await each(
                committed, lambda d: d.delete_version(record.bucket, record.key, record.version_id)
            )
            raise
        if self.missed is not None and any(o is not None for o in done):
            self.missed(record.bucket, record.key)
        if any(r is not False for r in results):
            self._prune_later(oset, record.bucket, record.key, record.order)

    def _prune_later(self, oset: ObjectSet, bucket: str, key: str, before: tuple[int, str]) -> None:
        """Prune what a committed version supersedes without holding up the write's answer.

        The prune is not fsync'd and a failure is only logged (ADR 0004), so nothing waits for
        it. The calls join the next batch to each node, beside other writes' commits."""
        for drive in oset.drives:
            try:
                pending = asyncio.ensure_future(drive.prune_versions(bucket, key, before, False))
            except Exception as exc:  # raised before it could return an awaitable
                _log_prune(drive.name, exc)
                continue
            self._pruning.add(pending)
            pending.add_done_callback(partial(self._pruned, drive.name))

    def _pruned(self, drive: str, done: asyncio.Future[None]) -> None:
        self._pruning.discard(done)
        if not done.cancelled() and (exc := done.exception()) is not None:
            _log_prune(drive, exc)

    async def settle(self) -> None:
        """Wait for the prunes still in flight (before shutting down; tests)."""
        while self._pruning:
            await asyncio.wait(list(self._pruning))

    async def _prune(
        self, oset: ObjectSet, bucket: str, key: str, before: tuple[int, str]
    ) -> list[BaseException | None]:
        """A delete's prune: fsync'd, and its outcome is the delete's."""
        results = outcomes(
            await each(oset.drives, lambda d: d.prune_versions(bucket, key, before, True))
        )
        for drive, outcome in zip(oset.drives, results, strict=True):
            if outcome is not None:
                _log_prune(drive.name, outcome)
        return results

    async def agree(
        self, bucket: str, key: str, inline: bool = True
    ) -> tuple[ObjectSet, Agreement[ObjectRecord]]:
        """The newest readable version of a key (in whichever pool holds it) and every drive's
        copy of it; without inline shards when ``inline`` is False (metadata only)."""
        osets = self.sets.all_for_object(bucket, key)
        if len(osets) == 1:  # one pool: no gather (a task) around the one set's answer
            try:
                return await self._agree_in(osets[0], bucket, key, inline)
            except ObjectNotFound:
                pass
            await self._bucket_must_exist(bucket)
            raise ObjectNotFound()
        results = await asyncio.gather(
            *(self._agree_in(o, bucket, key, inline) for o in osets), return_exceptions=True
        )
        found = [r for r in results if isinstance(r, tuple)]
        if found:
            return max(found, key=lambda r: r[1].version.order)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, ObjectNotFound):
                raise r
        await self._bucket_must_exist(bucket)
        raise ObjectNotFound()

    async def _agree_in(
        self, oset: ObjectSet, bucket: str, key: str, inline: bool
    ) -> tuple[ObjectSet, Agreement[ObjectRecord]]:
        """Ask the k drives of the data shards first: when they agree on the newest version,
        that decides (reads_from_k: any readable version is on one of them; a version that is
        on none is on at most m < k drives, never readable nor undecidable) and the parity
        drives are asked only if a shard turns out unreadable. Otherwise ask the rest and pick
        by quorum."""
        k, m = self.sets.params.k, self.sets.params.m
        n = len(oset.drives)
        per_drive: list[list[ObjectRecord] | None] = [None] * n

        async def ask(positions: list[int]) -> None:
            results = await each(
                [oset.drives[p] for p in positions],
                lambda d: d.get_versions(bucket, key, inline),
            )
            for p, r in zip(positions, results, strict=True):
                per_drive[p] = None if isinstance(r, BaseException) else r

        first = oset.positions_of(range(k)) if reads_from_k(k, m) else []
        if first:
            await ask(first)
            version = unanimous([per_drive[p] for p in first])
            if version is not None:
                copies = tuple(v[0] if v else None for v in per_drive)
                return oset, Agreement(version=version, copies=copies)
        await ask(oset.positions_of(range(k, n)) if first else list(range(n)))
        return oset, pick_readable(per_drive, k)

    async def write_set(self, bucket: str, key: str) -> ObjectSet:
        """Where a write of ``bucket/key`` goes: the pool holding the key, else the emptiest."""
        if len(self.sets.pools) == 1:
            return self.sets.for_object(bucket, key)
        try:
            return (await self.agree(bucket, key, inline=False))[0]
        except ObjectNotFound:
            return self.sets.for_object(bucket, key, await self.sets.emptiest_pool())

    async def _bucket_must_exist(self, bucket: str) -> None:
        from storage.buckets import ErasureBuckets

        await ErasureBuckets(self.sets).head_bucket(bucket)

    async def open_object(self, bucket: str, key: str) -> ErasureReader:
        oset, agreement = await self.agree(bucket, key)
        return ErasureReader(agreement.version, oset.drives, agreement.copies)

    async def head_object(self, bucket: str, key: str) -> ObjectInfo:
        _, agreement = await self.agree(bucket, key, inline=False)
        return record_info(agreement.version)

    async def delete_object(self, bucket: str, key: str) -> None:
        # "~" sorts after every hex version id: everything written before now goes, in every
        # pool (each must reach quorum: the key may live in any of them).
        before = (self.clock(), "~")
        for oset in self.sets.all_for_object(bucket, key):
            results = await self._prune(oset, bucket, key, before)
            reduce_write(results, self.write_quorum)
