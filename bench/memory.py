"""Gateway memory under many concurrent large uploads: ``uploads`` PUTs of ``size`` at once,
each body generated while it is sent (a 1 MiB block repeated, never held whole), run at two or
more sizes. A gateway that streams keeps the same peak RSS whatever the object size; one that
buffers grows with it. The figure is the peak RSS of the gateway process(es) (the embedded
server is its own gateway), and ``rss_growth``: the peak at the largest size over the peak at
the smallest.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bench.client import Credentials, S3Client, generated_body, generated_md5
from bench.progress import Progress
from bench.results import WorkloadResult, summarize
from bench.workloads import CheckFailed, Meter, delete_objects, format_size, run_ops

_BLOCK_BYTES = 2**20
GATEWAY_KINDS = ("gateway", "server")


@dataclass(frozen=True, slots=True)
class MemorySpec:
    uploads: int = 100
    sizes: tuple[int, ...] = (64 * 2**20, 256 * 2**20)


def gateway_peak(result: WorkloadResult, gateway_names: Sequence[str]) -> int | None:
    """The largest peak RSS among the gateway processes in ``result``.

    >>> r = summarize("m", "PUT", 1, 1, [], 1.0, None, 0.0, peak_rss={"gateway-1": 5, "node-1": 9})
    >>> gateway_peak(r, ["gateway-1"]), gateway_peak(r, ["x"])
    (5, None)
    """
    peaks = [v for k, v in result.peak_rss_bytes.items() if k in gateway_names]
    return max(peaks) if peaks else None


def growth(peaks: Sequence[int | None]) -> float | None:
    """Last peak over first (sizes ascend); None when either is unknown.

    >>> growth([200, 210]), growth([None, 5])
    (1.05, None)
    """
    if len(peaks) < 2 or peaks[0] is None or peaks[-1] is None or peaks[0] == 0:
        return None
    return peaks[-1] / peaks[0]


async def measure_memory(
    endpoint: str | Sequence[str],
    credentials: Credentials,
    bucket: str,
    spec: MemorySpec,
    meter: Meter,
    progress: Progress,
) -> list[WorkloadResult]:
    block = os.urandom(_BLOCK_BYTES)
    gateway_names = [p.name for p in meter.processes() if p.kind in GATEWAY_KINDS]
    results: list[WorkloadResult] = []
    async with S3Client(endpoint, credentials, spec.uploads, sock_read_timeout_s=1800) as client:
        for size in sorted(spec.sizes):
            expected = generated_md5(size, block)
            keys = [
                f"memory/{format_size(size).replace(' ', '')}/{i:04d}" for i in range(spec.uploads)
            ]

            async def upload(
                i: int, size: int = size, expected: str = expected, keys: list[str] = keys
            ) -> int:
                put = await client.put_object_stream(
                    bucket, keys[i], generated_body(size, block), size
                )
                if put.etag != expected:
                    raise CheckFailed(f"{keys[i]}: ETag {put.etag!r}, expected {expected}")
                return size

            name = f"PUT {spec.uploads} x {format_size(size)} at once (memory)"
            progress.start(name, spec.uploads)
            meter.start()
            started = time.perf_counter()
            outcomes = await run_ops(spec.uploads, spec.uploads, upload, progress)
            wall_s = time.perf_counter() - started
            usage = meter.stop()
            progress.finish()
            result = summarize(
                name,
                "PUT",
                size,
                spec.uploads,
                outcomes,
                wall_s,
                usage.server_cpu_s,
                usage.client_cpu_s,
                kind="memory",
                server_cpu_by_kind=usage.server_cpu_by_kind,
                peak_rss=usage.peak_rss,
            )
            peak = gateway_peak(result, gateway_names)
            results.append(
                replace(
                    result, figures={"gateway_peak_rss_mb": None if peak is None else peak / 2**20}
                )
            )
            await delete_objects(client, bucket, keys, 16)  # free the disk before the next size
    peaks = [gateway_peak(r, gateway_names) for r in results]
    last = results[-1]
    results[-1] = replace(last, figures={**last.figures, "rss_growth": growth(peaks)})
    return results
