"""Erasure-coded shard streams: the write pipeline (body -> k+m shard files) and the batch
read of verified blocks (``ShardSource``, used by healing and scrubbing; a GET streams its
shards through ``storage.part_reader``).

Memory per request stays at a few blocks: one block is read and encoded while the previous one
is being written; reads fetch a bounded batch of blocks per shard.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import cast

from erasure import framing
from erasure.codec import Codec, get_codec
from erasure.layout import Layout
from storage.api import UploadBody
from storage.drive import BlockingShardWriter, Drive, ShardWriter
from storage.errors import BitrotError, DriveError, IncompleteUpload, QuorumNotReached
from storage.metrics import record_degraded_read
from storage.records import ObjectRecord, PartRef
from storage.sets import ObjectSet, each

log = logging.getLogger(__name__)

INLINE_DECODE_BYTES = 256 * 1024  # parts this small are decoded on the event loop
INLINE_ENCODE_BYTES = 64 * 1024  # ... and encoded there (a thread hop costs more)


@dataclass(frozen=True, slots=True)
class EncodedBlock:
    """One block's framed shards by shard index, each as the pieces to write: the frame's
    16-byte hash joined with the payload's head (isal's 80-byte fragment header, or nothing),
    then the rest of the payload, which may be a view of the block itself
    (``Codec.encode_split``).

    The pieces are written as they are, never joined: joining copies the payload, which cost
    a node-bound upload more (a 4 MiB block: 1.5 x 4 MiB copied) than sending the hash and
    header as a piece of their own, in one gather write (``storage.shard_upload``) or a write
    of their own (docs/benchmarks.md, "Frames sent as pieces")."""

    shards: list[list[bytes | memoryview]]


def encode_block(
    codec: Codec,
    block: bytes | bytearray | memoryview,
    block_index: int,
    body: UploadBody,
) -> EncodedBlock:
    """Hash the block into the body's digests, encode it, frame every shard. Runs in a thread."""
    body.update(block)
    shards = codec.encode_split(bytes(block) if isinstance(block, bytearray) else block)
    framed: list[list[bytes | memoryview]] = []
    for i, (head, rest) in enumerate(shards):
        digest = framing.frame_hash_split(head, rest, shard_index=i, block_index=block_index)
        framed.append([digest + head, rest])
    return EncodedBlock(shards=framed)


@dataclass
class StagedShards:
    """Result of streaming one part to the set's drives: which positions hold a staged shard."""

    data_id: str
    size: int
    ok: list[bool]
    inline: list[bytes] | None  # per shard index, when the part was small enough to inline
    writers: ShardWriters | None = None  # the staged temp shards, to discard if commit fails
    files: list[bytes] | None = None  # per shard index: shard files the commit itself stages

    async def discard(self, committed: Sequence[bool] = ()) -> None:
        """Remove the staged shards, except at the positions ``committed`` marks: a drive that
        committed the part renamed its staged shard into place (nothing is left to remove, and
        asking would cost a request per shard)."""
        if self.writers is not None:
            await self.writers.abort(skip=committed)


