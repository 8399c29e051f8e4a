"""The GET read path: an object range as verified blocks, each shard of a part read as one
stream (``Drive.open_shard``) from the first block wanted to the last.

One request per shard per part instead of one per batch of blocks: the node streams the range
and TCP paces it to the client, so the only read-ahead is what the socket buffers hold (a couple
of blocks per shard). Every block is verified before any of its bytes is served. A shard whose
stream fails or yields a bad block is dropped and another shard (parity, or a drive not asked
yet) is streamed from that block on; blocks then come from a decode.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Sequence

from erasure import framing
from erasure.codec import Codec, DecodeError, get_codec
from erasure.layout import Layout
from storage.drive import Drive, ShardReader
from storage.errors import BitrotError, DriveError, QuorumNotReached, StorageError
from storage.metrics import record_degraded_read
from storage.records import ObjectRecord
from storage.streams import INLINE_DECODE_BYTES

# Every drive's copy of the version being read, once the rest of the drives were asked.
MoreCopies = Callable[[], Awaitable[Sequence[ObjectRecord | None]]]

log = logging.getLogger(__name__)

Pieces = list[bytes | memoryview]
# A shard with this many bad blocks in one part is dropped for the rest of it (instead of
# streaming a replacement for each of its blocks).
ROTTEN_BLOCKS_DROP = 2
# A block's pieces up to this size are served joined: copying them costs less than a write per
# data shard (bigger blocks go as the shards' own views, no copy).
JOIN_BELOW_BYTES = 256 * 1024


class BytesShardReader:
    """A ShardReader over shard bytes in memory: stored in the metadata row (small objects), or
    one block's worth read in one call."""

    def __init__(self, data: bytes, offset: int, length: int) -> None:
        self._view = memoryview(data)[offset : offset + length]

    async def read(self, n: int) -> bytes | memoryview:
        return self.read_now(n)

    def read_now(self, n: int) -> memoryview:
        if n > len(self._view):
            raise BitrotError("shard bytes truncated")
        out, self._view = self._view[:n], self._view[n:]
        return out

    async def close(self) -> None:
        self._view = memoryview(b"")


class ShardStream:
    """The verified payloads of one shard's blocks, in order, from one ShardReader."""

    def __init__(
        self, drive: Drive, reader: ShardReader, shard: int, layout: Layout, part_size: int
    ) -> None:
        self.drive = drive
        self.shard = shard
        self._reader = reader
        self._layout = layout
        self._part_size = part_size

    @property
    def in_memory(self) -> bool:
        """Whether the shard's bytes are here already (``block_now`` needs no IO)."""
        return isinstance(self._reader, BytesShardReader)

    async def block(self, b: int) -> memoryview:
        """Payload of block ``b`` (the caller asks for the blocks in order)."""
        n = self._layout.framed_block_size(self._layout.block_len(self._part_size, b))
        return self._verified(await self._reader.read(n), b)

    def block_now(self, b: int) -> memoryview:
        """``block`` for a shard ``in_memory``, without a coroutine."""
        assert isinstance(self._reader, BytesShardReader)
        n = self._layout.framed_block_size(self._layout.block_len(self._part_size, b))
        return self._verified(self._reader.read_now(n), b)

    def _verified(self, framed: bytes | memoryview, b: int) -> memoryview:
        try:
            return framing.verify_block(framed, shard_index=self.shard, block_index=b)
        except framing.BitrotError as exc:
            raise BitrotError(f"{self.drive.name}: {exc}") from exc

    async def close(self) -> None:
        await self._reader.close()


