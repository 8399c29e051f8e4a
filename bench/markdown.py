"""``report.md``: the summary against the targets, the full table, CPU-s/GB by process kind and
by stage, peak RSS per process, and the sections of the workloads with more to say (sweep, WAN,
memory). Pure: results in, Markdown out.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bench import floor as floors
from bench import ops_floor
from bench.profile import STAGES, SYNC_WAIT
from bench.report import MISSING, fmt_num, format_errors, format_table, targets_for
from bench.results import WorkloadResult

MIB = 2**20

# How the report names the suite's client (``BenchConfig.client``); results from before the
# choice existed were all taken with aiohttp's.
CLIENT_NAMES = {
    "lean": "bench/http1.py for small requests and GETs",
    "aiohttp": "aiohttp",
}


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An aligned Markdown table.

    >>> print(md_table(["a", "bb"], [["1", "2"]]))
    | a | bb |
    |---|----|
    | 1 | 2  |
    """
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def _main_figure(r: WorkloadResult) -> tuple[str, float | None]:
    if r.kind == "list":
        return "p95 ms", r.p95_ms
    if r.kind == "wan":
        return "Jain (share of cap)", r.figures.get("jain_share_of_cap")
    if r.kind == "memory":
        return "gateway peak RSS MiB", r.figures.get("gateway_peak_rss_mb")
    if r.object_size and r.object_size < MIB:
        return "ops/s", r.ops_per_s
    if r.op in ("HEAD", "DELETE"):
        return "ops/s", r.ops_per_s
    return "MB/s", r.mb_per_s


_LABELS = {
    "mb_per_s": "MB/s",
    "ops_per_s": "ops/s",
    "p95_ms": "p95 ms",
    "server_cpu_s_per_gb": "CPU-s/GB",
    "degraded_over_healthy": "degraded/healthy MB/s",
    "rss_growth": "gateway peak RSS growth",
    "fast_min_share_of_cap": "slowest fast client, share of cap",
}


def summary_rows(results: Sequence[WorkloadResult]) -> list[list[str]]:
    """One row per target (or the workload's main figure when it has none)."""
    rows: list[list[str]] = []
    for r in results:
        targets = targets_for(r)
        if not targets:
            label, value = _main_figure(r)
            rows.append([r.workload, label, fmt_num(value), MISSING, MISSING])
        for t in targets:
            ratio = t.ratio(r)
            met = t.met(r)
            verdict = MISSING if ratio is None else f"{ratio:.2f} {'ok' if met else 'MISS'}"
            source = "" if t.source == "PERF.md" else f" ({t.source})"
            rows.append(
                [
                    r.workload,
                    _LABELS.get(t.metric, t.metric),
                    fmt_num(t.figure(r)),
                    t.describe() + source,
                    verdict,
                ]
            )
    return rows


def summary_table(results: Sequence[WorkloadResult]) -> str:
    return md_table(
        ["workload", "figure", "value", "target", "figure/target"], summary_rows(results)
    )


def _kinds(results: Sequence[WorkloadResult]) -> list[str]:
    order = {"gateway": 0, "node": 1, "server": 2}
    found = {k for r in results for k in r.server_cpu_by_kind}
    return sorted(found, key=lambda k: (order.get(k, 9), k))


def cpu_breakdown_table(results: Sequence[WorkloadResult]) -> str:
    """CPU per process kind: CPU-s/GB where objects >= 1 MiB moved, else CPU µs per request."""
    kinds = _kinds(results)
    header = ["workload", "unit", *(f"{k}" for k in kinds), "all server processes", "client"]
    rows = []
    for r in results:
        if r.server_cpu_s is None or not r.ops:
            continue
        per_gb = r.object_bytes > 0 and r.object_size >= MIB

        def scale(cpu_s: float | None, r: WorkloadResult = r, per_gb: bool = per_gb) -> str:
            if cpu_s is None:
                return MISSING
            return fmt_num(cpu_s * 1e9 / r.object_bytes if per_gb else cpu_s * 1e6 / r.ops)

        rows.append(
            [
                r.workload,
                "CPU-s/GB" if per_gb else "CPU µs/op",
                *(scale(r.server_cpu_by_kind.get(k)) for k in kinds),
                scale(r.server_cpu_s),
                scale(r.client_cpu_s),
            ]
        )
    return md_table(header, rows)


