"""malloc tuning: once a process has used block-sized buffers, using them again costs no page
faults (the freed heap is kept, not handed back to the kernel and faulted in again).

Each case runs in a fresh interpreter, since mallopt settings are process-wide and permanent."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from huimin.tuning import tune_scheduling

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


_SCHED_CHILD = """
import os, sys, threading
from huimin.tuning import tune_scheduling
before = threading.Event(); stop = threading.Event()
early = threading.Thread(target=lambda: (before.set(), stop.wait()), daemon=True)
early.start(); before.wait()
assert tune_scheduling(sys.argv[1])
got = []
late = threading.Thread(target=lambda: got.append(os.sched_getscheduler(0)))
late.start(); late.join()
def policy(tid):
    try:
        return os.sched_getscheduler(tid)
    except ProcessLookupError:  # the late thread, gone since the listing
        return None
tids = [int(t) for t in os.listdir("/proc/self/task")]
print(sorted({policy(t) for t in tids} - {None} | set(got)))
stop.set()
"""


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux scheduling policies")
@pytest.mark.parametrize(
    ("policy", "expected"), [("batch", "SCHED_BATCH"), ("normal", "SCHED_OTHER")]
)
def test_every_thread_takes_the_policy_and_new_ones_inherit_it(policy: str, expected: str) -> None:
    # A thread started before, the main thread, and one started after: all take it.
    out = subprocess.run(
        [sys.executable, "-c", _SCHED_CHILD, policy], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str([getattr(os, expected)])


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="not one of"):
        tune_scheduling("fifo")
