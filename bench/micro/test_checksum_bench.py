"""Micro-benchmarks: one 1 MiB ``update`` per checksum algorithm, and MD5 for scale.

Not part of the main suite (``testpaths`` is ``tests``). Run with::

    pytest bench/micro/test_checksum_bench.py --benchmark-only

MB/s = 1.048576 / mean seconds. PERF.md has the figures to compare with (MD5 ~870 MB/s,
SHA-256 ~2000 MB/s, CRC32C ~15000 MB/s per core).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest

from gateway.checksums import ALGORITHMS, new_checksummer

BLOCK = memoryview(os.urandom(1 << 20))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_update_1mib(benchmark: Any, algorithm: str) -> None:
    checksummer = new_checksummer(algorithm)
    benchmark.extra_info["bytes"] = len(BLOCK)
    benchmark(checksummer.update, BLOCK)


def test_md5_update_1mib(benchmark: Any) -> None:
    md5 = hashlib.md5()
    benchmark.extra_info["bytes"] = len(BLOCK)
    benchmark(md5.update, BLOCK)


@pytest.mark.parametrize("lanes", [1, 4, 8, 16])
def test_md5_lanes_1mib_each(benchmark: Any, lanes: int) -> None:
    """gateway._md5lanes: ``lanes`` uploads' 1 MiB blocks hashed side by side (MB/s =
    lanes x 1.048576 / mean seconds; hashlib's one-lane figure is test_md5_update_1mib)."""
    ext = pytest.importorskip("gateway._md5lanes")
    states = [bytearray(16) for _ in range(lanes)]
    blocks = [BLOCK] * lanes
    benchmark.extra_info["bytes"] = len(BLOCK) * lanes
    benchmark(ext.md5_lanes, states, blocks)