def rss_table(results: Sequence[WorkloadResult]) -> str:
    names = list(dict.fromkeys(n for r in results for n in r.peak_rss_bytes))
    rows = [
        [r.workload, *(fmt_num(r.peak_rss_bytes[n] / MIB) if n in r.peak_rss_bytes else MISSING
                       for n in names)]
        for r in results
        if r.peak_rss_bytes
    ]  # fmt: skip
    return md_table(["workload (peak RSS, MiB)", *names], rows)


def stage_table(profile: Mapping[str, Any]) -> str:
    kinds: Mapping[str, Any] = profile.get("kinds", {})
    header = ["stage"]
    for k in kinds:
        header += [f"{k} share", f"{k} CPU-s/GB"]
    rows = []
    for stage in STAGES:
        row = [stage]
        for data in kinds.values():
            row += [
                f"{100 * data['share'].get(stage, 0.0):.0f}%",
                fmt_num(data["stage_cpu_s_per_gb"].get(stage)),
            ]
        rows.append(row)
    wait = [SYNC_WAIT + " (share of all samples)"]
    for data in kinds.values():
        wait += [f"{100 * data.get('disk_wait_share', 0.0):.0f}%", MISSING]
    rows.append(wait)
    total = ["total (measured)"]
    for data in kinds.values():
        total += [f"{data['samples']} samples", fmt_num(data["cpu_s_per_gb"])]
    rows.append(total)
    return md_table(header, rows)


def top_frames(profile: Mapping[str, Any]) -> list[str]:
    lines = []
    for kind, data in profile.get("kinds", {}).items():
        samples = data["samples"] or 1
        lines.append(f"Hottest innermost frames, {kind} ({data['samples']} samples):")
        lines.append("")
        lines += [f"- {100 * n / samples:4.1f}% `{frame}`" for frame, n in data["top_frames"]]
        lines.append("")
    return lines


Column = tuple[str, Callable[[WorkloadResult], float | None]]


def sweep_table(results: Sequence[WorkloadResult]) -> str:
    columns: list[Column] = [
        ("MB/s", lambda r: r.mb_per_s),
        ("p99 ms", lambda r: r.p99_ms),
        ("CPU-s/GB", lambda r: r.server_cpu_s_per_gb),
    ]
    return _in_flight_table(results, "sweep", columns)


def small_sweep_table(results: Sequence[WorkloadResult]) -> str:
    """Small PUT and GET by requests in flight: ops/s, p99 and server CPU µs per op."""
    columns: list[Column] = [
        ("ops/s", lambda r: r.ops_per_s),
        ("p99 ms", lambda r: r.p99_ms),
        ("server µs/op", lambda r: r.server_cpu_us_per_op),
    ]
    return _in_flight_table(results, "small-sweep", columns)


def _in_flight_table(results: Sequence[WorkloadResult], kind: str, columns: list[Column]) -> str:
    """One row per number of requests in flight of the ``kind`` results; for each column, a
    PUT and a GET cell."""
    by_c: dict[int, dict[str, WorkloadResult]] = {}
    for r in results:
        if r.kind == kind:
            by_c.setdefault(r.concurrency, {})[r.op] = r

    def cell(c: int, op: str, fn: Callable[[WorkloadResult], float | None]) -> str:
        r = by_c[c].get(op)
        return MISSING if r is None else fmt_num(fn(r))

    ops = ("PUT", "GET")
    rows = [[str(c), *(cell(c, op, fn) for _, fn in columns for op in ops)] for c in sorted(by_c)]
    header = ["in flight", *(f"{op} {label}" for label, _ in columns for op in ops)]
    return md_table(header, rows)


