"""Where the server's CPU goes, by stage: py-spy samples of each server process during a large
PUT, each sample's stack attributed to one stage, the shares scaled by the CPU-s/GB the same
pass measured.

py-spy runs ``--nonblocking`` (the server is not paused; its idle threads are left out, so a
sample is a thread on a CPU) and without ``--native``: C work shows as the Python frame that
called it (``RequestBody.update`` or the ``md5-lanes`` thread for MD5, ``frame_hash`` for
xxh3, ``encode`` for ISA-L). A sample whose innermost Python frame is the event loop itself
(``Runner.run``) is uvloop's C code: socket reads and writes and callback dispatch. One whose
innermost frame is a pool thread's queue wait is a thread being woken for its next job (the
cost of the hand-off).

Attribution is pure (``attribute``): compute stages are matched from the innermost frame
outwards (the first frame that names one wins), then transport and HTTP by any frame, else
"other" (Python glue: handlers, auth, metrics, thread-pool hand-offs).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.cpu import ServerProcess

HTTP = "HTTP receive/send"
CHECKSUMS = "MD5/checksums"
ENCODE = "erasure encode/decode"
FRAMING = "framing/xxh3"
TRANSPORT = "node transport"
DISK = "disk IO (write, fsync, index)"
LOOP = "event loop (uvloop C)"
THREADS = "thread-pool hand-off (wake-ups)"
OTHER = "other (Python glue)"
STAGES = (HTTP, CHECKSUMS, ENCODE, FRAMING, TRANSPORT, DISK, LOOP, THREADS, OTHER)
# A thread inside fsync (or SQLite's commit, which fsyncs) is in uninterruptible disk wait, one
# polling a socket for a shard body sleeps, and one in a condition's wait (an upload waiting
# for its block's MD5, the MD5 lanes waiting for blocks) is blocked on a lock; py-spy counts
# them all as active. Those samples are reported but not charged CPU.
SYNC_WAIT = "fsync/commit/socket/lock waits (not CPU)"
_SYNC_LEAVES = (
    "fsync",
    "DirectFile._finish (storage/direct_file.py",
    "_wait_for_data (storage/direct_file.py",
    "Index._commit (storage/index.py",
    "Condition.wait (threading.py",
)

# Innermost-first: the first frame (from the leaf up) containing one of these names its stage.
_COMPUTE: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        CHECKSUMS,
        (
            "RequestBody.update (gateway/body.py",
            "(gateway/checksums.py",
            "(gateway/md5.py",  # the MD5 lanes' thread (gateway._md5lanes is C)
            "(hashlib",
        ),
    ),
    (FRAMING, ("(erasure/framing.py", "(xxhash")),
    (ENCODE, ("(erasure/codec.py", "(erasure/isal_direct.py", "(pyeclib/", "(zfec")),
    (
        DISK,
        (
            "(storage/local_drive.py",
            "(storage/direct_file.py",
            "(storage/index.py",
            "(sqlite3",
            "_fsync_dir",
        ),
    ),
)
_TRANSPORT = (
    "(storage/remote_drive.py",
    "(storage/shard_upload.py",
    "(storage/shard_connection.py",
    "(storage/node_server.py",
    "(storage/node_protocol.py",
    "(aiohttp/client",
    "(aiohttp/connector.py",
)
_HTTP = ("(aiohttp/", "(gateway/body.py", "(gateway/chunked.py", "(multidict", "(yarl")
_LOOP = ("Runner.run (asyncio/runners.py", "(uvloop")
# A pool thread whose innermost frame is the queue wait: woken for one job (futex, GIL hand-off).
_THREADS = ("_worker (concurrent/futures/thread.py",)


def attribute(stack: Sequence[str], kind: str) -> str:
    """The stage of one sample; ``stack`` is outermost first (py-spy's raw order).

    In a node process, serving HTTP *is* the node transport.

    >>> attribute(["Runner.run (asyncio/runners.py:118)"], "gateway")
    'event loop (uvloop C)'
    >>> attribute(["_worker (concurrent/futures/thread.py:83)",
    ...            "encode_block (storage/streams.py:44)", "frame_hash (erasure/framing.py:147)"],
    ...           "gateway")
    'framing/xxh3'
    >>> attribute(["Thread.run (threading.py:982)", "Md5Lanes._run (gateway/md5.py:106)"],
    ...           "gateway")
    'MD5/checksums'
    >>> attribute(["put (gateway/handlers/object.py:80)", "_send (storage/remote_drive.py:84)",
    ...            "StreamWriter._write (aiohttp/http_writer.py:104)"], "gateway")
    'node transport'
    >>> attribute(["_encode_and_write (storage/streams.py:198)",
    ...            "ShardUpload._send (storage/shard_upload.py:76)"], "gateway")
    'node transport'
    >>> attribute(["handle (aiohttp/web_protocol.py:510)",
    ...            "StreamReader.read (aiohttp/streams.py:380)"], "node")
    'node transport'
    >>> attribute(["dispatch (gateway/app.py:78)", "verify (gateway/sigv4.py:200)"], "gateway")
    'other (Python glue)'
    >>> attribute(["_worker (concurrent/futures/thread.py:83)",
    ...            "_fsync_dir (storage/local_drive.py:48)"], "node")
    'fsync/commit/socket/lock waits (not CPU)'
    >>> attribute(["Md5Lanes._gather (gateway/md5.py:144)", "Condition.wait (threading.py:331)"],
    ...           "gateway")
    'fsync/commit/socket/lock waits (not CPU)'
    """
    if stack and any(n in stack[-1] for n in _SYNC_LEAVES):
        return SYNC_WAIT
    for frame in reversed(stack):
        for stage, needles in _COMPUTE:
            if any(n in frame for n in needles):
                return stage
    if any(n in frame for frame in stack for n in _TRANSPORT):
        return TRANSPORT
    leaf = stack[-1] if stack else ""
    if any(n in leaf for n in _THREADS):
        return THREADS
    if any(n in leaf for n in _LOOP):
        return TRANSPORT if kind == "node" else LOOP
    if any(n in frame for frame in stack for n in _HTTP):
        return TRANSPORT if kind == "node" else HTTP
    return OTHER


def parse_raw(text: str) -> Counter[tuple[str, ...]]:
    """py-spy ``--format raw`` (collapsed stacks: ``frame;frame;frame count``).

    >>> parse_raw("a (x.py:1);b (y.py:2) 3\\na (x.py:1) 2\\n")
    Counter({('a (x.py:1)', 'b (y.py:2)'): 3, ('a (x.py:1)',): 2})
    """
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


@dataclass(frozen=True, slots=True)
class StageProfile:
    """Samples per stage for one process kind, and the hottest innermost frames. Shares are of
    the CPU samples (disk-wait samples left out); ``wait_share`` is of all samples."""

    kind: str
    samples: int
    by_stage: Mapping[str, int]
    top_frames: tuple[tuple[str, int], ...]

    @property
    def cpu_samples(self) -> int:
        return self.samples - self.by_stage.get(SYNC_WAIT, 0)

    def share(self, stage: str) -> float:
        if stage == SYNC_WAIT:
            return 0.0
        return self.by_stage.get(stage, 0) / self.cpu_samples if self.cpu_samples else 0.0

    @property
    def wait_share(self) -> float:
        return self.by_stage.get(SYNC_WAIT, 0) / self.samples if self.samples else 0.0


def stage_profile(
    kind: str, stacks: Iterable[tuple[tuple[str, ...], int]], top: int = 12
) -> StageProfile:
    """
    >>> p = stage_profile("gateway", [(("Runner.run (asyncio/runners.py:118)",), 3),
    ...                               (("x (gateway/body.py:77)", "RequestBody.update "
    ...                                 "(gateway/body.py:77)"), 1)])
    >>> p.samples, p.share("event loop (uvloop C)"), p.share("MD5/checksums")
    (4, 0.75, 0.25)
    """
    by_stage: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    samples = 0
    for stack, count in stacks:
        samples += count
        by_stage[attribute(stack, kind)] += count
        if stack:
            leaves[stack[-1]] += count
    return StageProfile(kind, samples, dict(by_stage), tuple(leaves.most_common(top)))


def stage_cpu_s_per_gb(
    profile: StageProfile, kind_cpu_s_per_gb: float | None
) -> dict[str, float | None]:
    """A kind's measured CPU-s/GB split by the sample shares.

    >>> p = StageProfile("gateway", 4, {"MD5/checksums": 1, "other (Python glue)": 3}, ())
    >>> stage_cpu_s_per_gb(p, 2.0)["MD5/checksums"]
    0.5
    """
    return {
        stage: None if kind_cpu_s_per_gb is None else kind_cpu_s_per_gb * profile.share(stage)
        for stage in STAGES
    }


def profile_kinds(
    samples: Mapping[str, Sequence[tuple[Sequence[str], int]]],
    cpu_by_kind: Mapping[str, float],
    object_bytes: int,
) -> dict[str, Any]:
    """Per process kind: stage shares of the py-spy samples, the CPU-s/GB they split, and the
    raw stacks (kept, so a report can be re-attributed after the rules change)."""
    kinds: dict[str, Any] = {}
    for kind, stacks in samples.items():
        prof = stage_profile(kind, [(tuple(s), n) for s, n in stacks])
        cpu = cpu_by_kind.get(kind)
        per_gb = None if cpu is None or not object_bytes else cpu * 1e9 / object_bytes
        kinds[kind] = {
            "samples": prof.samples,
            "disk_wait_share": prof.wait_share,
            "cpu_s_per_gb": per_gb,
            "share": {st: prof.share(st) for st in prof.by_stage},
            "stage_cpu_s_per_gb": stage_cpu_s_per_gb(prof, per_gb),
            "top_frames": [list(f) for f in prof.top_frames],
            "stacks": [[";".join(s), n] for s, n in sorted(stacks, key=lambda x: -x[1])[:3000]],
        }
    return kinds


def find_py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@dataclass
class Sampler:
    """``py-spy record`` attached to each process until ``stop()`` (SIGINT makes it write)."""

    processes: Sequence[ServerProcess]
    rate_hz: int = 50
    _running: list[tuple[ServerProcess, subprocess.Popen[bytes], Path]] = field(
        default_factory=list
    )
    _folder: Path | None = None
    errors: list[str] = field(default_factory=list)

    def start(self) -> bool:
        exe = find_py_spy()
        if exe is None:
            self.errors.append("py-spy not found (pip install py-spy): no per-stage breakdown")
            return False
        self._folder = Path(tempfile.mkdtemp(prefix="huimin-bench-pyspy-"))
        for p in self.processes:
            out = self._folder / f"{p.name}.txt"
            argv = [exe, "record", "-p", str(p.pid), "-r", str(self.rate_hz), "--nonblocking"]
            argv += ["-f", "raw", "-o", str(out)]
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self._running.append((p, proc, out))
        return True

    def stop(self) -> dict[str, Counter[tuple[str, ...]]]:
        """Samples per process kind (all processes of a kind pooled)."""
        by_kind: dict[str, Counter[tuple[str, ...]]] = {}
        for p, proc, out in self._running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                _, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            if not out.exists():
                self.errors.append(f"py-spy on {p.name}: {err.decode(errors='replace')[-300:]}")
                continue
            by_kind.setdefault(p.kind, Counter()).update(parse_raw(out.read_text()))
        self._running.clear()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
        return by_kind


def profiling_allowed() -> bool:
    """py-spy reads another process's memory: root, or ptrace_scope 0."""
    if os.geteuid() == 0:
        return True
    try:
        return Path("/proc/sys/kernel/yama/ptrace_scope").read_text().strip() == "0"
    except OSError:
        return True