class ShardWriters:
    """The k+m temp shards of one part; drops drives that fail, keeps going while quorum holds."""

    def __init__(self, oset: ObjectSet, layout: Layout, quorum: int) -> None:
        self.oset = oset
        self.layout = layout
        self.quorum = quorum
        self.writers: list[ShardWriter | None] = []

    async def open(self, data_id: str, size: int) -> None:
        shard_bytes = self.layout.shard_file_size(size)
        results = await each(self.oset.drives, lambda d: d.create_shard(data_id, shard_bytes))
        self.writers = [r if not isinstance(r, BaseException) else None for r in results]
        headers = framing.shard_headers(self.layout)
        await self._write_all(lambda p: [headers[self.oset.shard_of(p)]])

    def pieces(self, encoded: EncodedBlock) -> Callable[[int], list[bytes | memoryview]]:
        """Drive position -> the framed pieces of its shard of ``encoded``."""

        def at(position: int) -> list[bytes | memoryview]:
            return encoded.shards[self.oset.shard_of(position)]

        return at

    async def write_block(self, encoded: EncodedBlock) -> None:
        await self._write_all(self.pieces(encoded))

    @property
    def all_blocking(self) -> bool:
        # A plain attribute check: isinstance() on a runtime Protocol costs ~10 µs per call.
        return all(w is None or hasattr(w, "write_blocking") for w in self.writers)

    def write_blocking_now(
        self, pieces_for: Callable[[int], list[bytes | memoryview]]
    ) -> list[tuple[int, DriveError]]:
        """Write every live shard that takes blocking writes (a local file, a plain-socket
        upload to a node: ``storage.shard_upload``) from this worker thread; the failures."""
        failed = []
        for p, w in enumerate(self.writers):
            if w is not None and hasattr(w, "write_blocking"):
                try:
                    cast(BlockingShardWriter, w).write_blocking(pieces_for(p))
                except DriveError as exc:
                    failed.append((p, exc))
        return failed

    async def drop(self, failures: Sequence[tuple[int, DriveError]]) -> None:
        """Stop writing to drives that failed; raise when quorum is lost."""
        for p, exc in failures:
            log.warning("shard write failed on %s: %s", self.oset.drives[p].name, exc)
            writer = self.writers[p]
            self.writers[p] = None
            if writer is not None:
                await _quietly(writer.abort())
        self._check()

    async def _write_all(self, pieces_for: Callable[[int], list[bytes | memoryview]]) -> None:
        """Write every live shard; those taking blocking writes in one thread hop instead of
        one per drive."""

        async def one(p: int, w: ShardWriter) -> list[tuple[int, DriveError]]:
            try:
                await w.write(pieces_for(p))
            except DriveError as exc:
                return [(p, exc)]
            return []

        remote = [
            one(p, w)
            for p, w in enumerate(self.writers)
            if w is not None and not hasattr(w, "write_blocking")
        ]
        blocking = asyncio.to_thread(self.write_blocking_now, pieces_for)
        results = await asyncio.gather(blocking, *remote)
        await self.drop([f for failures in results for f in failures])

    async def finish(self) -> None:
        async def one(p: int, w: ShardWriter) -> None:
            try:
                await w.finish()
            except DriveError as exc:
                log.warning("shard fsync failed on %s: %s", self.oset.drives[p].name, exc)
                self.writers[p] = None
                await _quietly(w.abort())

        await asyncio.gather(*(one(p, w) for p, w in enumerate(self.writers) if w is not None))
        self._check()

    async def abort(self, skip: Sequence[bool] = ()) -> None:
        """Abort every live writer (its staged shard removed), except at the positions ``skip``
        marks; none is live afterwards."""
        await asyncio.gather(
            *(
                _quietly(w.abort())
                for p, w in enumerate(self.writers)
                if w is not None and not (p < len(skip) and skip[p])
            )
        )
        self.writers = [None] * len(self.writers)

    @property
    def ok(self) -> list[bool]:
        return [w is not None for w in self.writers]

    def _check(self) -> None:
        alive = sum(self.ok)
        if alive < self.quorum:
            raise QuorumNotReached(f"{alive} drives writable, {self.quorum} needed")


def _encode_and_write(
    writers: ShardWriters,
    codec: Codec,
    block: bytes | bytearray | memoryview,
    block_index: int,
    body: UploadBody,
) -> list[tuple[int, DriveError]]:
    encoded = encode_block(codec, block, block_index, body)
    return writers.write_blocking_now(writers.pieces(encoded))


async def _quietly(aw: Awaitable[None]) -> None:
    try:
        await aw
    except Exception as exc:  # cleanup of a failed drive: nothing more to do
        log.debug("cleanup failed: %s", exc)