def wan_section(r: WorkloadResult) -> list[str]:
    f = r.figures
    clients = sorted(k[2:] for k in f if k.startswith("c:"))
    rows = []
    for name in clients:
        label = name.rpartition("-")[0]
        mean_share = f.get(f"{label}_mean_share_of_cap")
        mean_mb = f.get(f"{label}_mean_mb_s")
        cap = None if not mean_share or mean_mb is None else mean_mb / mean_share
        mb = f[f"c:{name}"]
        share = None if mb is None or not cap else mb / cap
        rows.append([name, fmt_num(cap), fmt_num(mb), fmt_num(share)])
    lines = [
        f"Jain's fairness index over share of cap: {fmt_num(f.get('jain_share_of_cap'))}; "
        f"within slow: {fmt_num(f.get('jain_slow'))}, within fast: {fmt_num(f.get('jain_fast'))}.",
        f"Slow clients: mean {fmt_num(f.get('slow_mean_share_of_cap'))} of cap, "
        f"min {fmt_num(f.get('slow_min_share_of_cap'))}. Fast clients: mean "
        f"{fmt_num(f.get('fast_mean_share_of_cap'))}, min {fmt_num(f.get('fast_min_share_of_cap'))}"
        f" -> {'not starved' if f.get('fast_not_starved') else 'STARVED (below 0.8 of cap)'}.",
        "",
        md_table(["client", "cap MB/s", "MB/s", "share of cap"], rows),
    ]
    return lines


def _disk_note(floor: Mapping[str, Any]) -> str:
    """The disk samples, as the report states them.

    >>> _disk_note({"disk_write_mb_s": [800.0, 850.0, 790.0]})
    '8 files at once, 1 MiB O_DIRECT writes and fsync: median 800 MB/s, 790-850'
    >>> _disk_note({})
    'not measured'
    """
    samples = floor.get("disk_write_mb_s") or []
    if not samples:
        return "not measured"
    return (
        f"{floors.DISK_WRITERS} files at once, 1 MiB O_DIRECT writes and fsync: median "
        f"{fmt_num(statistics.median(samples))} MB/s, "
        f"{fmt_num(min(samples))}-{fmt_num(max(samples))}"
    )


def floor_section(floor: Mapping[str, Any], results: Sequence[WorkloadResult]) -> list[str]:
    """The floor's tables: stages measured, each floor's terms, the floors against the targets
    and against what the ``large`` workload spent (bench/floor.py)."""
    pair = floors.floors(floor)
    layout = floor["layout"]
    repeats = max((len(v) for v in floor["stages"].values()), default=0)
    out = [
        f"## Floor: the least CPU moving and hashing the bytes costs here ({layout['codec']} "
        f"{layout['k']}+{layout['m']}, {floor['cores']} cores)",
        "",
        f"Each stage measured in child processes with the cheapest Python implementation, "
        f"{floor['transfer_bytes'] / 2**20:.0f} MiB per stage, median of {repeats} repeat(s); "
        f"files in {floor['directory']}. CPU-s/GB = CPU seconds (getrusage) per 10^9 bytes "
        "through the stage.",
        "",
        md_table(floors.STAGE_HEADER, floors.stage_rows(floor["stages"])),
        "",
    ]
    for f in pair:
        out += [
            f"{f.op}, per GB of object (client floor {fmt_num(f.client_cpu_s_per_gb)} CPU-s/GB):",
            "",
            md_table(floors.TERM_HEADER, floors.term_rows(f)),
            "",
        ]
    out += [
        f"Against the targets; max MB/s (all cores) = 1000 x {floor['cores']} cores / (server "
        "+ client floor), every stage overlapped perfectly. Max MB/s (disk), PUT: the durable "
        "write MB/s measured in the data folder's file system "
        f"({_disk_note(floor)}), over the shards' expansion. max/target takes the lower. "
        "UNREACHABLE: the floor alone misses the target on this machine.",
        "",
        md_table(floors.TARGET_HEADER, floors.target_rows(pair, results)),
        "",
    ]
    by_kind = floors.by_kind_rows(pair, results)
    if by_kind:
        out += [md_table(floors.KIND_HEADER, by_kind), ""]
    if "ops" in floor:
        out += ops_floor_section(floor["ops"], floor["cores"], results)
    return out


