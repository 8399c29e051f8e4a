"""PNG plots of a run (matplotlib, imported only here and only when plotting: the bench runs
without it and says so). Throughput vs concurrency, latency distribution, CPU-s/GB per stage,
per-client WAN throughput.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.profile import STAGES
from bench.results import WorkloadResult
from bench.workloads import format_size


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def throughput_vs_concurrency(results: Sequence[WorkloadResult], path: Path) -> bool:
    targets = ((600.0, "PUT target 600 MB/s"), (1500.0, "GET target 1500 MB/s"))
    sweep = [r for r in results if r.kind == "sweep"]
    title = "Throughput vs concurrency"
    return _vs_concurrency(sweep, "mb_per_s", "MB/s (10^6 B/s)", targets, title, path)


def small_ops_vs_concurrency(results: Sequence[WorkloadResult], path: Path) -> bool:
    targets = ((1000.0, "PUT target (8 in flight)"), (3000.0, "GET target (8 in flight)"))
    sweep = [r for r in results if r.kind == "small-sweep"]
    title = "Small operations vs concurrency"
    return _vs_concurrency(sweep, "ops_per_s", "ops/s", targets, title, path)


def _vs_concurrency(
    sweep: Sequence[WorkloadResult],
    figure: str,
    ylabel: str,
    targets: Sequence[tuple[float, str]],
    title: str,
    path: Path,
) -> bool:
    """PUT and GET's ``figure`` (a WorkloadResult field) by requests in flight, with the
    targets (PUT's, then GET's) as dotted lines."""
    if not sweep:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for op, marker in (("PUT", "o"), ("GET", "s")):
        points = sorted((r.concurrency, getattr(r, figure)) for r in sweep if r.op == op)
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker=marker, label=f"{op} {format_size(sweep[0].object_size)}")
    for (value, label), color in zip(targets, ("tab:blue", "tab:orange"), strict=False):
        ax.axhline(value, color=color, linestyle=":", linewidth=1, label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("requests in flight")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


_BIG_KINDS = ("large", "multipart", "mixed", "degraded", "degraded-baseline")
_SMALL_KINDS = ("small", "overwrite", "list")


def latency_distribution(results: Sequence[WorkloadResult], path: Path) -> bool:
    """Empirical CDF of request latency: large-object workloads left, small requests and LIST
    pages right (sweep steps, WAN and the memory check left out)."""
    panels = [
        [r for r in results if r.latency_sample_ms and r.kind in kinds]
        for kinds in (_BIG_KINDS, _SMALL_KINDS)
    ]
    if not any(panels):
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), sharey=True)
    styles = ("-", "--", ":", "-.")
    for ax, shown, title in zip(
        axes, panels, ("large objects", "small requests, LIST"), strict=True
    ):
        for i, r in enumerate(shown):
            xs = sorted(r.latency_sample_ms)
            ys = [(n + 1) / len(xs) for n in range(len(xs))]
            ax.step(xs, ys, where="post", linestyle=styles[(i // 10) % 4], label=r.workload[:52])
        ax.set_xscale("log")
        ax.set_xlabel("latency, ms (log)")
        ax.set_title(f"Latency CDF: {title}")
        ax.grid(True, alpha=0.3)
        if shown:
            ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("fraction of requests")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def cpu_per_stage(profile: Mapping[str, Any], path: Path) -> bool:
    kinds: Mapping[str, Any] = profile.get("kinds", {})
    if not kinds:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    bottoms = [0.0] * len(kinds)
    names = list(kinds)
    for stage in STAGES:
        values = [float(kinds[k]["stage_cpu_s_per_gb"].get(stage) or 0.0) for k in names]
        ax.bar(names, values, bottom=bottoms, label=stage)
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    ax.set_ylabel("CPU-s per GB of object data")
    ax.set_title(f"CPU-s/GB per stage ({profile.get('workload')})")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def wan_clients(results: Sequence[WorkloadResult], path: Path) -> bool:
    wan = next((r for r in results if r.kind == "wan"), None)
    if wan is None:
        return False
    clients = sorted(k for k in wan.figures if k.startswith("c:"))
    if not clients:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4))
    values = [float(wan.figures[c] or 0.0) for c in clients]
    colors = ["tab:green" if "fast" in c else "tab:gray" for c in clients]
    ax.bar([c[2:] for c in clients], values, color=colors)
    ax.set_ylabel("MB/s")
    ax.set_title(wan.workload + ": per-client throughput")
    ax.tick_params(axis="x", labelrotation=90, labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_all(
    folder: Path, results: Sequence[WorkloadResult], profile: Mapping[str, Any]
) -> list[str]:
    """Every plot that has data; the file names written."""
    written = []
    drawings: tuple[tuple[str, Callable[[Path], bool]], ...] = (
        ("throughput_vs_concurrency.png", lambda p: throughput_vs_concurrency(results, p)),
        ("small_ops_vs_concurrency.png", lambda p: small_ops_vs_concurrency(results, p)),
        ("latency_distribution.png", lambda p: latency_distribution(results, p)),
        ("cpu_per_stage.png", lambda p: cpu_per_stage(profile, p)),
        ("wan_clients.png", lambda p: wan_clients(results, p)),
    )
    for name, draw in drawings:
        if draw(folder / name):
            written.append(name)
    return written