def _inline_shards(codec: Codec, layout: Layout, block: bytes, body: UploadBody) -> list[bytes]:
    """All shard files of a small part, built in memory (header + framed blocks)."""
    headers = framing.shard_headers(layout)
    if 0 < len(block) <= layout.block_size:
        # One block (every inline object by default): each file in one join, no bytearrays.
        body.update(block)
        frame_hash = framing.frame_hash
        return [
            b"".join((headers[i], frame_hash(payload, shard_index=i, block_index=0), payload))
            for i, payload in enumerate(codec.encode(block))
        ]
    files = [bytearray(h) for h in headers]
    for b in range(layout.block_count(len(block))):
        start = b * layout.block_size
        encoded = encode_block(codec, block[start : start + layout.block_size], b, body)
        for i, pieces in enumerate(encoded.shards):
            for piece in pieces:
                files[i] += piece
    if not block:
        body.update(b"")
    return [bytes(f) for f in files]


async def write_part(
    oset: ObjectSet,
    layout: Layout,
    body: UploadBody,
    size: int,
    data_id: str,
    quorum: int,
    inline_threshold: int,
    one_round_bytes: int = 0,
) -> StagedShards:
    """Stream ``size`` bytes of ``body`` into staged shards on the set's drives.

    Small parts (<= inline_threshold) are encoded in memory and returned for inline storage.
    Parts up to ``one_round_bytes`` (at most a block) are encoded in memory too, and their
    shard files returned for the commit to stage (``Drive.commit_object(shard=...)``): one
    message per node instead of a shard stream per drive, then a commit.
    Raises QuorumNotReached when too few drives accept the shards, IncompleteUpload when the
    body is short, or whatever ``body.finish()`` raises (nothing is committed in any case).
    """
    codec = get_codec(layout.codec, layout.k, layout.m)
    one_round = one_round_bytes > 0 and size <= min(one_round_bytes, layout.block_size)
    if size <= inline_threshold or one_round:
        small = bytes(await body.read(size)) if size else b""
        if len(small) != size:
            raise IncompleteUpload(f"body ended after {len(small)} of {size} bytes")
        if size <= INLINE_ENCODE_BYTES:
            files = _inline_shards(codec, layout, small, body)
        else:
            files = await asyncio.to_thread(_inline_shards, codec, layout, small, body)
        if size <= inline_threshold:
            return StagedShards(data_id=data_id, size=size, ok=[True] * len(files), inline=files)
        return StagedShards(data_id, size, [True] * len(files), inline=None, files=files)

    writers = ShardWriters(oset, layout, quorum)
    try:
        await writers.open(data_id, size)
        # Three stages overlap: reading block i+1 from the client, encoding block i in a
        # thread, writing block i-1 to the drives. At most three blocks are in memory.
        remaining = size
        block_index = 0
        reading: asyncio.Task[bytes | bytearray | memoryview] | None = None
        writing: asyncio.Task[None] | None = None
        try:
            reading = asyncio.create_task(body.read(min(layout.block_size, remaining)))
            while remaining:
                assert reading is not None  # started before the loop and whenever bytes remain
                block = await reading
                reading = None
                if not block:
                    raise IncompleteUpload(f"body ended after {size - remaining} of {size} bytes")
                remaining -= len(block)
                if remaining:
                    reading = asyncio.create_task(body.read(min(layout.block_size, remaining)))
                if writers.all_blocking:
                    # Local files or plain-socket uploads: encode and write in the same thread
                    # hop, the GIL released for the sends (the next block is read from the
                    # client meanwhile).
                    failures = await asyncio.to_thread(
                        _encode_and_write, writers, codec, block, block_index, body
                    )
                    await writers.drop(failures)
                else:
                    encoded = await asyncio.to_thread(encode_block, codec, block, block_index, body)
                    if writing is not None:
                        await writing
                    writing = asyncio.create_task(writers.write_block(encoded))
                block_index += 1
            if writing is not None:
                await writing
                writing = None
        finally:
            for task in (reading, writing):
                if task is not None:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
        await writers.finish()
    except BaseException:
        await writers.abort()
        raise
    return StagedShards(data_id=data_id, size=size, ok=writers.ok, inline=None, writers=writers)


# Reading -------------------------------------------------------------------------------------


