"""Topology files: validation, set layout, capacity, failure tolerance (huimin/topology.py)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from huimin.topology import (
    DriveRef,
    TopologyError,
    capacity_report,
    dump_topology,
    erasure_set_drives,
    load_topology,
    node_losses_tolerated,
    parse_topology,
    rebuild_seconds,
    split_address,
    with_addresses,
)

REPO = Path(__file__).resolve().parents[2]
TB = 10**12


def doc(
    nodes: int = 6,
    drives: int | list[int] = 2,
    k: int = 8,
    m: int = 4,
    capacity: int = 10**10,
    **extra: Any,
) -> dict[str, Any]:
    """A topology document: ``nodes`` nodes with ``drives`` drives each (or a count per node)."""
    per_node = drives if isinstance(drives, list) else [drives] * nodes
    return {
        "name": "t",
        "version": 1,
        "erasure": {"data_shards": k, "parity_shards": m},
        "nodes": [
            {
                "name": f"n{i + 1}",
                "address": "127.0.0.1:0",
                "drives": [{"name": f"d{j + 1}", "capacity_bytes": capacity} for j in range(count)],
            }
            for i, count in enumerate(per_node)
        ],
        **extra,
    }


def names(sets: list[list[DriveRef]]) -> list[list[str]]:
    return [[str(d) for d in s] for s in sets]


# --- validation --------------------------------------------------------------------------------


def _mutate(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    target: Any = document
    *parents, last = path.split(".")
    for p in parents:
        target = target[int(p) if p.isdigit() else p]
    target[int(last) if last.isdigit() else last] = value
    return document


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (_mutate(doc(), "nodes.1.name", "n1"), "node name(s) ['n1'] appear more than once"),
        (_mutate(doc(), "nodes.0.drives.1.name", "d1"), "drive(s) ['d1'] more than once"),
        (_mutate(doc(), "erasure.data_shards", 0), "greater than or equal to 1"),
        (_mutate(doc(), "erasure.parity_shards", 0), "greater than or equal to 1"),
        (_mutate(doc(), "erasure.codec", "rot13"), "unknown codec"),
        (doc(k=8, m=5), "isal supports"),
        (_mutate(doc(), "nodes.0.address", "localhost"), "is not host:port"),
        (_mutate(doc(), "nodes.0.address", "h:70000"), "is not host:port"),
        (_mutate(doc(), "nodes.0.name", "../etc"), "should match pattern"),
        (_mutate(doc(), "nodes.0.drives.0.capacity_bytes", 0), "greater than 0"),
        (_mutate(doc(), "nodes.0.drives", []), "at least 1 item"),
        (_mutate(doc(), "version", 0), "greater than or equal to 1"),
        ({**doc(), "colour": "blue"}, "Extra inputs are not permitted"),
        # 5 nodes x 2 drives = 10: not a multiple of 12
        (doc(nodes=5), "pool 0 has 10 drives, not a multiple of the erasure-set size 12"),
        # 2 nodes x 6 drives in one 8+4 set: 6 shards on one node > m = 4
        (doc(nodes=2, drives=6), "set 0 would hold 6 shards on node 'n1' but parity_shards m=4"),
        # uneven nodes: n1's drives 3..6 have no partners on other nodes
        (doc(nodes=4, drives=[6, 2, 2, 2]), "would hold 6 shards on node 'n1'"),
        (doc(pools=[{"nodes": ["n1", "n2", "n3"]}]), "in no pool"),
        (doc(pools=[{"nodes": ["n1", "n2", "n3", "n4", "n5", "n6", "n7"]}]), "unknown node"),
        (
            doc(pools=[{"nodes": ["n1", "n2", "n3"]}, {"nodes": ["n3", "n4", "n5", "n6"]}]),
            "more than one pool",
        ),
    ],
)
def test_invalid_topologies_are_refused_with_a_reason(document: dict[str, Any], message: str):
    with pytest.raises(TopologyError, match=re.escape(message)):
        parse_topology(document)


def test_layout_error_names_the_per_node_shard_count_and_m():
    with pytest.raises(TopologyError) as info:
        parse_topology(doc(nodes=3, drives=4, k=10, m=2))
    assert "would hold 4 shards on node 'n1' but parity_shards m=2" in str(info.value)


def test_defaults():
    t = parse_topology(doc())
    assert (t.erasure.codec, t.erasure.block_size_bytes) == ("isal", 4 * 1024 * 1024)
    assert t.pools is None
    assert [[n.name for n in pool] for pool in t.pool_nodes()] == [[f"n{i}" for i in range(1, 7)]]


@pytest.mark.parametrize(
    ("address", "split"),
    [
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("10.20.0.11:9100", ("10.20.0.11", 9100)),
        ("[::1]:9100", ("::1", 9100)),
        ("node-1.example:65535", ("node-1.example", 65535)),
    ],
)
def test_split_address(address: str, split: tuple[str, int]):
    assert split_address(address) == split


# --- layout ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        # 6 x 2, 8+4: one set, drive 1 of every node then drive 2
        (
            doc(),
            [[f"n{i}/d1" for i in range(1, 7)] + [f"n{i}/d2" for i in range(1, 7)]],
        ),
        # 3 x 2, 2+1: two sets, one drive per node each
        (
            doc(nodes=3, drives=2, k=2, m=1),
            [["n1/d1", "n2/d1", "n3/d1"], ["n1/d2", "n2/d2", "n3/d2"]],
        ),
        # 4 x 3, 4+2: sets cut across drive rounds
        (
            doc(nodes=4, drives=3, k=4, m=2),
            [
                ["n1/d1", "n2/d1", "n3/d1", "n4/d1", "n1/d2", "n2/d2"],
                ["n3/d2", "n4/d2", "n1/d3", "n2/d3", "n3/d3", "n4/d3"],
            ],
        ),
        # uneven nodes: the node with more drives fills the later rounds alone
        (
            doc(nodes=3, drives=[2, 1, 1], k=2, m=2),
            [["n1/d1", "n2/d1", "n3/d1", "n1/d2"]],
        ),
        # two pools: each pool's sets use only its own nodes, pool 0 first
        (
            doc(
                nodes=4,
                drives=2,
                k=2,
                m=2,
                pools=[{"nodes": ["n3", "n4"]}, {"nodes": ["n1", "n2"]}],
            ),
            [["n3/d1", "n4/d1", "n3/d2", "n4/d2"], ["n1/d1", "n2/d1", "n1/d2", "n2/d2"]],
        ),
    ],
)
def test_erasure_set_drives(document: dict[str, Any], expected: list[list[str]]):
    assert names(erasure_set_drives(parse_topology(document))) == expected


def test_layout_ignores_addresses():
    t = parse_topology(doc())
    moved = with_addresses(t, {"n1": "10.0.0.1:9100"})
    assert moved.node("n1").address == "10.0.0.1:9100"
    assert erasure_set_drives(moved) == erasure_set_drives(t)


def test_dump_round_trips():
    pools = [{"nodes": ["n1", "n2"]}, {"nodes": ["n3", "n4"]}]
    t = parse_topology(doc(nodes=4, drives=2, k=2, m=2, pools=pools))
    t = with_addresses(t, {"n1": "[::1]:9100"})
    text = dump_topology(t, header="a header\nline two")
    assert text.startswith("# a header\n# line two\n")
    assert parse_topology(tomllib.loads(text)) == t


# --- capacity ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shards_per_node", "m", "expected"),
    [
        ([2] * 6, 4, (4, 2, 0)),
        ([3] * 4, 4, (4, 1)),
        ([1] * 12, 4, (4, 3, 2, 1, 0)),
        ([4, 4, 4], 4, (4, 0)),
        ([3, 1, 1, 1, 1, 1, 1, 1, 1, 1], 4, (4, 1, 0)),  # worst node first
        ([2, 1], 1, (1,)),  # one node holds more than m: no whole node may be lost
    ],
)
def test_node_losses_tolerated(shards_per_node: list[int], m: int, expected: tuple[int, ...]):
    assert node_losses_tolerated(shards_per_node, m) == expected


@pytest.mark.parametrize(
    ("drive_bytes", "rate_mb_s", "hours"),
    [
        (8 * TB, 200, 11.1),  # REQUIREMENTS.md: ~11 h at 200 MB/s
        (8 * TB, 50, 44.4),  # ... ~44 h at 50 MB/s
        (4 * TB, 200, 5.6),
        (10**10, 200, 0.0),
    ],
)
def test_rebuild_seconds(drive_bytes: int, rate_mb_s: float, hours: float):
    assert round(rebuild_seconds(drive_bytes, rate_mb_s) / 3600, 1) == hours


def test_rebuild_rate_must_be_positive():
    with pytest.raises(ValueError, match="rebuild rate"):
        rebuild_seconds(TB, 0)


@pytest.mark.parametrize(
    ("document", "raw", "usable", "drives_tolerated", "nodes_tolerated", "after", "sets"),
    [
        # the city's array: 6 x 4 x 8 TB, 8+4
        (doc(nodes=6, drives=4, capacity=8 * TB), 192 * TB, 128 * TB, 4, 2, (4, 2, 0), 2),
        # DESIGN.md's alternative: 4 x 12 x 4 TB, 8+4 -> one node + one drive
        (doc(nodes=4, drives=12, capacity=4 * TB), 192 * TB, 128 * TB, 4, 1, (4, 1), 4),
        # 12 nodes x 1 drive: every shard on its own node
        (doc(nodes=12, drives=1, capacity=TB), 12 * TB, 8 * TB, 4, 4, (4, 3, 2, 1, 0), 1),
        # 3 nodes x 4, 8+4: exactly m shards per node -> one node, then nothing
        (doc(nodes=3, drives=4, capacity=TB), 12 * TB, 8 * TB, 4, 1, (4, 0), 1),
    ],
)
def test_capacity_report(
    document: dict[str, Any],
    raw: int,
    usable: int,
    drives_tolerated: int,
    nodes_tolerated: int,
    after: tuple[int, ...],
    sets: int,
):
    r = capacity_report(parse_topology(document), rebuild_rate_mb_s=200)
    assert (r.raw_bytes, r.usable_bytes) == (raw, usable)
    assert (r.drives_tolerated, r.nodes_tolerated, r.drives_after_node_losses) == (
        drives_tolerated,
        nodes_tolerated,
        after,
    )
    assert len(r.sets) == sets


def test_usable_capacity_is_bounded_by_each_sets_smallest_drive():
    document = doc(nodes=3, drives=1, k=2, m=1, capacity=TB)
    document["nodes"][2]["drives"][0]["capacity_bytes"] = TB // 2
    r = capacity_report(parse_topology(document))
    assert r.raw_bytes == 5 * TB // 2
    assert r.usable_bytes == 2 * (TB // 2)  # k x the smallest drive: the set fills with it
    assert r.largest_drive_bytes == TB


# --- the shipped topologies --------------------------------------------------------------------


def test_liaoyuan_192t():
    t = load_topology(REPO / "topologies" / "liaoyuan-192t.toml")
    r = capacity_report(t, rebuild_rate_mb_s=200)
    assert (r.node_count, r.drive_count, r.k, r.m) == (6, 24, 8, 4)
    assert (r.raw_bytes, r.usable_bytes) == (192 * TB, 128 * TB)
    assert (r.drives_tolerated, r.nodes_tolerated, r.max_shards_per_node) == (4, 2, 2)
    assert r.drives_after_node_losses == (4, 2, 0)  # 2 nodes, or 1 node + 2 drives
    assert round(r.rebuild_s / 3600, 1) == 11.1
    assert r.rebuild_read_bytes == 64 * TB
    assert all(n.region == "cn-jilin" for n in t.nodes)
    assert all(not n.address.endswith(":0") for n in t.nodes)


def test_local_has_the_same_shape():
    local = capacity_report(load_topology(REPO / "topologies" / "local.toml"))
    city = capacity_report(load_topology(REPO / "topologies" / "liaoyuan-192t.toml"))
    assert (local.node_count, local.drive_count, len(local.sets)) == (6, 12, 1)
    assert (local.k, local.m) == (city.k, city.m)
    assert local.max_shards_per_node == city.max_shards_per_node == 2
    assert local.drives_after_node_losses == city.drives_after_node_losses == (4, 2, 0)
    assert local.usable_bytes * 3 == local.raw_bytes * 2


def test_load_reports_the_file_and_the_field(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nversion = 1\n[erasure]\ndata_shards = 8\n')
    with pytest.raises(TopologyError) as info:
        load_topology(bad)
    assert str(bad) in str(info.value)
    assert "erasure.parity_shards: Field required" in str(info.value)
    bad.write_text("name = ")
    with pytest.raises(TopologyError, match=r"bad\.toml"):
        load_topology(bad)
