"""The benchmark's pure parts: percentiles, CPU-s/GB, medians over runs, targets, the table,
sizes, /proc parsing and the client's SigV4 signer (bench/)."""

from __future__ import annotations

import dataclasses
import doctest
from datetime import UTC, datetime

import pytest

import bench.client
import bench.config
import bench.cpu
import bench.floor
import bench.floor_measure
import bench.listing
import bench.markdown
import bench.memory
import bench.multipart
import bench.ops_floor
import bench.plots
import bench.profile
import bench.progress
import bench.ratelimit
import bench.report
import bench.results
import bench.run
import bench.servers
import bench.suite
import bench.wan
import bench.workloads
from bench.client import Credentials, Signer
from bench.cpu import CpuTimes, cpu_s_per_gb, descendants, parse_stat
from bench.report import COLUMNS, fmt_num, format_errors, format_table, targets_for
from bench.results import OpOutcome, WorkloadResult, median_result, percentile, summarize
from bench.workloads import format_size, parse_size

MIB = 2**20


def result(op: str = "PUT", size: int = 64 * MIB, **changes: object) -> WorkloadResult:
    base = summarize(
        f"{op} {format_size(size)}",
        op,
        size,
        8,
        [OpOutcome(1.0, size)] * 10,
        wall_s=2.0,
        server_cpu_s=1.0,
        client_cpu_s=0.1,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "module",
    [
        bench.client,
        bench.config,
        bench.cpu,
        bench.floor,
        bench.floor_measure,
        bench.listing,
        bench.markdown,
        bench.memory,
        bench.multipart,
        bench.ops_floor,
        bench.plots,
        bench.profile,
        bench.progress,
        bench.ratelimit,
        bench.report,
        bench.results,
        bench.run,
        bench.servers,
        bench.suite,
        bench.wan,
        bench.workloads,
    ],
)
def test_docstring_examples(module: object) -> None:
    failed, _ = doctest.testmod(module)  # type: ignore[arg-type]
    assert failed == 0


@pytest.mark.parametrize(
    ("values", "pct", "expected"),
    [
        ([1.0, 2.0, 3.0, 4.0, 5.0], 50, 3.0),
        ([5.0, 1.0, 4.0, 2.0, 3.0], 50, 3.0),  # order of arrival does not matter
        ([10.0, 20.0, 30.0, 40.0], 50, 25.0),
        ([10.0, 20.0, 30.0, 40.0], 95, 38.5),
        ([10.0, 20.0, 30.0, 40.0], 0, 10.0),
        ([10.0, 20.0, 30.0, 40.0], 100, 40.0),
        ([float(i) for i in range(1, 101)], 99, 99.01),
        ([7.0], 99, 7.0),
        ([], 50, None),
    ],
)
def test_percentile(values: list[float], pct: float, expected: float | None) -> None:
    got = percentile(values, pct)
    assert got == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize("pct", [-1, 101])
def test_percentile_rejects_out_of_range(pct: float) -> None:
    with pytest.raises(ValueError):
        percentile([1.0], pct)


@pytest.mark.parametrize(
    ("cpu_s", "nbytes", "expected"),
    [
        (3.0, 10**9, 3.0),
        (6.0, 16 * 64 * MIB, 6.0 * 10**9 / (16 * 64 * MIB)),  # 16 x 64 MiB is 1.07 GB
        (0.0, 10**9, 0.0),
        (1.0, 0, None),  # nothing moved: no figure rather than infinity
    ],
)
def test_cpu_s_per_gb(cpu_s: float, nbytes: int, expected: float | None) -> None:
    assert cpu_s_per_gb(cpu_s, nbytes) == (
        pytest.approx(expected) if expected is not None else None
    )


