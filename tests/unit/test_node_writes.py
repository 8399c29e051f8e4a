"""A node's answer to a batch of index writes (storage/node_server.py): small-object commits and
prunes are queued at once and answered each with its own outcome, beside calls of other kinds."""

from __future__ import annotations

import asyncio
import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from storage import node_protocol as proto
from storage.local_drive import LocalDrive
from storage.node_server import NodeServer
from storage.records import (
    BucketRecord,
    ObjectRecord,
    PartRef,
    object_row,
    object_row_from_values,
    object_values,
)
from tests.records import small_record


class Socket:
    """The part of a WebSocketResponse that NodeServer._answer uses."""

    closed = False

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)


def record(key: str, bucket: str = "b", version_id: str = "v1", t: int = 1) -> list[Any]:
    return proto.to_wire(small_record(key, bucket, version_id, t))  # type: ignore[no-any-return]


def answer(server: NodeServer, calls: list[tuple[str, str, Any]]) -> list[dict[str, Any]]:
    ws = Socket()
    batch_id, decoded = proto.decode_batch(proto.decode_message(proto.encode_batch(calls, 1)))
    asyncio.run(server._answer_calls(ws, batch_id, decoded))  # type: ignore[arg-type]  # a double
    doc = proto.decode_message(ws.sent[0])
    assert doc["id"] == 1
    return doc["results"]  # type: ignore[no-any-return]


def test_each_write_of_a_batch_gets_its_own_outcome(tmp_path: Path) -> None:
    with ThreadPoolExecutor(2) as pool:
        drives = {n: LocalDrive(tmp_path / n, pool) for n in ("d1", "d2")}
        try:
            server = NodeServer("n1", drives, proto.ClusterIdentity("dep", 1, "s"))
            for d in drives.values():
                asyncio.run(d.make_bucket(BucketRecord("b", 1, "me")))
            results = answer(
                server,
                [
                    ("d1", "commit_object", {"record": record("a"), "staged": []}),
                    ("d2", "commit_object", {"record": record("a"), "staged": []}),
                    ("d1", "commit_object", {"record": record("x", "nope"), "staged": []}),
                    ("d1", "commit_object", {"record": {"bucket": "b"}, "staged": []}),
                    ("d2", "commit_object", {"record": record("a", "b", "v2", 2), "staged": []}),
                    ("d1", "get_bucket", {"name": "b"}),
                    ("d1", "list_buckets", {}),
                ],
            )
            assert results[0] == {"result": False}
            assert results[1] == {"result": False}
            assert results[2]["error"] == "BucketNotFound"
            assert results[3]["error"] == "DriveError"
            assert "bad request" in results[3]["message"]
            assert results[4] == {"result": True}  # v1 remains beside it
            assert results[5]["result"]["name"] == "b"
            assert [b["name"] for b in results[6]["result"]] == ["b"]

            before = [3, "~"]
            results = answer(
                server,
                [
                    (
                        "d2",
                        "prune_versions",
                        {"bucket": "b", "key": "a", "before": before, "durable": True},
                    ),
                    (
                        "d1",
                        "prune_versions",
                        {"bucket": "nope", "key": "a", "before": before, "durable": True},
                    ),
                    ("d1", "prune_versions", {"bucket": "b", "key": "a"}),
                ],
            )
            assert results[0] == {"result": None}
            assert results[1]["error"] == "BucketNotFound"
            assert results[2]["error"] == "DriveError"
            assert asyncio.run(drives["d2"].get_versions("b", "a")) == []
            assert [v.key for v in asyncio.run(drives["d1"].get_versions("b", "a"))] == ["a"]
        finally:
            for d in drives.values():
                d.close()


