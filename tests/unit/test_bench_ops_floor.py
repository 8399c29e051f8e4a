"""The small-operation floor's pure parts: each operation's shape from the layout, and the table
against the targets and against what the ``small`` workload spent (bench/ops_floor.py)."""

from __future__ import annotations

import dataclasses

import pytest

from bench import markdown, servers
from bench.floor import Layout
from bench.floor_measure import store_nodes
from bench.ops_floor import (
    CALL_BYTES,
    OPS_HEADER,
    RECORD_BYTES,
    max_ops_per_s,
    medians,
    op_shapes,
    ops_floor_document,
    ops_rows,
)
from bench.results import OpOutcome, WorkloadResult, summarize

EC84 = Layout("isal", 8, 4, 4 * 2**20)


def small(op: str, server_us: float, client_us: float, ops: int = 1000) -> WorkloadResult:
    outcomes = [OpOutcome(0.01, 4096)] * ops
    r = summarize(
        f"{op} 4 KiB", op, 4096, 8, outcomes, 1.0, server_us * ops / 1e6, client_us * ops / 1e6
    )
    return dataclasses.replace(r, kind="small")


def document() -> dict[str, object]:
    shapes = op_shapes(4096, 8, 4, 6)
    sample = {"client_us": 40.0, "gateway_us": 150.0, "nodes_us": 100.0, "ops_per_s": 4000.0}
    samples = {"PUT": [sample, sample], "GET": [{**sample, "nodes_us": 50.0}]}
    return ops_floor_document(shapes, 8, 10000, samples)


def test_a_put_reaches_every_node_of_the_set_a_get_those_of_its_k_data_positions() -> None:
    put, get = op_shapes(4096, 8, 4, 6)
    assert (put.nodes, get.nodes) == (6, 6)
    assert put.request_bytes > 4096 > put.response_bytes
    assert get.response_bytes > 4096 > get.request_bytes
    assert put.node_request_bytes == 2 * (RECORD_BYTES + 512) == get.node_answer_bytes
    assert get.node_request_bytes == 2 * CALL_BYTES


@pytest.mark.parametrize(
    ("nodes", "put_nodes", "get_nodes", "get_call_bytes"),
    [(12, 12, 8, CALL_BYTES), (16, 12, 8, CALL_BYTES), (3, 3, 3, 3 * CALL_BYTES), (0, 0, 0, 0)],
)
def test_nodes_asked_follow_the_layout(
    nodes: int, put_nodes: int, get_nodes: int, get_call_bytes: int
) -> None:
    """Round-robin dealing: k consecutive positions cover min(nodes, k) nodes."""
    put, get = op_shapes(4096, 8, 4, nodes)
    assert (put.nodes, get.nodes) == (put_nodes, get_nodes)
    if nodes:
        assert get.node_request_bytes == get_call_bytes


def test_max_ops_per_s_and_medians() -> None:
    assert max_ops_per_s(2, 400.0) == 5000.0
    assert medians([{"a": 1.0}, {"a": 5.0}, {"a": 2.0}]) == {"a": 2.0}


def test_rows_compare_the_targets_with_the_suites_client_and_the_store() -> None:
    results = [small("PUT", 7000.0, 500.0), small("GET", 4400.0, 450.0)]
    put, get = ops_rows(document(), 2, results)
    assert len(put) == len(OPS_HEADER)
    assert put[:5] == ["PUT 4 KiB", "6", "40.0", "150", "100"]
    assert put[5] == "6897"  # 2e6 / (40 + 250)
    assert put[7] == "2667" and put[9] == "2.67 reachable"  # 2e6 / (500 + 250)
    assert put[-1] == "28.0x"  # 7000 / 250
    assert get[1] == "6" and get[7] == "3077" and get[9] == "1.03 reachable"  # 2e6 / 650
    slow = [small("GET", 4400.0, 600.0)]
    assert ops_rows(document(), 2, slow)[1][9] == "0.83 UNREACHABLE"  # 2e6 / 800 = 2500


def test_rows_without_a_small_run() -> None:
    for row in ops_rows(document(), 2, []):
        assert row[6:8] == ["-", "-"] and row[9] == "-" and row[-1] == "-"


def test_the_report_has_the_skeleton_table_under_the_floor() -> None:
    section = "\n".join(markdown.ops_floor_section(document(), 2, []))
    assert "### Small operations: the skeleton" in section and "| PUT 4 KiB | 6 " in section


def test_store_nodes_follow_the_topology() -> None:
    assert store_nodes("cluster", servers.DEFAULT_TOPOLOGY) == 6
    assert store_nodes("embedded", servers.DEFAULT_TOPOLOGY) == 0