def test_summarize_counts_errors_but_not_their_bytes_or_latency() -> None:
    outcomes = [OpOutcome(0.2, MIB)] * 3 + [OpOutcome(9.0, 0, "CheckFailed: short body")] * 2
    r = summarize("GET 1 MiB", "GET", MIB, 4, outcomes, 1.0, 0.5, 0.25)
    assert (r.ops, r.errors, r.object_bytes) == (3, 2, 3 * MIB)
    assert r.error_samples == ("CheckFailed: short body",)
    assert r.mb_per_s == pytest.approx(3 * MIB / 1e6)
    assert r.ops_per_s == pytest.approx(3.0)
    assert r.p99_ms == pytest.approx(200.0)  # the 9 s failures do not count as latency
    assert r.server_cpu_s_per_gb == pytest.approx(0.5 * 1e9 / (3 * MIB))
    assert r.server_cpu_us_per_op == pytest.approx(0.5e6 / 3)
    assert r.server_cores == pytest.approx(0.5)
    assert r.client_cpu_s_per_gb == pytest.approx(0.25 * 1e9 / (3 * MIB))


def test_summarize_without_server_pid_leaves_server_figures_empty() -> None:
    r = summarize("PUT 4 KiB", "PUT", 4096, 8, [OpOutcome(0.01, 4096)], 1.0, None, 0.0)
    assert (r.server_cpu_s, r.server_cpu_s_per_gb, r.server_cores) == (None, None, None)


def test_summarize_all_failed() -> None:
    r = summarize("PUT 4 KiB", "PUT", 4096, 8, [OpOutcome(0.01, 0, "HTTP 500")], 1.0, 0.1, 0.0)
    assert (r.ops, r.errors, r.mb_per_s, r.p50_ms, r.server_cpu_s_per_gb) == (0, 1, 0, None, None)


def test_median_result_takes_each_figure_median_and_sums_errors() -> None:
    runs = [
        result(mb_per_s=100.0, p99_ms=5.0, server_cpu_s_per_gb=3.0),
        result(mb_per_s=300.0, p99_ms=1.0, server_cpu_s_per_gb=2.0, errors=2, error_samples=("a",)),
        result(mb_per_s=200.0, p99_ms=9.0, server_cpu_s_per_gb=4.0, errors=1, error_samples=("b",)),
    ]
    m = median_result(runs)
    assert (m.mb_per_s, m.p99_ms, m.server_cpu_s_per_gb) == (200.0, 5.0, 3.0)
    assert (m.errors, m.error_samples) == (3, ("a", "b"))
    assert m.workload == "PUT 64 MiB"


def test_median_result_refuses_to_mix_workloads() -> None:
    with pytest.raises(ValueError):
        median_result([result("PUT"), result("GET")])


def test_cpu_times_arithmetic() -> None:
    delta = CpuTimes(5.0, 2.0) - CpuTimes(1.5, 0.5)
    assert (delta.user_s, delta.system_s, delta.total_s) == (3.5, 1.5, 5.0)
    assert (CpuTimes(1.0, 1.0) + CpuTimes(2.0, 0.5)).total_s == 4.5


def test_parse_stat_counts_reaped_children_and_survives_odd_names() -> None:
    fields = " ".join(["S", "77", *["0"] * 9, "300", "100", "40", "60"] + ["0"] * 30)
    stat = parse_stat(f"1234 (huimin) (x y)) {fields}", 100)
    assert (stat.pid, stat.ppid) == (1234, 77)
    assert stat.cpu == CpuTimes(3.4, 1.6)


def test_descendants_walks_the_whole_tree() -> None:
    parents = {1: 0, 100: 1, 101: 100, 102: 100, 103: 101, 200: 1}
    assert descendants(100, parents) == [100, 101, 102, 103]
    assert descendants(103, parents) == [103]


def test_tree_cpu_of_this_process_grows() -> None:
    import os

    before = bench.cpu.tree_cpu(os.getpid())
    sum(i * i for i in range(200_000))
    assert bench.cpu.tree_cpu(os.getpid()).total_s >= before.total_s


@pytest.mark.parametrize(
    ("op", "size", "described"),
    [
        ("PUT", 64 * MIB, [">= 600 MB/s", "<= 3 CPU-s/GB"]),
        ("GET", 64 * MIB, [">= 1500 MB/s", "<= 1 CPU-s/GB"]),
        ("PUT", 4096, [">= 1000 ops/s"]),
        ("GET", 4096, [">= 3000 ops/s"]),
        ("PUT", MIB, []),  # not a PERF.md workload: no target to compare with
    ],
)
def test_targets_follow_perf_md(op: str, size: int, described: list[str]) -> None:
    assert [t.describe() for t in targets_for(result(op, size))] == described


