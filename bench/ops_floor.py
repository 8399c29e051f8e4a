"""The small-operation floor: what one 4 KiB PUT or GET costs here at the least, given the
cluster's process layout, measured as a skeleton of the operation (``bench.floor_skeleton``):
the same messages between the same processes, no work in any of them.

Pure: the shape of each operation from the layout (which processes it touches, the bytes on
each hop), and the tables. With inline objects (shards kept in the index rows), a GET asks the
nodes holding the k data shards for their records; a PUT sends each of the nodes holding the
set's k+m drives its records and shards. A set's drives are dealt over its nodes round-robin
(``huimin.topology``) and an object's k data shards sit on k consecutive positions of its set
(``storage.placement``), so a GET asks ``min(nodes, k)`` nodes: all 6 of the local topology,
some for two drives. An embedded server (``nodes == 0``) answers by itself.

The highest ops/s on ``cores`` cores, every process overlapped perfectly, is
``cores * 10^6 / (CPU us per op)``: once with the skeleton's own client (the layout's floor),
once with the CPU the suite's client spent per operation in the ``small`` workload of the same
invocation (the floor of this benchmark: its client shares the cores).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.report import MISSING, TARGETS, fmt_num
from bench.results import WorkloadResult

REQUEST_HEADER_BYTES = 400  # a SigV4-signed request's line and headers
RESPONSE_HEADER_BYTES = 300
RECORD_BYTES = 400  # an object record on the node channel (JSON), without its shard
CALL_BYTES = 120  # a call naming drive, method, bucket and key
ACK_BYTES = 50  # a call's answer with nothing but success
ROLES = ("client_us", "gateway_us", "nodes_us")


@dataclass(frozen=True, slots=True)
class OpShape:
    """The bytes one operation moves, hop by hop."""

    op: str  # "PUT" | "GET"
    object_size: int
    nodes: int  # nodes the gateway sends a message to
    request_bytes: int  # client -> gateway
    response_bytes: int  # gateway -> client
    node_request_bytes: int  # gateway -> each node, per operation
    node_answer_bytes: int  # each node -> gateway, per operation


def op_shapes(object_size: int, k: int, m: int, nodes: int) -> tuple[OpShape, OpShape]:
    """PUT's and GET's shape for an inline object of ``object_size`` on an erasure set of k+m
    drives dealt round-robin over ``nodes`` nodes (``nodes == 0``: embedded). A node asked for
    more drives than others (8 data shards over 6 nodes: 2 of them hold two) sets the bytes of
    every node's message: a little above the store's, never below.

    >>> put, get = op_shapes(4096, 8, 4, 6)
    >>> put.nodes, get.nodes, put.node_request_bytes, get.node_answer_bytes
    (6, 6, 1824, 1824)
    >>> op_shapes(4096, 8, 4, 0)[1].nodes
    0
    """
    shard = math.ceil(object_size / k)
    put_nodes = min(nodes, k + m)
    get_nodes = min(nodes, k)
    put_drives = math.ceil((k + m) / put_nodes) if put_nodes else k + m
    get_drives = math.ceil(k / get_nodes) if get_nodes else k
    put = OpShape(
        op="PUT",
        object_size=object_size,
        nodes=put_nodes,
        request_bytes=REQUEST_HEADER_BYTES + object_size,
        response_bytes=RESPONSE_HEADER_BYTES,
        node_request_bytes=put_drives * (RECORD_BYTES + shard),
        node_answer_bytes=put_drives * ACK_BYTES,
    )
    get = OpShape(
        op="GET",
        object_size=object_size,
        nodes=get_nodes,
        request_bytes=REQUEST_HEADER_BYTES,
        response_bytes=RESPONSE_HEADER_BYTES + object_size,
        node_request_bytes=get_drives * CALL_BYTES,
        node_answer_bytes=get_drives * (RECORD_BYTES + shard),
    )
    return put, get


def max_ops_per_s(cores: int, us_per_op: float) -> float:
    """
    >>> max_ops_per_s(2, 500.0)
    4000.0
    """
    return cores * 1e6 / us_per_op if us_per_op > 0 else math.inf


def ops_floor_document(
    shapes: Sequence[OpShape],
    concurrency: int,
    count: int,
    samples: Mapping[str, Sequence[Mapping[str, float]]],
) -> dict[str, Any]:
    """The ``ops`` part of results.json's floor: each operation's shape and measured samples."""
    return {
        "concurrency": concurrency,
        "count": count,
        "ops": {
            s.op: {"shape": asdict(s), "samples": [dict(x) for x in samples[s.op]]} for s in shapes
        },
    }


def medians(samples: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Each figure's median over the repeats.

    >>> medians([{"gateway_us": 1.0}, {"gateway_us": 3.0}, {"gateway_us": 2.0}])
    {'gateway_us': 2.0}
    """
    keys = samples[0].keys() if samples else ()
    return {k: statistics.median(s[k] for s in samples) for k in keys}


def _small(results: Sequence[WorkloadResult], op: str, size: int) -> WorkloadResult | None:
    return next(
        (r for r in results if r.kind == "small" and r.op == op and r.object_size == size), None
    )


def ops_rows(
    ops: Mapping[str, Any], cores: int, results: Sequence[WorkloadResult]
) -> list[list[str]]:
    """Per operation: the skeleton's CPU per op by role, the highest ops/s with its client and
    with the suite's, the target, and what the store's servers spent per op (``small``)."""
    rows = []
    for op, entry in ops["ops"].items():
        shape = OpShape(**entry["shape"])
        med = medians(entry["samples"])
        server = med["gateway_us"] + med["nodes_us"]
        small = _small(results, op, shape.object_size)
        suite_client = None
        if small is not None and small.ops:
            suite_client = small.client_cpu_s * 1e6 / small.ops
        target = next(
            (t for t in TARGETS.get((op, shape.object_size), ()) if t.metric == "ops_per_s"), None
        )
        best = max_ops_per_s(cores, server + med["client_us"])
        with_suite = None if suite_client is None else max_ops_per_s(cores, server + suite_client)
        verdict = MISSING
        if target is not None and with_suite is not None:
            ok = with_suite >= target.bound
            verdict = f"{with_suite / target.bound:.2f} {'reachable' if ok else 'UNREACHABLE'}"
        measured = None if small is None else small.server_cpu_us_per_op
        rows.append([
            f"{op} {shape.object_size // 1024} KiB",
            str(shape.nodes),
            fmt_num(med["client_us"]),
            fmt_num(med["gateway_us"]),
            fmt_num(med["nodes_us"]),
            fmt_num(best),
            fmt_num(suite_client),
            fmt_num(with_suite),
            MISSING if target is None else target.describe(),
            verdict,
            fmt_num(measured),
            MISSING if measured is None or server <= 0 else f"{measured / server:.1f}x",
        ])  # fmt: skip
    return rows


OPS_HEADER = (
    "op", "nodes asked", "skeleton client us/op", "skeleton gateway us/op", "skeleton nodes us/op",
    "max ops/s (skeleton client)", "suite client us/op", "max ops/s (suite client)", "target",
    "max/target", "measured server us/op (small)", "measured / skeleton server",
)  # fmt: skip
