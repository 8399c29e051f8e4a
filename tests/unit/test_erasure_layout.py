"""Table-driven tests of the shard file arithmetic."""

from __future__ import annotations

import doctest

import pytest

import erasure.layout
from erasure.codec import get_codec
from erasure.constants import FRAME_HASH_BYTES, SHARD_HEADER_BYTES
from erasure.layout import DEFAULT_BLOCK_SIZE, Layout

MiB = 1024 * 1024
# zfec 4+2 with 100-byte blocks: a full block is 25 bytes per shard, framed 16 + 25 = 41.
SMALL = Layout("zfec", 4, 2, block_size=100)
# isal 8+4 with 1 MiB blocks: a full block is 80 + 131_072 bytes per shard, framed 131_168.
BIG = Layout("isal", 8, 4)


def test_docstring_examples() -> None:
    assert doctest.testmod(erasure.layout, raise_on_error=True).failed == 0


def test_defaults() -> None:
    assert MiB == DEFAULT_BLOCK_SIZE
    assert BIG.block_size == MiB
    assert BIG.erasure_codec() is get_codec("isal", 8, 4)


@pytest.mark.parametrize(
    ("codec", "k", "m", "block_size"),
    [
        ("nope", 8, 4, MiB),
        ("isal", 0, 4, MiB),
        ("zfec", 8, 0, MiB),
        ("isal", 8, 5, MiB),
        ("zfec", 8, 4, 0),
        ("zfec", 8, 4, -1),
        ("zfec", 8, 4, 2**32),
    ],
)
def test_invalid_layout(codec: str, k: int, m: int, block_size: int) -> None:
    with pytest.raises(ValueError):
        Layout(codec, k, m, block_size)


def test_layout_is_a_hashable_value() -> None:
    assert Layout("isal", 8, 4) == BIG
    assert len({Layout("isal", 8, 4), BIG}) == 1


@pytest.mark.parametrize(
    ("layout", "object_size", "count", "last_len"),
    [
        (SMALL, 0, 0, None),  # empty object: no blocks
        (SMALL, 1, 1, 1),  # 1-byte object
        (SMALL, 99, 1, 99),
        (SMALL, 100, 1, 100),  # exact multiple
        (SMALL, 101, 2, 1),  # one byte into the second block
        (SMALL, 250, 3, 50),  # last block short
        (SMALL, 300, 3, 100),
        (BIG, 1, 1, 1),
        (BIG, MiB, 1, MiB),
        (BIG, 5 * MiB // 2, 3, MiB // 2),
        (BIG, 64 * MiB, 64, MiB),
        (BIG, 64 * MiB + 7, 65, 7),
    ],
)
def test_block_count_and_len(
    layout: Layout, object_size: int, count: int, last_len: int | None
) -> None:
    assert layout.block_count(object_size) == count
    for b in range(count - 1):
        assert layout.block_len(object_size, b) == layout.block_size
    if last_len is not None:
        assert layout.block_len(object_size, count - 1) == last_len
    assert sum(layout.block_len(object_size, b) for b in range(count)) == object_size


@pytest.mark.parametrize(("object_size", "block_index"), [(0, 0), (250, 3), (250, -1), (100, 1)])
def test_block_len_out_of_range(object_size: int, block_index: int) -> None:
    with pytest.raises(ValueError):
        SMALL.block_len(object_size, block_index)


def test_negative_object_size() -> None:
    for call in (SMALL.block_count, SMALL.shard_file_size):
        with pytest.raises(ValueError):
            call(-1)
    with pytest.raises(ValueError):
        SMALL.blocks_for_range(-1, 0, 0)


@pytest.mark.parametrize(
    ("layout", "block_len", "framed"),
    [
        (SMALL, 100, 16 + 25),
        (SMALL, 50, 16 + 13),
        (SMALL, 1, 16 + 1),
        (BIG, MiB, 16 + 80 + 131_072),
        (BIG, MiB // 2, 16 + 80 + 65_536),
        (BIG, 1, 16 + 80 + 1),
        (Layout("zfec", 8, 4), MiB, 16 + 131_072),
    ],
)
def test_framed_block_size(layout: Layout, block_len: int, framed: int) -> None:
    assert layout.framed_block_size(block_len) == framed


@pytest.mark.parametrize(
    ("layout", "object_size", "file_size"),
    [
        (SMALL, 0, 32),  # header only
        (SMALL, 1, 32 + 17),
        (SMALL, 100, 32 + 41),
        (SMALL, 101, 32 + 41 + 17),
        (SMALL, 250, 32 + 2 * 41 + 29),
        (SMALL, 300, 32 + 3 * 41),
        (BIG, 5 * MiB // 2, 328_000),  # the worked example in the module docstring
        (BIG, 64 * MiB, 32 + 64 * 131_168),
    ],
)
def test_shard_file_size(layout: Layout, object_size: int, file_size: int) -> None:
    assert layout.shard_file_size(object_size) == file_size


@pytest.mark.parametrize("object_size", [1, 99, 100, 101, 250, 399, 400, 401])
def test_blocks_are_contiguous_in_the_shard_file(object_size: int) -> None:
    """Block b starts where b-1 ended and the last one ends at the end of the file."""
    end = SHARD_HEADER_BYTES
    for b in range(SMALL.block_count(object_size)):
        assert SMALL.shard_block_offset(b) == end
        end += SMALL.framed_block_size(SMALL.block_len(object_size, b))
    assert end == SMALL.shard_file_size(object_size)


@pytest.mark.parametrize(
    ("layout", "block_index", "offset"),
    [
        (SMALL, 0, SHARD_HEADER_BYTES),
        (SMALL, 1, 32 + 41),
        (SMALL, 10, 32 + 410),
        (BIG, 0, 32),
        (BIG, 3, 32 + 3 * (FRAME_HASH_BYTES + 131_152)),
    ],
)
def test_shard_block_offset(layout: Layout, block_index: int, offset: int) -> None:
    assert layout.shard_block_offset(block_index) == offset


def test_shard_block_offset_negative() -> None:
    with pytest.raises(ValueError):
        SMALL.shard_block_offset(-1)


@pytest.mark.parametrize(
    ("object_size", "start", "end", "blocks"),
    [
        (1, 0, 0, (0, 0)),  # 1-byte object
        (250, 0, 249, (0, 2)),  # whole object
        (250, 0, 99, (0, 0)),  # exactly the first block
        (250, 99, 100, (0, 1)),  # two bytes straddling the first border
        (250, 100, 100, (1, 1)),  # first byte of the second block
        (250, 100, 199, (1, 1)),  # exactly the second block
        (250, 199, 200, (1, 2)),  # across the border into the short block
        (250, 249, 249, (2, 2)),  # last byte
        (300, 150, 299, (1, 2)),  # exact multiple, to the end
        (300, 50, 250, (0, 2)),
    ],
)
def test_blocks_for_range(object_size: int, start: int, end: int, blocks: tuple[int, int]) -> None:
    assert SMALL.blocks_for_range(object_size, start, end) == blocks


@pytest.mark.parametrize(
    ("object_size", "start", "end"),
    [(0, 0, 0), (250, 0, 250), (250, -1, 10), (250, 10, 9), (250, 250, 250)],
)
def test_blocks_for_range_rejects(object_size: int, start: int, end: int) -> None:
    with pytest.raises(ValueError):
        SMALL.blocks_for_range(object_size, start, end)
