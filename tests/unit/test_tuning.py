"""malloc tuning: once a process has used block-sized buffers, using them again costs no page
faults (the freed heap is kept, not handed back to the kernel and faulted in again).

Each case runs in a fresh interpreter, since mallopt settings are process-wide and permanent."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

_CHILD = """
import resource, sys
from huimin.tuning import tune_malloc
tuned = sys.argv[1] == "tuned"
if tuned:
    assert tune_malloc(4 << 20)
def churn():
    # 48 blocks of 4 MiB at once (192 MiB: above the old 32 MiB trim threshold), all freed.
    blocks = [bytearray(4 << 20) for _ in range(48)]
    del blocks
churn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults_of_second_churn(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_reused_blocks_are_not_faulted_in_again() -> None:
    pages = 48 * (4 << 20) // 4096
    # Untuned, each 4 MiB block is a fresh mmap: every page faults again.
    assert _faults_of_second_churn("default") > pages // 2
    # Tuned, the blocks come from the heap the first churn grew and left in place.
    assert _faults_of_second_churn("tuned") < pages // 20