def test_point_reads_answer_records_as_the_drive_returns_them(tmp_path: Path) -> None:
    """get_versions answers from the index row without a dataclass: the same document as
    the record's, which the gateway turns back into the same record."""
    with ThreadPoolExecutor(2) as pool:
        drive = LocalDrive(tmp_path / "d1", pool)
        try:
            server = NodeServer("n1", {"d1": drive}, proto.ClusterIdentity("dep", 1, "s"))
            asyncio.run(drive.make_bucket(BucketRecord("b", 1, "me")))
            rec = dataclasses.replace(
                proto.object_record(record("a")),
                parts=(PartRef(1, 3, "e", "f" * 32, {"crc32": "x"}),),
                metadata={"content-type": "text/plain", "x-amz-meta-é": "ü"},
                checksums={"crc32": "y"},
            )
            doc = proto.to_wire(rec)
            asyncio.run(drive.commit_object(proto.object_record(doc), []))
            asyncio.run(drive.commit_object(proto.object_record(record("a", "b", "v2", 2)), []))
            calls = [
                ("d1", "get_versions", {"bucket": "b", "key": "a"}),
                ("d1", "get_versions", {"bucket": "b", "key": "none"}),
                ("d1", "get_bucket", {"name": "b"}),
                ("d1", "get_bucket", {"name": "nope"}),
            ]
            looked_up = server._look_up(calls)
            assert looked_up is not None
            message = proto.decode_message(proto.encode_results(looked_up, 1))
            versions = asyncio.run(drive.get_versions("b", "a"))
            assert [v.version_id for v in versions] == ["v2", "v1"]
            assert message["results"][0] == {"result": [proto.to_wire(v) for v in versions]}
            assert [proto.object_record(d) for d in message["results"][0]["result"]] == versions
            assert message["results"][1] == {"result": []}
            assert message["results"][2] == {
                "result": {"name": "b", "created_ns": 1, "owner": "me", "region": "us-east-1"}
            }
            assert message["results"][3]["error"] == "DriveNotFound"
            assert server._look_up([*calls, ("d1", "list_buckets", {})]) is None
        finally:
            drive.close()


def full_record(inline: bytes | None, data_id: str | None) -> ObjectRecord:
    return ObjectRecord(
        bucket="b",
        key="ключ/é",
        version_id="v9",
        mod_time_ns=123456789,
        size=5,
        etag="abc-2",
        codec="rs",
        k=8,
        m=4,
        block_size=1 << 20,
        shard_index=11,
        parts=(PartRef(1, 3, "e1", data_id, {"crc32": "x"}), PartRef(2, 2, "e2", data_id)),
        metadata={"content-type": "text/plain", "x-amz-meta-ü": "ö\u2028"},
        checksums={"sha256": "y"},
        inline=inline,
    )


@pytest.mark.parametrize(("inline", "data_id"), [(b"\x00shard", None), (None, "f" * 32)])
def test_a_record_from_a_message_makes_the_row_its_dataclass_makes(
    inline: bytes | None, data_id: str | None
) -> None:
    rec = full_record(inline, data_id)
    values = proto.decode_message(proto.encode_message(proto.to_wire(rec)))
    assert object_row_from_values(values) == object_row(rec)
    assert object_row_from_values(values) == object_row(proto.object_record(values))


def test_a_row_read_back_is_the_records_wire_form() -> None:
    rec = full_record(b"\x00shard", None)
    row = object_row(rec)
    values = object_values(
        row.bucket, row.key, row.version_id, row.mod_time_ns, row.meta, row.inline
    )
    assert values == proto.object_wire(rec)


def test_a_record_of_the_wrong_shape_is_refused_as_the_decoder_refuses_it() -> None:
    values = proto.to_wire(full_record(b"x", None))
    for bad in [
        [*values, 1],
        values[:-1],
        {"bucket": "b"},
        [*values[:11], [[*values[11][0], 1]], *values[12:]],
        [*values[:11], "parts", *values[12:]],
        [*values[:12], [], *values[13:]],
        [*values[:14], "text"],
    ]:
        with pytest.raises(ValueError):
            object_row_from_values(bad)
        with pytest.raises(ValueError):
            proto.object_record(bad)
