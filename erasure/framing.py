"""The shard file format (version 1): a self-describing header, then hash-framed blocks.

Header, ``SHARD_HEADER_BYTES`` = 32 bytes, integers little-endian::

    offset size field
     0     4    magic b"HMSH"
     4     2    format version (1)
     6     1    codec id (1 = isal, 2 = zfec)
     7     1    k
     8     1    m
     9     1    shard index (0..k+m-1)
    10     2    reserved, zero
    12     4    block size in bytes
    16     8    reserved, zero
    24     8    xxh3-64 of bytes 0..23

Then one frame per block of the object: ``frame_hash(payload) + payload`` where the payload is
that block's shard from the codec (see ``erasure.layout`` for sizes and offsets).

The frame hash is xxh3-128 seeded with the frame's position (shard index, block index), so a
block that is intact but in the wrong place (a shard file renamed to another index, a block
copied to another offset) fails verification like a flipped bit does. It is not keyed by
object: a whole shard file of another object at the same index still verifies; the metadata
layer must pin which file belongs to which object version.
"""

from __future__ import annotations

import functools
import struct
from typing import Final

import xxhash

from erasure.constants import FORMAT_VERSION, FRAME_HASH_BYTES, SHARD_HEADER_BYTES
from erasure.layout import Layout

__all__ = [
    "FORMAT_VERSION",
    "FRAME_HASH_BYTES",
    "SHARD_HEADER_BYTES",
    "BitrotError",
    "ShardFormatError",
    "frame_hash",
    "frame_hash_split",
    "parse_shard_header",
    "shard_header",
    "shard_headers",
    "verify_block",
]

MAGIC: Final = b"HMSH"
# Stable on-disk ids; never renumber, only append.
CODEC_IDS: Final[dict[str, int]] = {"isal": 1, "zfec": 2}
_CODEC_NAMES: Final = {v: k for k, v in CODEC_IDS.items()}

_HEADER = struct.Struct("<4sHBBBBHI8s")  # everything before the checksum
_CHECKSUM = struct.Struct("<Q")
_MAX_SHARD_INDEX: Final = 255  # one byte in the header and in the frame seed
_MAX_BLOCK_INDEX: Final = 2**48 - 1  # 256 TiB of 1 MiB blocks

assert _HEADER.size + _CHECKSUM.size == SHARD_HEADER_BYTES


class ShardFormatError(Exception):
    """A shard file header that is not ours, corrupt, or of an unsupported version."""


class BitrotError(Exception):
    """A framed block whose payload does not match its hash (corrupt, truncated or misplaced)."""


def shard_header(layout: Layout, shard_index: int) -> bytes:
    """The 32-byte header of shard file ``shard_index`` of an object coded with ``layout``.

    >>> header = shard_header(Layout("isal", 8, 4), 11)
    >>> len(header), header[:4], parse_shard_header(header)
    (32, b'HMSH', (Layout(codec='isal', k=8, m=4, block_size=1048576), 11))
    """
    if not 0 <= shard_index < layout.k + layout.m:
        raise ValueError(f"shard_index {shard_index} out of range 0..{layout.k + layout.m - 1}")
    if layout.k + layout.m - 1 > _MAX_SHARD_INDEX:
        raise ValueError(f"k + m = {layout.k + layout.m} does not fit the header")
    body = _HEADER.pack(
        MAGIC,
        FORMAT_VERSION,
        CODEC_IDS[layout.codec],
        layout.k,
        layout.m,
        shard_index,
        0,
        layout.block_size,
        bytes(8),
    )
    return body + _CHECKSUM.pack(xxhash.xxh3_64_intdigest(body))


@functools.lru_cache(maxsize=32)
def shard_headers(layout: Layout) -> tuple[bytes, ...]:
    """The headers of all k+m shard files of ``layout``, by shard index (computed once per
    layout: a small PUT needs all of them).

    >>> headers = shard_headers(Layout("zfec", 4, 2))
    >>> len(headers), headers[5] == shard_header(Layout("zfec", 4, 2), 5)
    (6, True)
    """
    return tuple(shard_header(layout, i) for i in range(layout.k + layout.m))


