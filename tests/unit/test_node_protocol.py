"""The node protocol's signing and record encoding (storage/node_protocol.py)."""

from __future__ import annotations

import dataclasses

import pytest

from storage import errors
from storage import node_protocol as proto
from storage.records import BucketRecord, ObjectRecord, PartRef

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


RECORD = ObjectRecord(
    bucket="b",
    key="k/ü\udc80",  # a lone surrogate comes back as it went
    version_id="v",
    mod_time_ns=1_732_934_400_123_456_789,
    size=3,
    etag="e",
    codec="isal",
    k=8,
    m=4,
    block_size=1 << 20,
    shard_index=7,
    parts=(PartRef(1, 3, "e", None, {"CRC32": "x"}), PartRef(2, 0, "f", "d" * 32, {})),
    metadata={"content-type": "a/b"},
    checksums={"CRC32": "x"},
    inline=b"\x00\xffshard",
)


@pytest.mark.parametrize("record", [RECORD, dataclasses.replace(RECORD, inline=None)])
def test_object_records_cross_the_channel(record: ObjectRecord) -> None:
    assert proto.object_record(proto.object_wire(record)) == record
    assert proto.to_wire(record) == proto.object_wire(record)
    assert proto.to_wire([record, record]) == [proto.object_wire(record)] * 2
    message = proto.encode_results([{"result": proto.to_wire([record])}], 4)
    doc = proto.decode_message(message)
    assert [proto.object_record(r) for r in doc["results"][0]["result"]] == [record]
    # The wire form spells the fields out: a field added to the record must be added there.
    assert len(proto.object_wire(record)) == len(dataclasses.fields(ObjectRecord))
    # for_shard spells the record's fields out: it must keep every one of them.
    assert record.for_shard(2, b"x") == dataclasses.replace(record, shard_index=2, inline=b"x")


@pytest.mark.parametrize(
    "wire",
    [
        None,
        {"bucket": "b"},
        proto.object_wire(RECORD)[:-1],  # a field short
        [*proto.object_wire(RECORD), None],  # a field too many
        [*proto.object_wire(RECORD)[:11], "parts", {}, {}, None],
        [*proto.object_wire(RECORD)[:11], [[1, 3, "e"]], {}, {}, None],
        [*proto.object_wire(RECORD)[:11], [], [], {}, None],
        [*proto.object_wire(RECORD)[:14], "not bytes"],
    ],
)
def test_malformed_object_records_are_refused(wire: object) -> None:
    with pytest.raises(ValueError):
        proto.object_record(wire)


def test_other_records_cross_the_channel_as_maps() -> None:
    bucket = BucketRecord("b", 5, "owner")
    doc = proto.decode_message(proto.encode_message(proto.to_wire({"bucket": bucket})))
    assert proto.bucket_record(doc["bucket"]) == bucket


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
    assert b"\x00" * 5 in message and b"ab" in message and b"xyz" in message  # raw
    assert proto.decode_message(message) == {
        "id": 3,
        "calls": [["d1", "commit_object", {"record": {"inline": b"\x00" * 5, "metadata": {}}}]],
        "more": [b"ab", b"xyz", b""],
    }


def test_records_with_inline_shards_cross_the_channel() -> None:
    record = dataclasses.replace(RECORD, inline=bytes(range(256)) * 512)
    wire = {"record": proto.object_wire(record), "staged": [], "shard": None}
    message = proto.encode_batch([("d1", "commit_object", wire)], 1)
    _, calls = proto.decode_batch(proto.decode_message(message))
    assert proto.object_record(calls[0][2]["record"]) == record


@pytest.mark.parametrize(
    "message",
    [
        b"",
        "text",
        b"\x92\x01",  # an array cut short
        b"\xc4\x05ab",  # bytes cut short
        b"\x01\x02",  # something after the document
        b"\xc1",  # never used
        b"\x81\x01\x02",  # a map key that is not a string
        b"\x81\x90\x01",
        b"\xd4\x05\x00",  # an extension type
        b"\x91" * 5000 + b"\xc0",  # nested too deep
    ],
)
def test_malformed_channel_messages_are_refused(message: bytes) -> None:
    with pytest.raises(ValueError):
        proto.decode_message(message)


@pytest.mark.parametrize(
    "doc",
    [
        {"calls": []},
        {"id": 1, "calls": [["d1", "info"]]},
        {"id": 1, "calls": [["d1", "info", []]]},
        {"id": "x", "calls": []},
        [1, 2],
    ],
)
def test_malformed_batches_are_refused(doc: object) -> None:
    with pytest.raises(ValueError):
        proto.decode_batch(proto.decode_message(proto.encode_message(doc)))


def test_only_bytes_go_raw() -> None:
    with pytest.raises(TypeError):
        proto.encode_message({"x": object()})


def test_empty_bytes_cross_the_channel() -> None:
    assert proto.decode_message(proto.encode_message({"a": b"", "b": [b""]})) == {
        "a": b"",
        "b": [b""],
    }
