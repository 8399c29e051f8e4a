"""Pure arithmetic of a benchmark: per-operation outcomes -> one workload's figures -> the
median over runs. No IO, no clocks; ``bench.workloads`` measures, this module counts.

MB = 10^6 bytes and GB = 10^9 bytes, as in PERF.md.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace

from bench.cpu import cpu_s_per_gb

MB = 10**6
MAX_ERROR_SAMPLES = 5
LATENCY_SAMPLE_SIZE = 2000  # latencies kept per workload for the distribution plot


def percentile(values: Sequence[float], pct: float) -> float | None:
    """The ``pct``-th percentile with linear interpolation between closest ranks (numpy's
    default); None for no values.

    >>> percentile([10, 20, 30, 40], 50)
    25.0
    >>> percentile([10, 20, 30, 40], 95)  # rank 0.95 * 3 = 2.85 -> 30 + 0.85 * 10
    38.5
    >>> percentile([7], 99)
    7.0
    """
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile {pct} is not within 0..100")
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    lo = math.floor(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo))


@dataclass(frozen=True, slots=True)
class OpOutcome:
    """One request: how long it took, the object bytes it moved, and what went wrong if it
    failed (a failed request moves no counted bytes)."""

    latency_s: float
    nbytes: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class WorkloadResult:
    """One workload's figures; latencies in milliseconds, None where not measurable."""

    workload: str  # "PUT 64 MiB"
    op: str  # "PUT" | "GET"
    object_size: int
    concurrency: int
    ops: int  # successful requests
    errors: int
    error_samples: tuple[str, ...]
    wall_s: float
    object_bytes: int  # bytes of successful requests
    mb_per_s: float
    ops_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    server_cpu_s: float | None  # None when the server's pid is unknown
    server_cpu_s_per_gb: float | None
    server_cpu_us_per_op: float | None
    server_cores: float | None  # server CPU seconds per wall second
    client_cpu_s: float
    client_cpu_s_per_gb: float | None
    # Workload family ("large", "small", "overwrite", "mixed", "list", "multipart", "sweep",
    # "degraded", "wan", "memory", "profile"): picks the targets and the report section.
    kind: str = ""
    server_cpu_by_kind: Mapping[str, float] = field(default_factory=dict)  # "gateway": CPU-s
    peak_rss_bytes: Mapping[str, int] = field(default_factory=dict)  # process name -> VmHWM
    figures: Mapping[str, float | None] = field(default_factory=dict)  # workload-specific
    latency_sample_ms: tuple[float, ...] = ()


