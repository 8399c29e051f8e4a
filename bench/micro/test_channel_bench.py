"""Micro-benchmarks: the node channel's messages for small objects, at each end.

Not part of the main suite (``testpaths`` is ``tests``). Run with::

    pytest bench/micro/test_channel_bench.py --benchmark-only

A GET asks each data drive for its versions (a node gets two calls, answers two records with
their inline shards); a PUT commits a record on every drive (two per node). Protocol v2 (JSON
with raw bytes after it) cost, in CPU us per message on the dev box: GET batch sent 17, read
10, answered 38, answer read 55; PUT batch sent 35, read 49. v3 (MessagePack, records as
arrays): 2.4, 2.9, 8.5, 14.5; 6.6, 19.
"""

from __future__ import annotations

import os
from typing import Any

from storage import node_protocol as proto
from storage.records import ObjectRecord, PartRef

ETAG = "d41d8cd98f00b204e9800998ecf8427e"
RECORD = ObjectRecord(
    bucket="prof",
    key="ob/4096/abc123",
    version_id="0190a3b4c5d6e7f8a9b0c1d2e3f4a5b6",
    mod_time_ns=1_732_934_400_123_456_789,
    size=4096,
    etag=ETAG,
    codec="isal",
    k=8,
    m=4,
    block_size=1 << 20,
    shard_index=3,
    parts=(PartRef(1, 4096, ETAG, None, {}),),
    metadata={"content-type": "application/octet-stream"},
    inline=os.urandom(560),
)


def get_batch() -> bytes:
    args = {"bucket": RECORD.bucket, "key": RECORD.key}
    return proto.encode_batch([("d1", "get_versions", args), ("d2", "get_versions", args)], 7)


def get_answer() -> bytes:
    result = {"result": proto.to_wire([RECORD])}
    return proto.encode_results([result, result], 7)


def put_batch() -> bytes:
    args = {"record": proto.object_wire(RECORD), "staged": [], "shard": None}
    return proto.encode_batch([("d1", "commit_object", args), ("d2", "commit_object", args)], 7)


def test_get_batch_sent(benchmark: Any) -> None:
    benchmark(get_batch)


def test_get_batch_read(benchmark: Any) -> None:
    message = get_batch()
    benchmark(lambda: proto.decode_batch(proto.decode_message(message)))


def test_get_answer_sent(benchmark: Any) -> None:
    benchmark(get_answer)


def test_get_answer_read(benchmark: Any) -> None:
    message = get_answer()

    def read() -> list[list[ObjectRecord]]:
        doc = proto.decode_message(message)
        return [[proto.object_record(r) for r in d["result"]] for d in doc["results"]]

    assert benchmark(read) == [[RECORD], [RECORD]]


def test_put_batch_sent(benchmark: Any) -> None:
    benchmark(put_batch)


def test_put_batch_read(benchmark: Any) -> None:
    message = put_batch()

    def read() -> list[ObjectRecord]:
        _, calls = proto.decode_batch(proto.decode_message(message))
        return [proto.object_record(args["record"]) for _, _, args in calls]

    assert benchmark(read) == [RECORD, RECORD]
