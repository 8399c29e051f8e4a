"""One invocation of the suite: per run, each workload in order (large PUT and GET, small
PUT/GET/HEAD/DELETE, mixed, multipart, LIST pages, concurrency sweep, WAN, degraded GET) on keys
unique to the run, deleted afterwards (untimed); then, once, a large PUT with py-spy attached
(CPU-s/GB per stage) and the memory check. A workload that raises is reported and counted; the
suite goes on.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bench import listing, servers
from bench.client import S3Client
from bench.config import BenchConfig, Log
from bench.memory import measure_memory
from bench.multipart import measure_multipart
from bench.profile import Sampler, profile_kinds
from bench.progress import Progress
from bench.results import WorkloadResult, median_result
from bench.wan import measure_wan
from bench.workloads import (
    Meter,
    Payload,
    Workload,
    delete_objects,
    format_size,
    measure,
    measure_mixed,
)


@dataclass
class Suite:
    """One invocation's state: the target, the client, the meter and what has been measured."""

    config: BenchConfig
    target: servers.Target
    client: S3Client
    bucket: str
    meter: Meter
    progress: Progress
    log: Log
    payloads: dict[int, Payload] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failures: int = 0
    list_bucket: str | None = None

    def payload(self, size: int) -> Payload:
        if size not in self.payloads:
            self.payloads[size] = Payload.random(size)
        return self.payloads[size]

    async def attempt(
        self, name: str, make: Callable[[], Awaitable[list[WorkloadResult]]]
    ) -> list[WorkloadResult]:
        """Run one workload; an exception is reported and counted, the suite goes on."""
        try:
            results = await make()
        except Exception as exc:
            self.progress.finish()
            self.failures += 1
            message = f"workload {name} failed: {type(exc).__name__}: {exc}"[:500]
            self.log(message)
            self.notes.append(message)
            return []
        for r in results:
            self.log(_line(r))
        return results


def _line(r: WorkloadResult) -> str:
    cpu = "" if r.server_cpu_s is None else f", server {r.server_cpu_s:.2f} CPU-s"
    if r.server_cpu_s_per_gb is not None and r.object_size >= 2**20:
        cpu += f" ({r.server_cpu_s_per_gb:.2f} CPU-s/GB)"
    p = "" if r.p99_ms is None else f", p50/p99 {r.p50_ms:.1f}/{r.p99_ms:.1f} ms"
    return (
        f"  {r.workload} x{r.ops + r.errors} ({r.concurrency} in flight): {r.mb_per_s:.1f} MB/s, "
        f"{r.ops_per_s:.0f} ops/s in {r.wall_s:.2f} s{p}{cpu}, errors {r.errors}"
    )


async def _large(s: Suite, n: int) -> list[WorkloadResult]:
    c = s.config
    prefix = f"run-{n}/large-"
    payload = s.payload(c.object_size)
    out = []
    for op in ("PUT", "GET"):
        w = Workload(op, c.object_size, c.count, c.concurrency, prefix, "large")
        out.append(await measure(s.client, s.bucket, w, payload, s.meter, s.progress, c.verify))
    await delete_objects(
        s.client, s.bucket, Workload("PUT", 1, c.count, 8, prefix).object_keys(), 8
    )
    return out


async def _small(s: Suite, n: int) -> list[WorkloadResult]:
    c = s.config
    prefix = f"run-{n}/small-"
    payload = s.payload(c.small_size)
    out = []
    for op in ("PUT", "GET", "HEAD", "DELETE"):
        w = Workload(op, c.small_size, c.small_count, c.small_concurrency, prefix, "small")
        out.append(await measure(s.client, s.bucket, w, payload, s.meter, s.progress, c.verify))
        if op == "PUT":  # the same keys again: an update, which also prunes what it replaces
            again = replace(w, kind="overwrite")
            name = f"{w.name} (overwrite)"
            out.append(
                await measure(
                    s.client, s.bucket, again, payload, s.meter, s.progress, c.verify, name
                )
            )
    return out


async def _mixed(s: Suite, n: int) -> list[WorkloadResult]:
    spec = s.config.mixed
    result, keys = await measure_mixed(
        s.client, s.bucket, spec, s.payload(spec.object_size), s.meter, s.progress,
        f"run-{n}/mixed-", seed=n,
    )  # fmt: skip
    await delete_objects(s.client, s.bucket, keys, 16)
    return [result]


