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