class PartReader:
    """Blocks ``first..last`` of one part from k shard streams, data shards first."""

    def __init__(
        self,
        drives: Sequence[Drive],
        copies: Sequence[ObjectRecord | None],
        part_index: int,
        layout: Layout,
        part_size: int,
        first: int,
        last: int,
        more: MoreCopies | None = None,
    ) -> None:
        self.layout = layout
        self.part_size = part_size
        self.codec: Codec = get_codec(layout.codec, layout.k, layout.m)
        self.drives = drives
        self.part_index = part_index
        self.last = last
        self.next_block = first
        # shard index -> (drive, its record) for every drive holding this version
        self.holders: dict[int, tuple[Drive, ObjectRecord]] = {}
        self._add_holders(copies)
        self.bad: set[int] = set()  # shards that failed; never retried in this read
        self.rotten: Counter[int] = Counter()  # bad blocks seen per shard
        self.streams: dict[int, ShardStream] = {}
        self._more = more  # the copies of the drives not asked yet

    def _add_holders(self, copies: Sequence[ObjectRecord | None]) -> None:
        for drive, rec in zip(self.drives, copies, strict=True):
            if rec is not None:
                self.holders.setdefault(rec.shard_index, (drive, rec))

    async def _open(self, shard: int, first: int) -> ShardStream:
        drive, rec = self.holders[shard]
        start, end = self.layout.shard_span(self.part_size, first, self.last)
        data_id = rec.parts[self.part_index].data_id
        reader: ShardReader
        if data_id is None:
            if rec.inline is None:
                raise DriveError(f"{drive.name}: inline shard missing")
            reader = BytesShardReader(rec.inline, start, end - start)
        elif first == self.last:
            # One block: read whole, in one call (a node batches the k reads it gets with
            # each other) instead of a stream per shard.
            data = await drive.read_shard(data_id, start, end - start)
            reader = BytesShardReader(data, 0, len(data))
        else:
            reader = await drive.open_shard(data_id, start, end - start)
        return ShardStream(drive, reader, shard, self.layout, self.part_size)

    def _failed(self, shard: int, exc: Exception) -> None:
        log.warning("degraded read: shard %d: %r", shard, exc)
        record_degraded_read(self.holders[shard][0], exc)
        self.bad.add(shard)

    async def _fill(self, first: int, skipped: set[int]) -> None:
        """Open streams (from block ``first``) until k besides ``skipped`` are open, data
        shards first."""
        k = self.layout.k
        while len(self.streams.keys() - skipped) < k:
            need = k - len(self.streams.keys() - skipped)
            candidates = [
                s
                for s in sorted(self.holders, key=lambda s: (s >= k, s))
                if s not in self.bad and s not in self.streams
            ]
            if len(candidates) < need and self._more is not None:
                more, self._more = self._more, None
                self._add_holders(await more())
                continue
            batch = candidates[:need]
            if len(batch) < need:
                readable = len(self.streams.keys() - skipped) + len(batch)
                raise QuorumNotReached(f"block {first}: only {readable} of {k} shards readable")
            opening = [asyncio.ensure_future(self._open(s, first)) for s in batch]
            try:
                await asyncio.wait(opening)
            finally:
                # Every stream that opened is kept (closed by ``close``), even when cancelled.
                for s, task in zip(batch, opening, strict=True):
                    if not task.done():
                        task.cancel()
                    elif not task.cancelled() and task.exception() is None:
                        self.streams[s] = task.result()
            for s, task in zip(batch, opening, strict=True):
                exc = task.exception()
                if isinstance(exc, Exception):
                    self._failed(s, exc)
                elif exc is not None:
                    raise exc

    async def _close_stream(self, shard: int) -> None:
        stream = self.streams.pop(shard)
        try:
            await stream.close()
        except Exception as exc:  # a broken stream: nothing more to do
            log.debug("closing a shard stream: %s", exc)

    def _inline_block(self, b: int) -> Pieces | None:
        """Block ``b`` straight from the k data shards' inline bytes (in the records the read
        already holds): every block verified, no stream, no task. None when a data shard is
        not inline here, is missing or fails its hash: the general path then reads around it
        (and reports it)."""
        k = self.layout.k
        n = self.layout.block_len(self.part_size, b)
        start = self.layout.shard_block_offset(b)
        end = start + self.layout.framed_block_size(n)
        got: dict[int, memoryview] = {}
        for s in range(k):
            holder = self.holders.get(s)
            if holder is None:
                return None
            inline = holder[1].inline
            if inline is None or holder[1].parts[self.part_index].data_id is not None:
                return None
            try:
                got[s] = framing.verify_block(
                    memoryview(inline)[start:end], shard_index=s, block_index=b
                )
            except framing.BitrotError:
                return None
        try:
            pieces = self.codec.data_pieces(got, n)
        except DecodeError:
            return None
        return None if pieces is None else list(pieces)

    async def block(self) -> Pieces:
        """The next block's object bytes: on the healthy path the data shards' payloads
        themselves (systematic code: no decode, no copy), else the decoded block.

        A shard whose stream fails is dropped for the rest of the part; one whose block fails
        its hash only for that block (its stream is still in step, the next block may be
        good). Either way another shard is streamed from this block on, and once the block
        is decoded the streams beyond k are closed, parity first.
        """
        b = self.next_block
        if not self.streams and not self.bad:
            fast = self._inline_block(b)
            if fast is not None:
                self.next_block += 1
                return fast
        k = self.layout.k
        got: dict[int, memoryview] = {}
        skipped: set[int] = set()  # shards whose block b is bad
        while len(got) < k:
            await self._fill(b, skipped)
            # All shards' block b at once: local drives read in parallel threads, and every
            # node connection is drained while the others' bytes arrive.
            asked = [(s, st) for s, st in self.streams.items() if s not in got and s not in skipped]
            results: list[memoryview | BaseException]
            if all(stream.in_memory for _, stream in asked):  # e.g. one block read whole
                results = [_now(stream, b) for _, stream in asked]
            else:
                results = await asyncio.gather(
                    *(stream.block(b) for _, stream in asked), return_exceptions=True
                )
            for (s, stream), result in zip(asked, results, strict=True):
                if isinstance(result, BitrotError):
                    self.rotten[s] += 1
                    if self.rotten[s] >= ROTTEN_BLOCKS_DROP:
                        self._failed(s, result)
                        await self._close_stream(s)
                    else:
                        log.warning("degraded read: shard %d: %s", s, result)
                        record_degraded_read(stream.drive, result)
                        skipped.add(s)
                elif isinstance(result, StorageError):
                    self._failed(s, result)
                    await self._close_stream(s)
                elif isinstance(result, BaseException):
                    raise result
                else:
                    got[s] = result
        self.next_block += 1
        if b < self.last:
            for s in sorted(self.streams, key=lambda s: (s >= k, s))[k:]:
                await self._close_stream(s)
        n = self.layout.block_len(self.part_size, b)
        pieces = self.codec.data_pieces(got, n)
        if pieces is not None:
            return list(pieces)
        if self.part_size <= INLINE_DECODE_BYTES:
            return [self.codec.decode(got, n)]  # tiny: cheaper than a thread hop
        return [await asyncio.to_thread(self.codec.decode, got, n)]

    async def close(self) -> None:
        streams, self.streams = list(self.streams.values()), {}
        for stream in streams:
            try:
                await stream.close()
            except Exception as exc:  # closing a broken stream: nothing more to do
                log.debug("closing a shard stream: %s", exc)


