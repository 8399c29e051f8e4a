"""``huimin bench``: start (or target) a server, run the workloads N times, print and save.

Each run writes fresh keys (``run-<n>/``), so every PUT creates an object rather than replacing
one, and deletes them afterwards (untimed). Order per run: large PUT, large GET, small PUT,
small GET. The table shows each figure's median over runs; ``--json`` also keeps every run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.client import Credentials, S3Client
from bench.report import format_errors, format_table, report_document
from bench.results import WorkloadResult, median_result
from bench.workloads import Payload, Workload, delete_objects, format_size, measure, parse_size

Log = Callable[[str], None]
_READY_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class BenchConfig:
    object_size: int = 64 * 2**20
    count: int = 16
    concurrency: int = 8
    small_size: int = 4096
    small_count: int = 2000
    small_concurrency: int = 8
    runs: int = 3
    verify: bool = False  # MD5 every GET body (costs client CPU: ~1.1 s/GB)
    data_dir: Path | None = None  # embedded server's data folder; a temp folder when None
    server_env: tuple[tuple[str, str], ...] = ()  # extra environment for the embedded server
    endpoint: str | None = None  # target this server instead of starting one
    access_key: str | None = None
    secret_key: str | None = None
    region: str = "us-east-1"
    server_pid: int | None = None  # for CPU accounting of an external server
    json_path: Path | None = None

    def check(self) -> None:
        for name in ("object_size", "count", "concurrency", "small_concurrency", "runs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.small_count < 0 or self.small_size < 1:
            raise ValueError("small_count must be >= 0 and small_size >= 1")
        if self.endpoint is not None and not (self.access_key and self.secret_key):
            raise ValueError("--endpoint needs --access-key and --secret-key")
        if self.endpoint is None and (self.access_key or self.secret_key or self.server_pid):
            raise ValueError("--access-key/--secret-key/--server-pid go with --endpoint")

    def public(self) -> dict[str, Any]:
        """The config as recorded in the JSON document (no secret key)."""
        data = dataclasses.asdict(self)
        data["secret_key"] = None if self.secret_key is None else "***"
        data["server_env"] = dict(self.server_env)
        for name in ("data_dir", "json_path"):
            data[name] = None if data[name] is None else str(data[name])
        return data


@dataclass(frozen=True, slots=True)
class Target:
    """The server under test."""

    endpoint: str
    credentials: Credentials
    pid: int | None  # whose process tree's CPU is charged; None: not measured
    embedded: bool


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(endpoint: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}; log: {log_path}")
        try:
            with urllib.request.urlopen(f"{endpoint}/_huimin/health/ready", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server not ready after {_READY_TIMEOUT_S:.0f} s; log: {log_path}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def embedded_server(config: BenchConfig, log: Log) -> Iterator[Target]:
    """``huimin server`` on 127.0.0.1 in a child process, with throw-away root credentials.

    Its data lives in a temp folder (removed afterwards) unless ``config.data_dir`` is given
    (kept). The server log is kept, and its path printed, when it holds a traceback.
    """
    work = Path(tempfile.mkdtemp(prefix="huimin-bench-"))
    data_dir = config.data_dir or work / "data"
    log_path = work / "server.log"
    credentials = Credentials(
        access_key="BENCH" + secrets.token_hex(8).upper(),
        secret_key=secrets.token_urlsafe(30),
        region=config.region,
    )
    env = {
        **os.environ,
        **dict(config.server_env),
        "HUIMIN_ROOT_ACCESS_KEY": credentials.access_key,
        "HUIMIN_ROOT_SECRET_KEY": credentials.secret_key,
        "HUIMIN_REGION": config.region,
    }
    endpoint = f"http://127.0.0.1:{_free_port()}"
    keep_log = False
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "huimin", "server", str(data_dir), "--listen", endpoint[7:]],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            _wait_ready(endpoint, process, log_path)
            log(f"embedded server pid {process.pid} at {endpoint}, data {data_dir}")
            yield Target(endpoint, credentials, process.pid, embedded=True)
        except BaseException:
            keep_log = True
            raise
        finally:
            _stop(process)
            server_log = log_path.read_text(errors="replace")
            if "Traceback" in server_log or keep_log:
                keep_log = True
                log(f"server log kept (it has a traceback or the run failed): {log_path}")
            if keep_log:
                if config.data_dir is None:
                    shutil.rmtree(work / "data", ignore_errors=True)
            else:
                shutil.rmtree(work, ignore_errors=True)


@contextmanager
def target_server(config: BenchConfig, log: Log) -> Iterator[Target]:
    if config.endpoint is None:
        with embedded_server(config, log) as target:
            yield target
        return
    assert config.access_key is not None and config.secret_key is not None
    if config.server_pid is None:
        log("no --server-pid: server CPU is not measured")
    yield Target(
        config.endpoint,
        Credentials(config.access_key, config.secret_key, config.region),
        config.server_pid,
        embedded=False,
    )


def plan(config: BenchConfig, run_index: int) -> list[Workload]:
    """One run's workloads, in order, on keys unique to the run."""
    prefix = f"run-{run_index}/"
    large = f"{prefix}large-"
    small = f"{prefix}small-"
    out = [
        Workload("PUT", config.object_size, config.count, config.concurrency, large),
        Workload("GET", config.object_size, config.count, config.concurrency, large),
    ]
    if config.small_count:
        out += [
            Workload("PUT", config.small_size, config.small_count, config.small_concurrency, small),
            Workload("GET", config.small_size, config.small_count, config.small_concurrency, small),
        ]
    return out


