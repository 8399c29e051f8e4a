"""Plain-text renderings for operators: ``huimin capacity`` and ``huimin cluster status``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from huimin.cluster import ClusterState
from huimin.topology import CapacityReport, rebuild_seconds

TB = 10**12
SLOW_REBUILD_MB_S = 50.0


def tb(n: int) -> str:
    """Bytes as decimal terabytes (and gigabytes below 1 TB).

    >>> tb(192 * 10**12), tb(120 * 10**9)
    ('192.00 TB', '0.12 TB (120.00 GB)')
    """
    return f"{n / TB:.2f} TB" if n >= TB else f"{n / TB:.2f} TB ({n / 10**9:.2f} GB)"


def hours(seconds: float) -> str:
    """Seconds as hours (minutes below one hour).

    >>> hours(40000), hours(200)
    ('11.1 h', '3.3 min')
    """
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def capacity_text(r: CapacityReport) -> str:
    set_size = r.k + r.m
    after = ", ".join(
        f"{n} node{'s' if n > 1 else ''} + {d} drive{'s' if d != 1 else ''}"
        for n, d in enumerate(r.drives_after_node_losses)
        if n and d
    )
    rates = [r.rebuild_rate_mb_s] + (
        [SLOW_REBUILD_MB_S] if r.rebuild_rate_mb_s != SLOW_REBUILD_MB_S else []
    )
    rebuilds = ", ".join(
        f"{hours(rebuild_seconds(r.largest_drive_bytes, rate))} at {rate:g} MB/s" for rate in rates
    )
    share = (
        f"k/(k+m) = {r.k}/{set_size} of raw"
        if r.usable_bytes * set_size == r.raw_bytes * r.k
        else "k x the smallest drive of each set"
    )
    lines = [
        f"topology {r.name} (version {r.version}): {r.node_count} nodes, {r.drive_count} drives, "
        f"{r.pool_count} pool{'s' if r.pool_count > 1 else ''}, {len(r.sets)} erasure "
        f"set{'s' if len(r.sets) > 1 else ''} of {set_size} (EC {r.k}+{r.m}, codec {r.codec})",
        f"raw capacity:      {tb(r.raw_bytes)}",
        f"usable capacity:   {tb(r.usable_bytes)}, {share}, before rebuild headroom",
        f"failure tolerance: any {r.drives_tolerated} drives, or any {r.nodes_tolerated} whole "
        f"node{'s' if r.nodes_tolerated != 1 else ''}"
        + (f", or {after}" if after else "")
        + f" (at most {r.max_shards_per_node} shards of a set per node)",
        f"rebuild one drive: {rebuilds} of rebuilt data; a drive holds "
        f"{tb(r.largest_drive_bytes)}, the survivors read {r.k} x that = "
        f"{tb(r.rebuild_read_bytes)}",
        "sets:",
    ]
    lines += [f"  {i}: {' '.join(str(d) for d in s)}" for i, s in enumerate(r.sets)]
    return "\n".join(lines)


def capacity_json(r: CapacityReport) -> dict[str, Any]:
    doc = asdict(r)
    doc["sets"] = [[str(d) for d in s] for s in r.sets]
    return doc


def status_text(state: ClusterState) -> str:
    doc = state.status()
    lines = [f"cluster in {state.data_dir} (deployment {state.deployment_id})"]
    for g in doc["gateways"]:
        lines.append(
            f"  gateway  {g['endpoint']:<28} pid {g['pid']:<8} {'up' if g['alive'] else 'DOWN'}"
        )
        health = g.get("health", {})
        for s in health.get("sets", []):
            lines.append(
                f"    set {s['set']}: {s['healthy']}/{s['drives']} drives healthy "
                f"(read quorum {s['read_quorum']}, write quorum {s['write_quorum']})"
            )
        if health:
            lines.append(f"    {health.get('status')}")
    for n in doc["nodes"]:
        drives = " ".join(d["name"] for d in n["drives"])
        bad = [name for name, d in n.get("health", {}).get("drives", {}).items() if not d.get("ok")]
        lines.append(
            f"  {n['name']:<8} {n['address']:<28} pid {n['pid']:<8} "
            f"{'up' if n['alive'] else 'DOWN':<4}  drives: {drives}"
            + (f"  FAILING: {' '.join(bad)}" if bad else "")
        )
    return "\n".join(lines)
