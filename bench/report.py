"""Presenting results: PERF.md's targets, the figure/target ratios, the table, the JSON document.

Pure: strings and dicts in, strings and dicts out; ``bench.run`` prints and writes them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.results import WorkloadResult

JSON_FORMAT_VERSION = 2
MISSING = "-"


@dataclass(frozen=True, slots=True)
class Target:
    """One PERF.md target on one figure of a workload (``metric`` is a WorkloadResult field)."""

    metric: str  # a WorkloadResult field, or a key of its ``figures``
    bound: float
    higher_is_better: bool
    unit: str
    source: str = "PERF.md"  # or "suite": the suite's own reading of a qualitative target

    def describe(self) -> str:
        """
        >>> Target("mb_per_s", 600, True, "MB/s").describe()
        '>= 600 MB/s'
        """
        return f"{'>=' if self.higher_is_better else '<='} {self.bound:g} {self.unit}"

    def figure(self, result: WorkloadResult) -> float | None:
        if self.metric in result.figures:
            value = result.figures[self.metric]
        else:
            value = getattr(result, self.metric, None)
        return None if value is None else float(value)

    def ratio(self, result: WorkloadResult) -> float | None:
        """figure / target, as the closing notes quote it: 300 MB/s against ">= 600 MB/s" is
        0.5 (a miss), 2.4 CPU-s/GB against "<= 3 CPU-s/GB" is 0.8 (met). None: not measured."""
        figure = self.figure(result)
        return None if figure is None else figure / self.bound

    def met(self, result: WorkloadResult) -> bool | None:
        ratio = self.ratio(result)
        if ratio is None:
            return None
        return ratio >= 1 if self.higher_is_better else ratio <= 1


MiB = 2**20
# PERF.md "Targets": (op, object size) -> targets. Other sizes have none: not comparable.
TARGETS: Mapping[tuple[str, int], tuple[Target, ...]] = {
    ("PUT", 64 * MiB): (
        Target("mb_per_s", 600, True, "MB/s"),
        Target("server_cpu_s_per_gb", 3, False, "CPU-s/GB"),
    ),
    ("GET", 64 * MiB): (
        Target("mb_per_s", 1500, True, "MB/s"),
        Target("server_cpu_s_per_gb", 1, False, "CPU-s/GB"),
    ),
    ("PUT", 4096): (Target("ops_per_s", 1000, True, "ops/s"),),
    ("GET", 4096): (Target("ops_per_s", 3000, True, "ops/s"),),
}


# Targets of the other workload families (PERF.md's table; "suite" where PERF.md says it in
# words and the suite has to pick a bar).
KIND_TARGETS: Mapping[str, tuple[Target, ...]] = {
    "list": (Target("p95_ms", 100, False, "ms p95"),),
    "degraded": (Target("degraded_over_healthy", 0.5, True, "x healthy GET"),),
    "memory": (Target("rss_growth", 1.25, False, "x peak RSS (largest/smallest size)", "suite"),),
    "wan": (
        Target("fast_min_share_of_cap", 0.8, True, "of link cap (slowest fast client)", "suite"),
    ),
}
# Families measured against PERF.md's (op, size) table; a sweep, the mixed run or the memory
# check use the same sizes but are not the workloads PERF.md specifies.
_SIZED_KINDS = ("", "large", "small")


def targets_for(result: WorkloadResult) -> tuple[Target, ...]:
    """The targets that apply to ``result`` and whose figure it has."""
    if result.kind in _SIZED_KINDS:
        return TARGETS.get((result.op, result.object_size), ())
    return tuple(
        t
        for t in KIND_TARGETS.get(result.kind, ())
        if t.metric in result.figures or hasattr(result, t.metric)
    )


def fmt_num(value: float | None) -> str:
    """About three significant figures; ``-`` for not measured.

    >>> fmt_num(612.4), fmt_num(38.46), fmt_num(2.987), fmt_num(0.0042), fmt_num(None)
    ('612', '38.5', '2.99', '0.0042', '-')
    """
    if value is None:
        return MISSING
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.01 or magnitude == 0:
        return f"{value:.2f}"
    return f"{value:.2g}"


def _ratio_cell(target: Target, result: WorkloadResult) -> str:
    ratio = target.ratio(result)
    if ratio is None:
        return MISSING
    return f"{ratio:.2f} {'ok' if target.met(result) else 'MISS'}"


COLUMNS = (
    "workload",
    "in flight",
    "ops",
    "errors",
    "MB/s",
    "ops/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "server CPU-s/GB",
    "server CPU µs/op",
    "server cores",
    "client CPU-s/GB",
    "target (PERF.md)",
    "figure/target",
)


def table_row(result: WorkloadResult) -> list[str]:
    targets = targets_for(result)
    return [
        result.workload,
        str(result.concurrency),
        str(result.ops),
        str(result.errors),
        fmt_num(result.mb_per_s),
        fmt_num(result.ops_per_s),
        fmt_num(result.p50_ms),
        fmt_num(result.p95_ms),
        fmt_num(result.p99_ms),
        fmt_num(result.server_cpu_s_per_gb),
        fmt_num(result.server_cpu_us_per_op),
        fmt_num(result.server_cores),
        fmt_num(result.client_cpu_s_per_gb),
        "; ".join(t.describe() for t in targets) or MISSING,
        "; ".join(_ratio_cell(t, result) for t in targets) or MISSING,
    ]


def format_table(results: Sequence[WorkloadResult]) -> str:
    """A Markdown table (aligned, so it also reads as plain text), one row per workload."""
    rows = [list(COLUMNS), *(table_row(r) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(rows[0]), rule, *(line(r) for r in rows[1:])])


def format_errors(results: Sequence[WorkloadResult]) -> list[str]:
    """One line per distinct error sample, for workloads that had errors."""
    return [
        f"{r.workload}: {r.errors} error(s); e.g. {sample}"
        for r in results
        if r.errors
        for sample in r.error_samples
    ]


def result_dict(result: WorkloadResult) -> dict[str, Any]:
    data = dataclasses.asdict(result)
    data["error_samples"] = list(result.error_samples)
    data["targets"] = [
        {
            "metric": t.metric,
            "target": t.describe(),
            "source": t.source,
            "bound": t.bound,
            "figure": t.figure(result),
            "figure_over_target": t.ratio(result),
            "met": t.met(result),
        }
        for t in targets_for(result)
    ]
    return data


def result_from_dict(data: Mapping[str, Any]) -> WorkloadResult:
    """Back from ``result_dict`` (to re-render a report from its ``results.json``)."""
    names = {f.name for f in dataclasses.fields(WorkloadResult)}
    values = {k: v for k, v in data.items() if k in names}
    values["error_samples"] = tuple(values.get("error_samples", ()))
    values["latency_sample_ms"] = tuple(values.get("latency_sample_ms", ()))
    return WorkloadResult(**values)


def report_document(
    config: Mapping[str, Any],
    environment: Mapping[str, Any],
    medians: Sequence[WorkloadResult],
    runs: Sequence[Sequence[WorkloadResult]],
    once: Sequence[WorkloadResult] = (),
    profile: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
    plots: Sequence[str] = (),
    floor: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``results.json`` document: medians (what the tables show), every run's raw figures,
    the workloads run once (memory check, profiled pass), the stage profile, notes, plots, and
    the floor (``bench.floor.floor_document``; None when it was not measured)."""
    return {
        "format_version": JSON_FORMAT_VERSION,
        "config": dict(config),
        "environment": dict(environment),
        "errors": sum(r.errors for r in medians) + sum(r.errors for r in once),
        "results": [result_dict(r) for r in medians],
        "once": [result_dict(r) for r in once],
        "runs": [[result_dict(r) for r in run] for run in runs],
        "profile": dict(profile or {}),
        "notes": list(notes),
        "plots": list(plots),
        "floor": None if floor is None else dict(floor),
    }
