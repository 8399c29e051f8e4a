"""The benchmark's workloads: N objects of one size PUT (or GET) with C requests in flight.

Object data comes from one reusable random buffer per size (64 MiB by default), never one
buffer per object; GET bodies are streamed and discarded, only counted (and MD5-hashed with
``verify``). Every response is checked: status, PUT ETag against the data's MD5, GET byte count
against the object size; a failed check is an error, and errors are counted, never hidden.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from bench.client import S3Client
from bench.cpu import self_cpu, tree_cpu
from bench.results import OpOutcome, WorkloadResult, summarize

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
class Workload:
    op: Literal["PUT", "GET"]
    object_size: int
    count: int
    concurrency: int
    key_prefix: str  # objects are f"{key_prefix}{i:06d}"

    @property
    def name(self) -> str:
        return f"{self.op} {format_size(self.object_size)}"

    def object_keys(self) -> list[str]:
        return [f"{self.key_prefix}{i:06d}" for i in range(self.count)]


async def run_ops(
    count: int, concurrency: int, op: Callable[[int], Awaitable[int]]
) -> list[OpOutcome]:
    """Run ``op(0) .. op(count - 1)`` with ``concurrency`` in flight; ``op`` returns the object
    bytes it moved. Every exception is one counted error, never a crash of the whole run."""
    outcomes: list[OpOutcome] = []
    indexes = iter(range(count))

    async def worker() -> None:
        for i in indexes:  # shared iterator: each index is taken once
            start = time.perf_counter()
            try:
                nbytes = await op(i)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"[:300]
                outcomes.append(OpOutcome(time.perf_counter() - start, 0, error))
            else:
                outcomes.append(OpOutcome(time.perf_counter() - start, nbytes))

    async with asyncio.TaskGroup() as tg:
        for _ in range(min(concurrency, count)):
            tg.create_task(worker())
    return outcomes


def _put_op(
    client: S3Client, bucket: str, keys: list[str], payload: Payload
) -> Callable[[int], Awaitable[int]]:
    async def put(i: int) -> int:
        result = await client.put_object(bucket, keys[i], payload.data)
        if result.etag != payload.md5_hex:
            raise CheckFailed(f"ETag {result.etag!r} is not the data's MD5 {payload.md5_hex}")
        return len(payload.data)

    return put


def _get_op(
    client: S3Client, bucket: str, keys: list[str], payload: Payload, verify: bool
) -> Callable[[int], Awaitable[int]]:
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


async def measure(
    client: S3Client,
    bucket: str,
    workload: Workload,
    payload: Payload,
    server_pid: int | None,
    verify: bool = False,
) -> WorkloadResult:
    """Run one workload and account for it: wall time, per-request latency, the CPU the server
    process tree and this client spent between the two samples around it."""
    if len(payload.data) != workload.object_size:
        raise ValueError("payload size differs from the workload's object size")
    keys = workload.object_keys()
    op = (
        _put_op(client, bucket, keys, payload)
        if workload.op == "PUT"
        else _get_op(client, bucket, keys, payload, verify)
    )
    server_before = tree_cpu(server_pid) if server_pid is not None else None
    client_before = self_cpu()
    start = time.perf_counter()
    outcomes = await run_ops(workload.count, workload.concurrency, op)
    wall_s = time.perf_counter() - start
    client_cpu_s = (self_cpu() - client_before).total_s
    server_cpu_s = (
        (tree_cpu(server_pid) - server_before).total_s
        if server_pid is not None and server_before is not None
        else None
    )
    return summarize(
        workload.name,
        workload.op,
        workload.object_size,
        workload.concurrency,
        outcomes,
        wall_s,
        server_cpu_s,
        client_cpu_s,
    )


async def delete_objects(
    client: S3Client, bucket: str, keys: list[str], concurrency: int
) -> list[str]:
    """Delete ``keys`` (untimed clean-up); the errors, if any."""

    async def delete(i: int) -> int:
        await client.delete_object(bucket, keys[i])
        return 0

    outcomes = await run_ops(len(keys), concurrency, delete)
    return [o.error for o in outcomes if o.error is not None]
