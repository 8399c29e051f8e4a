"""Multipart uploads through boto3: parts, part copies, listings, completion errors, abort,
s3transfer."""

from __future__ import annotations

import hashlib
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig

from tests.integration.boto3_support import (
    KIB,
    MIB,
    md5_hex,
    multipart_etag,
    payload,
    quoted,
    s3_error,
)

PART = 5 * MIB  # S3's minimum size of every part but the last


def start(s3, bucket: str, key: str = "mp", **kwargs) -> str:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **kwargs)["UploadId"]
    assert upload_id
    return str(upload_id)


def put_part(s3, bucket: str, key: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
    result = s3.upload_part(
        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
    )
    assert result["ETag"] == quoted(md5_hex(data))
    return {"PartNumber": number, "ETag": result["ETag"]}


def complete(
    s3, bucket: str, key: str, upload_id: str, parts: list[dict[str, Any]]
) -> dict[str, Any]:
    result = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    return dict(result)


def uploads_in(s3, bucket: str) -> list[tuple[str, str]]:
    listed = s3.list_multipart_uploads(Bucket=bucket)
    return [(u["Key"], u["UploadId"]) for u in listed.get("Uploads", [])]


def test_three_5mib_parts_and_a_small_last_part(s3, bucket):
    datas = [payload(PART, seed=n) for n in (1, 2, 3)] + [payload(100 * KIB + 3, seed=4)]
    upload_id = start(
        s3, bucket, "big/object.bin", ContentType="application/x-big", Metadata={"kind": "mp"}
    )
    assert uploads_in(s3, bucket) == [("big/object.bin", upload_id)]
    # Parts may arrive in any order.
    parts = [
        put_part(s3, bucket, "big/object.bin", upload_id, n, datas[n - 1]) for n in (2, 1, 4, 3)
    ]
    parts.sort(key=lambda p: p["PartNumber"])

    listed = s3.list_parts(Bucket=bucket, Key="big/object.bin", UploadId=upload_id)
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed["Parts"]] == [
        (n, quoted(md5_hex(d)), len(d)) for n, d in enumerate(datas, start=1)
    ]
    assert listed["IsTruncated"] is False

    result = complete(s3, bucket, "big/object.bin", upload_id, parts)
    assert result["ETag"] == multipart_etag(datas)
    assert result["Key"] == "big/object.bin"
    assert result["Bucket"] == bucket

    whole = b"".join(datas)
    head = s3.head_object(Bucket=bucket, Key="big/object.bin")
    assert head["ContentLength"] == len(whole)
    assert head["ETag"] == multipart_etag(datas)
    assert head["ContentType"] == "application/x-big"
    assert head["Metadata"] == {"kind": "mp"}
    assert head["PartsCount"] == 4
    got = s3.get_object(Bucket=bucket, Key="big/object.bin")
    assert got["Body"].read() == whole
    # A range spanning the boundary between parts 1 and 2.
    rng = s3.get_object(Bucket=bucket, Key="big/object.bin", Range=f"bytes={PART - 5}-{PART + 4}")
    assert rng["Body"].read() == whole[PART - 5 : PART + 5]

    assert uploads_in(s3, bucket) == []
    listing = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"], o["ETag"]) for o in listing] == [
        ("big/object.bin", len(whole), multipart_etag(datas))
    ]
    s3_error(
        lambda: s3.list_parts(Bucket=bucket, Key="big/object.bin", UploadId=upload_id),
        "NoSuchUpload",
        404,
    )


def test_single_small_part(s3, bucket):
    upload_id = start(s3, bucket)
    part = put_part(s3, bucket, "mp", upload_id, 1, b"only part")
    assert complete(s3, bucket, "mp", upload_id, [part])["ETag"] == multipart_etag([b"only part"])
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"only part"


def test_empty_last_part(s3, bucket):
    upload_id = start(s3, bucket)
    first = payload(PART, seed=9)
    parts = [put_part(s3, bucket, "mp", upload_id, 1, first)]
    parts.append(put_part(s3, bucket, "mp", upload_id, 2, b""))
    assert complete(s3, bucket, "mp", upload_id, parts)["ETag"] == multipart_etag([first, b""])
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == first


def test_single_empty_part(s3, bucket):
    upload_id = start(s3, bucket)
    part = put_part(s3, bucket, "mp", upload_id, 1, b"")
    assert complete(s3, bucket, "mp", upload_id, [part])["ETag"] == multipart_etag([b""])
    head = s3.head_object(Bucket=bucket, Key="mp")
    assert (head["ContentLength"], head["ETag"]) == (0, multipart_etag([b""]))
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b""


