"""``huimin bench``: start (or target) a server, run the workloads N times, print and save.

First, before any server starts, the floor (``bench.floor``; no server at all when it is the
only workload). Per run, in order: large PUT and GET, small PUT/GET/HEAD/DELETE, mixed GET/PUT,
multipart, LIST pages, the concurrency sweep, the WAN profile, degraded GET. Each run writes
fresh keys (``run-<n>/``) and deletes them afterwards (untimed). Once, after the runs: a large
PUT with py-spy attached (CPU-s/GB per stage) and the memory check. The LIST bucket is populated
once and kept (in the data folder or on the endpoint) for later invocations.

Results go to ``--results DIR`` (default ``bench/results/<timestamp>/``): ``results.json``,
``report.md`` and PNG plots. Tables show each figure's median over runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import listing, markdown, plots, servers
from bench.client import Credentials
from bench.config import RESULTS_ROOT, BenchConfig, Log, load_note, scale_notes
from bench.floor import floor_document, host_speed_note, stage_costs
from bench.floor_measure import available_cores, measure_floor, store_layout, store_nodes
from bench.floor_skeleton import measure_ops_floor
from bench.ops_floor import op_shapes, ops_floor_document
from bench.profile import profile_kinds
from bench.report import format_errors, format_table, report_document, result_from_dict
from bench.results import WorkloadResult
from bench.suite import group_medians, run_suite
from bench.workloads import format_size


def _environment(
    target: servers.Target | None, load_start: float, meter_reset: bool | None
) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        huimin_version = version("huimin")
    except PackageNotFoundError:
        huimin_version = None
    processes = [] if target is None else target.processes()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        # which build: a distribution's optimized one or a plain source build differ by 10-30%
        "python_executable": os.path.realpath(sys.executable),
        "platform": platform.platform(),
        "huimin": huimin_version,
        "server": "none (floor only)" if target is None else target.label,
        "endpoint": None if target is None else target.endpoint,
        "endpoints": None if target is None else list(target.endpoints),
        "server_processes": [dataclasses.asdict(p) for p in processes],
        "server_cpu_measured": bool(processes),
        "rss_reset": meter_reset,
        "load_avg_1m_start": load_start,
        "load_avg_1m_end": os.getloadavg()[0],
    }


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def open_target(config: BenchConfig, log: Log) -> AbstractContextManager[servers.Target]:
    env = dict(config.server_env)
    if config.target == "cluster":
        prepare = None
        if config.wants("list") and config.list_spec.seed:
            prepare = functools.partial(
                listing.seed, spec=config.list_spec, topology=config.topology,
                region=config.region, log=log,
            )  # fmt: skip
        return servers.cluster(
            config.data_dir, config.topology, config.gateways, env, config.region, log, prepare
        )
    if config.target == "endpoint":
        assert config.endpoint and config.access_key and config.secret_key
        creds = Credentials(config.access_key, config.secret_key, config.region)
        return servers.endpoint(config.endpoint, creds, config.server_pids, log)
    return servers.embedded(config.data_dir, env, config.region, log)


# The small-operation skeletons run this many operations per ``small`` operation: they cost
# ~0.2 ms each, so 5x the small count is a few seconds.
SKELETON_OPS_PER_SMALL_OP = 5


@contextmanager
def _timer(log: Log, what: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    log(f"{what} took {time.monotonic() - started:.0f} s")


def _measure_floor(config: BenchConfig, log: Log) -> tuple[dict[str, Any] | None, str | None]:
    """The floor section of results.json, or None and why it failed."""
    layout = store_layout(config.target, config.topology, dict(config.server_env))
    directory = config.data_dir or Path(tempfile.gettempdir())
    log(f"floor: {config.runs} repeat(s) of {format_size(config.floor_bytes)} per stage, "
        f"{layout.codec} {layout.k}+{layout.m}, scratch files in {directory}")  # fmt: skip
    nodes = store_nodes(config.target, config.topology)
    shapes = op_shapes(config.small_size, layout.k, layout.m, nodes)
    count = max(config.small_count, 1) * SKELETON_OPS_PER_SMALL_OP
    try:
        samples, disk = measure_floor(layout, config.floor_bytes, config.runs, directory, log)
        ops = measure_ops_floor(shapes, count, config.small_concurrency, config.runs, log)
    except Exception as exc:
        message = f"workload floor failed: {type(exc).__name__}: {exc}"[:500]
        log(message)
        return None, message
    doc = floor_document(
        layout, available_cores(), config.floor_bytes, str(directory.resolve()), samples, disk
    )
    doc["ops"] = ops_floor_document(shapes, config.small_concurrency, count, ops)
    return doc, None


def run_bench(config: BenchConfig, log: Log = print) -> dict[str, Any]:
    """Run the suite; print progress and the tables; write the results folder; the document."""
    config.check()
    load_start = os.getloadavg()[0]
    notes = scale_notes(config)
    note = load_note(load_start, os.cpu_count() or 1)
    if note:
        notes.append(note)
        log(note)
    runs: list[list[WorkloadResult]] = []
    once: list[WorkloadResult] = []
    profile: dict[str, Any] = {}
    failures = 0
    with _timer(log, "the suite"):
        floor = None
        if config.wants("floor"):  # before any server starts: nothing else of ours runs
            floor, failed = _measure_floor(config, log)
            if failed:
                failures += 1
                notes.append(failed)
            speed = None if floor is None else host_speed_note(stage_costs(floor["stages"]))
            if speed:
                notes.append(speed)
                log(speed)
        if not config.needs_server():
            environment = _environment(None, load_start, None)
        else:
            with open_target(config, log) as target:
                log(f"huimin bench: {config.runs} run(s) against {target.label}; "
                    f"workloads: {', '.join(config.workloads)}")  # fmt: skip
                with asyncio.Runner(loop_factory=_new_event_loop) as runner:
                    runs, once, profile, suite = runner.run(run_suite(config, target, log))
                environment = _environment(target, load_start, suite.meter.rss_reset_ok)
                notes += target.notes + suite.notes
                failures += suite.failures
    results = group_medians(runs) if runs and any(runs) else []
    end_note = load_note(environment["load_avg_1m_end"], os.cpu_count() or 1)
    if end_note and end_note not in notes:
        notes.append(f"at the end: {end_note}")
    if results or once:
        log("")
        log(f"median of {len(runs)} run(s); MB = 10^6 bytes; "
            "CPU-s/GB = CPU seconds per 10^9 bytes")  # fmt: skip
        log(format_table([*results, *once]))
        log("")
        log(markdown.summary_table([*results, *once]))
    for line in format_errors([*results, *once]):
        log(line)
    if floor is not None:
        log("")
        log("\n".join(markdown.floor_section(floor, results)))
    folder = config.results_dir or RESULTS_ROOT / datetime.now().strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    if config.plots:
        if plots.available():
            written = plots.write_all(folder, [*results, *once], profile)
        else:
            notes.append("no plots: matplotlib is not installed (pip install -e '.[dev]')")
    document = report_document(
        config.public(), environment, results, runs, once, profile, notes, written, floor
    )
    document["errors"] += failures
    (folder / "results.json").write_text(json.dumps(document, indent=1) + "\n")
    title = f"huimin bench: {environment['server']}"
    (folder / "report.md").write_text(
        markdown.render(
            title, environment, config.public(), results, once, profile, notes, written, floor
        )
        + "\n"
    )
    if config.json_path is not None:
        config.json_path.write_text(json.dumps(document, indent=1) + "\n")
    for n in notes:
        log(f"note: {n}")
    log(f"results written to {folder}")
    return document


def rerender(folder: Path) -> list[str]:
    """Write ``report.md`` and the plots again from ``folder/results.json`` (after a change to
    the report); the files written."""
    doc = json.loads((folder / "results.json").read_text())
    results = [result_from_dict(r) for r in doc["results"]]
    once = [result_from_dict(r) for r in doc["once"]]
    kinds = doc["profile"].get("kinds", {})
    profiled = next((r for r in once if r.kind == "profile"), None)
    if profiled is not None and kinds and all("stacks" in k for k in kinds.values()):
        stacks = {k: [(s.split(";"), n) for s, n in v["stacks"]] for k, v in kinds.items()}
        doc["profile"]["kinds"] = profile_kinds(
            stacks, profiled.server_cpu_by_kind, profiled.object_bytes
        )
        (folder / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
    written = (
        plots.write_all(folder, [*results, *once], doc["profile"]) if plots.available() else []
    )
    title = f"huimin bench: {doc['environment']['server']}"
    text = markdown.render(
        title, doc["environment"], doc["config"], results, once, doc["profile"], doc["notes"],
        written, doc.get("floor"),
    )  # fmt: skip
    (folder / "report.md").write_text(text + "\n")
    return ["report.md", *written]


def main(config: BenchConfig) -> int:
    """Entry point of ``huimin bench``: the exit status (1 when any request or workload failed,
    2 for bad options)."""
    try:
        config.check()
    except ValueError as exc:
        print(f"huimin bench: {exc}", file=sys.stderr)
        return 2
    document = run_bench(config, lambda line: print(line, flush=True))
    return 1 if document["errors"] else 0
