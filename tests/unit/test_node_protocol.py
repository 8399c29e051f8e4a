"""The node protocol's signing and record encoding (storage/node_protocol.py)."""

from __future__ import annotations

import dataclasses

import pytest

from storage import errors
from storage import node_protocol as proto
from storage.records import ObjectRecord, PartRef

IDENT = proto.ClusterIdentity("dep-1", 3, "cluster-secret")
PATH = "/_node/v1/rpc/d1/get_versions"


def signed(identity: proto.ClusterIdentity = IDENT, now: int = 1_000_000) -> dict[str, str]:
    return proto.sign_headers(identity, "POST", PATH, now)


def test_a_signed_request_is_accepted() -> None:
    proto.check_request(IDENT, "POST", PATH, signed(), 1_000_000)


@pytest.mark.parametrize(
    ("headers", "method", "path", "now", "error"),
    [
        (signed(proto.ClusterIdentity("dep-1", 3, "other-secret")), "POST", PATH, 1_000_000,
         proto.Unauthorized),
        (signed(), "GET", PATH, 1_000_000, proto.Unauthorized),
        (signed(), "POST", PATH + "x", 1_000_000, proto.Unauthorized),
        (signed(), "POST", PATH, 1_000_000 + proto.MAX_SKEW_MS + 1, proto.Unauthorized),
        (signed(proto.ClusterIdentity("dep-2", 3, "cluster-secret")), "POST", PATH, 1_000_000,
         proto.WrongTopology),
        (signed(proto.ClusterIdentity("dep-2", 3, "wrong-secret")), "POST", PATH, 1_000_000,
         proto.Unauthorized),
        (signed(proto.ClusterIdentity("dep-1", 4, "cluster-secret")), "POST", PATH, 1_000_000,
         proto.WrongTopology),
        ({}, "POST", PATH, 1_000_000, proto.Unauthorized),
    ],
)  # fmt: skip
def test_refusals(
    headers: dict[str, str], method: str, path: str, now: int, error: type[Exception]
) -> None:
    with pytest.raises(error):
        proto.check_request(IDENT, method, path, headers, now)


def test_object_record_round_trip() -> None:
    record = ObjectRecord(
        bucket="b",
        key="k/ü",
        version_id="v",
        mod_time_ns=5,
        size=3,
        etag="e",
        codec="isal",
        k=8,
        m=4,
        block_size=1 << 20,
        shard_index=7,
        parts=(PartRef(1, 3, "e", None, {"CRC32": "x"}),),
        metadata={"content-type": "a/b"},
        checksums={"CRC32": "x"},
        inline=b"\x00\xffshard",
    )
    assert proto.object_record(proto.to_json(record)) == record
    # The record's own encoding sends the document the generic dataclass walk sends.
    walked = {
        **{f: getattr(record, f) for f in record.__dataclass_fields__},
        "parts": [{f: getattr(p, f) for f in p.__dataclass_fields__} for p in record.parts],
        "inline": b"\x00\xffshard",  # raw: encode_message carries it after the JSON
    }
    assert proto.to_json(record) == walked
    assert proto.to_json(dataclasses.replace(record, inline=None))["inline"] is None
    # for_shard spells the record's fields out: it must keep every one of them.
    assert record.for_shard(2, b"x") == dataclasses.replace(record, shard_index=2, inline=b"x")


def test_errors_cross_the_wire_by_name() -> None:
    doc = proto.error_doc(errors.BucketExists("b"))
    assert isinstance(proto.error_from(doc, "n1/d1"), errors.BucketExists)
    unknown = proto.error_from({"error": "SomethingElse", "message": "x"}, "n1/d1")
    assert type(unknown) is errors.DriveError
    assert "n1/d1" in str(unknown)


def test_channel_messages_carry_bytes_raw() -> None:
    doc = {
        "id": 3,
        "calls": [["d1", "commit_object", {"record": {"inline": b"\x00" * 5, "metadata": {}}}]],
        "more": [bytearray(b"ab"), memoryview(b"xyz"), b""],
    }
    message = proto.encode_message(doc)
    assert message.endswith(b"\x00" * 5 + b"abxyz")  # raw, after the JSON
    assert proto.decode_message(message) == {
        "id": 3,
        "calls": [["d1", "commit_object", {"record": {"inline": b"\x00" * 5, "metadata": {}}}]],
        "more": [b"ab", b"xyz", b""],
    }


def test_records_with_inline_shards_cross_the_channel() -> None:
    record = ObjectRecord(
        bucket="b", key="k", version_id="v", mod_time_ns=5, size=3, etag="e", codec="isal",
        k=8, m=4, block_size=1 << 20, shard_index=7, parts=(PartRef(1, 3, "e", None, {}),),
        metadata={"x-amz-meta-att": "1"}, checksums={}, inline=bytes(range(256)) * 512,
    )  # fmt: skip
    message = proto.encode_batch([("d1", "commit_object", proto.to_json({"record": record}))], 1)
    _, calls = proto.decode_batch(proto.decode_message(message))
    assert proto.object_record(calls[0][2]["record"]) == record


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"HMC1",
        "text",
        b"XXXX\x02\x00\x00\x00{}",
        b"HMC1\xff\x00\x00\x00{}",  # JSON longer than the message
        b"HMC1\x02\x00\x00\x00{]",
        b'HMC1\x11\x00\x00\x00{"\\u0000":[0,9]}ab',  # blob beyond the message
        b'HMC1\x12\x00\x00\x00{"\\u0000":[-1,1]}ab',
        b'HMC1\x10\x00\x00\x00{"\\u0000":"xy"}ab',
        b'HMC1\x17\x00\x00\x00{"\\u0000":[0,1],"a":1}ab',
    ],
)
def test_malformed_channel_messages_are_refused(message: bytes) -> None:
    with pytest.raises(ValueError):
        proto.decode_message(message)


def test_only_bytes_go_raw() -> None:
    with pytest.raises(TypeError):
        proto.encode_message({"x": object()})


def test_empty_bytes_cross_the_channel() -> None:
    assert proto.decode_message(proto.encode_message({"a": b"", "b": [b""]})) == {
        "a": b"",
        "b": [b""],
    }