def test_reuploaded_part_replaces_the_earlier_one(s3, bucket):
    upload_id = start(s3, bucket)
    put_part(s3, bucket, "mp", upload_id, 1, b"first try")
    part = put_part(s3, bucket, "mp", upload_id, 1, b"second try")
    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["ETag"]) for p in listed] == [(1, part["ETag"])]
    complete(s3, bucket, "mp", upload_id, [part])
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"second try"


def test_upload_part_copy_with_and_without_range(s3, bucket):
    source = payload(PART + 2 * MIB + 5, seed=21)
    s3.put_object(Bucket=bucket, Key="src/big ü", Body=source)
    s3.put_object(Bucket=bucket, Key="src/tiny+", Body=b"tiny tail")
    upload_id = start(s3, bucket, "copied")

    # Part 1: 5 MiB from the middle of the source, starting just before a 1 MiB block boundary.
    first, last = MIB - 3, MIB - 3 + PART - 1
    ranged = s3.upload_part_copy(
        Bucket=bucket,
        Key="copied",
        UploadId=upload_id,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "src/big ü"},
        CopySourceRange=f"bytes={first}-{last}",
    )
    assert ranged["CopyPartResult"]["ETag"] == quoted(md5_hex(source[first : last + 1]))
    assert ranged["CopyPartResult"]["LastModified"]
    # Part 2: the whole small object.
    whole = s3.upload_part_copy(
        Bucket=bucket,
        Key="copied",
        UploadId=upload_id,
        PartNumber=2,
        CopySource={"Bucket": bucket, "Key": "src/tiny+"},
    )
    assert whole["CopyPartResult"]["ETag"] == quoted(md5_hex(b"tiny tail"))

    listed = s3.list_parts(Bucket=bucket, Key="copied", UploadId=upload_id)["Parts"]
    assert [p["Size"] for p in listed] == [PART, len(b"tiny tail")]
    parts = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in listed]
    result = complete(s3, bucket, "copied", upload_id, parts)
    expected = [source[first : last + 1], b"tiny tail"]
    assert result["ETag"] == multipart_etag(expected)
    assert s3.get_object(Bucket=bucket, Key="copied")["Body"].read() == b"".join(expected)


def test_copies_of_a_multipart_object(s3, bucket):
    datas = [payload(PART, seed=31), payload(MIB + 9, seed=32)]
    upload_id = start(s3, bucket, "src", Metadata={"from": "multipart"})
    parts = [put_part(s3, bucket, "src", upload_id, n, d) for n, d in enumerate(datas, start=1)]
    complete(s3, bucket, "src", upload_id, parts)
    whole = b"".join(datas)

    # CopyObject reads across the part boundary; the copy is a new single-part object.
    copied = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "src"})
    assert copied["CopyObjectResult"]["ETag"] == quoted(md5_hex(whole))
    got = s3.get_object(Bucket=bucket, Key="copy")
    assert got["Body"].read() == whole
    assert got["Metadata"] == {"from": "multipart"}

    # UploadPartCopy of a range straddling the source's part boundary.
    first, last = PART - 100, PART + 99
    target = start(s3, bucket, "ranged")
    result = s3.upload_part_copy(
        Bucket=bucket,
        Key="ranged",
        UploadId=target,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "src"},
        CopySourceRange=f"bytes={first}-{last}",
    )
    piece = whole[first : last + 1]
    assert result["CopyPartResult"]["ETag"] == quoted(md5_hex(piece))
    complete(s3, bucket, "ranged", target, [{"PartNumber": 1, "ETag": quoted(md5_hex(piece))}])
    assert s3.get_object(Bucket=bucket, Key="ranged")["Body"].read() == piece


def test_upload_part_copy_errors(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"0123456789")
    upload_id = start(s3, bucket)

    def copy(**kwargs):
        return s3.upload_part_copy(
            Bucket=bucket,
            Key="mp",
            UploadId=upload_id,
            PartNumber=1,
            CopySource={"Bucket": bucket, "Key": kwargs.pop("key", "src")},
            **kwargs,
        )

    s3_error(lambda: copy(CopySourceRange="bytes=5-10"), "InvalidArgument", 400)
    s3_error(lambda: copy(CopySourceRange="bytes=10-10"), "InvalidArgument", 400)
    s3_error(lambda: copy(CopySourceRange="bytes=-3"), "InvalidArgument", 400)
    s3_error(lambda: copy(key="missing"), "NoSuchKey", 404)
    s3_error(lambda: copy(CopySourceIfMatch='"nope"'), "PreconditionFailed", 412)
    assert s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id).get("Parts", []) == []
    part = copy(CopySourceRange="bytes=2-4", CopySourceIfMatch=quoted(md5_hex(b"0123456789")))
    assert part["CopyPartResult"]["ETag"] == quoted(md5_hex(b"234"))
    s3_error(
        lambda: s3.upload_part_copy(
            Bucket=bucket,
            Key="mp",
            UploadId="no-such-upload",
            PartNumber=1,
            CopySource={"Bucket": bucket, "Key": "src"},
        ),
        "NoSuchUpload",
        404,
    )


