"""Multipart upload of one large object: create, N parts with C in flight, complete.

The figure is the whole object's MB/s (create to complete); latencies are the parts'. The
completed object's ETag is checked against the parts' MD5s (``md5(md5s)-N``).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass

from bench.client import S3Client, multipart_etag
from bench.progress import Progress
from bench.results import OpOutcome, WorkloadResult, summarize
from bench.workloads import CheckFailed, Meter, Payload, format_size, run_ops


@dataclass(frozen=True, slots=True)
class MultipartSpec:
    size: int = 2**30
    part_size: int = 16 * 2**20
    concurrency: int = 4

    @property
    def parts(self) -> int:
        """
        >>> MultipartSpec(2**30, 16 * 2**20).parts, MultipartSpec(100, 30).parts
        (64, 4)
        """
        return -(-self.size // self.part_size)

    def part_length(self, number: int) -> int:
        """Length of part ``number`` (1-based); the last one takes the remainder.

        >>> [MultipartSpec(100, 30).part_length(n) for n in (1, 4)]
        [30, 10]
        """
        return min(self.part_size, self.size - (number - 1) * self.part_size)


async def _abort_quietly(client: S3Client, bucket: str, key: str, upload_id: str) -> None:
    with contextlib.suppress(Exception):  # the failure that led here is what gets reported
        await client.abort_multipart_upload(bucket, key, upload_id)


async def measure_multipart(
    client: S3Client,
    bucket: str,
    key: str,
    spec: MultipartSpec,
    part: Payload,
    meter: Meter,
    progress: Progress,
) -> WorkloadResult:
    """Upload ``spec.size`` bytes as parts cut from ``part`` (every full part has its bytes)."""
    if len(part.data) != spec.part_size:
        raise ValueError("part payload size differs from the part size")
    name = (
        f"MULTIPART {format_size(spec.size)} ({format_size(spec.part_size)} parts, "
        f"{spec.concurrency} in flight)"
    )
    etags: dict[int, str] = {}
    progress.start(name, spec.parts)
    meter.start()
    started = time.perf_counter()
    upload_id = await client.create_multipart_upload(bucket, key)

    async def upload(i: int) -> int:
        number = i + 1
        length = spec.part_length(number)
        data = memoryview(part.data)[:length]
        etag = await client.upload_part(bucket, key, upload_id, number, data)
        expected = part.md5_hex if length == spec.part_size else hashlib.md5(data).hexdigest()
        if etag != expected:
            raise CheckFailed(f"part {number}: ETag {etag!r}, expected {expected}")
        etags[number] = etag
        return length

    outcomes = await run_ops(spec.parts, spec.concurrency, upload, progress)
    complete_started = time.perf_counter()
    complete_ms: float | None = None
    if all(o.error is None for o in outcomes):
        try:
            etag = await client.complete_multipart_upload(
                bucket, key, upload_id, sorted(etags.items())
            )
            complete_ms = (time.perf_counter() - complete_started) * 1000
            expected = multipart_etag([bytes.fromhex(etags[n]) for n in sorted(etags)])
            if etag != expected:
                raise CheckFailed(f"completed ETag {etag!r}, expected {expected}")
        except Exception as exc:
            outcomes.append(OpOutcome(0.0, 0, f"complete: {type(exc).__name__}: {exc}"[:300]))
            await _abort_quietly(client, bucket, key, upload_id)
    else:
        await _abort_quietly(client, bucket, key, upload_id)
    wall_s = time.perf_counter() - started
    usage = meter.stop()
    progress.finish()
    return summarize(
        name,
        "MULTIPART",
        spec.size,
        spec.concurrency,
        outcomes,
        wall_s,
        usage.server_cpu_s,
        usage.client_cpu_s,
        kind="multipart",
        server_cpu_by_kind=usage.server_cpu_by_kind,
        peak_rss=usage.peak_rss,
        figures={"complete_ms": complete_ms, "parts": float(spec.parts)},
    )
