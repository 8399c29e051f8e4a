"""Property tests: any loss of <= m shards round-trips; range arithmetic covers exactly."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erasure.codec import CODECS, DecodeError, get_codec
from erasure.constants import SHARD_HEADER_BYTES
from erasure.framing import BitrotError, frame_hash, frame_hash_split, verify_block
from erasure.layout import Layout

CODEC_SETTINGS = settings(max_examples=400, deadline=None)
ARITHMETIC_SETTINGS = settings(max_examples=300, deadline=None)


def _block(length: int, seed: int) -> bytes:
    # Generated from a seed: hypothesis-drawn 70 KB binaries would dominate the run time.
    return random.Random(seed).randbytes(length)


@st.composite
def erasure_cases(draw: st.DrawFn) -> tuple[int, int, int, int, frozenset[int]]:
    k = draw(st.integers(1, 10))
    m = draw(st.integers(1, 4))
    length = draw(st.integers(1, 70_000))
    seed = draw(st.integers(0, 2**32 - 1))
    lost = draw(st.frozensets(st.integers(0, k + m - 1), max_size=m))
    return k, m, length, seed, lost


@pytest.mark.parametrize("name", CODECS)
@CODEC_SETTINGS
@given(case=erasure_cases())
def test_any_m_losses_round_trip(
    name: str, case: tuple[int, int, int, int, frozenset[int]]
) -> None:
    k, m, length, seed, lost = case
    codec = get_codec(name, k, m)
    block = _block(length, seed)
    shards = codec.encode(block)
    assert len(shards) == k + m
    assert all(len(s) == codec.shard_size(length) for s in shards)

    survivors = {i: memoryview(s) for i, s in enumerate(shards) if i not in lost}
    assert codec.decode(survivors, length) == block
    rebuilt = codec.reconstruct(survivors, length, sorted(lost))
    assert rebuilt == {i: shards[i] for i in lost}


@pytest.mark.parametrize("name", CODECS)
@CODEC_SETTINGS
@given(case=erasure_cases())
def test_data_pieces_are_the_block_without_a_copy(
    name: str, case: tuple[int, int, int, int, frozenset[int]]
) -> None:
    k, m, length, seed, lost = case
    codec = get_codec(name, k, m)
    block = _block(length, seed)
    shards = codec.encode(block)
    survivors = {i: s for i, s in enumerate(shards) if i not in lost}
    pieces = codec.data_pieces(survivors, length)
    if any(i in lost for i in range(k)):
        assert pieces is None  # a data shard is missing: decode instead
        return
    assert pieces is not None
    assert b"".join(pieces) == block
    assert all(p.obj is shards[i] for i, p in enumerate(pieces))  # views, not copies


@pytest.mark.parametrize("name", CODECS)
@CODEC_SETTINGS
@given(
    k=st.integers(1, 10),
    m=st.integers(1, 4),
    chunk=st.integers(1, 9000),
    extra=st.integers(0, 9),
    seed=st.integers(0, 2**32 - 1),
)
def test_encode_split_is_encode_without_copying_data_shards(
    name: str, k: int, m: int, chunk: int, extra: int, seed: int
) -> None:
    """Each (head, rest) joins to ``encode``'s payload; where isal encodes in place (a block
    of bytes in k equal chunks), the data shards' rests are views of the block itself."""
    codec = get_codec(name, k, m)
    block = _block(k * chunk + extra % k, seed)
    split = codec.encode_split(block)
    assert [head + bytes(rest) for head, rest in split] == codec.encode(block)
    assert [head + bytes(rest) for head, rest in codec.encode_split(memoryview(block))] == (
        codec.encode(block)
    )
    if name == "isal" and len(block) % k == 0:
        for i, (_, rest) in enumerate(split[:k]):
            assert isinstance(rest, memoryview) and rest.obj is block
            assert rest == block[i * chunk : (i + 1) * chunk]


