"""The floor: what moving and hashing an object's bytes costs on this machine at the least, as
a sum of stage costs measured in the same invocation (``bench.floor_measure``), against the
targets and against what the store spent.

Pure: measured stage costs in, composed floors and Markdown out. Every stage cost is CPU
seconds per GB (10^9 bytes) *through that stage*; a term of a floor scales it by the GB that
go through the stage per GB of object (1.5 for the shards of 8+4). PUT's server floor, EC k+m:

    gateway: receive the body (1) + MD5 (1, in lanes) + encode (1) + xxh3 of k+m shards ((k+m)/k)
             + send the shards ((k+m)/k)
    nodes:   receive the shards and write them durably ((k+m)/k)

GET's (healthy, k data shards read, no decode): nodes sendfile k shards (1); gateway receives
them (1), xxh3 (1), sends the body (1). The client's own floor is the body's send (PUT) or
receive (GET). The highest MB/s on ``cores`` cores, every stage overlapped perfectly, is
``1000 * cores / (server floor + client floor)``.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.report import MISSING, TARGETS, Target, fmt_num
from bench.results import WorkloadResult

MIB = 2**20

# Stage keys (results.json) -> what was measured, for the tables.
STAGES: Mapping[str, str] = {
    "md5": "MD5, hashlib, 1 MiB updates",
    "md5_lanes": "MD5, gateway._md5lanes: 8 uploads' 1 MiB blocks side by side",
    "xxh3": "xxh3_128, xxhash, shard-sized payloads",
    "encode": "erasure encode, per GB of object",
    "decode": "erasure decode, m data shards lost, per GB of object",
    "tcp_send": "loopback TCP sender, S3's congestion control: sendall of 1 MiB buffers",
    "tcp_receive": "its receiver: recv_into a reused 1 MiB buffer",
    "shard_send": "loopback TCP sender to a node: sendall of 1 MiB buffers",
    "sendfile_send": "loopback TCP sender to a gateway: os.sendfile from a page-cached file",
    "sendfile_receive": "its receiver: recv_into a reused 1 MiB buffer",
    "splice_write": "receiver: socket -> splice(2) via a pipe -> 64 MiB files, fsync",
    "recv_write": "receiver: recv_into 1 MiB + write -> 64 MiB files, fsync",
    "direct_write": "receiver: recv_into aligned 1 MiB + O_DIRECT write -> 64 MiB files, fsync",
    "fresh_memory": "touching never-used memory (VM page faults; not in the floors)",
}
DURABLE = ("splice_write", "recv_write", "direct_write")
DISK_WRITERS = 8  # files written at once when the disk's MB/s is measured (a set writes 12)
CLIENT = "client"


@dataclass(frozen=True, slots=True)
class Layout:
    """The erasure layout the floor is composed for."""

    codec: str
    k: int
    m: int
    block_size_bytes: int

    @property
    def expansion(self) -> float:
        """GB of shards per GB of object.

        >>> Layout("isal", 8, 4, 4 * MIB).expansion
        1.5
        """
        return (self.k + self.m) / self.k


@dataclass(frozen=True, slots=True)
class Term:
    """One stage's part of a floor: ``gb`` GB go through ``stage`` per GB of object."""

    side: str  # "client", "gateway", "nodes"
    step: str
    stage: str  # a key of STAGES
    gb: float
    stage_cpu_s_per_gb: float

    @property
    def cpu_s_per_gb(self) -> float:
        """CPU seconds per GB of object.

        >>> Term("nodes", "write", "splice_write", 1.5, 0.6).cpu_s_per_gb
        0.9
        """
        return round(self.gb * self.stage_cpu_s_per_gb, 12)


@dataclass(frozen=True, slots=True)
class Floor:
    """One operation's floor on one machine."""

    op: str  # "PUT" | "GET"
    terms: tuple[Term, ...]
    cores: int
    # MB/s of objects the disk's measured durable write MB/s carries (PUT: shards are
    # ``expansion`` times the object); None where not measured, or not a bound (GET).
    disk_mb_per_s: float | None = None

    @property
    def server_cpu_s_per_gb(self) -> float:
        return sum(t.cpu_s_per_gb for t in self.terms if t.side != CLIENT)

    @property
    def client_cpu_s_per_gb(self) -> float:
        return sum(t.cpu_s_per_gb for t in self.terms if t.side == CLIENT)

    def side_cpu_s_per_gb(self, side: str) -> float:
        return sum(t.cpu_s_per_gb for t in self.terms if t.side == side)

    @property
    def cpu_max_mb_per_s(self) -> float:
        return max_mb_per_s(self.cores, self.server_cpu_s_per_gb, self.client_cpu_s_per_gb)

    @property
    def max_mb_per_s(self) -> float:
        """The lower of what the cores and the disk allow.

        >>> f = Floor("PUT", (Term("nodes", "w", "direct_write", 1.5, 0.5),), 2, 560.0)
        >>> round(f.cpu_max_mb_per_s), f.max_mb_per_s
        (2667, 560.0)
        """
        cpu = self.cpu_max_mb_per_s
        return cpu if self.disk_mb_per_s is None else min(cpu, self.disk_mb_per_s)


