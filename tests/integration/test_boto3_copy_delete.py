"""DeleteObjects and CopyObject through boto3."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from tests.integration.boto3_support import MIB, md5_hex, payload, quoted, s3_error


def keys_in(s3, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


# --- DeleteObjects ---------------------------------------------------------------------------


def test_delete_objects_verbose_reports_every_key_including_missing(s3, bucket):
    present = ["a", "b/c", "ü n i", "plus+key", "xml&<>\"'chars", "  spaces  "]
    for key in present:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    s3.put_object(Bucket=bucket, Key="keep", Body=b"keep")
    asked = [*present, "missing-1", "missing/2"]
    result = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": k} for k in asked], "Quiet": False}
    )
    assert sorted(d["Key"] for d in result["Deleted"]) == sorted(asked)
    assert result.get("Errors", []) == []
    assert keys_in(s3, bucket) == ["keep"]


def test_delete_objects_quiet_reports_nothing_on_success(s3, bucket):
    for i in range(20):
        s3.put_object(Bucket=bucket, Key=f"k{i:02}", Body=b"x")
    result = s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": f"k{i:02}"} for i in range(0, 25, 2)], "Quiet": True},
    )
    assert "Deleted" not in result
    assert result.get("Errors", []) == []
    assert keys_in(s3, bucket) == [f"k{i:02}" for i in range(1, 20, 2)]


def test_delete_objects_quiet_still_reports_errors(s3, bucket):
    s3.put_object(Bucket=bucket, Key="good", Body=b"x")
    result = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "bad/../key"}, {"Key": "good"}], "Quiet": True}
    )
    assert "Deleted" not in result
    assert [(e["Key"], e["Code"]) for e in result["Errors"]] == [("bad/../key", "InvalidArgument")]
    assert keys_in(s3, bucket) == []


def test_delete_objects_large_objects_are_gone(s3, bucket):
    s3.put_object(Bucket=bucket, Key="big", Body=payload(2 * MIB + 1))
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "big"}]})
    s3_error(lambda: s3.get_object(Bucket=bucket, Key="big"), "NoSuchKey", 404)


def test_delete_objects_on_missing_bucket(s3):
    s3_error(
        lambda: s3.delete_objects(Bucket="no-such-bucket-xyz", Delete={"Objects": [{"Key": "a"}]}),
        "NoSuchBucket",
        404,
    )


def test_delete_objects_empty_list_is_malformed(s3, bucket):
    # The model requires at least one <Object>; botocore does not validate this for us.
    s3_error(lambda: s3.delete_objects(Bucket=bucket, Delete={"Objects": []}), "MalformedXML", 400)


# --- CopyObject ------------------------------------------------------------------------------


@pytest.fixture
def source(s3, bucket):
    data = payload(3 * MIB + 7, seed=11)
    s3.put_object(
        Bucket=bucket,
        Key="src/original ü+.bin",
        Body=data,
        ContentType="application/x-original",
        CacheControl="no-store",
        Metadata={"origin": "source", "n": "1"},
    )
    return {"Bucket": bucket, "Key": "src/original ü+.bin"}, data


def test_copy_with_copy_directive_keeps_bytes_and_metadata(s3, bucket, source):
    src, data = source
    result = s3.copy_object(Bucket=bucket, Key="dst/copy", CopySource=src)
    assert result["CopyObjectResult"]["ETag"] == quoted(md5_hex(data))
    assert result["CopyObjectResult"]["LastModified"]
    got = s3.get_object(Bucket=bucket, Key="dst/copy")
    assert got["Body"].read() == data
    assert got["ETag"] == quoted(md5_hex(data))
    assert got["ContentType"] == "application/x-original"
    assert got["CacheControl"] == "no-store"
    assert got["Metadata"] == {"origin": "source", "n": "1"}
    # The source is untouched.
    assert s3.get_object(**src)["Body"].read() == data


def test_copy_ignores_new_metadata_without_replace(s3, bucket, source):
    src, _ = source
    s3.copy_object(
        Bucket=bucket,
        Key="dst",
        CopySource=src,
        MetadataDirective="COPY",
        Metadata={"ignored": "yes"},
        ContentType="text/ignored",
    )
    head = s3.head_object(Bucket=bucket, Key="dst")
    assert head["Metadata"] == {"origin": "source", "n": "1"}
    assert head["ContentType"] == "application/x-original"


def test_copy_with_replace_directive_replaces_metadata(s3, bucket, source):
    src, data = source
    s3.copy_object(
        Bucket=bucket,
        Key="dst",
        CopySource=src,
        MetadataDirective="REPLACE",
        ContentType="text/replaced",
        Metadata={"fresh": "new"},
    )
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == data
    assert got["ContentType"] == "text/replaced"
    assert got["Metadata"] == {"fresh": "new"}
    assert "CacheControl" not in got


def test_copy_onto_itself_with_replace_changes_metadata_only(s3, bucket, source):
    src, data = source
    s3.copy_object(**src, CopySource=src, MetadataDirective="REPLACE", Metadata={"edited": "true"})
    got = s3.get_object(**src)
    assert got["Body"].read() == data
    assert got["Metadata"] == {"edited": "true"}
    assert got["ContentType"] == "binary/octet-stream"


def test_copy_onto_itself_without_replace_is_invalid_request(s3, bucket, source):
    src, _ = source
    s3_error(lambda: s3.copy_object(**src, CopySource=src), "InvalidRequest", 400)
    s3_error(
        lambda: s3.copy_object(**src, CopySource=src, MetadataDirective="COPY"),
        "InvalidRequest",
        400,
    )
    assert s3.head_object(**src)["Metadata"] == {"origin": "source", "n": "1"}


def test_copy_across_buckets_small_object(s3, bucket):
    other = f"{bucket}-other"
    s3.create_bucket(Bucket=other)
    s3.put_object(Bucket=bucket, Key="tiny", Body=b"tiny")
    s3.copy_object(Bucket=other, Key="tiny-copy", CopySource={"Bucket": bucket, "Key": "tiny"})
    assert s3.get_object(Bucket=other, Key="tiny-copy")["Body"].read() == b"tiny"


def test_copy_empty_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    result = s3.copy_object(Bucket=bucket, Key="e2", CopySource={"Bucket": bucket, "Key": "empty"})
    assert result["CopyObjectResult"]["ETag"] == quoted(md5_hex(b""))
    assert s3.get_object(Bucket=bucket, Key="e2")["Body"].read() == b""


def test_copy_missing_source(s3, bucket):
    s3_error(
        lambda: s3.copy_object(Bucket=bucket, Key="d", CopySource={"Bucket": bucket, "Key": "no"}),
        "NoSuchKey",
        404,
    )
    s3_error(
        lambda: s3.copy_object(
            Bucket=bucket, Key="d", CopySource={"Bucket": "no-such-bucket-xyz", "Key": "k"}
        ),
        "NoSuchBucket",
        404,
    )
    assert keys_in(s3, bucket) == []


def test_copy_source_if_match(s3, bucket, source):
    src, data = source
    etag = quoted(md5_hex(data))
    s3.copy_object(Bucket=bucket, Key="ok", CopySource=src, CopySourceIfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="ok")["Body"].read() == data
    s3_error(
        lambda: s3.copy_object(
            Bucket=bucket, Key="bad", CopySource=src, CopySourceIfMatch='"0123456789abcdef"'
        ),
        "PreconditionFailed",
        412,
    )
    s3_error(lambda: s3.head_object(Bucket=bucket, Key="bad"), "404", 404)


def test_copy_source_if_none_match_and_dates(s3, bucket, source):
    src, data = source
    etag = quoted(md5_hex(data))
    past = datetime.now(UTC) - timedelta(days=1)
    future = datetime.now(UTC) + timedelta(days=1)
    failing: list[dict[str, object]] = [
        {"CopySourceIfNoneMatch": etag},
        {"CopySourceIfModifiedSince": future},
        {"CopySourceIfUnmodifiedSince": past},
    ]
    for condition in failing:
        s3_error(
            partial(s3.copy_object, Bucket=bucket, Key="bad", CopySource=src, **condition),
            "PreconditionFailed",
            412,
        )
    passing: list[dict[str, object]] = [
        {"CopySourceIfNoneMatch": '"other"'},
        {"CopySourceIfModifiedSince": past},
        {"CopySourceIfUnmodifiedSince": future},
        # If-Match true makes If-Unmodified-Since irrelevant.
        {"CopySourceIfMatch": etag, "CopySourceIfUnmodifiedSince": past},
    ]
    for condition in passing:
        s3.copy_object(Bucket=bucket, Key="good", CopySource=src, **condition)
    assert keys_in(s3, bucket) == ["good", src["Key"]]


def test_copy_destination_key_too_long(s3, bucket, source):
    src, _ = source
    s3_error(
        lambda: s3.copy_object(Bucket=bucket, Key="k" * 1025, CopySource=src),
        "KeyTooLongError",
        400,
    )