async def _multipart(s: Suite, n: int) -> list[WorkloadResult]:
    spec = s.config.multipart
    key = f"run-{n}/multipart"
    result = await measure_multipart(
        s.client, s.bucket, key, spec, s.payload(spec.part_size), s.meter, s.progress
    )
    await delete_objects(s.client, s.bucket, [key], 1)
    return [result]


async def _list(s: Suite, n: int) -> list[WorkloadResult]:
    spec = s.config.list_spec
    if s.list_bucket is None:
        return []
    return [
        await listing.measure_pages(
            s.client, s.list_bucket, spec, s.meter, s.progress, delimiter=d, run_index=n
        )
        for d in (False, True)
    ]


async def _sweep(s: Suite, n: int) -> list[WorkloadResult]:
    c = s.config
    return await _in_flight_steps(s, n, "sweep", c.object_size, c.count, c.concurrency_sweep)


async def _small_sweep(s: Suite, n: int) -> list[WorkloadResult]:
    """Small PUT and GET at each of ``small_concurrency_sweep``'s in-flight counts: how the
    ops/s and the server CPU per op follow the requests in flight (the nodes' batches carry
    more calls as more requests wait)."""
    c = s.config
    steps = c.small_concurrency_sweep
    return await _in_flight_steps(s, n, "small-sweep", c.small_size, c.small_count, steps)


async def _in_flight_steps(
    s: Suite, n: int, kind: str, size: int, count: int, steps: Sequence[int]
) -> list[WorkloadResult]:
    """PUT then GET of ``count`` objects of ``size`` at each number of requests in flight."""
    payload = s.payload(size)
    out = []
    for conc in steps:
        prefix = f"run-{n}/{kind}-{conc}-"
        for op in ("PUT", "GET"):
            w = Workload(op, size, count, conc, prefix, kind)
            name = f"{w.name} x{conc} in flight ({kind.replace('-', ' ')})"
            out.append(
                await measure(s.client, s.bucket, w, payload, s.meter, s.progress, False, name)
            )
        keys = Workload("PUT", 1, count, 1, prefix).object_keys()
        await delete_objects(s.client, s.bucket, keys, 16)
    return out


async def _wan(s: Suite, n: int) -> list[WorkloadResult]:
    spec = s.config.wan
    payloads = {
        spec.object_size(link): s.payload(spec.object_size(link)) for link in (spec.slow, spec.fast)
    }
    result = await measure_wan(
        s.target.endpoints, s.target.credentials, s.bucket, spec, payloads, s.meter, s.progress
    )
    return [result]


async def _degraded(s: Suite, n: int) -> list[WorkloadResult]:
    c = s.config
    faults = s.target.faults
    if faults is None:
        return []
    prefix = f"run-{n}/degraded-"
    payload = s.payload(c.object_size)
    put = Workload("PUT", c.object_size, c.degraded_count, c.concurrency, prefix, "degraded")
    await measure(s.client, s.bucket, put, payload, s.meter, s.progress, name="(degraded setup)")
    get = Workload("GET", c.object_size, c.degraded_count, c.concurrency, prefix, "degraded")
    healthy = await measure(
        s.client, s.bucket, get, payload, s.meter, s.progress, c.verify,
        f"GET {format_size(c.object_size)} healthy (degraded baseline)",
    )  # fmt: skip
    healthy = replace(healthy, kind="degraded-baseline")
    await asyncio.to_thread(faults.lose)
    try:
        broken = await measure(
            s.client, s.bucket, get, payload, s.meter, s.progress, c.verify,
            f"GET {format_size(c.object_size)} degraded ({faults.description})",
        )  # fmt: skip
    finally:
        await asyncio.to_thread(faults.restore)
    ratio = broken.mb_per_s / healthy.mb_per_s if healthy.mb_per_s else None
    broken = replace(
        broken,
        figures={"healthy_mb_per_s": healthy.mb_per_s, "degraded_over_healthy": ratio},
    )
    await asyncio.sleep(1.0)  # let the restored drives/nodes be seen again before what follows
    await delete_objects(s.client, s.bucket, put.object_keys(), 8)
    return [healthy, broken]


