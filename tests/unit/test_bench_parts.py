"""The benchmark suite's newer pure parts: fairness, the token bucket, stage attribution, the
WAN/memory/degraded figures, medians of per-kind figures, the summary table, the config."""

from __future__ import annotations

import dataclasses
import io
from collections import Counter

import pytest

from bench import markdown
from bench.client import ListPage, parse_list_page
from bench.config import WORKLOADS, BenchConfig, build_config, scale_notes
from bench.cpu import parse_vmhwm
from bench.listing import KEYS_PER_DIR, dir_of, key_of
from bench.memory import growth
from bench.multipart import MultipartSpec
from bench.profile import (
    CHECKSUMS,
    DISK,
    ENCODE,
    FRAMING,
    HTTP,
    LOOP,
    OTHER,
    SYNC_WAIT,
    THREADS,
    TRANSPORT,
    attribute,
    parse_raw,
    stage_cpu_s_per_gb,
    stage_profile,
)
from bench.progress import Progress, bar
from bench.ratelimit import MBPS, TokenBucket, slice_bytes_for
from bench.report import targets_for
from bench.results import (
    OpOutcome,
    WorkloadResult,
    jain_fairness,
    median_result,
    percentile,
    sample_evenly,
    summarize,
)
from bench.suite import group_medians
from bench.wan import ClientOutcome, wan_figures

MIB = 2**20


def result(**changes: object) -> WorkloadResult:
    base = summarize(
        "GET 64 MiB", "GET", 64 * MIB, 8, [OpOutcome(1.0, 64 * MIB)] * 4, 2.0, 1.0, 0.1
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# --- fairness ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([5.0, 5.0, 5.0], 1.0),
        ([1.0, 0.0, 0.0, 0.0], 0.25),  # one takes all: 1/n
        ([1.0, 2.0, 3.0, 4.0], 100 / 120),
        ([2.0, 1.0], 9 / 10),
        ([7.0], 1.0),
        ([], None),
        ([0.0, 0.0], None),
    ],
)
def test_jain_fairness(values: list[float], expected: float | None) -> None:
    got = jain_fairness(values)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_jain_is_scale_invariant() -> None:
    values = [1.0, 3.0, 4.5]
    assert jain_fairness(values) == pytest.approx(jain_fairness([v * 1000 for v in values]))


# --- token bucket --------------------------------------------------------------------------------


def test_token_bucket_sustains_its_rate() -> None:
    """Sending as fast as it allows, 10 s of traffic moves 10 s worth of the rate (+ the burst)."""
    rate, burst = 1_250_000.0, 62_500.0  # 10 Mbps, 50 ms
    tb = TokenBucket.full(rate, burst, now_s=0.0)
    now, sent, piece = 0.0, 0, 25_000
    while now < 10.0:
        now += tb.take(piece, now)
        sent += piece
    assert sent == pytest.approx(rate * 10 + burst, rel=0.01)


def test_token_bucket_does_not_bank_idle_time_beyond_burst() -> None:
    tb = TokenBucket.full(1000.0, 100.0, now_s=0.0)
    assert tb.take(100, now_s=100.0) == 0.0  # idle for 100 s: still only 100 bytes banked
    assert tb.take(100, now_s=100.0) == pytest.approx(0.1)


def test_token_bucket_allows_a_slice_larger_than_the_burst_after_a_wait() -> None:
    tb = TokenBucket.full(1000.0, 100.0, now_s=0.0)
    assert tb.take(600, now_s=0.0) == pytest.approx(0.5)


def test_token_bucket_clock_going_backwards_is_harmless() -> None:
    tb = TokenBucket.full(1000.0, 100.0, now_s=5.0)
    assert tb.take(50, now_s=4.0) == 0.0
    assert tb.tokens == pytest.approx(50.0)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1.0), (1.0, 0.0), (-1.0, 5.0)])
