"""Codec behaviour a caller relies on: exact sizes, round trips, clear errors on bad input."""

from __future__ import annotations

import random

import pytest
from pyeclib.ec_iface import ECDriver

from erasure.codec import CODECS, DEFAULT_CODEC, Codec, DecodeError, get_codec

ALL_LENGTHS = [*range(1, 300), 1000, 4095, 4096, 4097, 65_535, 65_536, 65_537, 1024 * 1024 - 1]


def _block(length: int, seed: int = 0) -> bytes:
    return random.Random(seed * 1_000_003 + length).randbytes(length)


@pytest.fixture(params=CODECS)
def codec_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def test_registry() -> None:
    assert CODECS == ("isal", "zfec")
    assert DEFAULT_CODEC in CODECS
    assert get_codec("isal", 8, 4) is get_codec("isal", 8, 4)
    codec = get_codec("zfec", 4, 2)
    assert (codec.name, codec.k, codec.m) == ("zfec", 4, 2)


@pytest.mark.parametrize(
    ("name", "k", "m"),
    [
        ("rs", 8, 4),
        ("", 8, 4),
        ("isal", 0, 4),
        ("isal", 8, 0),
        ("zfec", 8, -1),
        ("isal", 8, 5),  # isa_l_rs_vand is not MDS with m >= 5
        ("isal", 30, 3),  # more than liberasurecode's 32 fragments
        ("zfec", 250, 7),
    ],
)
def test_get_codec_rejects(name: str, k: int, m: int) -> None:
    with pytest.raises(ValueError):
        get_codec(name, k, m)


@pytest.mark.parametrize(("k", "m"), [(1, 1), (2, 2), (3, 1), (4, 2), (8, 4), (10, 4), (28, 4)])
def test_isal_shard_size_matches_pyeclib(k: int, m: int) -> None:
    codec = get_codec("isal", k, m)
    driver = ECDriver(k=k, m=m, ec_type="isa_l_rs_vand")
    for length in ALL_LENGTHS:
        expected = driver.get_segment_info(length, length)["fragment_size"]
        assert codec.shard_size(length) == expected, length


@pytest.mark.parametrize(("k", "m"), [(1, 1), (3, 2), (8, 4), (10, 4)])
def test_shard_size_is_exact_for_every_length(codec_name: str, k: int, m: int) -> None:
    codec = get_codec(codec_name, k, m)
    for length in ALL_LENGTHS:
        shards = codec.encode(_block(length))
        assert len(shards) == k + m
        assert {len(s) for s in shards} == {codec.shard_size(length)}, length


def test_shard_size_examples() -> None:
    assert get_codec("zfec", 8, 4).shard_size(1024 * 1024) == 131_072
    assert get_codec("zfec", 4, 2).shard_size(10) == 3
    assert get_codec("isal", 8, 4).shard_size(1024 * 1024) == 80 + 131_072
    assert get_codec("isal", 4, 2).shard_size(10) == 80 + 3
    for name in CODECS:
        with pytest.raises(ValueError):
            get_codec(name, 4, 2).shard_size(0)


def test_encode_rejects_empty_block(codec_name: str) -> None:
    with pytest.raises(ValueError):
        get_codec(codec_name, 4, 2).encode(b"")


def test_systematic_data_shards(codec_name: str) -> None:
    """Shards 0..k-1 hold the block itself (after the isal header), zero-padded."""
    codec = get_codec(codec_name, 4, 2)
    block = _block(10)
    header = codec.shard_size(10) - 3
    payloads = [s[header:] for s in codec.encode(block)[:4]]
    assert b"".join(payloads) == block + bytes(2)


def test_encode_is_deterministic_and_accepts_views(codec_name: str) -> None:
    codec = get_codec(codec_name, 8, 4)
    block = _block(100_000)
    padded = b"xx" + block + b"yy"
    assert codec.encode(block) == codec.encode(block)
    assert codec.encode(memoryview(padded)[2:-2]) == codec.encode(block)
    assert codec.encode(memoryview(bytearray(block))) == codec.encode(block)


@pytest.mark.parametrize("length", [1, 2, 7, 8, 9, 1000, 131_073])
def test_round_trip_any_k_of_n(codec_name: str, length: int) -> None:
    codec = get_codec(codec_name, 4, 2)
    block = _block(length)
    shards = codec.encode(block)
    for lost in [(), (0,), (3,), (4, 5), (0, 1), (1, 4), (0, 5)]:
        survivors = {i: memoryview(s) for i, s in enumerate(shards) if i not in lost}
        assert codec.decode(survivors, length) == block, lost
        assert codec.reconstruct(survivors, length, list(lost)) == {i: shards[i] for i in lost}


def test_decode_from_parity_only(codec_name: str) -> None:
    codec = get_codec(codec_name, 2, 2)
    block = _block(5000)
    shards = codec.encode(block)
    assert codec.decode({2: shards[2], 3: shards[3]}, 5000) == block
    assert codec.reconstruct({2: shards[2], 3: shards[3]}, 5000, [0, 1]) == {
        0: shards[0],
        1: shards[1],
    }


def test_reconstruct_wanted_may_include_present_shards(codec_name: str) -> None:
    codec = get_codec(codec_name, 4, 2)
    shards = codec.encode(_block(999))
    given = {i: shards[i] for i in (0, 2, 3, 5)}
    assert codec.reconstruct(given, 999, [5, 1, 4, 1]) == {1: shards[1], 4: shards[4], 5: shards[5]}
    assert codec.reconstruct(given, 999, []) == {}
    with pytest.raises(ValueError):
        codec.reconstruct(given, 999, [6])


def test_too_few_shards(codec_name: str) -> None:
    codec = get_codec(codec_name, 4, 2)
    shards = codec.encode(_block(1000))
    few = {i: shards[i] for i in (0, 2, 5)}
    with pytest.raises(DecodeError):
        codec.decode(few, 1000)
    with pytest.raises(DecodeError):
        codec.reconstruct(few, 1000, [1])
    with pytest.raises(DecodeError):
        codec.decode({}, 1000)


def test_inconsistent_input(codec_name: str) -> None:
    codec = get_codec(codec_name, 4, 2)
    shards = codec.encode(_block(1000))
    full = dict(enumerate(shards))
    with pytest.raises(DecodeError):  # wrong block_len for these shard sizes
        codec.decode(full, 2000)
    with pytest.raises(DecodeError):  # index out of range
        codec.decode({**full, 6: shards[0]}, 1000)
    with pytest.raises(DecodeError):  # truncated shard
        codec.decode({**full, 1: shards[1][:-1]}, 1000)
    with pytest.raises(ValueError):
        codec.decode(full, 0)


def test_isal_detects_shard_under_wrong_index() -> None:
    """isal fragments name their index: a shard filed under another index is refused, on the
    fast path too (zfec shards carry no header; framing's position-keyed hash covers it)."""
    codec = get_codec("isal", 4, 2)
    shards = codec.encode(_block(1000))
    swapped = {0: shards[1], 1: shards[0], 2: shards[2], 3: shards[3]}
    with pytest.raises(DecodeError):
        codec.decode(swapped, 1000)
    with pytest.raises(DecodeError):
        codec.decode({1: shards[1], 2: shards[2], 3: shards[3], 4: shards[5]}, 1000)
    with pytest.raises(DecodeError):  # header says 1000 bytes; 999 has the same shard size
        codec.decode(dict(enumerate(shards)), 999)


def test_codecs_satisfy_protocol() -> None:
    codecs: list[Codec] = [get_codec(name, 2, 1) for name in CODECS]
    assert [c.name for c in codecs] == list(CODECS)