def test_list_parts_paging(s3, bucket):
    upload_id = start(s3, bucket)
    datas = {n: payload(KIB + n, seed=n) for n in range(1, 8)}
    for n, data in datas.items():
        put_part(s3, bucket, "mp", upload_id, n, data)

    seen: list[int] = []
    marker = 0
    pages = 0
    while True:
        page = s3.list_parts(
            Bucket=bucket, Key="mp", UploadId=upload_id, MaxParts=3, PartNumberMarker=marker
        )
        pages += 1
        numbers = [p["PartNumber"] for p in page["Parts"]]
        assert page["MaxParts"] == 3
        assert page["PartNumberMarker"] == marker
        for p in page["Parts"]:
            assert (p["ETag"], p["Size"]) == (
                quoted(md5_hex(datas[p["PartNumber"]])),
                KIB + p["PartNumber"],
            )
        seen += numbers
        if not page["IsTruncated"]:
            break
        assert len(numbers) == 3
        marker = page["NextPartNumberMarker"]
        assert marker == numbers[-1]
    assert seen == list(range(1, 8))
    assert pages == 3

    after_five = s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumberMarker=5)
    assert [p["PartNumber"] for p in after_five["Parts"]] == [6, 7]
    assert after_five["Key"] == "mp"
    assert after_five["UploadId"] == upload_id
    assert after_five["Initiator"]["ID"]
    assert after_five["Owner"]["ID"]
    assert after_five["StorageClass"] == "STANDARD"


def test_list_multipart_uploads(s3, bucket):
    started = sorted(
        (key, start(s3, bucket, key))
        for key in ["a/one", "a/two", "b/three", "top", "top", "ü/four"]
    )
    assert uploads_in(s3, bucket) == started

    assert [
        (u["Key"], u["UploadId"])
        for u in s3.list_multipart_uploads(Bucket=bucket, Prefix="a/")["Uploads"]
    ] == [s for s in started if s[0].startswith("a/")]

    by_dir = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in by_dir["CommonPrefixes"]] == ["a/", "b/", "ü/"]
    assert [u["Key"] for u in by_dir["Uploads"]] == ["top", "top"]

    paged: list[tuple[str, str]] = []
    markers: dict[str, str] = {}
    while True:
        page = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=2, **markers)
        paged += [(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])]
        if not page["IsTruncated"]:
            break
        markers = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}
        assert len(paged) < 20
    assert paged == started

    after_a = s3.list_multipart_uploads(Bucket=bucket, KeyMarker="a/two")["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in after_a] == [s for s in started if s[0] > "a/two"]
    empty = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=0)
    assert (empty["IsTruncated"], "Uploads" in empty) == (False, False)

    one = s3.list_multipart_uploads(Bucket=bucket, Prefix="b/")["Uploads"][0]
    assert one["Initiated"]
    assert one["Initiator"]["ID"]
    for key, upload_id in started:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    assert uploads_in(s3, bucket) == []


def test_small_non_last_part_is_entity_too_small(s3, bucket):
    upload_id = start(s3, bucket)
    parts = [put_part(s3, bucket, "mp", upload_id, n, b"x" * KIB) for n in (1, 2)]
    s3_error(lambda: complete(s3, bucket, "mp", upload_id, parts), "EntityTooSmall", 400)
    s3_error(lambda: s3.head_object(Bucket=bucket, Key="mp"), "404", 404)
    # The upload survives a failed completion.
    assert len(s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id)["Parts"]) == 2


def test_wrong_part_etag_or_missing_part_is_invalid_part(s3, bucket):
    upload_id = start(s3, bucket)
    part = put_part(s3, bucket, "mp", upload_id, 1, b"data")
    wrong = {"PartNumber": 1, "ETag": quoted(md5_hex(b"other"))}
    s3_error(lambda: complete(s3, bucket, "mp", upload_id, [wrong]), "InvalidPart", 400)
    missing = {"PartNumber": 2, "ETag": part["ETag"]}
    s3_error(lambda: complete(s3, bucket, "mp", upload_id, [part, missing]), "InvalidPart", 400)
    s3_error(lambda: s3.head_object(Bucket=bucket, Key="mp"), "404", 404)
    complete(s3, bucket, "mp", upload_id, [part])
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"data"