def _now(stream: ShardStream, b: int) -> memoryview | Exception:
    """``stream.block_now(b)``, a failure as a value (as ``gather`` gives it)."""
    try:
        return stream.block_now(b)
    except Exception as exc:
        return exc


async def stream_range(
    drives: Sequence[Drive],
    copies: Sequence[ObjectRecord | None],
    record: ObjectRecord,
    start: int,
    end_inclusive: int,
    more: MoreCopies | None = None,
) -> AsyncGenerator[bytes | memoryview, None]:
    """Yield the object's bytes [start, end_inclusive], one verified block at a time.

    Each part in the range is read through one PartReader (k shard streams), closed when the
    part is done or the consumer stops early (``aclose``: a client that went away).
    ``more`` fetches the copies of drives not asked yet, when ``copies`` run short.
    """
    part_start = 0
    for part_index, part in enumerate(record.parts):
        part_end = part_start + part.size  # exclusive
        if part_end <= start or part_start > end_inclusive or part.size == 0:
            part_start = part_end
            continue
        layout = Layout(record.codec, record.k, record.m, record.block_size)
        lo = max(start, part_start) - part_start
        hi = min(end_inclusive, part_end - 1) - part_start
        first, last = layout.blocks_for_range(part.size, lo, hi)
        reader = PartReader(drives, copies, part_index, layout, part.size, first, last, more)
        try:
            for b in range(first, last + 1):
                pieces = await reader.block()
                block_start = b * layout.block_size
                wanted = list(cut(pieces, max(lo - block_start, 0), hi - block_start + 1))
                if len(wanted) > 1 and sum(map(len, wanted)) <= JOIN_BELOW_BYTES:
                    yield b"".join(wanted)  # one write (and one small response) instead of k
                    continue
                for piece in wanted:
                    yield piece
        finally:
            await reader.close()
        part_start = part_end


def cut(pieces: Sequence[bytes | memoryview], start: int, end: int) -> Iterator[bytes | memoryview]:
    """The bytes [start, end) of the pieces' concatenation, as the pieces or views of them.

    >>> [bytes(p) for p in cut([b"abc", b"def", b"g"], 2, 5)]
    [b'c', b'de']
    >>> list(cut([b"abc", b"def"], 0, 99))
    [b'abc', b'def']
    """
    offset = 0
    for piece in pieces:
        n = len(piece)
        a = max(start - offset, 0)
        z = min(end - offset, n)
        if a < z:
            yield piece if (a, z) == (0, n) else memoryview(piece)[a:z]
        offset += n
        if offset >= end:
            break
