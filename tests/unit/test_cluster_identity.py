"""`huimin cluster up` keeps a deployment's drive layout: new pools may be appended (capacity
growth without moving data), existing pools may not change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from huimin.cluster import ClusterError, load_identity
from huimin.topology import Topology


def topology(*pools: int) -> Topology:
    """Pools of ``n`` nodes each (2 drives per node), EC 2+1."""
    nodes: list[dict[str, Any]] = []
    pool_specs = []
    for p, count in enumerate(pools):
        names = [f"p{p}n{i}" for i in range(count)]
        pool_specs.append({"nodes": names})
        nodes += [
            {
                "name": n,
                "address": "127.0.0.1:0",
                "drives": [{"name": "a", "capacity_bytes": 1}, {"name": "b", "capacity_bytes": 1}],
            }
            for n in names
        ]
    return Topology.model_validate(
        {
            "name": "t",
            "version": 1,
            "erasure": {"data_shards": 2, "parity_shards": 1},
            "nodes": nodes,
            "pools": pool_specs,
        }
    )


def test_appending_a_pool_keeps_the_deployment(tmp_path: Path) -> None:
    first = load_identity(tmp_path, topology(3))
    grown = load_identity(tmp_path, topology(3, 3))
    assert grown.deployment_id == first.deployment_id
    assert grown.sets[: len(first.sets)] == first.sets
    assert len(grown.sets) == 2 * len(first.sets)
    assert load_identity(tmp_path, topology(3, 3)).deployment_id == first.deployment_id


def test_changing_an_existing_pool_is_refused(tmp_path: Path) -> None:
    load_identity(tmp_path, topology(3, 3))
    with pytest.raises(ClusterError, match="unreachable"):
        load_identity(tmp_path, topology(6))
    with pytest.raises(ClusterError, match="unreachable"):
        load_identity(tmp_path, topology(3))