def parse_shard_header(data: bytes | memoryview) -> tuple[Layout, int]:
    """The layout and shard index from a shard file header (the first SHARD_HEADER_BYTES of
    ``data``; more may be passed). Raises ShardFormatError if it is not a valid v1 header."""
    view = memoryview(data)
    if len(view) < SHARD_HEADER_BYTES:
        raise ShardFormatError(f"header needs {SHARD_HEADER_BYTES} bytes, got {len(view)}")
    body = view[: _HEADER.size]
    magic, version, codec_id, k, m, shard_index, reserved1, block_size, reserved2 = _HEADER.unpack(
        body
    )
    if magic != MAGIC:
        raise ShardFormatError(f"bad magic {magic!r}, not a shard file")
    # Version before checksum: a newer format may checksum differently.
    if version != FORMAT_VERSION:
        raise ShardFormatError(f"unsupported shard format version {version}")
    (checksum,) = _CHECKSUM.unpack(view[_HEADER.size : SHARD_HEADER_BYTES])
    if checksum != xxhash.xxh3_64_intdigest(body):
        raise ShardFormatError("shard header checksum mismatch")
    if reserved1 != 0 or reserved2 != bytes(8):
        raise ShardFormatError("reserved header bytes are not zero")
    codec = _CODEC_NAMES.get(codec_id)
    if codec is None:
        raise ShardFormatError(f"unknown codec id {codec_id}")
    try:
        layout = Layout(codec, k, m, block_size)
    except ValueError as exc:
        raise ShardFormatError(f"invalid layout in header: {exc}") from exc
    if shard_index >= k + m:
        raise ShardFormatError(f"shard index {shard_index} out of range for {k}+{m}")
    return layout, shard_index


def _position_seed(shard_index: int, block_index: int) -> int:
    if not 0 <= shard_index <= _MAX_SHARD_INDEX:
        raise ValueError(f"shard_index must be in 0..{_MAX_SHARD_INDEX}, got {shard_index}")
    if not 0 <= block_index <= _MAX_BLOCK_INDEX:
        raise ValueError(f"block_index must be in 0..{_MAX_BLOCK_INDEX}, got {block_index}")
    return shard_index << 48 | block_index


def frame_hash(payload: bytes | memoryview, *, shard_index: int, block_index: int) -> bytes:
    """The 16-byte xxh3-128 digest written before ``payload``, seeded with its position:
    seed = shard_index << 48 | block_index.

    Write ``frame_hash(p, ...)`` then ``p``; no need to concatenate big buffers.

    >>> frame_hash(b"abc", shard_index=0, block_index=0).hex()
    '06b05ab6733a618578af5f94892f3950'
    >>> frame_hash(b"abc", shard_index=0, block_index=1) == frame_hash(
    ...     b"abc", shard_index=0, block_index=0)
    False
    """
    return xxhash.xxh3_128_digest(payload, _position_seed(shard_index, block_index))


def frame_hash_split(
    head: bytes, rest: bytes | memoryview, *, shard_index: int, block_index: int
) -> bytes:
    """``frame_hash(head + rest, ...)`` without joining them.

    >>> frame_hash_split(b"ab", b"c", shard_index=0, block_index=0) == frame_hash(
    ...     b"abc", shard_index=0, block_index=0)
    True
    """
    if not head:
        return frame_hash(rest, shard_index=shard_index, block_index=block_index)
    digest = xxhash.xxh3_128(seed=_position_seed(shard_index, block_index))
    digest.update(head)
    digest.update(rest)
    return digest.digest()


def verify_block(framed: bytes | memoryview, *, shard_index: int, block_index: int) -> memoryview:
    """Check a framed block (hash + payload) read from position (shard_index, block_index) and
    return a zero-copy view of its payload. Raises BitrotError on any mismatch.

    >>> framed = frame_hash(b"abc", shard_index=2, block_index=7) + b"abc"
    >>> bytes(verify_block(framed, shard_index=2, block_index=7))
    b'abc'
    """
    view = memoryview(framed)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    if len(view) <= FRAME_HASH_BYTES:
        raise BitrotError(
            f"shard {shard_index} block {block_index}: framed block too short ({len(view)} bytes)"
        )
    payload = view[FRAME_HASH_BYTES:]
    if view[:FRAME_HASH_BYTES] != frame_hash(
        payload, shard_index=shard_index, block_index=block_index
    ):
        raise BitrotError(f"shard {shard_index} block {block_index}: hash mismatch")
    return payload