@settings(max_examples=200, deadline=None)
@given(
    head=st.binary(max_size=100),
    rest=st.binary(max_size=3000),
    shard=st.integers(0, 255),
    block=st.integers(0, 2**48 - 1),
)
def test_frame_hash_split_is_the_hash_of_the_joined_payload(
    head: bytes, rest: bytes, shard: int, block: int
) -> None:
    assert frame_hash_split(
        head, memoryview(rest), shard_index=shard, block_index=block
    ) == frame_hash(head + rest, shard_index=shard, block_index=block)


@pytest.mark.parametrize("name", CODECS)
@settings(max_examples=30, deadline=None)
@given(
    k=st.integers(1, 10),
    m=st.integers(1, 4),
    length=st.integers(1, 5000),
    extra=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_more_than_m_losses_is_a_decode_error(
    name: str, k: int, m: int, length: int, extra: int, seed: int
) -> None:
    codec = get_codec(name, k, m)
    shards = codec.encode(_block(length, seed))
    keep = random.Random(seed).sample(range(k + m), max(0, k - extra))
    with pytest.raises(DecodeError):
        codec.decode({i: shards[i] for i in keep}, length)


@settings(max_examples=100, deadline=None)
@given(
    payload=st.binary(min_size=1, max_size=2000),
    shard_index=st.integers(0, 255),
    block_index=st.integers(0, 2**48 - 1),
    flip=st.integers(0, 2015),
)
def test_framing_round_trip_and_bitflip(
    payload: bytes, shard_index: int, block_index: int, flip: int
) -> None:
    framed = frame_hash(payload, shard_index=shard_index, block_index=block_index) + payload
    assert verify_block(framed, shard_index=shard_index, block_index=block_index) == payload
    damaged = bytearray(framed)
    damaged[flip % len(framed)] ^= 0x80
    with pytest.raises(BitrotError):
        verify_block(bytes(damaged), shard_index=shard_index, block_index=block_index)


@st.composite
def ranges(draw: st.DrawFn) -> tuple[Layout, int, int, int]:
    layout = Layout(
        draw(st.sampled_from(CODECS)),
        draw(st.integers(1, 10)),
        draw(st.integers(1, 4)),
        draw(st.integers(1, 5000)),
    )
    object_size = draw(st.integers(1, 20 * layout.block_size))
    start = draw(st.integers(0, object_size - 1))
    end = draw(st.integers(start, object_size - 1))
    return layout, object_size, start, end


@ARITHMETIC_SETTINGS
@given(case=ranges())
def test_blocks_for_range_covers_exactly(case: tuple[Layout, int, int, int]) -> None:
    layout, object_size, start, end = case
    first, last = layout.blocks_for_range(object_size, start, end)
    size = layout.block_size
    assert 0 <= first <= last < layout.block_count(object_size)
    # The first block holds `start`, the last holds `end`: no block too many or too few.
    assert first * size <= start < first * size + layout.block_len(object_size, first)
    assert last * size <= end < last * size + layout.block_len(object_size, last)


@ARITHMETIC_SETTINGS
@given(
    codec=st.sampled_from(CODECS),
    k=st.integers(1, 10),
    m=st.integers(1, 4),
    block_size=st.integers(1, 5000),
    blocks=st.integers(0, 40),
    tail=st.integers(0, 4999),
)
def test_blocks_tile_object_and_shard_file(
    codec: str, k: int, m: int, block_size: int, blocks: int, tail: int
) -> None:
    layout = Layout(codec, k, m, block_size)
    object_size = blocks * block_size + tail % block_size
    count = layout.block_count(object_size)
    lengths = [layout.block_len(object_size, b) for b in range(count)]
    assert sum(lengths) == object_size
    assert all(n == block_size for n in lengths[:-1])
    assert all(1 <= n <= block_size for n in lengths)
    end = SHARD_HEADER_BYTES
    for b, n in enumerate(lengths):
        assert layout.shard_block_offset(b) == end
        end += layout.framed_block_size(n)
    assert layout.shard_file_size(object_size) == end
