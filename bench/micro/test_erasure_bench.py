"""Micro-benchmarks of the erasure package: ``pytest bench/micro -k erasure``.

Each benchmark records the median throughput as ``extra_info["MB/s"]`` (MB = 10^6 bytes; see
``--benchmark-json``). Results for pyeclib (isal) depend heavily on glibc's malloc thresholds:
liberasurecode allocates each fragment (just over 128 KiB for 1 MiB at k=8) fresh, so with the
default dynamic thresholds every call page-faults new memory and encode runs ~10x slower.
Compare with ``MALLOC_MMAP_THRESHOLD_=8388608 MALLOC_TRIM_THRESHOLD_=33554432``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import pytest

from erasure.codec import CODECS, get_codec
from erasure.framing import frame_hash, verify_block

T = TypeVar("T")
MiB = 1024 * 1024


class Benchmark(Protocol):
    """The part of pytest-benchmark's ``benchmark`` fixture used here (it is untyped)."""

    extra_info: dict[str, Any]
    stats: Any

    def __call__(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...


def _record_rate(benchmark: Benchmark, nbytes: int) -> None:
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["MB/s"] = round(nbytes / benchmark.stats.stats.median / 1e6)


@pytest.fixture(scope="module")
def block() -> bytes:
    return os.urandom(MiB)


@pytest.mark.parametrize("name", CODECS)
def test_encode_1mib_8_4(benchmark: Benchmark, block: bytes, name: str) -> None:
    codec = get_codec(name, 8, 4)
    shards = benchmark(codec.encode, block)
    assert len(shards) == 12
    _record_rate(benchmark, MiB)


@pytest.mark.parametrize("name", CODECS)
def test_decode_1mib_8_4_all_data_shards(benchmark: Benchmark, block: bytes, name: str) -> None:
    """The healthy GET path: no decode math, concatenate the k data shards."""
    codec = get_codec(name, 8, 4)
    shards = dict(enumerate(codec.encode(block)))
    assert benchmark(codec.decode, shards, MiB) == block
    _record_rate(benchmark, MiB)


@pytest.mark.parametrize("name", CODECS)
def test_decode_1mib_8_4_four_data_shards_lost(
    benchmark: Benchmark, block: bytes, name: str
) -> None:
    """Degraded GET: the worst case for 8+4, four data shards rebuilt from parity."""
    codec = get_codec(name, 8, 4)
    shards = {i: s for i, s in enumerate(codec.encode(block)) if i >= 4}
    assert benchmark(codec.decode, shards, MiB) == block
    _record_rate(benchmark, MiB)


@pytest.mark.parametrize("name", CODECS)
def test_reconstruct_one_shard_1mib_8_4(benchmark: Benchmark, block: bytes, name: str) -> None:
    """Healing one lost data shard of a 1 MiB block."""
    codec = get_codec(name, 8, 4)
    encoded = codec.encode(block)
    shards = {i: s for i, s in enumerate(encoded) if i != 0}
    assert benchmark(codec.reconstruct, shards, MiB, [0]) == {0: encoded[0]}
    _record_rate(benchmark, MiB)


def test_frame_hash_128kib(benchmark: Benchmark) -> None:
    payload = os.urandom(128 * 1024)
    digest = benchmark(frame_hash, payload, shard_index=3, block_index=7)
    assert len(digest) == 16
    _record_rate(benchmark, len(payload))


def test_verify_block_128kib(benchmark: Benchmark) -> None:
    payload = os.urandom(128 * 1024)
    framed = frame_hash(payload, shard_index=3, block_index=7) + payload
    view = benchmark(verify_block, framed, shard_index=3, block_index=7)
    assert len(view) == len(payload)
    _record_rate(benchmark, len(payload))