def test_token_bucket_rejects_non_positive(rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket.full(rate, burst, 0.0)


def test_slice_sizes_follow_the_link() -> None:
    assert slice_bytes_for(10 * MBPS) < slice_bytes_for(100 * MBPS) <= 256 * 1024
    assert slice_bytes_for(1) == 4096


# --- percentiles and samples ---------------------------------------------------------------------


def test_percentile_of_a_skewed_distribution() -> None:
    values = [1.0] * 95 + [100.0] * 5
    assert percentile(values, 50) == 1.0
    assert percentile(values, 99) == 100.0


def test_sample_evenly_keeps_both_tails() -> None:
    values = [float(i) for i in range(10_000)]
    sample = sample_evenly(values, 100)
    assert len(sample) == 100 and sample[0] == 0.0 and sample[-1] == 9999.0


# --- stage attribution ---------------------------------------------------------------------------

GW_PUT = ("Runner.run (asyncio/runners.py:118)", "put_object (gateway/handlers/object.py:80)")


@pytest.mark.parametrize(
    ("tail", "kind", "stage"),
    [
        (("write_part (storage/streams.py:240)", "RequestBody.update (gateway/body.py:77)"),
         "gateway", CHECKSUMS),
        (("write_part (storage/streams.py:240)", "RequestBody.read (gateway/body.py:50)",
          "StreamReader.read (aiohttp/streams.py:380)"), "gateway", HTTP),
        (("encode_block (storage/streams.py:44)", "IsalCodec.encode (erasure/codec.py:120)",
          "ECPyECLibDriver.encode (pyeclib/core.py:100)"), "gateway", ENCODE),
        (("encode_block (storage/streams.py:44)", "frame_hash (erasure/framing.py:147)"),
         "gateway", FRAMING),
        (("RemoteShardWriter._send (storage/remote_drive.py:84)",
          "StreamWriter._write (aiohttp/http_writer.py:104)"), "gateway", TRANSPORT),
        (("put_shard (storage/node_server.py:130)",
          "LocalShardWriter.write_blocking (storage/local_drive.py:63)"), "node", DISK),
        (("put_shard (storage/node_server.py:130)",
          "StreamReader.readany (aiohttp/streams.py:400)"), "node", TRANSPORT),
        (("DirectFile.finish (storage/direct_file.py:160)",
          "DirectFile._finish (storage/direct_file.py:175)"), "server", SYNC_WAIT),
        (("DirectFile._receive (storage/direct_file.py:140)",
          "_wait_for_data (storage/direct_file.py:230)"), "node", SYNC_WAIT),
        (("in_own_thread.<locals>.run (storage/own_thread.py:24)",
          "DirectFile._receive (storage/direct_file.py:150)"), "node", DISK),
        (("verify (gateway/sigv4.py:200)",), "gateway", OTHER),
        ((), "gateway", LOOP),  # only the event loop on the stack: uvloop's C code
    ],
)  # fmt: skip
def test_attribute(tail: tuple[str, ...], kind: str, stage: str) -> None:
    stack = GW_PUT[:1] if not tail else (*GW_PUT, *tail)
    assert attribute(list(stack), kind) == stage


def test_a_woken_pool_thread_is_the_hand_off() -> None:
    stack = ["Thread._bootstrap (threading.py:1002)", "_worker (concurrent/futures/thread.py:81)"]
    assert attribute(stack, "node") == THREADS


def test_node_event_loop_is_node_transport() -> None:
    assert attribute(["Runner.run (asyncio/runners.py:118)"], "node") == TRANSPORT


def test_stage_profile_leaves_disk_wait_out_of_cpu_shares() -> None:
    raw = (
        "Runner.run (asyncio/runners.py:118);x (gateway/body.py:77);"
        "RequestBody.update (gateway/body.py:77) 30\n"
        "Runner.run (asyncio/runners.py:118) 10\n"
        "_worker (concurrent/futures/thread.py:83);_fsync_dir (storage/local_drive.py:48) 60\n"
    )
    prof = stage_profile("server", parse_raw(raw).items())
    assert prof.samples == 100 and prof.cpu_samples == 40
    assert prof.share(CHECKSUMS) == pytest.approx(0.75)
    assert prof.share(LOOP) == pytest.approx(0.25)
    assert prof.share(SYNC_WAIT) == 0.0
    assert prof.wait_share == pytest.approx(0.6)
    per_gb = stage_cpu_s_per_gb(prof, 4.0)
    assert per_gb[CHECKSUMS] == pytest.approx(3.0)
    assert sum(v for v in per_gb.values() if v is not None) == pytest.approx(4.0)
    assert prof.top_frames[0] == ("_fsync_dir (storage/local_drive.py:48)", 60)


def test_parse_raw_skips_garbage_and_sums_repeats() -> None:
    got = parse_raw("a;b 2\nnot a sample\na;b 3\n\n")
    assert got == Counter({("a", "b"): 5})


# --- /proc ---------------------------------------------------------------------------------------


def test_parse_vmhwm() -> None:
    text = "Name:\tpython3\nVmPeak:\t 999999 kB\nVmHWM:\t  123456 kB\nVmRSS:\t  100 kB\n"
    assert parse_vmhwm(text) == 123456 * 1024
    assert parse_vmhwm("Name:\tkworker\n") is None


# --- workload arithmetic -------------------------------------------------------------------------


def test_list_keys_sort_in_index_order_and_group_by_dir() -> None:
    keys = [key_of(i) for i in range(0, 25_000, 7)]
    assert keys == sorted(keys)
    assert dir_of(KEYS_PER_DIR - 1) != dir_of(KEYS_PER_DIR)
    assert dir_of(0) == dir_of(KEYS_PER_DIR - 1)


def test_parse_list_page_without_namespace_and_empty() -> None:
    page = parse_list_page(b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>")
    assert page == ListPage(0, 0, False, None, None, ())


@pytest.mark.parametrize(
    ("size", "part", "parts", "last"),
    [
        (2**30, 16 * MIB, 64, 16 * MIB),
        (10 * MIB + 1, 5 * MIB, 3, 1),
        (5 * MIB, 5 * MIB, 1, 5 * MIB),
    ],
)
def test_multipart_parts(size: int, part: int, parts: int, last: int) -> None:
    spec = MultipartSpec(size, part)
    assert spec.parts == parts
    assert spec.part_length(parts) == last
    assert sum(spec.part_length(n) for n in range(1, parts + 1)) == size


def test_wan_figures_flag_a_starved_fast_client() -> None:
    clients = [
        ClientOutcome("slow-01", 1.25, 12_000_000, 10.0),
        ClientOutcome("fast-01", 12.5, 120_000_000, 10.0),  # 12 MB/s of 12.5: fine
        ClientOutcome("fast-02", 12.5, 50_000_000, 10.0),  # 5 MB/s of 12.5: starved
    ]
    f = wan_figures(clients)
    assert f["fast_min_share_of_cap"] == pytest.approx(0.4)
    assert f["fast_not_starved"] == 0.0
    assert f["c:fast-02"] == pytest.approx(5.0)
    assert f["jain_share_of_cap"] is not None and f["jain_share_of_cap"] < 1


def test_memory_growth() -> None:
    assert growth([100, 100]) == 1.0
    assert growth([100, 400]) == 4.0
    assert growth([100]) is None
    assert growth([None, 100]) is None


# --- medians, targets, summary -------------------------------------------------------------------


def test_median_of_figures_and_cpu_by_kind_per_key_and_rss_is_the_max() -> None:
    runs = [
        result(figures={"ratio": 0.4}, server_cpu_by_kind={"gateway": 1.0, "node": 3.0},
               peak_rss_bytes={"gateway-1": 100}),
        result(figures={"ratio": 0.6}, server_cpu_by_kind={"gateway": 2.0, "node": 1.0},
               peak_rss_bytes={"gateway-1": 300}),
        result(figures={"ratio": 0.5, "extra": 1.0}, server_cpu_by_kind={"gateway": 3.0},
               peak_rss_bytes={"gateway-1": 200}),
    ]  # fmt: skip
    m = median_result(runs)
    assert m.figures == {"ratio": 0.5, "extra": 1.0}
    assert m.server_cpu_by_kind == {"gateway": 2.0, "node": 2.0}
    assert m.peak_rss_bytes == {"gateway-1": 300}


def test_group_medians_pairs_workloads_by_name_even_if_a_run_lacks_one() -> None:
    a, b = result(workload="A"), result(workload="B", mb_per_s=10.0)
    got = group_medians([[a, b], [a], [dataclasses.replace(b, mb_per_s=30.0)]])
    assert [r.workload for r in got] == ["A", "B"]
    assert got[1].mb_per_s == 20.0


@pytest.mark.parametrize(
    ("kind", "figures", "described"),
    [
        ("degraded", {"degraded_over_healthy": 0.7}, [">= 0.5 x healthy GET"]),
        ("memory", {"gateway_peak_rss_mb": 100.0}, []),  # growth only on the largest size
        ("memory", {"rss_growth": 1.1}, ["<= 1.25 x peak RSS (largest/smallest size)"]),
        ("sweep", {}, []),  # same sizes as PERF.md's rows, but not PERF.md's workload
        ("small-sweep", {}, []),  # PERF.md's small targets are at 8 in flight: the small rows
        ("large", {}, [">= 1500 MB/s", "<= 1 CPU-s/GB"]),
    ],
)
def test_targets_by_kind(kind: str, figures: dict[str, float], described: list[str]) -> None:
    r = result(kind=kind, figures=figures)
    assert [t.describe() for t in targets_for(r)] == described


def test_list_target_is_p95_under_100_ms() -> None:
    r = result(kind="list", op="LIST", object_size=0, p95_ms=150.0)
    (target,) = targets_for(r)
    assert (target.ratio(r), target.met(r)) == (1.5, False)


def test_summary_rows_give_a_ratio_per_target_and_a_figure_otherwise() -> None:
    rows = markdown.summary_rows(
        [
            result(kind="large", mb_per_s=750.0, server_cpu_s_per_gb=0.5),
            result(kind="degraded", figures={"degraded_over_healthy": 0.25}),
            result(kind="mixed", workload="MIXED", mb_per_s=80.0),
        ]
    )
    assert rows[0][1:] == ["MB/s", "750", ">= 1500 MB/s", "0.50 MISS"]
    assert rows[1][1:] == ["CPU-s/GB", "0.50", "<= 1 CPU-s/GB", "0.50 ok"]
    assert rows[2][1:] == ["degraded/healthy MB/s", "0.25", ">= 0.5 x healthy GET", "0.50 MISS"]
    assert rows[3] == ["MIXED", "MB/s", "80.0", "-", "-"]


def test_progress_bar_without_a_terminal_prints_quarters() -> None:
    out = io.StringIO()
    p = Progress(stream=out)
    p.start("PUT", 8)
    for _ in range(8):
        p.advance()
    p.finish()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("  PUT [") and lines[-1].endswith("8/8")
    assert len(lines) == 5  # 0%, 25%, 50%, 75%, 100%
    assert bar(1, 2, 4) == "[##..]  50%"


def test_disabled_progress_is_silent() -> None:
    out = io.StringIO()
    p = Progress(enabled=False, stream=out)
    p.start("x", 1)
    p.advance()
    p.finish()
    assert out.getvalue() == ""


# --- config --------------------------------------------------------------------------------------


def cli_fields(**changes: object) -> dict[str, object]:
    fields: dict[str, object] = dict(
        target=None, endpoint=None, server_env=[], mem_sizes=["64MiB,256MiB"],
        concurrency_sweep="1,4,8,16", workloads=",".join(WORKLOADS), skip="", topology=None,
        gateways=1, data_dir=None, access_key=None, secret_key=None, region="us-east-1",
        server_pid=[], runs=3, verify=False, size="64MiB", count=16, concurrency=8,
        small_size="4KiB", small_count=2000, small_concurrency=8, mixed_seconds=30.0,
        mixed_size="1MiB", mixed_read_fraction=0.7, mixed_concurrency=8, list_keys=1_000_000,
        list_pages=200, list_populate_concurrency=64, multipart_size="1GiB", part_size="16MiB",
        part_concurrency=4, degraded_count=8, wan_slow_clients=20, wan_slow_mbps=10.0,
        wan_fast_clients=4, wan_fast_mbps=100.0, wan_seconds=60.0, mem_uploads=100,
        profile_rate=50, floor_size="1GiB", results=None, json_path=None, progress=True,
        plots=True,
    )  # fmt: skip
    fields.update(changes)
    return fields


def test_cli_defaults_are_the_issue_defaults() -> None:
    config = build_config(**cli_fields())  # type: ignore[arg-type]
    config.check()
    assert config == dataclasses.replace(BenchConfig(), topology=config.topology)
    assert config.memory.sizes == (64 * MIB, 256 * MIB)
    assert config.wan.slow.clients == 20 and config.wan.fast.mbps == 100.0
    assert config.target == "embedded"


def test_cli_endpoint_implies_the_endpoint_target_and_skip_removes_workloads() -> None:
    config = build_config(
        **cli_fields(  # type: ignore[arg-type]
            endpoint="http://127.0.0.1:9000", access_key="a", secret_key="b",
            server_pid=[10, 11], skip="wan,memory", mem_sizes=["1MiB", "2MiB,4MiB"],
        )
    )  # fmt: skip
    config.check()
    assert config.target == "endpoint" and config.server_pids == (10, 11)
    assert "wan" not in config.workloads and "memory" not in config.workloads
    assert config.memory.sizes == (MIB, 2 * MIB, 4 * MIB)


@pytest.mark.parametrize(
    "changes",
    [
        {"workloads": "large,bogus"},
        {"endpoint": "http://127.0.0.1:9000"},  # no keys
        {"server_pid": [1]},  # without --endpoint
        {"concurrency_sweep": "0,4"},
        {"small_concurrency_sweep": "8,0"},
        {"mixed_read_fraction": 1.5},
        {"target": "mars"},
        {"floor_size": "4KiB"},
        {"client": "curl"},
    ],
)
def test_config_check_rejects(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        build_config(**cli_fields(**changes)).check()  # type: ignore[arg-type]


def test_small_sweep_table_has_a_row_per_step() -> None:
    def small(op: str, conc: int, ops_per_s: float) -> WorkloadResult:
        return result(
            workload=f"{op} 4 KiB x{conc} in flight (small sweep)", op=op, object_size=4096,
            concurrency=conc, kind="small-sweep", ops_per_s=ops_per_s,
            server_cpu_us_per_op=500.0, p99_ms=9.5,
        )  # fmt: skip

    rows = [small("PUT", 8, 900.0), small("GET", 8, 2300.0), small("PUT", 32, 1300.0)]
    table = markdown.small_sweep_table(rows).splitlines()

    assert table[0].startswith("| in flight | PUT ops/s | GET ops/s |")
    assert [line.split("|")[1:4] for line in table[2:]] == [
        [" 8         ", " 900       ", " 2300      "],
        [" 32        ", " 1300      ", " -         "],
    ]


def test_cli_workload_names_match_the_suite() -> None:
    from huimin.cli import WORKLOAD_NAMES

    assert tuple(WORKLOAD_NAMES) == WORKLOADS


def test_scale_notes_say_what_was_scaled() -> None:
    notes = scale_notes(BenchConfig(list_spec=dataclasses.replace(BenchConfig().list_spec, keys=5)))
    assert any("LIST bucket scaled: 5 keys" in n for n in notes)
