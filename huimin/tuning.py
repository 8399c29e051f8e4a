"""Process-wide tuning applied once at start-up."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
# Freed heap memory a process keeps for reuse instead of returning it to the kernel.
RETAIN_FREED_BYTES = 1 << 30
# Allocations (net of frees) between young-generation collections; CPython's default is 700.
GC_YOUNG_THRESHOLD = 20_000


def tune_malloc(block_size_bytes: int) -> bool:
    """Keep block-sized buffers on the heap, and keep the heap once it has grown.

    - **mmap threshold** max(8 MiB, 2x the block size): with glibc's defaults every 1 MiB
      ISA-L encode page-faults ~3 MB of new memory and runs at ~500 MB/s instead of ~5,900
      MB/s (measured here).
    - **trim threshold** ``RETAIN_FREED_BYTES`` (1 GiB): a loaded gateway frees and allocates
      hundreds of MB of blocks a second (request bodies, fragments). At a trim threshold of
      32 MiB glibc gave the freed top of the heap back to the kernel over and over, and every
      page was faulted in again: 110,000-165,000 page faults per GiB uploaded, and 6% (the
      suite's median) to 20% (one warm cluster) of the gateway's CPU on 64 MiB PUTs
      (docs/benchmarks.md, "Freed memory kept"). Now a process returns freed memory only
      above 1 GiB of it.
    - **one arena**: threads allocate from the main heap too, so what a process keeps is at
      most its own peak (per-thread arenas would each keep theirs).

    Returns False where mallopt is unavailable (not glibc): nothing is changed then.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "mallopt"):
        return False
    mmap_threshold = max(8 << 20, 2 * block_size_bytes)
    libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
    libc.mallopt(_M_TRIM_THRESHOLD, max(RETAIN_FREED_BYTES, 4 * mmap_threshold))
    libc.mallopt(_M_ARENA_MAX, 1)
    return True


def tune_gc() -> None:
    """Collect cycles less often, and never walk the objects start-up made again.

    A request allocates thousands of short-lived objects (tasks, futures, header dicts,
    records). At CPython's default a young collection ran every 700 allocations, each walking
    every tracked object still alive (the in-flight requests' tasks and futures), and the
    full collections walked every module's objects too: ~6% of the gateway's CPU under small
    PUTs (perf). ``gc.freeze`` moves what start-up made (imports, settings) out of the
    collector's sight; the young threshold makes the walks ~30x rarer.
    """
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


# Linux scheduling policies a process may choose without privileges (priority 0).
SCHED_POLICIES = ("batch", "normal")


def tune_scheduling(policy: str) -> bool:
    """Run every thread of this process, and those it starts later, under ``policy``.

    "batch" (``SCHED_BATCH``): the kernel never preempts a running task to run one of ours
    that just woke up; ours runs when a CPU is free or at the running task's next tick. A
    request wakes a chain of processes and threads (gateway, nodes, their commit threads),
    and with the default policy each woken one preempted the one that woke it whenever they
    shared a CPU: on a 2-core box running a gateway and 6 nodes, "batch" took small PUTs from
    610 to 848 ops/s and small GETs from 2070 to 2356, at 10-25% less CPU per operation
    (docs/benchmarks.md, "Wake-ups without preemption"). "normal" is the kernel's default.

    Threads inherit their creator's policy, so this runs first thing; the threads already
    running (none of ours, maybe an import's) are set one by one. Returns False where the
    platform has no such policy (nothing changes) or the kernel refused (logged).
    """
    if policy not in SCHED_POLICIES:
        raise ValueError(f"scheduling policy {policy!r} is not one of {SCHED_POLICIES}")
    value = getattr(os, "SCHED_BATCH" if policy == "batch" else "SCHED_OTHER", None)
    if value is None or not hasattr(os, "sched_setscheduler"):
        return False
    tasks = Path("/proc/self/task")
    tids = [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]
    for tid in tids:
        try:
            os.sched_setscheduler(tid, value, os.sched_param(0))
        except ProcessLookupError:  # a thread that ended meanwhile
            continue
        except OSError as exc:
            log.warning("scheduling policy %s refused: %s", policy, exc)
            return False
    return True
