"""The floor workload's pure parts: composing PUT's and GET's floors from stage costs, the
highest MB/s on the cores, the tables against the targets and against a measured run, and the
layout the store under test uses (bench/floor.py, bench/floor_measure.store_layout)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bench import markdown, servers
from bench.floor import (
    STAGES,
    Layout,
    by_kind_rows,
    durable_stage,
    floor_document,
    floors,
    get_floor,
    max_mb_per_s,
    put_floor,
    stage_costs,
    target_rows,
)
from bench.floor_measure import disk_write_mb_s, store_layout
from bench.results import OpOutcome, WorkloadResult, summarize

MIB = 2**20
EC84 = Layout("isal", 8, 4, 4 * MIB)
# The quick measurements on this box, CPU-s per GB through each stage.
COSTS = {
    "md5": 1.55,
    "xxh3": 0.04,
    "encode": 0.4,
    "decode": 0.5,
    "tcp_send": 0.35,
    "tcp_receive": 0.45,
    "shard_send": 0.35,
    "sendfile_send": 0.1,
    "sendfile_receive": 0.45,
    "splice_write": 0.55,
    "recv_write": 0.75,
    "direct_write": 0.6,
    "fresh_memory": 1.3,
}


def large(op: str, server_cpu_s: float, by_kind: dict[str, float]) -> WorkloadResult:
    """A ``large`` result that moved 1 GB (so CPU-s are CPU-s/GB)."""
    r = summarize(f"{op} 1 GB", op, 10**9, 8, [OpOutcome(1.0, 10**9)], 1.0, server_cpu_s, 0.1)
    return dataclasses.replace(r, kind="large", server_cpu_by_kind=by_kind)


def document(costs: dict[str, float] = COSTS, cores: int = 2) -> dict[str, object]:
    samples = {stage: [cost * 1.1, cost, cost * 0.9] for stage, cost in costs.items()}
    return floor_document(EC84, cores, 8 * MIB, "/data", samples)


def test_put_floor_adds_every_stage_of_the_put_path() -> None:
    f = put_floor(COSTS, EC84, 2)
    # gateway: receive 0.45 + MD5 1.55 + encode 0.4 + xxh3 1.5 x 0.04 + send 1.5 x 0.35;
    # nodes: 1.5 x splice 0.55 (cheaper than recv + write)
    assert f.side_cpu_s_per_gb("gateway") == pytest.approx(0.45 + 1.55 + 0.4 + 0.06 + 0.525)
    assert f.side_cpu_s_per_gb("nodes") == pytest.approx(0.825)
    assert f.server_cpu_s_per_gb == pytest.approx(3.81)
    assert f.client_cpu_s_per_gb == pytest.approx(0.35)
    assert f.max_mb_per_s == pytest.approx(2000 / 4.16)
    assert [t.stage for t in f.terms if t.side == "nodes"] == ["splice_write"]


def test_get_floor_reads_k_data_shards_without_decode() -> None:
    f = get_floor(COSTS, EC84, 2)
    assert f.server_cpu_s_per_gb == pytest.approx(0.1 + 0.45 + 0.04 + 0.35)
    assert f.client_cpu_s_per_gb == pytest.approx(0.45)
    assert "decode" not in {t.stage for t in f.terms}
    assert all(t.gb == 1.0 for t in f.terms)


@pytest.mark.parametrize(
    ("k", "m", "expansion"), [(8, 4, 1.5), (4, 2, 1.5), (10, 2, 1.2), (2, 1, 1.5), (12, 4, 4 / 3)]
)
def test_shard_stages_scale_with_the_layout(k: int, m: int, expansion: float) -> None:
    f = put_floor(COSTS, Layout("zfec", k, m, MIB), 2)
    shard_terms = [
        t for t in f.terms if t.stage in ("xxh3", "shard_send", "splice_write") or t.side == "nodes"
    ]
    assert shard_terms and all(t.gb == pytest.approx(expansion) for t in shard_terms)
    assert [t.gb for t in f.terms if t.stage == "tcp_send"] == [1.0]  # the client's body
    assert [t.stage for t in f.terms if t.step == "send the shards"] == ["shard_send"]


def test_the_cheapest_durable_receive_is_taken() -> None:
    assert durable_stage(COSTS) == "splice_write"
    assert durable_stage({**COSTS, "direct_write": 0.4}) == "direct_write"
    assert durable_stage({**COSTS, "splice_write": 0.9, "direct_write": 0.9}) == "recv_write"
    assert durable_stage({"recv_write": 0.7}) == "recv_write"  # splice unavailable


@pytest.mark.parametrize(
    ("cores", "server", "client", "mb_s"),
    [(2, 3.0, 0.33, 600.6), (2, 1.0, 0.33, 1503.8), (1, 0.5, 0.5, 1000.0), (4, 2.0, 0.0, 2000.0)],
)
def test_max_mb_per_s(cores: int, server: float, client: float, mb_s: float) -> None:
    assert max_mb_per_s(cores, server, client) == pytest.approx(mb_s, abs=0.1)


def test_stage_costs_are_medians() -> None:
    assert stage_costs({"md5": [3.0, 1.0, 2.0], "xxh3": [0.1, 0.2]}) == {
        "md5": 2.0,
        "xxh3": pytest.approx(0.15),
    }


def test_the_document_composes_from_the_medians_and_back() -> None:
    doc = document()
    put, get = floors(doc)
    assert put.server_cpu_s_per_gb == pytest.approx(3.81)
    assert get.server_cpu_s_per_gb == pytest.approx(0.94)
    composed = doc["composed"]
    assert isinstance(composed, dict)
    assert composed["PUT"]["server_cpu_s_per_gb"] == pytest.approx(3.81)
    assert [t["stage"] for t in composed["GET"]["terms"]] == [
        "sendfile_send",
        "sendfile_receive",
        "xxh3",
        "tcp_send",
        "tcp_receive",
    ]
    assert set(STAGES) == set(COSTS) | {"md5_lanes"}  # measured where the extension is built


def test_put_floor_prices_md5_as_the_gateway_hashes_it() -> None:
    with_lanes = put_floor({**COSTS, "md5_lanes": 0.35}, EC84, 2)
    assert with_lanes.server_cpu_s_per_gb == pytest.approx(3.81 - 1.55 + 0.35)
    assert "md5_lanes" in [t.stage for t in with_lanes.terms]


def test_target_rows_say_unreachable_and_how_far_the_store_is() -> None:
    pair = floors(document())
    results = [large("PUT", 6.43, {}), large("GET", 2.03, {})]
    put, get = target_rows(pair, results)
    assert put[:4] == ["PUT", "3.81", "<= 3 CPU-s/GB", "1.27 UNREACHABLE"]
    assert put[6] == "-"  # the disk not measured: no bound of its own
    assert put[8] == "0.80 UNREACHABLE"  # 2000 / 4.16 = 481 MB/s of 600
    assert put[-1] == "1.69x"  # 6.43 / 3.81
    assert get[3] == "0.94 reachable"
    assert get[-1] == "2.16x"


def test_the_disk_bounds_put_by_its_write_mb_s_over_the_expansion() -> None:
    samples = {stage: [cost] for stage, cost in COSTS.items()}
    doc = floor_document(EC84, 8, 8 * MIB, "/data", samples, [860.0, 800.0, 840.0])
    put, get = floors(doc)
    assert put.cpu_max_mb_per_s == pytest.approx(8000 / 4.16)  # 8 cores: not the bound
    assert put.disk_mb_per_s == pytest.approx(840 / 1.5)  # 12 shard bytes per 8 object bytes
    assert put.max_mb_per_s == pytest.approx(560)
    assert get.disk_mb_per_s is None and get.max_mb_per_s == get.cpu_max_mb_per_s
    row = target_rows((put, get), [])[0]
    assert row[5:9] == ["1923", "560", ">= 600 MB/s", "0.93 UNREACHABLE"]
    assert doc["composed"]["PUT"]["disk_max_mb_per_s"] == pytest.approx(560)
    assert "median 840 MB/s, 800-860" in "\n".join(markdown.floor_section(doc, []))


def test_disk_write_mb_s_writes_durably_and_leaves_nothing(tmp_path: Path) -> None:
    assert disk_write_mb_s(tmp_path, 8 * MIB, writers=4) > 0
    assert list(tmp_path.iterdir()) == []


def test_target_rows_without_a_large_run() -> None:
    for row in target_rows(floors(document()), []):
        assert row[-2:] == ["-", "-"]


def test_by_kind_rows_split_gateway_and_nodes() -> None:
    pair = floors(document())
    rows = by_kind_rows(pair, [large("PUT", 6.43, {"gateway": 4.51, "node": 1.92})])
    assert rows == [
        ["PUT", "gateway", "2.98", "4.51", "1.51x"],  # 2.985
        ["PUT", "nodes", "0.82", "1.92", "2.33x"],
    ]
    assert by_kind_rows(pair, [large("PUT", 4.9, {"server": 4.9})]) == []  # embedded


def test_the_report_has_the_floor_section_only_when_measured() -> None:
    doc = document()
    results = [large("PUT", 6.43, {"gateway": 4.51, "node": 1.92})]
    env = {"server": "none (floor only)"}
    text = markdown.render("t", env, {"runs": 3}, results, [], {}, [], [], doc)
    assert "## Floor: the least CPU" in text and "isal 8+4, 2 cores" in text
    assert "| splice_write " in text and "1.69x" in text and "2.33x" in text
    assert "## Floor" not in markdown.render("t", env, {}, results, [], {}, [], [])
    alone = markdown.render("t", env, {}, [], [], {}, [], [], doc)
    assert "## Summary against the targets" not in alone and "## Floor" in alone


def test_store_layout_follows_the_topology_and_the_embedded_servers_env() -> None:
    assert store_layout("cluster", servers.DEFAULT_TOPOLOGY, {}) == EC84
    env = {"HUIMIN_CODEC": "zfec", "HUIMIN_EC_PARITY_SHARDS": "2", "HUIMIN_EC_DATA_SHARDS": "4"}
    assert store_layout("embedded", Path("unused"), env) == Layout("zfec", 4, 2, 4 * MIB)
    assert store_layout("endpoint", Path("unused"), env) == EC84  # not the endpoint's env