def max_mb_per_s(cores: int, server_cpu_s_per_gb: float, client_cpu_s_per_gb: float) -> float:
    """The highest MB/s ``cores`` cores can carry when the server and the client share them,
    every stage overlapped perfectly.

    >>> round(max_mb_per_s(2, 3.5, 0.35))  # 2 CPU-s per wall second / 3.85 CPU-s per GB
    519
    """
    total = server_cpu_s_per_gb + client_cpu_s_per_gb
    return 1000 * cores / total if total > 0 else float("inf")


def stage_costs(samples: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """Each stage's median over the repeats (stages with no sample are left out).

    >>> stage_costs({"md5": [1.6, 1.5, 1.55], "xxh3": []})
    {'md5': 1.55}
    """
    return {stage: statistics.median(v) for stage, v in samples.items() if v}


# PERF.md's stage costs, measured on these machines: MD5 (hashlib) at 870 MB/s per core.
PERF_MD5_CPU_S_PER_GB = 1.14


def host_speed_note(costs: Mapping[str, float]) -> str | None:
    """How fast this host ran during the floor, against the day PERF.md's stage costs were
    measured: the same C code (hashlib's MD5) timed both times. The shared machines drift by
    a third; Python-heavy small operations move more than this C loop.

    >>> host_speed_note({"md5": 1.30})  # doctest: +ELLIPSIS
    'host speed: MD5 (hashlib) cost 1.30 CPU-s/GB in the floor, 1.14 in PERF.md: ...at 88% ...'
    >>> host_speed_note({}) is None
    True
    """
    md5 = costs.get("md5")
    if not md5:
        return None
    return (
        f"host speed: MD5 (hashlib) cost {md5:.2f} CPU-s/GB in the floor, "
        f"{PERF_MD5_CPU_S_PER_GB} in PERF.md: this host ran at "
        f"{PERF_MD5_CPU_S_PER_GB / md5:.0%} of the speed PERF.md measured (at the start of the "
        "suite)"
    )


def durable_stage(costs: Mapping[str, float]) -> str:
    """The cheaper measured way for a node to receive bytes and write them durably.

    >>> durable_stage({"splice_write": 0.55, "recv_write": 0.7})
    'splice_write'
    """
    return min((s for s in DURABLE if s in costs), key=lambda s: costs[s])


def md5_stage(costs: Mapping[str, float]) -> str:
    """How the gateway hashes a large upload's MD5: in vector lanes when measured (the
    extension is built and the CPU has AVX-512; gateway/md5.py), else hashlib.

    >>> md5_stage({"md5": 1.2, "md5_lanes": 0.35}), md5_stage({"md5": 1.2})
    ('md5_lanes', 'md5')
    """
    return "md5_lanes" if "md5_lanes" in costs else "md5"


def put_floor(
    costs: Mapping[str, float], layout: Layout, cores: int, disk_write_mb_s: float | None = None
) -> Floor:
    """PUT: gateway receive + MD5 + encode + xxh3 and send of k+m shards; nodes durably
    receive k+m shards; the client sends the body. ``disk_write_mb_s``: the disk's measured
    durable write MB/s, which carries 1/expansion as much object.

    >>> costs = {"tcp_send": 0.35, "tcp_receive": 0.45, "md5": 1.55, "encode": 0.4,
    ...          "xxh3": 0.04, "shard_send": 0.35, "splice_write": 0.55, "recv_write": 0.7}
    >>> f = put_floor(costs, Layout("isal", 8, 4, 4 * MIB), 2)
    >>> round(f.server_cpu_s_per_gb, 3), f.client_cpu_s_per_gb, round(f.max_mb_per_s)
    (3.81, 0.35, 481)
    >>> round(put_floor(costs, Layout("isal", 8, 4, 4 * MIB), 2, 600.0).max_mb_per_s)
    400
    """
    x = layout.expansion
    durable = durable_stage(costs)
    steps = (
        (CLIENT, "send the body", "tcp_send", 1.0),
        ("gateway", "receive the body", "tcp_receive", 1.0),
        ("gateway", "MD5 (ETag)", md5_stage(costs), 1.0),
        ("gateway", f"encode {layout.k}+{layout.m} ({layout.codec})", "encode", 1.0),
        ("gateway", "xxh3 of every shard", "xxh3", x),
        ("gateway", "send the shards", "shard_send", x),
        ("nodes", "receive the shards, write, fsync", durable, x),
    )
    disk = None if disk_write_mb_s is None else disk_write_mb_s / x
    return Floor("PUT", _terms(steps, costs), cores, disk)


def get_floor(costs: Mapping[str, float], layout: Layout, cores: int) -> Floor:
    """GET, healthy (k data shards, no decode): nodes sendfile; the gateway receives, checks
    xxh3 and sends the body; the client receives it.

    >>> costs = {"tcp_send": 0.35, "tcp_receive": 0.45, "xxh3": 0.04,
    ...          "sendfile_send": 0.2, "sendfile_receive": 0.45}
    >>> f = get_floor(costs, Layout("isal", 8, 4, 4 * MIB), 2)
    >>> round(f.server_cpu_s_per_gb, 3), f.side_cpu_s_per_gb("nodes"), round(f.max_mb_per_s)
    (1.04, 0.2, 1342)
    """
    steps = (
        ("nodes", "sendfile the data shards", "sendfile_send", 1.0),
        ("gateway", "receive the data shards", "sendfile_receive", 1.0),
        ("gateway", "xxh3 of the data shards", "xxh3", 1.0),
        ("gateway", "send the body", "tcp_send", 1.0),
        (CLIENT, "receive the body", "tcp_receive", 1.0),
    )
    return Floor("GET", _terms(steps, costs), cores)


def _terms(
    steps: Sequence[tuple[str, str, str, float]], costs: Mapping[str, float]
) -> tuple[Term, ...]:
    return tuple(Term(side, step, stage, gb, costs[stage]) for side, step, stage, gb in steps)


def floors(floor: Mapping[str, Any]) -> tuple[Floor, Floor]:
    """PUT's and GET's floor from the ``floor`` section of results.json."""
    costs = stage_costs(floor["stages"])
    layout = Layout(**floor["layout"])
    disk = floor.get("disk_write_mb_s") or None  # absent from results before it was measured
    disk_mb_s = None if disk is None else statistics.median(disk)
    return (
        put_floor(costs, layout, floor["cores"], disk_mb_s),
        get_floor(costs, layout, floor["cores"]),
    )


def floor_document(
    layout: Layout,
    cores: int,
    transfer_bytes: int,
    directory: str,
    samples: Mapping[str, Sequence[float]],
    disk_write_mb_s: Sequence[float] = (),
) -> dict[str, Any]:
    """The ``floor`` section of results.json: the measured samples (what a re-render composes
    from) and, for readers of the JSON, the floors composed from their medians."""
    doc: dict[str, Any] = {
        "layout": {
            "codec": layout.codec,
            "k": layout.k,
            "m": layout.m,
            "block_size_bytes": layout.block_size_bytes,
        },
        "cores": cores,
        "transfer_bytes": transfer_bytes,
        "directory": directory,
        "stages": {stage: list(v) for stage, v in samples.items()},
        "disk_write_mb_s": list(disk_write_mb_s),
    }
    doc["composed"] = {f.op: composed_dict(f) for f in floors(doc)}
    return doc


def composed_dict(floor: Floor) -> dict[str, Any]:
    return {
        "server_cpu_s_per_gb": floor.server_cpu_s_per_gb,
        "client_cpu_s_per_gb": floor.client_cpu_s_per_gb,
        "max_mb_per_s": floor.max_mb_per_s,
        "cpu_max_mb_per_s": floor.cpu_max_mb_per_s,
        "disk_max_mb_per_s": floor.disk_mb_per_s,
        "terms": [
            {
                "side": t.side,
                "step": t.step,
                "stage": t.stage,
                "gb_per_gb": t.gb,
                "cpu_s_per_gb": t.cpu_s_per_gb,
            }
            for t in floor.terms
        ],
    }


# --- tables ---------------------------------------------------------------------------------


def _target(op: str, metric: str) -> Target:
    return next(t for t in TARGETS[(op, 64 * MIB)] if t.metric == metric)


def verdict(value: float, target: Target) -> str:
    """value / target and whether the floor leaves the target reachable.

    >>> verdict(3.5, Target("server_cpu_s_per_gb", 3, False, "CPU-s/GB"))
    '1.17 UNREACHABLE'
    >>> verdict(1340, Target("mb_per_s", 1500, True, "MB/s"))
    '0.89 UNREACHABLE'
    """
    ratio = value / target.bound
    ok = ratio >= 1 if target.higher_is_better else ratio <= 1
    return f"{ratio:.2f} {'reachable' if ok else 'UNREACHABLE'}"


def stage_rows(samples: Mapping[str, Sequence[float]]) -> list[list[str]]:
    """One row per measured stage: median CPU-s/GB, the range over repeats, MB/s per core."""
    rows = []
    for stage, values in samples.items():
        if not values:
            continue
        median = statistics.median(values)
        per_core = 1000 / median if median > 0 else None
        spread = f"{fmt_num(min(values))}-{fmt_num(max(values))}"
        rows.append([stage, STAGES.get(stage, stage), fmt_num(median), spread, fmt_num(per_core)])
    return rows


def term_rows(floor: Floor) -> list[list[str]]:
    rows = [
        [t.side, t.step, t.stage, fmt_num(t.gb), fmt_num(t.stage_cpu_s_per_gb),
         fmt_num(t.cpu_s_per_gb)]
        for t in floor.terms
    ]  # fmt: skip
    for side in ("gateway", "nodes"):
        rows.append([side, "(sum)", "", "", "", fmt_num(floor.side_cpu_s_per_gb(side))])
    rows.append(["server", "**floor**", "", "", "", f"**{fmt_num(floor.server_cpu_s_per_gb)}**"])
    return rows


def _large(results: Sequence[WorkloadResult], op: str) -> WorkloadResult | None:
    return next((r for r in results if r.kind == "large" and r.op == op), None)


def _of_floor(measured: float | None, floor: float) -> str:
    return MISSING if measured is None or floor <= 0 else f"{measured / floor:.2f}x"


def target_rows(pair: Sequence[Floor], results: Sequence[WorkloadResult]) -> list[list[str]]:
    """Per operation: the server floor and the highest MB/s against the targets, and what the
    ``large`` workload of the same invocation spent, as a multiple of the floor."""
    rows = []
    for f in pair:
        cpu_target, mb_target = _target(f.op, "server_cpu_s_per_gb"), _target(f.op, "mb_per_s")
        large = _large(results, f.op)
        measured = None if large is None else large.server_cpu_s_per_gb
        rows.append([
            f.op,
            fmt_num(f.server_cpu_s_per_gb),
            cpu_target.describe(),
            verdict(f.server_cpu_s_per_gb, cpu_target),
            fmt_num(f.client_cpu_s_per_gb),
            fmt_num(f.cpu_max_mb_per_s),
            MISSING if f.disk_mb_per_s is None else fmt_num(f.disk_mb_per_s),
            mb_target.describe(),
            verdict(f.max_mb_per_s, mb_target),
            MISSING if large is None else f"{large.workload}: {fmt_num(measured)}",
            _of_floor(measured, f.server_cpu_s_per_gb),
        ])  # fmt: skip
    return rows


def by_kind_rows(pair: Sequence[Floor], results: Sequence[WorkloadResult]) -> list[list[str]]:
    """Gateway and nodes separately, where the large workload ran on a cluster."""
    rows = []
    for f in pair:
        large = _large(results, f.op)
        if large is None or not large.object_bytes:
            continue
        for side, kind in (("gateway", "gateway"), ("nodes", "node")):
            cpu_s = large.server_cpu_by_kind.get(kind)
            if cpu_s is None:
                continue
            measured = cpu_s * 1e9 / large.object_bytes
            floor = f.side_cpu_s_per_gb(side)
            rows.append([f.op, side, fmt_num(floor), fmt_num(measured), _of_floor(measured, floor)])
    return rows


TARGET_HEADER = (
    "op", "server floor CPU-s/GB", "target", "floor/target", "client floor CPU-s/GB",
    "max MB/s (all cores)", "max MB/s (disk)", "target MB/s", "max/target",
    "measured (large) CPU-s/GB", "measured / floor",
)  # fmt: skip
STAGE_HEADER = ("stage", "what", "CPU-s/GB (median)", "range", "MB/s per core")
TERM_HEADER = ("side", "step", "stage", "GB per GB", "stage CPU-s/GB", "CPU-s per GB of object")
KIND_HEADER = ("op", "process kind", "floor CPU-s/GB", "measured CPU-s/GB", "measured / floor")