def _progress(run_index: int, runs: int, r: WorkloadResult) -> str:
    cpu = "" if r.server_cpu_s is None else f", server {r.server_cpu_s:.2f} CPU-s"
    if r.server_cpu_s_per_gb is not None and r.object_size >= 2**20:
        cpu += f" ({r.server_cpu_s_per_gb:.2f} CPU-s/GB)"
    return (
        f"run {run_index + 1}/{runs}: {r.workload} x{r.ops + r.errors} ({r.concurrency} in flight)"
        f": {r.mb_per_s:.1f} MB/s, {r.ops_per_s:.0f} ops/s in {r.wall_s:.2f} s{cpu}"
        f", errors {r.errors}"
    )


async def run_workloads(
    config: BenchConfig, target: Target, log: Log
) -> list[list[WorkloadResult]]:
    """Every run's results, in plan order."""
    payloads = {size: Payload.random(size) for size in {config.object_size, config.small_size}}
    bucket = f"huimin-bench-{secrets.token_hex(4)}"
    connections = max(config.concurrency, config.small_concurrency)
    runs: list[list[WorkloadResult]] = []
    async with S3Client(target.endpoint, target.credentials, connections) as client:
        await client.create_bucket(bucket)
        try:
            for n in range(config.runs):
                results: list[WorkloadResult] = []
                workloads = plan(config, n)
                for w in workloads:
                    r = await measure(
                        client, bucket, w, payloads[w.object_size], target.pid, config.verify
                    )
                    log(_progress(n, config.runs, r))
                    results.append(r)
                runs.append(results)
                keys = sorted({k for w in workloads for k in w.object_keys()})
                failed = await delete_objects(client, bucket, keys, connections)
                if failed:
                    log(f"clean-up: {len(failed)} delete(s) failed, e.g. {failed[0]}")
        finally:
            try:
                await client.delete_bucket(bucket)
            except Exception as exc:  # leftovers from a failed run: say so, don't mask it
                log(f"clean-up: bucket {bucket} not deleted: {exc}")
    return runs


def medians(runs: Sequence[Sequence[WorkloadResult]]) -> list[WorkloadResult]:
    return [median_result([run[i] for run in runs]) for i in range(len(runs[0]))]


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


def _environment(target: Target, load_start: float) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        huimin_version = version("huimin")
    except PackageNotFoundError:
        huimin_version = None
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "huimin": huimin_version,
        "server": "embedded" if target.embedded else target.endpoint,
        "server_cpu_measured": target.pid is not None,
        "load_avg_1m_start": load_start,
        "load_avg_1m_end": os.getloadavg()[0],
    }


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_bench(config: BenchConfig, log: Log = print) -> dict[str, Any]:
    """Run the benchmark; print progress and the table; return (and maybe write) the JSON."""
    config.check()
    log(
        f"huimin bench: {config.runs} run(s) of {config.count} x "
        f"{format_size(config.object_size)} ({config.concurrency} in flight)"
        + (
            f" and {config.small_count} x {format_size(config.small_size)}"
            f" ({config.small_concurrency} in flight)"
            if config.small_count
            else ""
        )
    )
    load_start = os.getloadavg()[0]
    note = load_note(load_start, os.cpu_count() or 1)
    if note:
        log(note)
    with target_server(config, log) as target:
        with asyncio.Runner(loop_factory=_new_event_loop) as runner:
            runs = runner.run(run_workloads(config, target, log))
        environment = _environment(target, load_start)
    results = medians(runs)
    log("")
    log(f"median of {len(runs)} run(s); MB = 10^6 bytes; CPU-s/GB = CPU seconds per 10^9 bytes")
    log(format_table(results))
    for line in format_errors(results):
        log(line)
    log(
        f"load average (1 min) {environment['load_avg_1m_start']:.2f} at start, "
        f"{environment['load_avg_1m_end']:.2f} at end, {environment['cpus']} CPUs"
    )
    document = report_document(config.public(), environment, results, runs)
    if config.json_path is not None:
        config.json_path.write_text(json.dumps(document, indent=2) + "\n")
        log(f"results written to {config.json_path}")
    return document


def _server_env(pairs: Sequence[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--server-env wants NAME=VALUE, got {pair!r}")
        out.append((name, value))
    return tuple(out)


def main(
    *,
    size: str,
    count: int,
    concurrency: int,
    small_size: str,
    small_count: int,
    small_concurrency: int,
    runs: int,
    verify: bool,
    data_dir: Path | None,
    server_env: Sequence[str],
    endpoint: str | None,
    access_key: str | None,
    secret_key: str | None,
    region: str,
    server_pid: int | None,
    json_path: Path | None,
) -> int:
    """Entry point of ``huimin bench``: the exit status (1 when any request failed, 2 for bad
    options)."""
    try:
        config = BenchConfig(
            object_size=parse_size(size),
            count=count,
            concurrency=concurrency,
            small_size=parse_size(small_size),
            small_count=small_count,
            small_concurrency=small_concurrency,
            runs=runs,
            verify=verify,
            data_dir=data_dir,
            server_env=_server_env(server_env),
            endpoint=endpoint,
            access_key=access_key,
            secret_key=secret_key,
            region=region,
            server_pid=server_pid,
            json_path=json_path,
        )
        config.check()
    except ValueError as exc:
        print(f"huimin bench: {exc}", file=sys.stderr)
        return 2
    document = run_bench(config, lambda line: print(line, flush=True))
    return 1 if document["errors"] else 0
