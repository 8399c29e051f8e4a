"""Range GETs and conditional requests (reads and writes) through boto3."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import Server, boto3_client
from tests.integration.boto3_support import KIB, MIB, md5_hex, payload, quoted, s3_error

SIZE = 3 * MIB + 7  # three full 1 MiB erasure blocks and a 7-byte tail
DATA = payload(SIZE, seed=77)
SMALL = payload(100, seed=5)  # stored inline


@pytest.fixture(scope="module")
def objects(server: Server) -> Iterator[tuple[Any, str]]:
    client = boto3_client(server)
    name = f"ranges-{os.getpid()}"
    client.create_bucket(Bucket=name)
    client.put_object(Bucket=name, Key="big", Body=DATA)
    client.put_object(Bucket=name, Key="small", Body=SMALL)
    client.put_object(Bucket=name, Key="empty", Body=b"")
    yield client, name


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=0-9", 0, 9),
        (f"bytes={MIB - 1}-{MIB}", MIB - 1, MIB),  # across the first block boundary
        (f"bytes={MIB - 10}-{2 * MIB + 10}", MIB - 10, 2 * MIB + 10),  # three blocks
        (f"bytes={MIB}-{2 * MIB - 1}", MIB, 2 * MIB - 1),  # exactly the second block
        (f"bytes={3 * MIB - 1}-", 3 * MIB - 1, SIZE - 1),  # into the short tail block
        ("bytes=100-", 100, SIZE - 1),
        ("bytes=-7", SIZE - 7, SIZE - 1),
        ("bytes=-1", SIZE - 1, SIZE - 1),
        (f"bytes=-{MIB + 1}", SIZE - MIB - 1, SIZE - 1),
        (f"bytes=-{SIZE + 100}", 0, SIZE - 1),  # suffix longer than the object
        (f"bytes=5-{SIZE + 100}", 5, SIZE - 1),  # end clamped
        (f"bytes={SIZE - 1}-{SIZE - 1}", SIZE - 1, SIZE - 1),
    ],
)
def test_range_get(objects, header, first, last):
    client, bucket = objects
    got = client.get_object(Bucket=bucket, Key="big", Range=header)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == f"bytes {first}-{last}/{SIZE}"
    assert got["ContentLength"] == last - first + 1
    assert got["ETag"] == quoted(md5_hex(DATA))
    assert got["Body"].read() == DATA[first : last + 1]


def test_range_head(objects):
    client, bucket = objects
    head = client.head_object(Bucket=bucket, Key="big", Range=f"bytes={MIB}-{MIB + 99}")
    assert head["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert head["ContentLength"] == 100
    assert head["ContentRange"] == f"bytes {MIB}-{MIB + 99}/{SIZE}"


@pytest.mark.parametrize("header", ["bytes=10-19", "bytes=-3", "bytes=99-"])
def test_range_on_inline_object(objects, header):
    client, bucket = objects
    first, _, last = header.removeprefix("bytes=").partition("-")
    start = 100 - int(last) if not first else int(first)
    end = int(last) if first and last else 99
    got = client.get_object(Bucket=bucket, Key="small", Range=header)
    assert got["ContentRange"] == f"bytes {start}-{end}/100"
    assert got["Body"].read() == SMALL[start : end + 1]


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", f"bytes={SIZE + 5}-{SIZE + 10}", "bytes=-0"])
def test_range_beyond_end_is_invalid_range(objects, header):
    client, bucket = objects
    error = s3_error(
        lambda: client.get_object(Bucket=bucket, Key="big", Range=header), "InvalidRange", 416
    )
    assert error.response["Error"].get("ActualObjectSize") == str(SIZE)
    s3_error(lambda: client.head_object(Bucket=bucket, Key="big", Range=header), "416", 416)


@pytest.mark.parametrize("header", ["bytes=0-0", "bytes=0-", "bytes=0-100"])
def test_range_on_empty_object_is_invalid_range(objects, header):
    client, bucket = objects
    s3_error(
        lambda: client.get_object(Bucket=bucket, Key="empty", Range=header), "InvalidRange", 416
    )


def test_suffix_range_on_empty_object_is_the_empty_object(objects):
    client, bucket = objects
    got = client.get_object(Bucket=bucket, Key="empty", Range="bytes=-5")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert got["Body"].read() == b""


@pytest.mark.parametrize("header", ["bytes=5-2", "bytes=0-1,5-6", "items=0-1", "bytes=abc"])
def test_unparsable_or_multi_range_is_ignored(objects, header):
    client, bucket = objects
    got = client.get_object(Bucket=bucket, Key="small", Range=header)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert "ContentRange" not in got
    assert got["Body"].read() == SMALL


# --- conditional reads -----------------------------------------------------------------------


def read_both(client, bucket: str, **conditions: object) -> list[int]:
    """HTTP status of GET and HEAD with ``conditions`` (304/412 come back as errors)."""
    statuses = []
    for call in (client.get_object, client.head_object):
        try:
            response = call(Bucket=bucket, Key="small", **conditions)
            statuses.append(response["ResponseMetadata"]["HTTPStatusCode"])
        except client.exceptions.ClientError as exc:
            statuses.append(exc.response["ResponseMetadata"]["HTTPStatusCode"])
    return statuses


def test_conditional_reads(objects):
    client, bucket = objects
    head = client.head_object(Bucket=bucket, Key="small")
    etag, modified = head["ETag"], head["LastModified"]
    hour = timedelta(hours=1)
    cases = [
        ({"IfMatch": etag}, 200),
        ({"IfMatch": etag.strip('"')}, 200),
        ({"IfMatch": f'"nope", {etag}'}, 200),
        ({"IfMatch": "*"}, 200),
        ({"IfMatch": '"0000"'}, 412),
        ({"IfNoneMatch": etag}, 304),
        ({"IfNoneMatch": "*"}, 304),
        ({"IfNoneMatch": '"0000"'}, 200),
        ({"IfModifiedSince": modified - hour}, 200),
        ({"IfModifiedSince": modified}, 304),
        ({"IfModifiedSince": modified + hour}, 304),
        ({"IfUnmodifiedSince": modified - hour}, 412),
        ({"IfUnmodifiedSince": modified}, 200),
        ({"IfUnmodifiedSince": modified + hour}, 200),
        # If-Match true overrides If-Unmodified-Since false; If-None-Match wins over IMS.
        ({"IfMatch": etag, "IfUnmodifiedSince": modified - hour}, 200),
        ({"IfNoneMatch": etag, "IfModifiedSince": modified - hour}, 304),
        ({"IfMatch": '"0000"', "IfNoneMatch": etag}, 412),
    ]
    for conditions, status in cases:
        assert read_both(client, bucket, **conditions) == [status, status], conditions


def test_precondition_failed_on_get_names_the_error(objects):
    client, bucket = objects
    s3_error(
        lambda: client.get_object(Bucket=bucket, Key="small", IfMatch='"0000"'),
        "PreconditionFailed",
        412,
    )


def test_not_modified_carries_the_etag(objects):
    client, bucket = objects
    etag = quoted(md5_hex(SMALL))
    error = s3_error(
        lambda: client.get_object(Bucket=bucket, Key="small", IfNoneMatch=etag), "304", 304
    )
    # Caches revalidate with the 304's validators (RFC 9110 15.4.5); S3 sends them.
    headers = error.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers.get("etag") == etag
    assert headers.get("last-modified")


def test_conditional_read_of_missing_key_is_404(objects):
    client, bucket = objects
    s3_error(
        lambda: client.get_object(Bucket=bucket, Key="absent", IfNoneMatch="*"), "NoSuchKey", 404
    )


# --- conditional writes ----------------------------------------------------------------------


def test_put_if_none_match_star(s3, bucket):
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"first", IfNoneMatch="*")
    assert first["ETag"] == quoted(md5_hex(b"first"))
    s3_error(
        lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"second", IfNoneMatch="*"),
        "PreconditionFailed",
        412,
    )
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"first"
    # Large bodies are refused the same way (the check is not only for inline objects).
    s3_error(
        lambda: s3.put_object(Bucket=bucket, Key="k", Body=payload(MIB + 1), IfNoneMatch="*"),
        "PreconditionFailed",
        412,
    )
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"first"


def test_put_if_match(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v1")
    s3_error(
        lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"v2", IfMatch=quoted(md5_hex(b"x"))),
        "PreconditionFailed",
        412,
    )
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v1"
    s3.put_object(Bucket=bucket, Key="k", Body=b"v2", IfMatch=quoted(md5_hex(b"v1")))
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v2"
    s3_error(
        lambda: s3.put_object(Bucket=bucket, Key="new", Body=b"x", IfMatch=quoted(md5_hex(b"v"))),
        "NoSuchKey",
        404,
    )


def test_complete_multipart_if_none_match_star(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"existing")
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"p")[
        "ETag"
    ]

    def complete(**condition):
        return s3.complete_multipart_upload(
            Bucket=bucket,
            Key="k",
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
            **condition,
        )

    s3_error(lambda: complete(IfNoneMatch="*"), "PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"existing"
    complete(IfMatch=quoted(md5_hex(b"existing")))
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"p"


def test_small_and_large_puts_with_conditions_on_new_keys(s3, bucket):
    for i, size in enumerate([0, KIB, 2 * MIB]):
        data = payload(size, seed=i)
        s3.put_object(Bucket=bucket, Key=f"new-{i}", Body=data, IfNoneMatch="*")
        assert s3.get_object(Bucket=bucket, Key=f"new-{i}")["Body"].read() == data
