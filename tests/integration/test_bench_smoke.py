"""``huimin bench`` end to end with tiny sizes against a running server: it completes, every
request succeeds and is checked, and the results folder holds the figures the report is built
from. No timing assertions: figures on a shared test machine mean nothing."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bench.floor import STAGES
from bench.floor_skeleton import measure_skeleton
from bench.markdown import CLIENT_NAMES
from bench.ops_floor import op_shapes
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
    "kind",
    "server_cpu_by_kind",
    "peak_rss_bytes",
    "figures",
    "latency_sample_ms",
    "targets",
}

# Every workload, as small as it gets (multipart parts at the server's 5 MiB minimum).
TINY = [
    "--runs", "1", "--size", "1MiB", "--count", "3", "--concurrency", "2",
    "--concurrency-sweep", "1,2", "--small-concurrency-sweep", "1,3", "--small-count", "12",
    "--mixed-seconds", "1",
    "--list-keys", "150", "--list-pages", "4", "--multipart-size", "10MiB",
    "--part-size", "5MiB", "--degraded-count", "2", "--wan-slow-clients", "2",
    "--wan-fast-clients", "1", "--wan-seconds", "2", "--mem-uploads", "3",
    "--mem-size", "1MiB,3MiB", "--floor-size", "8MiB", "--no-progress",
]  # fmt: skip


def endpoint_args(server: Server) -> list[str]:
    return [
        "--endpoint", server.endpoint, "--access-key", server.access_key,
        "--secret-key", server.secret_key, "--region", server.region,
        "--server-pid", str(server.process.pid),
    ]  # fmt: skip


def check_results(doc: dict[str, Any]) -> None:
    assert doc["errors"] == 0, [r["error_samples"] for r in doc["results"] + doc["once"]]
    for r in doc["results"] + doc["once"] + [r for run in doc["runs"] for r in run]:
        assert set(r) == FIELDS
        assert r["errors"] == 0, r["error_samples"]
        assert r["ops"] > 0
        assert r["server_cpu_s"] is not None and r["server_cpu_s"] >= 0
        assert r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"]


@pytest.mark.parametrize("client", ["lean", "aiohttp"])
def test_bench_runs_end_to_end(server: Server, tmp_path: Path, client: str) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "--workloads", "large,small", "--size", "1MiB", "--count", "2"]
    args += ["--concurrency", "2", "--small-count", "20", "--runs", "2", "--verify"]
    args += ["--client", client]
    args += [*endpoint_args(server), "--json", str(out), "--results", str(tmp_path / "r")]
    args += ["--no-progress", "--no-plots"]

    run = CliRunner().invoke(app, args)

    assert run.exit_code == 0, run.output
    assert "| PUT 1 MiB " in run.output and "| GET 4 KiB " in run.output
    doc = json.loads(out.read_text())
    assert doc == json.loads((tmp_path / "r" / "results.json").read_text())
    report = (tmp_path / "r" / "report.md").read_text()
    assert f"client: {CLIENT_NAMES[client]}." in report
    interpreter = os.path.realpath(sys.executable)  # which build ran: optimized or not
    assert doc["environment"]["python_executable"] == interpreter
    assert f" at {interpreter}); server:" in report
    check_results(doc)
    assert doc["config"]["secret_key"] == "***" and doc["config"]["client"] == client
    assert doc["environment"]["server_cpu_measured"] is True
    assert [r["workload"] for r in doc["results"]] == [
        "PUT 1 MiB",
        "GET 1 MiB",
        "PUT 4 KiB",
        "PUT 4 KiB (overwrite)",
        "GET 4 KiB",
        "HEAD 4 KiB",
        "DELETE 4 KiB",
    ]
    assert len(doc["runs"]) == 2
    for r in doc["results"]:
        expected_ops = 2 if r["object_size"] == 1024 * 1024 else 20
        assert r["ops"] == expected_ops
        if r["op"] in ("PUT", "GET"):
            assert r["object_bytes"] == expected_ops * r["object_size"]
        assert set(r["server_cpu_by_kind"]) == {"server"}
        assert r["peak_rss_bytes"][f"pid-{server.process.pid}"] > 0
    small_put = doc["results"][2]
    assert [t["target"] for t in small_put["targets"]] == [">= 1000 ops/s"]


def test_bench_every_workload_tiny_against_an_endpoint(server: Server, tmp_path: Path) -> None:
    """All workloads but degraded (the suite cannot break an external store)."""
    results = tmp_path / "r"
    run = CliRunner().invoke(
        app, ["bench", *TINY, *endpoint_args(server), "--results", str(results)]
    )

    assert run.exit_code == 0, run.output
    doc = json.loads((results / "results.json").read_text())
    check_results(doc)
    kinds = {r["kind"] for r in doc["results"]}
    assert kinds == {
        "large", "small", "overwrite", "mixed", "multipart", "list", "sweep", "small-sweep", "wan"
    }  # fmt: skip
    steps = sorted(
        (r["op"], r["concurrency"]) for r in doc["results"] if r["kind"] == "small-sweep"
    )
    assert steps == [("GET", 1), ("GET", 3), ("PUT", 1), ("PUT", 3)]
    assert [r["kind"] for r in doc["once"]] == ["profile", "memory", "memory"]
    wan = next(r for r in doc["results"] if r["kind"] == "wan")
    assert {"c:slow-01", "c:slow-02", "c:fast-01", "jain_share_of_cap"} <= set(wan["figures"])
    assert doc["once"][-1]["figures"]["rss_growth"] > 0
    assert set(doc["floor"]["composed"]) == {"PUT", "GET"}
    report = (results / "report.md").read_text()
    assert "## Summary against the targets" in report and "## Throughput vs concurrency" in report
    assert "## Small operations vs concurrency" in report
    assert "degraded GET skipped" in report
    if doc["profile"].get("kinds"):  # py-spy present and allowed to attach
        assert set(doc["profile"]["kinds"]) == {"server"}
    if "throughput_vs_concurrency.png" in doc["plots"]:
        assert (results / "throughput_vs_concurrency.png").stat().st_size > 0
    # The LIST bucket stays for the next invocation; a second run reuses it.
    again = CliRunner().invoke(
        app, ["bench", *TINY, "--workloads", "list", *endpoint_args(server), "--results",
              str(tmp_path / "again")],
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    assert "populate" not in again.output


def test_bench_floor_alone_starts_no_server_and_rerenders(tmp_path: Path) -> None:
    """The floor measured for real at 8 MiB: every stage positive, both floors composed, the
    report's section, and ``--rerender`` composing it again from results.json."""
    results = tmp_path / "r"
    args = ["bench", "--workloads", "floor", "--runs", "1", "--floor-size", "8MiB"]
    args += ["--data-dir", str(tmp_path / "data"), "--results", str(results), "--no-progress"]
    run = CliRunner().invoke(app, args)

    assert run.exit_code == 0, run.output
    assert "huimin bench: 1 run(s) against" not in run.output  # no server
    doc = json.loads((results / "results.json").read_text())
    assert doc["errors"] == 0 and doc["results"] == [] and doc["once"] == []
    floor = doc["floor"]
    assert floor["layout"] == {"codec": "isal", "k": 8, "m": 4, "block_size_bytes": 4 * 2**20}
    assert floor["transfer_bytes"] == 8 * 2**20 and floor["cores"] >= 1
    assert set(floor["stages"]) == set(STAGES)
    assert all(len(v) == 1 and v[0] > 0 for v in floor["stages"].values()), floor["stages"]
    for op in ("PUT", "GET"):
        composed = floor["composed"][op]
        assert composed["server_cpu_s_per_gb"] > 0 and composed["max_mb_per_s"] > 0
    assert list((tmp_path / "data").iterdir()) == []  # scratch files removed
    assert "| PUT | " in run.output and "reachable" in run.output.lower()
    ops = floor["ops"]  # embedded: the skeleton's gateway answers by itself
    assert ops["concurrency"] == 8 and ops["count"] == 10000
    for op in ("PUT", "GET"):
        assert ops["ops"][op]["shape"]["nodes"] == 0
        (sample,) = ops["ops"][op]["samples"]
        assert sample["nodes_us"] == 0 and sample["gateway_us"] > 0 and sample["client_us"] > 0
    assert "| PUT 4 KiB | 0 " in run.output
    # the host's speed against PERF.md's, from the same C loop: for reading the figures
    speed = [n for n in doc["notes"] if n.startswith("host speed: MD5 (hashlib) cost ")]
    assert len(speed) == 1 and f"- {speed[0]}" in (results / "report.md").read_text()
    (results / "report.md").unlink()
    again = CliRunner().invoke(app, ["bench", "--rerender", str(results)])
    assert again.exit_code == 0, again.output
    assert "## Floor: the least CPU" in (results / "report.md").read_text()
    assert "### Small operations" in (results / "report.md").read_text()