def test_parts_out_of_order_is_invalid_part_order(s3, bucket):
    upload_id = start(s3, bucket)
    parts = [put_part(s3, bucket, "mp", upload_id, n, b"x" * KIB) for n in (1, 2)]
    s3_error(lambda: complete(s3, bucket, "mp", upload_id, parts[::-1]), "InvalidPartOrder", 400)
    s3_error(
        lambda: complete(s3, bucket, "mp", upload_id, [parts[0], parts[0]]),
        "InvalidPartOrder",
        400,
    )


def test_abort_then_upload_is_gone(s3, bucket):
    upload_id = start(s3, bucket)
    part = put_part(s3, bucket, "mp", upload_id, 1, b"data")
    aborted = s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id)
    assert aborted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert uploads_in(s3, bucket) == []
    s3_error(
        lambda: s3.upload_part(
            Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=2, Body=b"more"
        ),
        "NoSuchUpload",
        404,
    )
    s3_error(
        lambda: s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id), "NoSuchUpload", 404
    )
    s3_error(lambda: complete(s3, bucket, "mp", upload_id, [part]), "NoSuchUpload", 404)
    s3_error(
        lambda: s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id),
        "NoSuchUpload",
        404,
    )
    s3_error(lambda: s3.head_object(Bucket=bucket, Key="mp"), "404", 404)


def test_unknown_upload_id_and_wrong_key(s3, bucket):
    upload_id = start(s3, bucket, "right")
    s3_error(
        lambda: s3.upload_part(
            Bucket=bucket, Key="right", UploadId="0" * 32, PartNumber=1, Body=b"x"
        ),
        "NoSuchUpload",
        404,
    )
    s3_error(
        lambda: s3.upload_part(
            Bucket=bucket, Key="wrong", UploadId=upload_id, PartNumber=1, Body=b"x"
        ),
        "NoSuchUpload",
        404,
    )
    for number in (0, 10001):
        s3_error(
            partial(
                s3.upload_part,
                Bucket=bucket,
                Key="right",
                UploadId=upload_id,
                PartNumber=number,
                Body=b"x",
            ),
            "InvalidArgument",
            400,
        )
    put_part(s3, bucket, "right", upload_id, 10000, b"last possible part")


@pytest.mark.slow
def test_s3transfer_upload_and_download_40_mib(s3, bucket, tmp_path: Path):
    data = payload(40 * MIB, seed=40)
    source = tmp_path / "upload.bin"
    source.write_bytes(data)
    config = TransferConfig(
        multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB, max_concurrency=4
    )
    s3.upload_file(str(source), bucket, "transfer/40mib.bin", Config=config)

    head = s3.head_object(Bucket=bucket, Key="transfer/40mib.bin")
    assert head["ContentLength"] == len(data)
    chunks = [data[i : i + 8 * MIB] for i in range(0, len(data), 8 * MIB)]
    assert head["ETag"] == multipart_etag(chunks)

    target = tmp_path / "download.bin"
    s3.download_file(bucket, "transfer/40mib.bin", str(target), Config=config)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()


def test_get_and_head_by_part_number(s3, bucket):
    datas = [payload(PART, seed=7), payload(PART, seed=8), payload(1000, seed=9)]
    upload_id = start(s3, bucket)
    parts = [put_part(s3, bucket, "mp", upload_id, n, d) for n, d in enumerate(datas, 1)]
    complete(s3, bucket, "mp", upload_id, parts)
    offset = 0
    for number, data in enumerate(datas, 1):
        got = s3.get_object(Bucket=bucket, Key="mp", PartNumber=number)
        assert got["Body"].read() == data
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert got["PartsCount"] == 3
        total = sum(len(d) for d in datas)
        assert got["ContentRange"] == f"bytes {offset}-{offset + len(data) - 1}/{total}"
        head = s3.head_object(Bucket=bucket, Key="mp", PartNumber=number)
        assert head["ContentLength"] == len(data)
        offset += len(data)
    s3_error(lambda: s3.get_object(Bucket=bucket, Key="mp", PartNumber=4), "InvalidPartNumber", 416)
    s3_error(
        lambda: s3.get_object(Bucket=bucket, Key="mp", PartNumber=1, Range="bytes=0-1"),
        "InvalidRequest",
        400,
    )
