"""``huimin bench`` end to end with tiny sizes against a running server: it completes, every
request succeeds and is checked, and the JSON holds the figures the report is built from.
No timing assertions: figures on a shared test machine mean nothing."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from huimin.cli import app
from tests.conftest import Server

FIELDS = {
    "workload",
    "op",
    "object_size",
    "concurrency",
    "ops",
    "errors",
    "error_samples",
    "wall_s",
    "object_bytes",
    "mb_per_s",
    "ops_per_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "server_cpu_s",
    "server_cpu_s_per_gb",
    "server_cpu_us_per_op",
    "server_cores",
    "client_cpu_s",
    "client_cpu_s_per_gb",
    "targets",
}


def test_bench_runs_end_to_end(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "--size", "1MiB", "--count", "2", "--concurrency", "2", "--small-count"]
    args += ["20", "--runs", "2", "--verify", "--endpoint", server.endpoint, "--access-key"]
    args += [server.access_key, "--secret-key", server.secret_key, "--region", server.region]
    args += ["--server-pid", str(server.process.pid), "--json", str(out)]

    run = CliRunner().invoke(app, args)

    assert run.exit_code == 0, run.output
    assert "| PUT 1 MiB " in run.output and "| GET 4 KiB " in run.output
    doc = json.loads(out.read_text())
    assert doc["errors"] == 0
    assert doc["config"]["secret_key"] == "***"
    assert doc["environment"]["server_cpu_measured"] is True
    assert [r["workload"] for r in doc["results"]] == [
        "PUT 1 MiB",
        "GET 1 MiB",
        "PUT 4 KiB",
        "GET 4 KiB",
    ]
    assert len(doc["runs"]) == 2
    for r in doc["results"] + [r for run_results in doc["runs"] for r in run_results]:
        assert set(r) == FIELDS
        assert r["errors"] == 0, r["error_samples"]
        expected_ops = 2 if r["object_size"] == 1024 * 1024 else 20
        assert r["ops"] == expected_ops
        assert r["object_bytes"] == expected_ops * r["object_size"]
        assert r["server_cpu_s"] is not None and r["server_cpu_s"] >= 0
        assert r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"]
    small_put = doc["results"][2]
    assert [t["target"] for t in small_put["targets"]] == [">= 1000 ops/s"]


def test_bench_rejects_half_an_endpoint() -> None:
    run = CliRunner().invoke(app, ["bench", "--endpoint", "http://127.0.0.1:1"])
    assert run.exit_code == 2