def test_the_skeleton_of_a_get_costs_each_role_something() -> None:
    """A real skeleton: 6 node processes, a gateway and a client exchanging frames."""
    _, get = op_shapes(4096, 8, 4, 6)
    figures = measure_skeleton(get, 500, 8)
    assert set(figures) == {"client_us", "gateway_us", "nodes_us", "ops_per_s"}
    assert all(v > 0 for v in figures.values()), figures


def test_bench_embedded_target_with_degraded_get(tmp_path: Path) -> None:
    results = tmp_path / "r"
    args = ["bench", *TINY, "--target", "embedded", "--workloads", "large,degraded,memory"]
    run = CliRunner().invoke(app, [*args, "--results", str(results), "--no-plots"])

    assert run.exit_code == 0, run.output
    doc = json.loads((results / "results.json").read_text())
    check_results(doc)
    degraded = next(r for r in doc["results"] if r["kind"] == "degraded")
    assert "drive folders moved away" in degraded["workload"]
    assert degraded["figures"]["degraded_over_healthy"] > 0
    assert [t["target"] for t in degraded["targets"]] == [">= 0.5 x healthy GET"]


def test_bench_cluster_target(tmp_path: Path) -> None:
    """``--target cluster --gateways 2``: cluster up, bench (requests to both gateways in turn;
    CPU of the gateways and every node, degraded GET with two nodes killed and restarted),
    cluster down."""
    results = tmp_path / "r"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIMIN_ROOT_")}
    args = ["bench", *TINY, "--target", "cluster", "--data-dir", str(tmp_path / "cluster")]
    args += ["--gateways", "2"]
    args += ["--workloads", "large,small,degraded,profile", "--results", str(results)]
    run = CliRunner().invoke(app, [*args, "--no-plots"], env=env)

    assert run.exit_code == 0, run.output
    doc = json.loads((results / "results.json").read_text())
    check_results(doc)
    large = doc["results"][0]
    assert set(large["server_cpu_by_kind"]) == {"gateway", "node"}
    assert {"gateway-1", "gateway-2", "node-1", "node-6"} <= set(large["peak_rss_bytes"])
    assert len(set(doc["environment"]["endpoints"])) == 2
    degraded = next(r for r in doc["results"] if r["kind"] == "degraded")
    assert "2 nodes SIGKILLed" in degraded["workload"]
    # Both nodes are back and the cluster was brought down afterwards.
    state = tmp_path / "cluster" / "cluster.json"
    assert not state.exists()


def test_bench_server_env_reaches_every_cluster_process(tmp_path: Path) -> None:
    """``--server-env`` settings reach the cluster's gateway and nodes (``huimin cluster up``
    on its own hands them none: their config files rule)."""
    from bench import servers

    topology = Path(__file__).parents[2] / "topologies" / "local.toml"
    env = {"HUIMIN_INLINE_THRESHOLD_BYTES": "0"}
    with servers.cluster(tmp_path / "c", topology, 1, env, "us-east-1", lambda _: None) as target:
        procs = target.processes()
        assert {p.kind for p in procs} == {"gateway", "node"}
        for proc in procs:
            environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
            assert b"HUIMIN_INLINE_THRESHOLD_BYTES=0" in environ, proc
            assert b"HUIMIN_REGION=us-east-1" in environ, proc
