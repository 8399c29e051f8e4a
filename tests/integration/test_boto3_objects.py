"""PutObject / GetObject / HeadObject / DeleteObject through boto3: sizes, keys, headers, MD5."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.integration.boto3_support import KIB, MIB, md5_b64, md5_hex, payload, quoted, s3_error

INLINE_THRESHOLD = 128 * KIB  # objects up to this size live in the metadata record
BLOCK = 1 * MIB  # erasure block size


@pytest.mark.parametrize(
    "size",
    [
        0,
        1,
        INLINE_THRESHOLD - 1,
        INLINE_THRESHOLD,
        INLINE_THRESHOLD + 1,
        BLOCK - 1,
        BLOCK,
        BLOCK + 1,
        3 * MIB + 7,
    ],
)
def test_put_get_head_delete_round_trip(s3, bucket, size):
    data = payload(size, seed=size)
    put = s3.put_object(Bucket=bucket, Key=f"obj-{size}", Body=data)
    assert put["ETag"] == quoted(md5_hex(data))

    head = s3.head_object(Bucket=bucket, Key=f"obj-{size}")
    assert head["ContentLength"] == size
    assert head["ETag"] == quoted(md5_hex(data))
    assert head["ContentType"] == "binary/octet-stream"
    assert head["AcceptRanges"] == "bytes"
    assert "PartsCount" not in head

    got = s3.get_object(Bucket=bucket, Key=f"obj-{size}")
    assert got["ContentLength"] == size
    assert got["ETag"] == quoted(md5_hex(data))
    assert got["LastModified"] == head["LastModified"]
    assert got["Body"].read() == data

    deleted = s3.delete_object(Bucket=bucket, Key=f"obj-{size}")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    s3_error(lambda: s3.get_object(Bucket=bucket, Key=f"obj-{size}"), "NoSuchKey", 404)
    s3_error(lambda: s3.head_object(Bucket=bucket, Key=f"obj-{size}"), "404", 404)


def test_overwrite_small_with_large(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"small")
    data = payload(MIB + 1, seed=2)
    s3.put_object(Bucket=bucket, Key="k", Body=data)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == data


def test_overwrite_replaces_bytes_and_metadata(s3, bucket):
    s3.put_object(
        Bucket=bucket, Key="k", Body=payload(2 * MIB, 1), Metadata={"gen": "1"}, ContentType="a/b"
    )
    s3.put_object(Bucket=bucket, Key="k", Body=b"second")
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"second"
    assert got["Metadata"] == {}
    assert got["ContentType"] == "binary/octet-stream"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]


def test_last_modified_is_now(s3, bucket):
    before = datetime.now(UTC).replace(microsecond=0)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    head = s3.head_object(Bucket=bucket, Key="k")
    assert before <= head["LastModified"] <= datetime.now(UTC)


ODD_KEYS = [
    "unicode/日本語/ключ/😀.txt",
    "with spaces  in it",
    "plus+sign+",
    "percent%20literal%",
    "tilde~file~",
    "deeply/nested/path/to/an/object",
    "special !$&'()*,;=:@[]{}^`|\\\"<>",
    "question?mark#hash",
    "trailing/",
    "double//slash",
    "...dots...",
    "/leading-slash",
    "new\nline\ttab\x7f",
    "k" * 1024,
    "é" * 512,  # 1024 UTF-8 bytes
]


@pytest.mark.parametrize("key", ODD_KEYS, ids=range(len(ODD_KEYS)))
def test_odd_keys_round_trip(s3, bucket, key):
    data = key.encode() * 3
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(data)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [key]
    assert [o["Key"] for o in s3.list_objects(Bucket=bucket)["Contents"]] == [key]
    s3.delete_object(Bucket=bucket, Key=key)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


@pytest.mark.parametrize("key", ["k" * 1025, "é" * 513, "日" * 342])
def test_key_too_long(s3, bucket, key):
    s3_error(lambda: s3.put_object(Bucket=bucket, Key=key, Body=b"x"), "KeyTooLongError", 400)
    s3_error(lambda: s3.create_multipart_upload(Bucket=bucket, Key=key), "KeyTooLongError", 400)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_part_number_one_of_a_simple_object_is_the_whole_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"simple")
    got = s3.get_object(Bucket=bucket, Key="k", PartNumber=1)
    assert got["Body"].read() == b"simple"
    assert s3.head_object(Bucket=bucket, Key="k", PartNumber=1)["ContentLength"] == 6
    s3_error(lambda: s3.get_object(Bucket=bucket, Key="k", PartNumber=2), "InvalidPartNumber", 416)


def test_get_missing_key(s3, bucket):
    error = s3_error(lambda: s3.get_object(Bucket=bucket, Key="nope"), "NoSuchKey", 404)
    assert error.response["Error"]["Message"]


def test_delete_missing_key_is_success(s3, bucket):
    assert s3.delete_object(Bucket=bucket, Key="never")["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_standard_headers_and_user_metadata_round_trip(s3, bucket):
    expires = datetime(2031, 5, 17, 8, 30, 0, tzinfo=UTC)
    s3.put_object(
        Bucket=bucket,
        Key="doc.txt",
        Body=b"hello",
        ContentType="text/plain; charset=utf-8",
        ContentDisposition='attachment; filename="doc.txt"',
        ContentEncoding="identity",
        ContentLanguage="de-CH",
        CacheControl="max-age=3600, public",
        Expires=expires,
        Metadata={"color": "blue", "Mixed-Case": "Value With Spaces", "empty": ""},
    )
    for response in (
        s3.head_object(Bucket=bucket, Key="doc.txt"),
        s3.get_object(Bucket=bucket, Key="doc.txt"),
    ):
        assert response["ContentType"] == "text/plain; charset=utf-8"
        assert response["ContentDisposition"] == 'attachment; filename="doc.txt"'
        assert response["ContentEncoding"] == "identity"
        assert response["ContentLanguage"] == "de-CH"
        assert response["CacheControl"] == "max-age=3600, public"
        assert response["ExpiresString"] == "Sat, 17 May 2031 08:30:00 GMT"
        # S3 lower-cases user metadata names.
        assert response["Metadata"] == {
            "color": "blue",
            "mixed-case": "Value With Spaces",
            "empty": "",
        }


def test_response_header_overrides_on_get(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ContentType="text/plain")
    got = s3.get_object(
        Bucket=bucket,
        Key="k",
        ResponseContentType="application/json",
        ResponseContentDisposition="inline",
        ResponseCacheControl="no-cache",
        ResponseContentLanguage="fr",
        ResponseContentEncoding="identity",
    )
    assert got["ContentType"] == "application/json"
    assert got["ContentDisposition"] == "inline"
    assert got["CacheControl"] == "no-cache"
    assert got["ContentLanguage"] == "fr"
    assert got["ContentEncoding"] == "identity"
    # Overrides change the answer, not the object.
    assert s3.head_object(Bucket=bucket, Key="k")["ContentType"] == "text/plain"


def test_user_metadata_too_large(s3, bucket):
    # 2 KiB of names and values (without the x-amz-meta- prefix) is the limit.
    s3.put_object(Bucket=bucket, Key="fits", Body=b"x", Metadata={"k": "v" * 2047})
    assert s3.head_object(Bucket=bucket, Key="fits")["Metadata"] == {"k": "v" * 2047}
    s3_error(
        lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x", Metadata={"k": "v" * 2048}),
        "MetadataTooLarge",
        400,
    )
    s3_error(
        lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x", Metadata={"big": "v" * 2100}),
        "MetadataTooLarge",
        400,
    )
    s3_error(lambda: s3.head_object(Bucket=bucket, Key="k"), "404", 404)


@pytest.mark.parametrize("size", [0, 10, 2 * MIB + 3])
def test_content_md5_right_is_accepted(s3, bucket, size):
    data = payload(size, seed=3)
    put = s3.put_object(Bucket=bucket, Key="k", Body=data, ContentMD5=md5_b64(data))
    assert put["ETag"] == quoted(md5_hex(data))
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == data


@pytest.mark.parametrize("size", [0, 10, 2 * MIB + 3])
def test_content_md5_wrong_is_bad_digest_and_keeps_old_object(s3, bucket, size):
    s3.put_object(Bucket=bucket, Key="k", Body=b"previous")
    data = payload(size, seed=4)
    s3_error(
        lambda: s3.put_object(Bucket=bucket, Key="k", Body=data, ContentMD5=md5_b64(b"other")),
        "BadDigest",
        400,
    )
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"previous"
    s3_error(
        lambda: s3.put_object(Bucket=bucket, Key="new", Body=data, ContentMD5=md5_b64(b"other")),
        "BadDigest",
        400,
    )
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]


def test_content_md5_malformed_is_invalid_digest(s3, bucket):
    s3_error(
        lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x", ContentMD5="not-base64!"),
        "InvalidDigest",
        400,
    )
    s3_error(lambda: s3.head_object(Bucket=bucket, Key="k"), "404", 404)


@pytest.mark.parametrize(
    ("extra", "code", "status"),
    [
        ({"ServerSideEncryption": "AES256"}, "NotImplemented", 501),
        ({"Tagging": "a=b"}, "NotImplemented", 501),
        ({"StorageClass": "GLACIER"}, "InvalidStorageClass", 400),
    ],
)
def test_unsupported_features_are_refused_not_ignored(s3, bucket, extra, code, status):
    s3_error(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x", **extra), code, status)
    s3_error(lambda: s3.head_object(Bucket=bucket, Key="k"), "404", 404)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", StorageClass="STANDARD")