def ops_floor_section(
    ops: Mapping[str, Any], cores: int, results: Sequence[WorkloadResult]
) -> list[str]:
    """The small-operation floor (bench/ops_floor.py): the skeleton of each operation."""
    return [
        f"### Small operations: the skeleton of each request ({ops['count']} operations, "
        f"{ops['concurrency']} in flight, median of the repeats)",
        "",
        "The same messages between the same processes as the cluster's (client -> gateway -> "
        "one message per node, batched one in flight per node -> answers -> response), over "
        "raw uvloop protocols with no work in any process: no HTTP parsing, auth, JSON, index "
        f"or fsync. Max ops/s = 10^6 x {cores} cores / (CPU us per op of the servers and a "
        "client): the skeleton's own client, or the CPU the suite's client spent per op in "
        "`small`. UNREACHABLE: the skeleton alone misses the target here.",
        "",
        md_table(ops_floor.OPS_HEADER, ops_floor.ops_rows(ops, cores, results)),
        "",
    ]


def render(
    title: str,
    environment: Mapping[str, Any],
    config: Mapping[str, Any],
    results: Sequence[WorkloadResult],
    once: Sequence[WorkloadResult],
    profile: Mapping[str, Any],
    notes: Sequence[str],
    plots: Sequence[str],
    floor: Mapping[str, Any] | None = None,
) -> str:
    everything = [*results, *once]
    out = [
        f"# {title}",
        "",
        f"{environment.get('date')} on {environment.get('host')} ({environment.get('cpus')} CPUs, "
        f"Python {environment.get('python')} at {environment.get('python_executable', '?')}); "
        f"server: {environment.get('server')}; "
        f"client: {CLIENT_NAMES.get(config.get('client', 'aiohttp'), '?')}. "
        f"Medians of {config.get('runs')} run(s) unless marked once. MB = 10^6 bytes, "
        "CPU-s/GB = CPU seconds of all server processes per 10^9 bytes of object data.",
        "",
    ]
    if notes:
        out += ["Notes:", "", *(f"- {n}" for n in notes), ""]
    if everything:
        out += ["## Summary against the targets", "", summary_table(everything), ""]
        out += ["## All figures", "", format_table(everything), ""]
    errors = format_errors(
        [dataclasses.replace(r, error_samples=r.error_samples[:2]) for r in everything]
    )
    if errors:
        out += ["## Errors", "", *(f"- {e}" for e in errors), ""]
    if everything:
        out += ["## Server CPU by process kind", "", cpu_breakdown_table(everything), ""]
    if profile.get("kinds"):
        out += [
            f"## CPU-s/GB by stage ({profile.get('workload')}, py-spy "
            f"{profile.get('rate_hz')} Hz, non-blocking, once)",
            "",
            "Each sample's stack is attributed to one stage (bench/profile.py); the shares split "
            "the CPU-s/GB measured for that process kind during the profiled pass.",
            "",
            stage_table(profile),
            "",
            *top_frames(profile),
        ]
    for e in profile.get("errors", []):
        out.append(f"- profile: {e}")
    if any(r.kind == "sweep" for r in results):
        out += ["## Throughput vs concurrency", "", sweep_table(results), ""]
    if any(r.kind == "small-sweep" for r in results):
        out += [
            "## Small operations vs concurrency",
            "",
            "PERF.md's small-object targets are set at 8 in flight (the summary's `small` rows); "
            "these steps show how ops/s and server CPU per op follow the requests in flight.",
            "",
            small_sweep_table(results),
            "",
        ]
    for r in everything:
        if r.kind == "wan":
            out += [f"## {r.workload}", "", *wan_section(r), ""]
    if floor:
        out += floor_section(floor, results)
    if any(r.peak_rss_bytes for r in everything):
        reset = environment.get("rss_reset")
        how = "reset before each workload" if reset else "since process start (reset refused)"
        out += [f"## Peak RSS per process ({how})", "", rss_table(everything), ""]
    if plots:
        out += ["## Plots", "", *(f"![{p}]({p})" for p in plots), ""]
    return "\n".join(out)
