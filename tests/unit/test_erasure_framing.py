"""Shard file format: header round trip and rejection, block hashes catch bitrot and moves."""

from __future__ import annotations

import doctest
import struct

import pytest
import xxhash

import erasure.framing
from erasure.codec import CODECS
from erasure.framing import (
    CODEC_IDS,
    FORMAT_VERSION,
    FRAME_HASH_BYTES,
    SHARD_HEADER_BYTES,
    BitrotError,
    ShardFormatError,
    frame_hash,
    parse_shard_header,
    shard_header,
    verify_block,
)
from erasure.layout import Layout

LAYOUTS = [
    Layout("isal", 8, 4),
    Layout("zfec", 4, 2, block_size=4096),
    Layout("isal", 1, 1, block_size=1),
    Layout("zfec", 200, 55, block_size=2**32 - 1),
]


def _resealed(header: bytes, offset: int, value: bytes) -> bytes:
    """``header`` with bytes replaced at ``offset`` and a checksum that matches again."""
    body = bytearray(header[:24])
    body[offset : offset + len(value)] = value
    return bytes(body) + struct.pack("<Q", xxhash.xxh3_64_intdigest(bytes(body)))


def test_docstring_examples() -> None:
    assert doctest.testmod(erasure.framing, raise_on_error=True).failed == 0


def test_constants() -> None:
    assert (FORMAT_VERSION, FRAME_HASH_BYTES, SHARD_HEADER_BYTES) == (1, 16, 32)
    assert set(CODEC_IDS) == set(CODECS)
    assert len(set(CODEC_IDS.values())) == len(CODEC_IDS)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_header_round_trip(layout: Layout) -> None:
    for shard_index in (0, layout.k - 1, layout.k + layout.m - 1):
        header = shard_header(layout, shard_index)
        assert len(header) == SHARD_HEADER_BYTES
        assert header.startswith(b"HMSH")
        assert parse_shard_header(header) == (layout, shard_index)
        # The start of a shard file parses too, also as a view.
        assert parse_shard_header(memoryview(header + b"block data")) == (layout, shard_index)


def test_header_is_stable() -> None:
    """The on-disk bytes of a v1 header never change."""
    assert shard_header(Layout("isal", 8, 4), 3).hex() == (
        "484d53480100010804030000000010000000000000000000ea2e225c0e37d258"
    )


def test_header_rejects_bad_shard_index() -> None:
    for index in (-1, 12):
        with pytest.raises(ValueError):
            shard_header(Layout("isal", 8, 4), index)


@pytest.mark.parametrize("position", range(SHARD_HEADER_BYTES))
def test_any_flipped_header_byte_is_rejected(position: int) -> None:
    header = bytearray(shard_header(Layout("isal", 8, 4), 3))
    header[position] ^= 0x40
    with pytest.raises(ShardFormatError):
        parse_shard_header(bytes(header))


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [
        (0, b"HMSX", "magic"),
        (4, struct.pack("<H", 2), "version"),
        (6, b"\x09", "codec id"),
        (7, b"\x00", "invalid layout"),  # k = 0
        (8, b"\x05", "invalid layout"),  # isal with m = 5
        (9, b"\x0c", "shard index"),  # 12 with 8+4
        (10, b"\x01", "reserved"),
        (12, struct.pack("<I", 0), "invalid layout"),  # block size 0
        (16, b"\x01", "reserved"),
    ],
)
def test_header_with_valid_checksum_but_bad_fields(offset: int, value: bytes, message: str) -> None:
    header = _resealed(shard_header(Layout("isal", 8, 4), 3), offset, value)
    with pytest.raises(ShardFormatError, match=message):
        parse_shard_header(header)


def test_short_or_foreign_header() -> None:
    header = shard_header(Layout("zfec", 4, 2), 0)
    for data in (b"", header[:-1], b"PK\x03\x04" + bytes(28)):
        with pytest.raises(ShardFormatError):
            parse_shard_header(data)


def test_frame_hash_is_xxh3_128_seeded_by_position() -> None:
    payload = b"payload" * 1000
    digest = frame_hash(payload, shard_index=3, block_index=5)
    assert len(digest) == FRAME_HASH_BYTES
    assert digest == xxhash.xxh3_128_digest(payload, 3 << 48 | 5)
    assert frame_hash(memoryview(payload), shard_index=3, block_index=5) == digest
    for shard_index, block_index in [(-1, 0), (256, 0), (0, -1), (0, 2**48)]:
        with pytest.raises(ValueError):
            frame_hash(payload, shard_index=shard_index, block_index=block_index)


def test_verify_block_returns_the_payload_view() -> None:
    payload = bytes(range(256)) * 100
    framed = frame_hash(payload, shard_index=1, block_index=2) + payload
    view = verify_block(framed, shard_index=1, block_index=2)
    assert isinstance(view, memoryview)
    assert view == payload
    assert verify_block(memoryview(bytearray(framed)), shard_index=1, block_index=2) == payload


@pytest.mark.parametrize("position", [0, 7, 15, 16, 17, 1000, 25_615])
def test_flipped_byte_is_bitrot(position: int) -> None:
    payload = bytes(range(256)) * 100
    framed = bytearray(frame_hash(payload, shard_index=0, block_index=0) + payload)
    framed[position] ^= 0x01
    with pytest.raises(BitrotError):
        verify_block(bytes(framed), shard_index=0, block_index=0)


def test_truncated_block_is_bitrot() -> None:
    payload = b"x" * 1000
    framed = frame_hash(payload, shard_index=0, block_index=0) + payload
    for cut in (framed[:-1], framed[: FRAME_HASH_BYTES + 1], framed[:FRAME_HASH_BYTES], b""):
        with pytest.raises(BitrotError):
            verify_block(cut, shard_index=0, block_index=0)


@pytest.mark.parametrize(("shard_index", "block_index"), [(0, 1), (1, 0), (5, 9), (255, 0)])
def test_moved_block_is_detected(shard_index: int, block_index: int) -> None:
    """An intact block read from another shard index or block position fails verification."""
    payload = b"intact block" * 100
    framed = frame_hash(payload, shard_index=0, block_index=0) + payload
    with pytest.raises(BitrotError):
        verify_block(framed, shard_index=shard_index, block_index=block_index)
