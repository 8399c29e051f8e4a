"""``huimin bench``'s configuration: the workloads, their sizes and the target, one frozen
value built from the command line (``build_config``), and what a run scaled down in words."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import listing, servers
from bench.memory import MemorySpec
from bench.multipart import MultipartSpec
from bench.wan import LinkClass, WanSpec
from bench.workloads import (
    MixedSpec,
    format_size,
    parse_size,
)

Log = Callable[[str], None]
WORKLOADS = (
    "large",
    "small",
    "mixed",
    "multipart",
    "list",
    "sweep",
    "small-sweep",
    "wan",
    "degraded",
    "profile",
    "memory",
    "floor",
)
CLIENTS = ("lean", "aiohttp")
# Workloads that need no server: a run of only these starts none.
SERVERLESS = ("floor",)
RESULTS_ROOT = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True, slots=True)
class BenchConfig:
    # target
    target: str = "embedded"  # "embedded" | "cluster" | "endpoint"
    topology: Path = servers.DEFAULT_TOPOLOGY
    gateways: int = 1
    data_dir: Path | None = None  # embedded data folder / cluster folder (kept when given)
    server_env: tuple[tuple[str, str], ...] = ()
    endpoint: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    region: str = "us-east-1"
    server_pids: tuple[int, ...] = ()
    # The suite's HTTP client for small requests and GETs: "lean" (bench/http1.py) or "aiohttp"
    # (the kind of client PERF.md's peer figures were taken with; ~2x its CPU per request).
    client: str = "lean"
    # workloads
    workloads: tuple[str, ...] = WORKLOADS
    runs: int = 3
    verify: bool = False  # MD5 every GET body (costs client CPU: ~1.1 s/GB)
    object_size: int = 64 * 2**20
    count: int = 16
    concurrency: int = 8
    concurrency_sweep: tuple[int, ...] = (1, 4, 8, 16)
    small_size: int = 4096
    small_count: int = 2000
    small_concurrency: int = 8
    # In-flight steps of the small-operation sweep (PERF.md's small targets are at 8).
    small_concurrency_sweep: tuple[int, ...] = (8, 16, 32)
    mixed: MixedSpec = field(default_factory=MixedSpec)
    list_spec: listing.ListSpec = field(default_factory=listing.ListSpec)
    multipart: MultipartSpec = field(default_factory=MultipartSpec)
    degraded_count: int = 8
    wan: WanSpec = field(default_factory=WanSpec)
    memory: MemorySpec = field(default_factory=MemorySpec)
    profile_rate_hz: int = 50
    floor_bytes: int = 2**30  # bytes per transfer (and hashed, coded) by the floor workload
    # output
    results_dir: Path | None = None
    json_path: Path | None = None
    progress: bool = True
    plots: bool = True

    def check(self) -> None:
        for name in ("object_size", "count", "concurrency", "small_concurrency", "runs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.small_count < 0 or self.small_size < 1:
            raise ValueError("small_count must be >= 0 and small_size >= 1")
        unknown = set(self.workloads) - set(WORKLOADS)
        if unknown:
            raise ValueError(
                f"unknown workload(s) {sorted(unknown)}; known: {', '.join(WORKLOADS)}"
            )
        if self.client not in CLIENTS:
            raise ValueError(f"--client is one of {', '.join(CLIENTS)}")
        if self.target not in ("embedded", "cluster", "endpoint"):
            raise ValueError("--target is embedded or cluster (or give --endpoint)")
        if self.target == "endpoint":
            if not (self.endpoint and self.access_key and self.secret_key):
                raise ValueError("--endpoint needs --access-key and --secret-key")
        elif self.endpoint or self.access_key or self.secret_key or self.server_pids:
            raise ValueError("--access-key/--secret-key/--server-pid go with --endpoint")
        if any(c < 1 for c in self.concurrency_sweep):
            raise ValueError("--concurrency-sweep wants positive numbers")
        if any(c < 1 for c in self.small_concurrency_sweep):
            raise ValueError("--small-concurrency-sweep wants positive numbers")
        if not 0 <= self.mixed.read_fraction <= 1:
            raise ValueError("--mixed-read-fraction is within 0..1")
        if self.floor_bytes < 2**20:
            raise ValueError("--floor-size must be at least 1 MiB")
        if self.list_spec.keys < 2 or self.multipart.part_size < 1:
            raise ValueError("--list-keys must be >= 2 and --part-size >= 1")

    def wants(self, workload: str) -> bool:
        return workload in self.workloads

    def needs_server(self) -> bool:
        return any(w not in SERVERLESS for w in self.workloads)

    def public(self) -> dict[str, Any]:
        """The config as recorded in the JSON document (no secret key)."""
        data = dataclasses.asdict(self)
        data["secret_key"] = None if self.secret_key is None else "***"
        data["server_env"] = dict(self.server_env)
        public: dict[str, Any] = json.loads(json.dumps(data, default=str))  # Paths as text
        return public


def load_note(load_1m: float, cpus: int) -> str | None:
    """A warning when other work competes for the CPUs (MB/s then drifts; CPU-s/GB less so).

    >>> load_note(0.1, 2) is None, load_note(7.5, 2)
    (True, 'load average 7.50 on 2 CPUs: other work competes; trust CPU-s/GB over MB/s')
    """
    if load_1m < 0.5 * cpus:
        return None
    return (
        f"load average {load_1m:.2f} on {cpus} CPUs: other work competes; trust CPU-s/GB over MB/s"
    )


def scale_notes(config: BenchConfig) -> list[str]:
    """What this run scaled down from PERF.md's workloads, in words for the report.

    >>> scale_notes(BenchConfig())
    ['memory check scaled: 100 concurrent uploads of 64 MiB, 256 MiB (PERF.md: 1 GB each)']
    """
    notes = []
    if config.wants("list") and config.list_spec.keys < 1_000_000:
        notes.append(
            f"LIST bucket scaled: {config.list_spec.keys} keys (PERF.md: 1,000,000); "
            "page latency on a larger bucket may differ"
        )
    if config.wants("list") and config.list_spec.seed:
        notes.append(
            "LIST bucket seeded (bench/seed.py): index rows bulk-loaded into the stopped "
            "cluster's drives from one object written by the object layer, not PUT through S3; "
            "a sample of keys is read back with GET (docs/benchmarks.md)"
        )
    if config.wants("memory") and max(config.memory.sizes) < 10**9:
        sizes = ", ".join(format_size(s) for s in config.memory.sizes)
        notes.append(
            f"memory check scaled: {config.memory.uploads} concurrent uploads of {sizes} "
            "(PERF.md: 1 GB each)"
        )
    if (config.object_size, config.count) != (64 * 2**20, 16) and config.wants("large"):
        notes.append(
            f"large objects: {config.count} x {format_size(config.object_size)} "
            "(PERF.md: 16 x 64 MiB); targets apply to 64 MiB only"
        )
    return notes


def _server_env(pairs: Sequence[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--server-env wants NAME=VALUE, got {pair!r}")
        out.append((name, value))
    return tuple(out)


def build_config(
    *,
    target: str | None,
    endpoint: str | None,
    server_env: Sequence[str],
    mem_sizes: Sequence[str],
    concurrency_sweep: str,
    workloads: str,
    small_concurrency_sweep: str = "8,16,32",
    skip: str,
    client: str = "lean",
    **fields: Any,
) -> BenchConfig:
    """A BenchConfig from the CLI's flat options (sizes as text, lists comma-separated)."""

    def ints(text: str) -> tuple[int, ...]:
        return tuple(int(x) for x in text.replace(" ", "").split(",") if x)

    def sizes(texts: Sequence[str]) -> tuple[int, ...]:
        return tuple(parse_size(x) for t in texts for x in t.split(",") if x.strip())

    chosen = tuple(w for w in workloads.replace(" ", "").split(",") if w)
    skipped = set(skip.replace(" ", "").split(",")) - {""}
    unknown = skipped - set(WORKLOADS)
    if unknown:
        raise ValueError(f"unknown workload(s) in --skip: {sorted(unknown)}")
    f = fields
    return BenchConfig(
        target=target or ("endpoint" if endpoint else "embedded"),
        topology=f["topology"] or servers.DEFAULT_TOPOLOGY,
        gateways=f["gateways"],
        data_dir=f["data_dir"],
        server_env=_server_env(server_env),
        endpoint=endpoint,
        access_key=f["access_key"],
        secret_key=f["secret_key"],
        region=f["region"],
        server_pids=tuple(f["server_pid"]),
        client=client,
        workloads=tuple(w for w in chosen if w not in skipped),
        runs=f["runs"],
        verify=f["verify"],
        object_size=parse_size(f["size"]),
        count=f["count"],
        concurrency=f["concurrency"],
        concurrency_sweep=ints(concurrency_sweep),
        small_size=parse_size(f["small_size"]),
        small_count=f["small_count"],
        small_concurrency=f["small_concurrency"],
        small_concurrency_sweep=ints(small_concurrency_sweep),
        mixed=MixedSpec(
            object_size=parse_size(f["mixed_size"]),
            read_fraction=f["mixed_read_fraction"],
            duration_s=f["mixed_seconds"],
            concurrency=f["mixed_concurrency"],
        ),
        list_spec=listing.ListSpec(
            keys=f["list_keys"],
            pages=f["list_pages"],
            populate_concurrency=f["list_populate_concurrency"],
            seed=f.get("list_seed", False),
        ),
        multipart=MultipartSpec(
            size=parse_size(f["multipart_size"]),
            part_size=parse_size(f["part_size"]),
            concurrency=f["part_concurrency"],
        ),
        degraded_count=f["degraded_count"],
        wan=WanSpec(
            slow=LinkClass("slow", f["wan_slow_clients"], f["wan_slow_mbps"]),
            fast=LinkClass("fast", f["wan_fast_clients"], f["wan_fast_mbps"]),
            duration_s=f["wan_seconds"],
        ),
        memory=MemorySpec(uploads=f["mem_uploads"], sizes=sizes(mem_sizes)),
        profile_rate_hz=f["profile_rate"],
        floor_bytes=parse_size(f["floor_size"]),
        results_dir=f["results"],
        json_path=f["json_path"],
        progress=f["progress"],
        plots=f["plots"],
    )
