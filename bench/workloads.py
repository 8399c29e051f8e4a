"""The benchmark's basic workloads and how every workload is run and accounted for.

N objects of one size PUT, GET, HEAD or DELETEd with C requests in flight, or a mix for a
duration. Object data comes from one reusable random buffer per size (64 MiB by default), never
one buffer per object; GET bodies are streamed and discarded, only counted (and MD5-hashed with
``verify``). Every response is checked: status, PUT ETag against the data's MD5, GET byte count
against the object size; a failed check is an error, and errors are counted, never hidden.

A ``Meter`` brackets each workload: CPU seconds of every server process (by kind: gateway,
node, server) and of this client, and each server process's peak RSS (reset before, read after).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from bench.client import S3Client
from bench.cpu import (
    ServerProcess,
    peak_rss_bytes,
    reset_peak_rss,
    self_cpu,
    trees_cpu,
)
from bench.progress import Progress
from bench.results import OpOutcome, WorkloadResult, percentile, summarize

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9}
_UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "K": 2**10, "M": 2**20, "G": 2**30}
_SIZE = re.compile(r"^\s*(\d+)\s*([A-Za-z]*)\s*$")


def parse_size(text: str) -> int:
    """Bytes from ``"64MiB"``, ``"4KiB"``, ``"1MB"``, ``"4096"`` (K/M/G alone are binary).

    >>> parse_size("64MiB"), parse_size("4k"), parse_size("1MB"), parse_size("10")
    (67108864, 4096, 1000000, 10)
    """
    m = _SIZE.match(text)
    unit = m.group(2).upper() if m else None
    if m is None or unit not in _UNITS:
        raise ValueError(f"not a size: {text!r} (try 64MiB, 4KiB, 1MB, 4096)")
    return int(m.group(1)) * _UNITS[unit]


def format_size(nbytes: int) -> str:
    """The shortest exact binary name of a size.

    >>> format_size(64 * 2**20), format_size(4096), format_size(1500)
    ('64 MiB', '4 KiB', '1500 B')
    """
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= factor and nbytes % factor == 0:
            return f"{nbytes // factor} {unit}"
    return f"{nbytes} B"


class CheckFailed(Exception):
    """A response that came back 2xx but is wrong (short body, unexpected ETag)."""


@dataclass(frozen=True, slots=True)
class Payload:
    """The bytes every object of one size is written with, and their MD5 (the S3 ETag)."""

    data: bytes
    md5_hex: str

    @classmethod
    def random(cls, size: int) -> Payload:
        data = os.urandom(size)
        return cls(data, hashlib.md5(data).hexdigest())


@dataclass(frozen=True, slots=True)
class Usage:
    """What the server and the client spent during one workload."""

    server_cpu_s: float | None  # None: no server process known
    server_cpu_by_kind: dict[str, float]
    peak_rss: dict[str, int]  # process name -> peak RSS during the workload (or since start)
    client_cpu_s: float


@dataclass
class Meter:
    """Accounts for the server processes ``processes()`` names at the start of each window.

    Processes that exit during a window (a node killed on purpose) are left out of its CPU sum.
    """

    processes: Callable[[], Sequence[ServerProcess]]
    rss_reset_ok: bool | None = None  # None: not tried yet; False: VmHWM is since start
    _window: tuple[list[ServerProcess], dict[int, float], float] | None = field(
        default=None, repr=False
    )

    def start(self) -> None:
        procs = list(self.processes())
        for p in procs:
            ok = reset_peak_rss(p.pid)
            self.rss_reset_ok = ok if self.rss_reset_ok is None else self.rss_reset_ok and ok
        before = {pid: t.total_s for pid, t in trees_cpu([p.pid for p in procs]).items()}
        self._window = (procs, before, self_cpu().total_s)

    def stop(self) -> Usage:
        if self._window is None:
            raise RuntimeError("Meter.stop() without start()")
        procs, before, client_before = self._window
        self._window = None
        client_cpu_s = self_cpu().total_s - client_before
        after = {pid: t.total_s for pid, t in trees_cpu([p.pid for p in procs]).items()}
        by_kind: dict[str, float] = {}
        for p in procs:
            if p.pid in before and p.pid in after:
                by_kind[p.kind] = by_kind.get(p.kind, 0.0) + after[p.pid] - before[p.pid]
        peaks = {p.name: rss for p in procs if (rss := peak_rss_bytes(p.pid)) is not None}
        return Usage(
            server_cpu_s=sum(by_kind.values()) if procs else None,
            server_cpu_by_kind=by_kind,
            peak_rss=peaks,
            client_cpu_s=client_cpu_s,
        )


Op = Callable[[int], Awaitable[int]]


async def _timed(op: Op, i: int, outcomes: list[OpOutcome], progress: Progress | None) -> None:
    start = time.perf_counter()
    try:
        nbytes = await op(i)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
        outcomes.append(OpOutcome(time.perf_counter() - start, 0, error))
    else:
        outcomes.append(OpOutcome(time.perf_counter() - start, nbytes))
    if progress is not None:
        progress.advance()


async def run_ops(
    count: int, concurrency: int, op: Op, progress: Progress | None = None
) -> list[OpOutcome]:
    """Run ``op(0) .. op(count - 1)`` with ``concurrency`` in flight; ``op`` returns the object
    bytes it moved. Every exception is one counted error, never a crash of the whole run."""
    outcomes: list[OpOutcome] = []
    indexes = iter(range(count))

    async def worker() -> None:
        for i in indexes:  # shared iterator: each index is taken once
            await _timed(op, i, outcomes, progress)

    async with asyncio.TaskGroup() as tg:
        for _ in range(min(concurrency, count)):
            tg.create_task(worker())
    return outcomes


async def run_for(
    duration_s: float, concurrency: int, op: Op, progress: Progress | None = None
) -> list[OpOutcome]:
    """Call ``op(0), op(1), ...`` with ``concurrency`` in flight until ``duration_s`` has passed
    (requests in flight then finish and count)."""
    outcomes: list[OpOutcome] = []
    deadline = time.perf_counter() + duration_s
    counter = iter(range(1 << 62))

    async def worker() -> None:
        while time.perf_counter() < deadline:
            await _timed(op, next(counter), outcomes, None)

    async def tick() -> None:
        while (left := deadline - time.perf_counter()) > 0:
            if progress is not None:
                progress.set(duration_s - left)
            await asyncio.sleep(min(0.5, left))

    async with asyncio.TaskGroup() as tg:
        for _ in range(concurrency):
            tg.create_task(worker())
        tg.create_task(tick())
    return outcomes


async def measure_ops(
    meter: Meter,
    progress: Progress,
    name: str,
    *,
    kind: str,
    op_name: str,
    object_size: int,
    concurrency: int,
    op: Op,
    count: int | None = None,
    duration_s: float | None = None,
    figures: Callable[[list[OpOutcome]], Mapping[str, float | None]] | None = None,
) -> WorkloadResult:
    """Run ``op`` ``count`` times (or for ``duration_s``) inside a meter window; one result."""
    progress.start(name, count if count is not None else duration_s or 0, "" if count else " s")
    meter.start()
    start = time.perf_counter()
    if count is not None:
        outcomes = await run_ops(count, concurrency, op, progress)
    elif duration_s is not None:
        outcomes = await run_for(duration_s, concurrency, op, progress)
    else:
        raise ValueError("give count or duration_s")
    wall_s = time.perf_counter() - start
    usage = meter.stop()
    progress.finish()
    return summarize(
        name,
        op_name,
        object_size,
        concurrency,
        outcomes,
        wall_s,
        usage.server_cpu_s,
        usage.client_cpu_s,
        kind=kind,
        server_cpu_by_kind=usage.server_cpu_by_kind,
        peak_rss=usage.peak_rss,
        figures=figures(outcomes) if figures is not None else None,
    )


def put_op(client: S3Client, bucket: str, keys: Sequence[str], payload: Payload) -> Op:
    async def put(i: int) -> int:
        result = await client.put_object(bucket, keys[i], payload.data)
        if result.etag != payload.md5_hex:
            raise CheckFailed(f"ETag {result.etag!r} is not the data's MD5 {payload.md5_hex}")
        return len(payload.data)

    return put


def get_op(
    client: S3Client, bucket: str, keys: Sequence[str], payload: Payload, verify: bool
) -> Op:
    size = len(payload.data)

    async def get(i: int) -> int:
        result = await client.get_object(bucket, keys[i], verify=verify)
        if result.received_bytes != size or result.content_length not in (None, size):
            raise CheckFailed(
                f"{keys[i]}: got {result.received_bytes} bytes "
                f"(Content-Length {result.content_length}), expected {size}"
            )
        if verify and result.md5_hex != payload.md5_hex:
            raise CheckFailed(f"{keys[i]}: body MD5 {result.md5_hex} != {payload.md5_hex}")
        return size

    return get


def head_op(client: S3Client, bucket: str, keys: Sequence[str], size: int) -> Op:
    async def head(i: int) -> int:
        length = await client.head_object(bucket, keys[i])
        if length != size:
            raise CheckFailed(f"{keys[i]}: HEAD Content-Length {length}, expected {size}")
        return 0  # no object bytes moved: ops/s is the figure

    return head


def delete_op(client: S3Client, bucket: str, keys: Sequence[str]) -> Op:
    async def delete(i: int) -> int:
        await client.delete_object(bucket, keys[i])
        return 0

    return delete


@dataclass(frozen=True, slots=True)
class Workload:
    op: Literal["PUT", "GET", "HEAD", "DELETE"]
    object_size: int
    count: int
    concurrency: int
    key_prefix: str  # objects are f"{key_prefix}{i:06d}"
    kind: str = "large"

    @property
    def name(self) -> str:
        return f"{self.op} {format_size(self.object_size)}"

    def object_keys(self) -> list[str]:
        return [f"{self.key_prefix}{i:06d}" for i in range(self.count)]


async def measure(
    client: S3Client,
    bucket: str,
    workload: Workload,
    payload: Payload,
    meter: Meter,
    progress: Progress,
    verify: bool = False,
    name: str | None = None,
) -> WorkloadResult:
    """Run one workload of N same-size requests and account for it."""
    if len(payload.data) != workload.object_size:
        raise ValueError("payload size differs from the workload's object size")
    keys = workload.object_keys()
    ops = {
        "PUT": lambda: put_op(client, bucket, keys, payload),
        "GET": lambda: get_op(client, bucket, keys, payload, verify),
        "HEAD": lambda: head_op(client, bucket, keys, workload.object_size),
        "DELETE": lambda: delete_op(client, bucket, keys),
    }
    return await measure_ops(
        meter,
        progress,
        name or workload.name,
        kind=workload.kind,
        op_name=workload.op,
        object_size=workload.object_size,
        concurrency=workload.concurrency,
        op=ops[workload.op](),
        count=workload.count,
    )


async def delete_objects(
    client: S3Client, bucket: str, keys: Sequence[str], concurrency: int
) -> list[str]:
    """Delete ``keys`` (untimed clean-up); the errors, if any."""
    outcomes = await run_ops(len(keys), concurrency, delete_op(client, bucket, keys))
    return [o.error for o in outcomes if o.error is not None]


@dataclass(frozen=True, slots=True)
class MixedSpec:
    object_size: int = 2**20
    read_fraction: float = 0.7
    duration_s: float = 30.0
    concurrency: int = 8
    objects: int = 64  # the GETs' working set, written (untimed) first


async def measure_mixed(
    client: S3Client,
    bucket: str,
    spec: MixedSpec,
    payload: Payload,
    meter: Meter,
    progress: Progress,
    key_prefix: str,
    seed: int = 0,
) -> tuple[WorkloadResult, list[str]]:
    """``read_fraction`` GETs of a prewritten working set, the rest PUTs of new keys, for
    ``duration_s``: the result (with per-op latency figures) and every key written, for the
    caller to delete."""
    reads = [f"{key_prefix}read-{i:06d}" for i in range(spec.objects)]
    await run_ops(len(reads), spec.concurrency, put_op(client, bucket, reads, payload))
    rng = random.Random(seed)
    latencies: dict[str, list[float]] = {"GET": [], "PUT": []}
    get = get_op(client, bucket, reads, payload, verify=False)
    written: list[str] = list(reads)

    async def mixed(i: int) -> int:
        started = time.perf_counter()
        if rng.random() < spec.read_fraction:
            nbytes = await get(rng.randrange(len(reads)))
            latencies["GET"].append(time.perf_counter() - started)
        else:
            key = f"{key_prefix}put-{i:07d}"
            written.append(key)
            await put_op(client, bucket, [key], payload)(0)
            nbytes = len(payload.data)
            latencies["PUT"].append(time.perf_counter() - started)
        return nbytes

    def figures(_: list[OpOutcome]) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for op_name, values in latencies.items():
            ms = [v * 1000 for v in values]
            out[f"{op_name.lower()}_ops"] = float(len(ms))
            out[f"{op_name.lower()}_p50_ms"] = percentile(ms, 50)
            out[f"{op_name.lower()}_p99_ms"] = percentile(ms, 99)
        return out

    pct = round(spec.read_fraction * 100)
    result = await measure_ops(
        meter,
        progress,
        f"MIXED {format_size(spec.object_size)} {pct}/{100 - pct} GET/PUT",
        kind="mixed",
        op_name="MIXED",
        object_size=spec.object_size,
        concurrency=spec.concurrency,
        op=mixed,
        duration_s=spec.duration_s,
        figures=figures,
    )
    return result, written