def sample_evenly(values: Sequence[float], n: int) -> tuple[float, ...]:
    """At most ``n`` of ``values``, evenly spaced over the sorted values (keeps the shape of the
    distribution, tails included).

    >>> sample_evenly([5.0, 1.0, 3.0], 10)
    (1.0, 3.0, 5.0)
    >>> sample_evenly([float(i) for i in range(101)], 3)
    (0.0, 50.0, 100.0)
    """
    ordered = sorted(values)
    if len(ordered) <= n:
        return tuple(ordered)
    if n == 1:
        return (ordered[len(ordered) // 2],)
    step = (len(ordered) - 1) / (n - 1)
    return tuple(ordered[round(i * step)] for i in range(n))


def jain_fairness(values: Sequence[float]) -> float | None:
    """Jain's fairness index (sum x)^2 / (n * sum x^2): 1 when all are equal, 1/n when one
    takes everything; None for no values or all zero.

    >>> jain_fairness([10, 10, 10, 10])
    1.0
    >>> jain_fairness([1, 0, 0, 0])
    0.25
    >>> round(jain_fairness([1, 2, 3, 4]), 4)  # 100 / (4 * 30)
    0.8333
    """
    if not values:
        return None
    squares = sum(v * v for v in values)
    if squares == 0:
        return None
    return float(sum(values) ** 2 / (len(values) * squares))


def summarize(
    workload: str,
    op: str,
    object_size: int,
    concurrency: int,
    outcomes: Sequence[OpOutcome],
    wall_s: float,
    server_cpu_s: float | None,
    client_cpu_s: float,
    *,
    kind: str = "",
    server_cpu_by_kind: Mapping[str, float] | None = None,
    peak_rss: Mapping[str, int] | None = None,
    figures: Mapping[str, float | None] | None = None,
) -> WorkloadResult:
    """Fold per-request outcomes and the CPU spent into one workload's figures.

    >>> r = summarize("PUT 1 MB", "PUT", 10**6, 2, [OpOutcome(0.5, 10**6)] * 4
    ...               + [OpOutcome(0.1, 0, "HTTP 503")], 2.0, 0.008, 0.002)
    >>> r.ops, r.errors, r.mb_per_s, r.ops_per_s, r.p50_ms
    (4, 1, 2.0, 2.0, 500.0)
    >>> round(r.server_cpu_s_per_gb, 3), round(r.server_cpu_us_per_op), r.server_cores
    (2.0, 2000, 0.004)
    """
    good = [o for o in outcomes if o.error is None]
    bad = [o.error for o in outcomes if o.error is not None]
    moved = sum(o.nbytes for o in good)
    latencies_ms = [o.latency_s * 1000 for o in good]
    rate = 1 / wall_s if wall_s > 0 else 0.0
    return WorkloadResult(
        workload=workload,
        op=op,
        object_size=object_size,
        concurrency=concurrency,
        ops=len(good),
        errors=len(bad),
        error_samples=tuple(dict.fromkeys(bad))[:MAX_ERROR_SAMPLES],
        wall_s=wall_s,
        object_bytes=moved,
        mb_per_s=moved / MB * rate,
        ops_per_s=len(good) * rate,
        p50_ms=percentile(latencies_ms, 50),
        p95_ms=percentile(latencies_ms, 95),
        p99_ms=percentile(latencies_ms, 99),
        server_cpu_s=server_cpu_s,
        server_cpu_s_per_gb=None if server_cpu_s is None else cpu_s_per_gb(server_cpu_s, moved),
        server_cpu_us_per_op=(
            None if server_cpu_s is None or not good else server_cpu_s * 1e6 / len(good)
        ),
        server_cores=None if server_cpu_s is None else server_cpu_s * rate,
        client_cpu_s=client_cpu_s,
        client_cpu_s_per_gb=cpu_s_per_gb(client_cpu_s, moved),
        kind=kind,
        server_cpu_by_kind=dict(server_cpu_by_kind or {}),
        peak_rss_bytes=dict(peak_rss or {}),
        figures=dict(figures or {}),
        latency_sample_ms=sample_evenly(latencies_ms, LATENCY_SAMPLE_SIZE),
    )


_IDENTITY = frozenset({"workload", "op", "object_size", "concurrency", "kind"})


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def median_result(runs: Sequence[WorkloadResult]) -> WorkloadResult:
    """Each figure's median over runs of the same workload (so one figure may come from a
    different run than another); errors are summed and their samples merged, never medianed.

    >>> a = summarize("GET 1 MB", "GET", 10**6, 1, [OpOutcome(0.1, 10**6)], 1.0, None, 0.0)
    >>> b = replace(a, mb_per_s=3.0, errors=1, error_samples=("short body",))
    >>> c = replace(a, mb_per_s=2.0)
    >>> m = median_result([a, b, c])
    >>> m.mb_per_s, m.errors, m.error_samples, m.server_cpu_s
    (2.0, 1, ('short body',), None)
    """
    if not runs:
        raise ValueError("no runs")
    first = runs[0]
    for r in runs[1:]:
        if any(getattr(r, f) != getattr(first, f) for f in _IDENTITY):
            raise ValueError(f"runs of different workloads: {first.workload!r}, {r.workload!r}")
    medians: dict[str, object] = {}
    for f in fields(WorkloadResult):
        name = f.name
        if name in _IDENTITY:
            continue
        if name == "errors":
            medians[name] = sum(r.errors for r in runs)
        elif name == "error_samples":
            merged = dict.fromkeys(s for r in runs for s in r.error_samples)
            medians[name] = tuple(merged)[:MAX_ERROR_SAMPLES]
        elif name in ("ops", "object_bytes"):
            medians[name] = int(statistics.median(getattr(r, name) for r in runs))
        elif name in ("server_cpu_by_kind", "figures"):
            names = dict.fromkeys(k for r in runs for k in getattr(r, name))
            medians[name] = {k: _median([getattr(r, name).get(k) for r in runs]) for k in names}
        elif name == "peak_rss_bytes":  # the peak over runs, not a median: it is a bound
            procs = dict.fromkeys(k for r in runs for k in r.peak_rss_bytes)
            medians[name] = {k: max(r.peak_rss_bytes.get(k, 0) for r in runs) for k in procs}
        elif name == "latency_sample_ms":
            latencies = [v for r in runs for v in r.latency_sample_ms]
            medians[name] = sample_evenly(latencies, LATENCY_SAMPLE_SIZE)
        else:
            medians[name] = _median([getattr(r, name) for r in runs])
    return replace(first, **medians)  # type: ignore[arg-type]
