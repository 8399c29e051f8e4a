"""Shard file arithmetic: where each block of an object lives inside every shard file.

An object is cut into blocks of ``block_size`` bytes (the last one may be short); each block is
erasure-coded into k+m shard payloads, and shard i of every block goes, in block order, into
shard file i::

    shard file = header (SHARD_HEADER_BYTES)
                 + for each block: xxh3-128 (FRAME_HASH_BYTES) + shard payload (shard_size)

All blocks but the last are full-size, so block b starts at a fixed offset and any byte range
maps to whole blocks with a division (MinIO's ``ShardFileOffset``, Swift's
``client_range_to_segment_range``).

Worked example, isal 8+4 with 1 MiB blocks and a 2.5 MiB object (2_621_440 bytes)::

    blocks:        3 -> 1_048_576 + 1_048_576 + 524_288 bytes
    shard payload: 80 + 1_048_576 / 8 = 131_152 (full block); 80 + 524_288 / 8 = 65_616 (last)
    framed block:  16 + 131_152 = 131_168;                    16 + 65_616 = 65_632
    shard file:    32 + 2 * 131_168 + 65_632 = 328_000 bytes, on each of the 12 drives
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from erasure.codec import Codec, get_codec
from erasure.constants import FRAME_HASH_BYTES, SHARD_HEADER_BYTES

DEFAULT_BLOCK_SIZE: Final = 1024 * 1024
# The shard header stores block_size as an unsigned 32-bit integer.
MAX_BLOCK_SIZE: Final = 2**32 - 1


@dataclass(frozen=True, slots=True)
class Layout:
    """How an object is erasure-coded: codec name, k data + m parity shards, block size.

    >>> layout = Layout("isal", 8, 4)
    >>> layout.block_size
    1048576

    Raises ValueError for an unknown codec, unsupported k/m or a block size outside
    1..MAX_BLOCK_SIZE.
    """

    codec: str
    k: int
    m: int
    block_size: int = DEFAULT_BLOCK_SIZE

    def __post_init__(self) -> None:
        get_codec(self.codec, self.k, self.m)  # validates codec, k and m
        if not 1 <= self.block_size <= MAX_BLOCK_SIZE:
            raise ValueError(f"block_size must be in 1..{MAX_BLOCK_SIZE}, got {self.block_size}")

    def erasure_codec(self) -> Codec:
        """The (cached, shared) codec instance for this layout."""
        return get_codec(self.codec, self.k, self.m)

    def block_count(self, object_size: int) -> int:
        """Number of blocks of an object: ``ceil(object_size / block_size)``.

        >>> layout = Layout("zfec", 4, 2, block_size=100)
        >>> [layout.block_count(n) for n in (0, 1, 100, 101, 250)]
        [0, 1, 1, 2, 3]
        """
        _check_object_size(object_size)
        return -(-object_size // self.block_size)

    def block_len(self, object_size: int, block_index: int) -> int:
        """Bytes of object data in block ``block_index``; only the last block may be short.

        >>> layout = Layout("zfec", 4, 2, block_size=100)
        >>> [layout.block_len(250, b) for b in range(3)]
        [100, 100, 50]
        >>> layout.block_len(200, 1)
        100

        Raises ValueError unless 0 <= block_index < block_count(object_size).
        """
        count = self.block_count(object_size)
        if not 0 <= block_index < count:
            raise ValueError(
                f"block_index {block_index} out of range for {object_size} bytes ({count} blocks)"
            )
        return min(self.block_size, object_size - block_index * self.block_size)

    def framed_block_size(self, block_len: int) -> int:
        """Bytes one block occupies in each shard file: hash + shard payload.

        >>> Layout("isal", 8, 4).framed_block_size(1024 * 1024)  # 16 + 80 + 131_072
        131168
        >>> Layout("zfec", 4, 2, block_size=100).framed_block_size(50)  # 16 + ceil(50 / 4)
        29
        """
        return FRAME_HASH_BYTES + self.erasure_codec().shard_size(block_len)

    def shard_file_size(self, object_size: int) -> int:
        """Total bytes of each shard file of an object (all k+m files are the same size).

        >>> layout = Layout("zfec", 4, 2, block_size=100)  # full block framed: 16 + 25 = 41
        >>> [layout.shard_file_size(n) for n in (0, 1, 100, 250)]  # 250: 32 + 2 * 41 + 29
        [32, 49, 73, 143]
        """
        _check_object_size(object_size)
        full_blocks, tail = divmod(object_size, self.block_size)
        size = SHARD_HEADER_BYTES + full_blocks * self.framed_block_size(self.block_size)
        if tail:
            size += self.framed_block_size(tail)
        return size

    def shard_block_offset(self, block_index: int) -> int:
        """Byte offset of framed block ``block_index`` in a shard file (the blocks before it
        are all full-size, so the object size is not needed).

        >>> layout = Layout("zfec", 4, 2, block_size=100)
        >>> [layout.shard_block_offset(b) for b in range(3)]  # 32 + b * 41
        [32, 73, 114]
        """
        if block_index < 0:
            raise ValueError(f"block_index must be >= 0, got {block_index}")
        return SHARD_HEADER_BYTES + block_index * self.framed_block_size(self.block_size)

    def shard_span(self, object_size: int, first: int, last: int) -> tuple[int, int]:
        """Byte range [start, end) of framed blocks ``first..last`` in a shard file.

        >>> layout = Layout("zfec", 4, 2, block_size=100)  # framed: 41 bytes, the tail 29
        >>> layout.shard_span(250, 0, 2), layout.shard_span(250, 1, 1)
        ((32, 143), (73, 114))
        """
        start = self.shard_block_offset(first)
        end = self.shard_block_offset(last) + self.framed_block_size(
            self.block_len(object_size, last)
        )
        return start, end

    def blocks_for_range(self, object_size: int, start: int, end_inclusive: int) -> tuple[int, int]:
        """First and last block index holding object bytes ``start..end_inclusive``.

        The caller resolves S3 range forms (suffix ``bytes=-N``, open ``bytes=N-``, clamping
        to the object) first; here 0 <= start <= end_inclusive < object_size must hold, else
        ValueError. The first wanted byte is at ``start - first * block_size`` in block
        ``first``.

        >>> layout = Layout("zfec", 4, 2, block_size=100)
        >>> layout.blocks_for_range(250, 0, 99), layout.blocks_for_range(250, 99, 100)
        ((0, 0), (0, 1))
        >>> layout.blocks_for_range(250, 150, 249)
        (1, 2)
        """
        _check_object_size(object_size)
        if not 0 <= start <= end_inclusive < object_size:
            raise ValueError(
                f"range {start}..{end_inclusive} is not within an object of {object_size} bytes"
            )
        return start // self.block_size, end_inclusive // self.block_size


def _check_object_size(object_size: int) -> None:
    if object_size < 0:
        raise ValueError(f"object_size must be >= 0, got {object_size}")