class ShardSource:
    """Reads framed blocks of one part from the drives holding a readable version."""

    def __init__(
        self,
        drives: Sequence[Drive],
        copies: Sequence[ObjectRecord | None],
        part_index: int,
        layout: Layout,
        part_size: int,
    ) -> None:
        self.layout = layout
        self.part_size = part_size
        self.codec = get_codec(layout.codec, layout.k, layout.m)
        self.drives = drives
        # shard index -> (drive, its record) for every drive holding this version
        self.holders: dict[int, tuple[Drive, ObjectRecord]] = {}
        self._add_holders(copies)
        self.part_index = part_index
        self.bad: set[int] = set()  # shard indexes that failed; never retried in this stream

    def _add_holders(self, copies: Sequence[ObjectRecord | None]) -> None:
        for drive, rec in zip(self.drives, copies, strict=True):
            if rec is not None:
                self.holders.setdefault(rec.shard_index, (drive, rec))

    def span(self, first: int, last: int) -> tuple[int, int]:
        """Byte range [start, end) of framed blocks first..last in a shard file."""
        return self.layout.shard_span(self.part_size, first, last)

    async def fetch(self, shard: int, first: int, last: int) -> list[memoryview]:
        """Verified payloads of blocks first..last of one shard."""
        drive, rec = self.holders[shard]
        start, end = self.span(first, last)
        part = rec.parts[self.part_index]
        if part.data_id is None:
            if rec.inline is None:
                raise DriveError(f"{drive.name}: inline shard missing")
            data: bytes = rec.inline[start:end]
        else:
            data = await drive.read_shard(part.data_id, start, end - start)
        if len(data) != end - start:
            raise BitrotError(f"{drive.name}: shard truncated")
        view = memoryview(data)
        out = []
        offset = 0
        for b in range(first, last + 1):
            n = self.layout.framed_block_size(self.layout.block_len(self.part_size, b))
            try:
                out.append(
                    framing.verify_block(
                        view[offset : offset + n], shard_index=shard, block_index=b
                    )
                )
            except framing.BitrotError as exc:
                raise BitrotError(f"{drive.name}: {exc}") from exc
            offset += n
        return out

    async def blocks(self, first: int, last: int) -> list[bytes]:
        """Decoded object bytes of blocks first..last (each a full block)."""
        got = await self._gather(first, last)
        if self.part_size <= INLINE_DECODE_BYTES:
            return self._decode(got, first, last)  # tiny: cheaper than a thread hop
        return await asyncio.to_thread(self._decode, got, first, last)

    async def _gather(self, first: int, last: int) -> dict[int, list[memoryview]]:
        """Verified payloads of blocks first..last from k shards, data shards first."""
        k = self.layout.k
        got: dict[int, list[memoryview]] = {}
        tried: set[int] = set()
        while len(got) < k:
            need = k - len(got)
            # Data shards first (no decoding needed), then parity.
            candidates = [
                s
                for s in sorted(self.holders, key=lambda s: (s >= k, s))
                if s not in self.bad and s not in tried
            ]
            batch = candidates[:need]
            if len(batch) < need:
                raise QuorumNotReached(f"only {len(got) + len(batch)} of {k} shards readable")
            tried.update(batch)
            results = await asyncio.gather(
                *(self.fetch(s, first, last) for s in batch), return_exceptions=True
            )
            for s, r in zip(batch, results, strict=True):
                if isinstance(r, BaseException):
                    if not isinstance(r, Exception):
                        raise r
                    log.warning("degraded read: shard %d: %s", s, r)
                    record_degraded_read(self.holders[s][0], r)
                    self.bad.add(s)
                else:
                    got[s] = r
        return got

    def _decode(self, got: dict[int, list[memoryview]], first: int, last: int) -> list[bytes]:
        out = []
        for i, b in enumerate(range(first, last + 1)):
            n = self.layout.block_len(self.part_size, b)
            out.append(self.codec.decode({s: blocks[i] for s, blocks in got.items()}, n))
        return out


def part_ref(number: int, staged: StagedShards, etag: str, checksums: dict[str, str]) -> PartRef:
    return PartRef(
        number=number,
        size=staged.size,
        etag=etag,
        data_id=None if staged.inline is not None else staged.data_id,
        checksums=checksums,
    )