def test_target_ratio_is_figure_over_target() -> None:
    r = result("PUT", 64 * MIB, mb_per_s=300.0, server_cpu_s_per_gb=2.4)
    throughput, cpu = targets_for(r)
    assert (throughput.ratio(r), throughput.met(r)) == (0.5, False)
    assert cpu.ratio(r) == pytest.approx(0.8)
    assert cpu.met(r) is True
    unmeasured = dataclasses.replace(r, server_cpu_s_per_gb=None)
    assert (cpu.ratio(unmeasured), cpu.met(unmeasured)) == (None, None)


@pytest.mark.parametrize(
    ("value", "text"),
    [(1523.7, "1524"), (100.0, "100"), (38.46, "38.5"), (2.987, "2.99"), (0.0, "0.00"),
     (0.0042, "0.0042"), (None, "-")],
)  # fmt: skip
def test_fmt_num(value: float | None, text: str) -> None:
    assert fmt_num(value) == text


def test_format_table() -> None:
    rows = [
        result("PUT", 64 * MIB, mb_per_s=300.0, server_cpu_s_per_gb=2.4),
        result("GET", 4096, ops_per_s=1500.0, server_cpu_s=None, server_cpu_s_per_gb=None),
        result("PUT", MIB),
    ]
    lines = format_table(rows).splitlines()
    assert len(lines) == 2 + len(rows)
    assert len({len(line) for line in lines}) == 1  # aligned
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == list(COLUMNS)
    assert set(lines[1]) == {"|", "-"}
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    put, get, other = (dict(zip(COLUMNS, row, strict=True)) for row in cells)
    assert put["workload"] == "PUT 64 MiB"
    assert put["MB/s"] == "300"
    assert put["target (PERF.md)"] == ">= 600 MB/s; <= 3 CPU-s/GB"
    assert put["figure/target"] == "0.50 MISS; 0.80 ok"
    assert get["server CPU-s/GB"] == "-"
    assert get["figure/target"] == "0.50 MISS"
    assert other["target (PERF.md)"] == other["figure/target"] == "-"


def test_format_errors_lists_samples_of_failing_workloads_only() -> None:
    bad = result(errors=2, error_samples=("S3RequestError: HTTP 503", "CheckFailed: short"))
    assert format_errors([result(), bad]) == [
        "PUT 64 MiB: 2 error(s); e.g. S3RequestError: HTTP 503",
        "PUT 64 MiB: 2 error(s); e.g. CheckFailed: short",
    ]


@pytest.mark.parametrize(
    ("text", "nbytes"),
    [("64MiB", 64 * MIB), ("4KiB", 4096), ("4k", 4096), ("1MB", 10**6), ("1 GiB", 2**30),
     ("4096", 4096)],
)  # fmt: skip
def test_parse_size(text: str, nbytes: int) -> None:
    assert parse_size(text) == nbytes


@pytest.mark.parametrize("text", ["", "MiB", "1.5MiB", "-1", "4 parsecs"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_signer_matches_botocore() -> None:
    """The lean signer and botocore agree on an UNSIGNED-PAYLOAD request."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.config import Config
    from botocore.credentials import Credentials as BotoCredentials

    request = AWSRequest(method="PUT", url="https://s3.example.com:9000/bench/run-0/large-000001")
    request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    S3SigV4Auth(BotoCredentials("AKIDEXAMPLE", "secret/Key+1"), "s3", "eu-west-2").add_auth(request)
    assert request.headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    when = datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    ours = Signer(Credentials("AKIDEXAMPLE", "secret/Key+1", "eu-west-2")).headers(
        "PUT", "s3.example.com:9000", "/bench/run-0/large-000001", now=when
    )
    assert ours["Authorization"] == request.headers["Authorization"]
