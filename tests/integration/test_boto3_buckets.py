"""Bucket operations through boto3 against a real server: list, create, head, delete, location."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.boto3_support import s3_error

_names = iter(range(1_000_000))


def new_name(tag: str) -> str:
    return f"bk-{tag}-{os.getpid()}-{next(_names)}"


def test_create_then_list_shows_bucket_with_creation_date(s3):
    name = new_name("list")
    before = datetime.now(UTC) - timedelta(seconds=2)
    s3.create_bucket(Bucket=name)
    listed = s3.list_buckets()
    entry = next(b for b in listed["Buckets"] if b["Name"] == name)
    assert before <= entry["CreationDate"] <= datetime.now(UTC) + timedelta(seconds=2)
    assert listed["Owner"]["ID"]
    names = [b["Name"] for b in listed["Buckets"]]
    assert names == sorted(names)


@pytest.mark.parametrize("stem", ["a.b-c", "0123", "x" * 40, "dots.in.the.name"])
def test_valid_bucket_names_work_end_to_end(s3, stem):
    name = f"{stem}-{os.getpid()}-{next(_names)}"[:63]
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"v")
    assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"v"
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)


def test_create_existing_bucket_is_already_owned_by_you(s3):
    name = new_name("dup")
    s3.create_bucket(Bucket=name)
    s3_error(lambda: s3.create_bucket(Bucket=name), "BucketAlreadyOwnedByYou", 409)


@pytest.mark.parametrize(
    "name",
    ["ab", "Upper-Case", "under_score", "-leading", "trailing-", "a..b", "192.168.5.4", "x" * 64],
)
def test_create_invalid_bucket_name(s3, name):
    s3_error(lambda: s3.create_bucket(Bucket=name), "InvalidBucketName", 400)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_get_bucket_location(s3, bucket):
    location = s3.get_bucket_location(Bucket=bucket)
    assert location["ResponseMetadata"]["HTTPStatusCode"] == 200
    # S3 reports us-east-1 as an empty LocationConstraint, which boto3 turns into None.
    assert location["LocationConstraint"] is None


def test_create_bucket_in_another_region_is_refused(s3):
    name = new_name("eu")
    s3_error(
        lambda: s3.create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-3"}
        ),
        "InvalidArgument",
        400,
    )
    s3_error(lambda: s3.head_bucket(Bucket=name), "404", 404)


def test_head_bucket(s3, bucket):
    head = s3.head_bucket(Bucket=bucket)
    assert head["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"


def test_head_missing_bucket_is_404(s3):
    # HEAD answers carry no body: botocore reports the status as the code.
    s3_error(lambda: s3.head_bucket(Bucket=new_name("missing")), "404", 404)


def test_get_bucket_location_of_missing_bucket(s3):
    s3_error(lambda: s3.get_bucket_location(Bucket=new_name("nope")), "NoSuchBucket", 404)


def test_delete_bucket_refuses_while_not_empty_then_succeeds(s3):
    name = new_name("del")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="dir/obj", Body=b"x")
    s3_error(lambda: s3.delete_bucket(Bucket=name), "BucketNotEmpty", 409)
    assert s3.get_object(Bucket=name, Key="dir/obj")["Body"].read() == b"x"

    s3.delete_object(Bucket=name, Key="dir/obj")
    deleted = s3.delete_bucket(Bucket=name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3_error(lambda: s3.head_bucket(Bucket=name), "404", 404)
    s3_error(lambda: s3.delete_bucket(Bucket=name), "NoSuchBucket", 404)


def test_delete_bucket_with_pending_upload_is_not_empty(s3):
    name = new_name("mpu")
    s3.create_bucket(Bucket=name)
    upload = s3.create_multipart_upload(Bucket=name, Key="pending")
    s3_error(lambda: s3.delete_bucket(Bucket=name), "BucketNotEmpty", 409)
    s3.abort_multipart_upload(Bucket=name, Key="pending", UploadId=upload["UploadId"])
    s3.delete_bucket(Bucket=name)


def test_recreate_deleted_bucket_is_empty(s3):
    name = new_name("again")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"old")
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)
    s3.create_bucket(Bucket=name)
    assert s3.list_objects_v2(Bucket=name)["KeyCount"] == 0
    s3_error(lambda: s3.get_object(Bucket=name, Key="k"), "NoSuchKey", 404)


def test_object_operations_on_missing_bucket(s3):
    name = new_name("ghost")
    s3_error(lambda: s3.put_object(Bucket=name, Key="k", Body=b"x"), "NoSuchBucket", 404)
    s3_error(lambda: s3.get_object(Bucket=name, Key="k"), "NoSuchBucket", 404)
    s3_error(lambda: s3.list_objects_v2(Bucket=name), "NoSuchBucket", 404)
    s3_error(lambda: s3.list_objects(Bucket=name), "NoSuchBucket", 404)
    s3_error(lambda: s3.create_multipart_upload(Bucket=name, Key="k"), "NoSuchBucket", 404)
    s3_error(lambda: s3.list_multipart_uploads(Bucket=name), "NoSuchBucket", 404)