async def _profiled_put(s: Suite) -> tuple[list[WorkloadResult], dict[str, Any]]:
    c = s.config
    sampler = Sampler(list(s.meter.processes()), rate_hz=c.profile_rate_hz)
    prefix = "profile/large-"
    w = Workload("PUT", c.object_size, c.count, c.concurrency, prefix, "profile")
    name = f"PUT {format_size(c.object_size)} (profiled: py-spy attached)"
    started = sampler.start()
    try:
        result = await measure(s.client, s.bucket, w, s.payload(c.object_size), s.meter,
                               s.progress, False, name)  # fmt: skip
    finally:
        samples = sampler.stop() if started else {}
    await delete_objects(s.client, s.bucket, w.object_keys(), 8)
    kinds = profile_kinds(
        {k: list(v.items()) for k, v in samples.items()}, result.server_cpu_by_kind,
        result.object_bytes,
    )  # fmt: skip
    profile = {
        "workload": name,
        "rate_hz": c.profile_rate_hz,
        "kinds": kinds,
        "errors": sampler.errors,
    }
    return [result], profile


Step = Callable[[Suite, int], Awaitable[list[WorkloadResult]]]
STEPS: tuple[tuple[str, Step], ...] = (
    ("large", _large),
    ("small", _small),
    ("mixed", _mixed),
    ("multipart", _multipart),
    ("list", _list),
    ("sweep", _sweep),
    ("small-sweep", _small_sweep),
    ("wan", _wan),
    ("degraded", _degraded),
)


def _has_steps(config: BenchConfig, name: str) -> bool:
    """False for a sweep given no in-flight steps ('' on the command line)."""
    if name == "sweep":
        return bool(config.concurrency_sweep)
    if name == "small-sweep":
        return bool(config.small_concurrency_sweep)
    return True


def group_medians(runs: Sequence[Sequence[WorkloadResult]]) -> list[WorkloadResult]:
    """Each workload's median over the runs that have it, in first-seen order."""
    groups: dict[str, list[WorkloadResult]] = {}
    for run in runs:
        for r in run:
            groups.setdefault(r.workload, []).append(r)
    return [median_result(g) for g in groups.values()]


async def run_suite(
    config: BenchConfig, target: servers.Target, log: Log
) -> tuple[list[list[WorkloadResult]], list[WorkloadResult], dict[str, Any], Suite]:
    """Every run's results (in order), the once-only results, the stage profile."""
    progress = Progress(enabled=config.progress)
    meter = Meter(target.processes)
    bucket = f"huimin-bench-{secrets.token_hex(4)}"
    connections = max(config.concurrency, config.small_concurrency, *config.concurrency_sweep,
                      *config.small_concurrency_sweep, config.mixed.concurrency,
                      config.multipart.concurrency,
                      config.list_spec.populate_concurrency)  # fmt: skip
    runs: list[list[WorkloadResult]] = []
    once: list[WorkloadResult] = []
    profile: dict[str, Any] = {}
    lean = config.client == "lean"
    async with S3Client(target.endpoints, target.credentials, connections, lean=lean) as client:
        suite = Suite(config, target, client, bucket, meter, progress, log)
        await client.create_bucket(bucket)
        try:
            if config.wants("list"):
                log(f"LIST bucket: {listing.bucket_for(config.list_spec.keys)}")
                suite.list_bucket = await listing.populate(client, config.list_spec, progress)
                await listing.check_reads(client, suite.list_bucket, config.list_spec)
            for n in range(config.runs):
                log(f"run {n + 1}/{config.runs}")
                results: list[WorkloadResult] = []
                for name, step in STEPS:
                    if not config.wants(name) or not _has_steps(config, name):
                        continue
                    if name == "degraded" and target.faults is None:
                        continue
                    results += await suite.attempt(name, functools.partial(step, suite, n))
                runs.append(results)
            if config.wants("profile"):
                log("profiled large PUT (once)")
                try:
                    profiled, profile = await _profiled_put(suite)
                    for r in profiled:
                        log(_line(r))
                    once += profiled
                except Exception as exc:
                    suite.failures += 1
                    suite.notes.append(f"profiled PUT failed: {type(exc).__name__}: {exc}")
            if config.wants("memory"):
                log("memory check (once)")
                once += await suite.attempt(
                    "memory",
                    lambda: measure_memory(
                        target.endpoints, target.credentials, bucket, config.memory, meter, progress
                    ),
                )
        finally:
            try:
                leftovers = await client.list_all_keys(bucket)
                await delete_objects(client, bucket, leftovers, 16)
                await client.delete_bucket(bucket)
            except Exception as exc:  # leftovers from a failed run: say so, don't mask it
                log(f"clean-up: bucket {bucket} not deleted: {exc}")
    if meter.rss_reset_ok is False:
        suite.notes.append("peak RSS could not be reset (clear_refs refused): VmHWM since start")
    return runs, once, profile, suite
