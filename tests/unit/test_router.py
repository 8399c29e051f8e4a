"""The S3 router: every operation and every routing error, from a table.

Two tables: hand-written requests (method, raw path, query, headers) -> the operation value or the
S3 error; and the requests boto3 itself sends for each call, captured before they leave the
process, so the router is checked against what a real client puts on the wire.
"""

from __future__ import annotations

import contextlib
import doctest
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, get_args
from urllib.parse import parse_qsl, urlsplit

import boto3
import botocore.exceptions
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.config import Config

from gateway import errors, router
from gateway.operations import (
    AbortMultipartUpload,
    ByteRange,
    CompleteMultipartUpload,
    CopyObject,
    CopySource,
    CreateBucket,
    CreateMultipartUpload,
    DeleteBucket,
    DeleteObject,
    DeleteObjects,
    GetBucketLocation,
    GetBucketVersioning,
    GetObject,
    HeadBucket,
    HeadObject,
    ListBuckets,
    ListMultipartUploads,
    ListObjects,
    ListObjectsV2,
    ListParts,
    Operation,
    PutObject,
    UploadPart,
    UploadPartCopy,
)
from gateway.router import route

Query = Sequence[tuple[str, str]]
Headers = Mapping[str, str]
COPY = "x-amz-copy-source"

# (method, raw path, query, headers) -> operation
ROUTES: list[tuple[str, str, Query, Headers, Operation]] = [
    # service
    ("GET", "/", [], {}, ListBuckets()),
    ("GET", "/", [("x-id", "ListBuckets")], {}, ListBuckets()),
    # bucket
    ("PUT", "/photos", [], {}, CreateBucket("photos")),
    ("PUT", "/photos/", [], {}, CreateBucket("photos")),
    ("HEAD", "/photos", [], {}, HeadBucket("photos")),
    ("DELETE", "/photos", [], {}, DeleteBucket("photos")),
    ("GET", "/photos", [("location", "")], {}, GetBucketLocation("photos")),
    ("GET", "/photos", [("versioning", "")], {}, GetBucketVersioning("photos")),
    ("POST", "/photos", [("delete", "")], {}, DeleteObjects("photos")),
    # ListObjects v1: defaults, then every parameter
    ("GET", "/photos", [], {}, ListObjects("photos")),
    ("GET", "/photos", [("list-type", "1")], {}, ListObjects("photos")),
    (
        "GET",
        "/photos",
        [
            ("prefix", "a b/"),
            ("delimiter", "/"),
            ("marker", "a b/c"),
            ("max-keys", "7"),
            ("encoding-type", "url"),
        ],
        {},
        ListObjects("photos", "a b/", "/", "a b/c", 7, "url"),
    ),
    ("GET", "/photos", [("delimiter", "")], {}, ListObjects("photos", delimiter=None)),
    ("GET", "/photos", [("max-keys", "0")], {}, ListObjects("photos", max_keys=0)),
    ("GET", "/photos", [("max-keys", "5000")], {}, ListObjects("photos", max_keys=1000)),
    ("GET", "/photos", [("max-keys", "2147483647")], {}, ListObjects("photos", max_keys=1000)),
    ("GET", "/photos", [("encoding-type", "URL")], {}, ListObjects("photos", encoding_type="url")),
    ("GET", "/photos", [("encoding-type", "")], {}, ListObjects("photos")),
    # ListObjectsV2
    ("GET", "/photos", [("list-type", "2")], {}, ListObjectsV2("photos")),
    (
        "GET",
        "/photos",
        [
            ("list-type", "2"),
            ("prefix", "p/"),
            ("delimiter", "|"),
            ("continuation-token", "tok=="),
            ("start-after", "p/a"),
            ("max-keys", "2"),
            ("encoding-type", "url"),
            ("fetch-owner", "true"),
        ],
        {},
        ListObjectsV2("photos", "p/", "|", "tok==", "p/a", 2, "url", True),
    ),
    (
        "GET",
        "/photos",
        [("list-type", "2"), ("fetch-owner", "FALSE"), ("max-keys", "1001")],
        {},
        ListObjectsV2("photos", max_keys=1000),
    ),
    # ListMultipartUploads
    ("GET", "/photos", [("uploads", "")], {}, ListMultipartUploads("photos")),
    (
        "GET",
        "/photos",
        [
            ("uploads", ""),
            ("prefix", "p"),
            ("delimiter", "/"),
            ("key-marker", "k"),
            ("upload-id-marker", "u"),
            ("max-uploads", "3"),
            ("encoding-type", "url"),
        ],
        {},
        ListMultipartUploads("photos", "p", "/", "k", "u", 3, "url"),
    ),
    # objects: keys are the percent-decoded rest of the path
    ("PUT", "/photos/cat.jpg", [], {}, PutObject("photos", "cat.jpg")),
    ("PUT", "/photos/a/b/c", [], {}, PutObject("photos", "a/b/c")),
    ("PUT", "/photos/a%2Fb", [], {}, PutObject("photos", "a/b")),
    ("PUT", "/photos/a%20b+c", [], {}, PutObject("photos", "a b+c")),
    ("PUT", "/photos/%C3%A9t%C3%A9%20%F0%9F%98%80", [], {}, PutObject("photos", "été 😀")),
    ("PUT", "/photos/été/plain-key_1.txt", [], {}, PutObject("photos", "été/plain-key_1.txt")),
    ("PUT", "/photos/%3F%23%25", [], {}, PutObject("photos", "?#%")),
    ("PUT", "/photos//lead", [], {}, PutObject("photos", "/lead")),
    ("PUT", "/photos/dir/", [], {}, PutObject("photos", "dir/")),
    ("PUT", "/photos/k?ignored=1", [], {}, PutObject("photos", "k")),  # aiohttp raw_path
    ("PUT", "/b%2Dx/k", [], {}, PutObject("b-x", "k")),
    ("GET", "/photos/k", [], {}, GetObject("photos", "k")),
    (
        "GET",
        "/photos/k",
        [
            ("versionId", "v1"),
            ("partNumber", "2"),
            ("response-content-type", "text/plain"),
            ("response-expires", "0"),
            ("x-id", "GetObject"),
        ],
        {},
        GetObject("photos", "k", "v1", 2, (("Content-Type", "text/plain"), ("Expires", "0"))),
    ),
    ("HEAD", "/photos/k", [], {}, HeadObject("photos", "k")),
    (
        "HEAD",
        "/photos/k",
        [("versionId", "null"), ("partNumber", "1")],
        {},
        HeadObject("photos", "k", "null", 1),
    ),
    ("DELETE", "/photos/k", [], {}, DeleteObject("photos", "k")),
    ("DELETE", "/photos/k", [("versionId", "v9")], {}, DeleteObject("photos", "k", "v9")),
    (
        "PUT",
        "/photos/dst",
        [],
        {COPY: "src/a%20b"},
        CopyObject("photos", "dst", CopySource("src", "a b")),
    ),
    (
        "PUT",
        "/photos/dst",
        [],
        {
            "X-Amz-Copy-Source": "/src/d/a%3Fb%2B?versionId=v%201",
            "X-Amz-Metadata-Directive": "REPLACE",
        },
        CopyObject("photos", "dst", CopySource("src", "d/a?b+", "v 1"), "REPLACE"),
    ),
    # multipart
    ("POST", "/photos/big", [("uploads", "")], {}, CreateMultipartUpload("photos", "big")),
    (
        "PUT",
        "/photos/big",
        [("partNumber", "1"), ("uploadId", "u1")],
        {},
        UploadPart("photos", "big", "u1", 1),
    ),
    (
        "PUT",
        "/photos/big",
        [("uploadId", "u1"), ("partNumber", "10000")],
        {},
        UploadPart("photos", "big", "u1", 10000),
    ),
    (
        "PUT",
        "/photos/big",
        [("partNumber", "2"), ("uploadId", "u1")],
        {COPY: "src/k"},
        UploadPartCopy("photos", "big", "u1", 2, CopySource("src", "k")),
    ),
    (
        "PUT",
        "/photos/big",
        [("partNumber", "2"), ("uploadId", "u1")],
        {COPY: "src/k?versionId=v", "x-amz-copy-source-range": "bytes=0-5242879"},
        UploadPartCopy(
            "photos", "big", "u1", 2, CopySource("src", "k", "v"), ByteRange(0, 5242879)
        ),
    ),
    (
        "POST",
        "/photos/big",
        [("uploadId", "u1")],
        {},
        CompleteMultipartUpload("photos", "big", "u1"),
    ),
    (
        "DELETE",
        "/photos/big",
        [("uploadId", "u1")],
        {},
        AbortMultipartUpload("photos", "big", "u1"),
    ),
    ("GET", "/photos/big", [("uploadId", "u1")], {}, ListParts("photos", "big", "u1")),
    (
        "GET",
        "/photos/big",
        [("uploadId", "u1"), ("max-parts", "9999"), ("part-number-marker", "4")],
        {},
        ListParts("photos", "big", "u1", 1000, 4),
    ),
    # unknown query parameters (presigned-URL fields, x-id) do not change the operation
    (
        "GET",
        "/photos/k",
        [("X-Amz-Algorithm", "AWS4-HMAC-SHA256"), ("X-Amz-Signature", "f00")],
        {},
        GetObject("photos", "k"),
    ),
    # a Host header is ignored without a virtual-host suffix
    ("GET", "/photos/k", [], {"Host": "other.s3.example.com"}, GetObject("photos", "k")),
]

# (method, raw path, query, headers) -> S3 error class
ERRORS: list[tuple[str, str, Query, Headers, type[errors.S3Error]]] = [
    # methods
    ("PATCH", "/photos/k", [], {}, errors.MethodNotAllowed),
    ("OPTIONS", "/photos/k", [], {}, errors.MethodNotAllowed),
    ("get", "/photos/k", [], {}, errors.MethodNotAllowed),
    ("PUT", "/", [], {}, errors.MethodNotAllowed),
    ("DELETE", "/", [], {}, errors.MethodNotAllowed),
    ("POST", "/", [], {}, errors.MethodNotAllowed),
    ("POST", "/photos/k", [], {}, errors.MethodNotAllowed),
    ("DELETE", "/photos", [("delete", "")], {}, errors.MethodNotAllowed),
    ("GET", "/photos/k", [("uploads", "")], {}, errors.MethodNotAllowed),
    ("POST", "/photos", [("uploads", "")], {}, errors.MethodNotAllowed),
    ("PUT", "/photos", [("location", "")], {}, errors.MethodNotAllowed),
    ("HEAD", "/photos/k", [("uploadId", "u")], {}, errors.MethodNotAllowed),
    # S3 features not implemented: 501 whatever the method
    ("GET", "/photos", [("acl", "")], {}, errors.NotImplemented),
    ("PUT", "/photos/k", [("acl", "")], {}, errors.NotImplemented),
    ("GET", "/photos/k", [("tagging", "")], {}, errors.NotImplemented),
    ("PUT", "/photos/k", [("tagging", "")], {}, errors.NotImplemented),
    ("DELETE", "/photos", [("policy", "")], {}, errors.NotImplemented),
    ("PUT", "/photos", [("cors", "")], {}, errors.NotImplemented),
    ("GET", "/photos", [("lifecycle", "")], {}, errors.NotImplemented),
    ("PUT", "/photos", [("website", "")], {}, errors.NotImplemented),
    ("GET", "/photos", [("versions", "")], {}, errors.NotImplemented),
    ("PUT", "/photos", [("versioning", "")], {}, errors.NotImplemented),
    ("POST", "/photos/k", [("restore", "")], {}, errors.NotImplemented),
    ("POST", "/photos/k", [("select", ""), ("select-type", "2")], {}, errors.NotImplemented),
    ("GET", "/photos/k", [("acl", ""), ("versionId", "v")], {}, errors.NotImplemented),
    ("POST", "/photos", [], {}, errors.NotImplemented),  # PostObject (browser form upload)
    # conflicting subresources
    ("POST", "/photos", [("delete", ""), ("uploads", "")], {}, errors.InvalidRequest),
    ("GET", "/photos", [("uploads", ""), ("acl", "")], {}, errors.NotImplemented),
    # paths
    ("GET", "photos/k", [], {}, errors.InvalidURI),
    ("GET", "", [], {}, errors.InvalidURI),
    ("GET", "/photos/%zz", [], {}, errors.InvalidURI),
    ("GET", "/photos/a%2", [], {}, errors.InvalidURI),
    ("GET", "/photos/%C3", [], {}, errors.InvalidURI),  # truncated UTF-8
    ("GET", "/photos/%FF", [], {}, errors.InvalidURI),
    ("GET", "/ph%otos/k", [], {}, errors.InvalidURI),
    ("GET", "//k", [], {}, errors.InvalidBucketName),
    ("GET", "//", [], {}, errors.InvalidBucketName),
    ("PUT", "//k", [("uploadId", "u"), ("partNumber", "1")], {}, errors.InvalidBucketName),
    # numbers
    *[
        ("GET", "/photos", [("max-keys", bad)], {}, errors.InvalidArgument)
        for bad in (
            "-1",
            "abc",
            "1.5",
            "+5",
            " 5",
            "5 ",
            "1_0",
            "\u0661",
            "",
            "2147483648",
            "9" * 50,
        )
    ],
    ("GET", "/photos", [("list-type", "2"), ("max-keys", "-5")], {}, errors.InvalidArgument),
    ("GET", "/photos", [("uploads", ""), ("max-uploads", "x")], {}, errors.InvalidArgument),
    ("GET", "/photos/k", [("uploadId", "u"), ("max-parts", "-1")], {}, errors.InvalidArgument),
    (
        "GET",
        "/photos/k",
        [("uploadId", "u"), ("part-number-marker", "-1")],
        {},
        errors.InvalidArgument,
    ),
    *[
        ("PUT", "/photos/k", [("partNumber", bad), ("uploadId", "u")], {}, errors.InvalidArgument)
        for bad in ("0", "10001", "-1", "x", "", "1e3", "99999999999")
    ],
    ("GET", "/photos/k", [("partNumber", "0")], {}, errors.InvalidArgument),
    ("HEAD", "/photos/k", [("partNumber", "10001")], {}, errors.InvalidArgument),
    ("PUT", "/photos/k", [("partNumber", "1")], {}, errors.InvalidArgument),  # no uploadId
    ("PUT", "/photos/k", [("uploadId", "u")], {}, errors.InvalidArgument),  # no partNumber
    # other parameters
    ("GET", "/photos", [("encoding-type", "base64")], {}, errors.InvalidArgument),
    ("GET", "/photos", [("list-type", "3")], {}, errors.InvalidArgument),
    ("GET", "/photos", [("list-type", "2"), ("fetch-owner", "yes")], {}, errors.InvalidArgument),
    ("GET", "/photos/k", [("versionId", "")], {}, errors.InvalidArgument),
    ("DELETE", "/photos/k", [("versionId", "")], {}, errors.InvalidArgument),
    ("GET", "/photos", [("prefix", "a"), ("prefix", "b")], {}, errors.InvalidArgument),
    (
        "GET",
        "/photos/k",
        [("response-content-type", "a"), ("response-content-type", "b")],
        {},
        errors.InvalidArgument,
    ),
    # copy source
    *[
        ("PUT", "/photos/k", [], {COPY: bad}, errors.InvalidArgument)
        for bad in (
            "",
            "/",
            "src",
            "/src",
            "/src/",
            "//k",
            "src/k?versionId=",
            "src/k?versionId",
            "src/k?other=1",
            "src/%zz",
            "src/%FF",
        )
    ],
    *[
        (
            "PUT",
            "/photos/k",
            [("partNumber", "1"), ("uploadId", "u")],
            {COPY: "src/k", "x-amz-copy-source-range": bad},
            errors.InvalidArgument,
        )
        for bad in ("bytes=5-1", "bytes=0-", "bytes=-5", "0-5", "bytes=a-b", "bytes=0-1,3-4", "")
    ],
    (
        "PUT",
        "/photos/k",
        [],
        {COPY: "src/k", "x-amz-metadata-directive": "MOVE"},
        errors.InvalidArgument,
    ),
    (
        "PUT",
        "/photos/k",
        [],
        {COPY: "src/k", "x-amz-metadata-directive": "copy"},
        errors.InvalidArgument,
    ),
]


@pytest.mark.parametrize(("method", "path", "query", "headers", "expected"), ROUTES)
def test_route(method: str, path: str, query: Query, headers: Headers, expected: Operation):
    assert route(method, path, query, headers) == expected


@pytest.mark.parametrize(("method", "path", "query", "headers", "error"), ERRORS)
def test_route_error(
    method: str, path: str, query: Query, headers: Headers, error: type[errors.S3Error]
):
    with pytest.raises(error) as caught:
        route(method, path, query, headers)
    assert type(caught.value) is error


def test_every_operation_has_a_route():
    routed = {type(expected) for *_, expected in ROUTES}
    assert routed == set(get_args(Operation))


SUFFIX = "s3.example.com"

# Host header -> (method, raw path) -> operation, with virtual_host_suffix=SUFFIX
VIRTUAL_HOST: list[tuple[str, str, str, Operation]] = [
    ("photos.s3.example.com", "GET", "/", ListObjects("photos")),
    ("photos.s3.example.com", "PUT", "/", CreateBucket("photos")),
    ("photos.s3.example.com:9000", "GET", "/a/b%20c", GetObject("photos", "a/b c")),
    ("PHOTOS.S3.Example.COM", "HEAD", "/k", HeadObject("photos", "k")),
    ("photos.s3.example.com.", "GET", "/k", GetObject("photos", "k")),
    ("my.dotted.bucket.s3.example.com", "GET", "/k", GetObject("my.dotted.bucket", "k")),
    ("photos.s3.example.com", "GET", "//k", GetObject("photos", "/k")),
    # the bare endpoint, or any other host, is path style
    ("s3.example.com", "GET", "/photos/k", GetObject("photos", "k")),
    ("s3.example.com:9000", "GET", "/", ListBuckets()),
    ("127.0.0.1:9000", "GET", "/photos/k", GetObject("photos", "k")),
    ("[::1]:9000", "GET", "/photos/k", GetObject("photos", "k")),
    ("photos.s3.example.org", "GET", "/photos/k", GetObject("photos", "k")),
    ("xs3.example.com", "GET", "/photos/k", GetObject("photos", "k")),
]


@pytest.mark.parametrize(("host", "method", "path", "expected"), VIRTUAL_HOST)
def test_virtual_host(host: str, method: str, path: str, expected: Operation):
    assert route(method, path, [], {"Host": host}, virtual_host_suffix=SUFFIX) == expected


def test_virtual_host_with_an_empty_bucket_label():
    with pytest.raises(errors.InvalidBucketName):
        route("GET", "/k", [], {"host": ".s3.example.com"}, virtual_host_suffix=SUFFIX)


def test_virtual_host_without_a_host_header_is_path_style():
    assert route("GET", "/b/k", [], {}, virtual_host_suffix=SUFFIX) == GetObject("b", "k")


def test_errors_name_the_argument():
    with pytest.raises(errors.InvalidArgument) as caught:
        route("GET", "/photos", [("max-keys", "ten")], {})
    assert caught.value.extra == {"ArgumentName": "max-keys", "ArgumentValue": "ten"}


def test_operations_are_frozen_values():
    op = route("GET", "/photos/k", [], {})
    assert isinstance(op, GetObject)
    with pytest.raises(AttributeError):
        op.key = "other"  # type: ignore[misc]
    assert {op, route("GET", "/photos/k", [], {})} == {GetObject("photos", "k")}


def test_docstring_examples():
    assert doctest.testmod(router).failed == 0


# --- what boto3 really sends -------------------------------------------------------------------


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        yield self.body


class Wire:
    """A boto3 client whose requests are captured instead of sent (answered 200, no content)."""

    def __init__(self, addressing_style: Literal["path", "virtual"]) -> None:
        self.sent: list[AWSPreparedRequest] = []
        self.client = boto3.client(
            "s3",
            region_name="us-east-1",
            endpoint_url="http://s3.example.com:9000",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="secret",
            config=Config(
                s3={"addressing_style": addressing_style},
                retries={"total_max_attempts": 1},
            ),
        )
        self.client.meta.events.register("before-send.s3", self._send)

    # -> Any, not AWSResponse: botocore-stubs type event handlers as returning None.
    def _send(self, request: AWSPreparedRequest, **kwargs: Any) -> Any:
        self.sent.append(request)
        return AWSResponse(request.url, 200, HTTPHeaders(), _Raw(b"<Nothing/>"))

    def route(self, call: Callable[[Any], object]) -> Operation:
        self.sent.clear()
        # The dummy answer may not be what boto3 expects; the request was sent all the same.
        with contextlib.suppress(botocore.exceptions.BotoCoreError):
            call(self.client)
        (request,) = self.sent
        url = urlsplit(request.url)
        headers = {name: _text(value) for name, value in request.headers.items()}
        headers.setdefault("Host", url.netloc)
        raw_path = url.path or "/"
        query = parse_qsl(url.query, keep_blank_values=True)
        return route(request.method, raw_path, query, headers, virtual_host_suffix=SUFFIX)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


WEIRD_KEY = "dir/été 😀 a+b?c#d%e&f=g~h'i\"j<k>l:m;n,o/"

# boto3 call -> operation the router must produce (encoding-type=url is added by botocore itself)
BOTO3_CALLS: list[tuple[str, Callable[[Any], object], Operation]] = [
    ("list_buckets", lambda c: c.list_buckets(), ListBuckets()),
    ("create_bucket", lambda c: c.create_bucket(Bucket="b1"), CreateBucket("b1")),
    ("head_bucket", lambda c: c.head_bucket(Bucket="b1"), HeadBucket("b1")),
    ("delete_bucket", lambda c: c.delete_bucket(Bucket="b1"), DeleteBucket("b1")),
    (
        "get_bucket_location",
        lambda c: c.get_bucket_location(Bucket="b1"),
        GetBucketLocation("b1"),
    ),
    (
        "get_bucket_versioning",
        lambda c: c.get_bucket_versioning(Bucket="b1"),
        GetBucketVersioning("b1"),
    ),
    (
        "list_objects",
        lambda c: c.list_objects(
            Bucket="b1", Prefix="a b/", Delimiter="/", Marker="a b/c", MaxKeys=5
        ),
        ListObjects("b1", "a b/", "/", "a b/c", 5, "url"),
    ),
    (
        "list_objects_v2",
        lambda c: c.list_objects_v2(
            Bucket="b1",
            Prefix=WEIRD_KEY,
            Delimiter="/",
            ContinuationToken="t/+=",
            StartAfter="s",
            MaxKeys=3,
            FetchOwner=True,
        ),
        ListObjectsV2("b1", WEIRD_KEY, "/", "t/+=", "s", 3, "url", True),
    ),
    (
        "list_multipart_uploads",
        lambda c: c.list_multipart_uploads(
            Bucket="b1", Prefix="p", KeyMarker="k", UploadIdMarker="u", MaxUploads=2
        ),
        ListMultipartUploads("b1", "p", None, "k", "u", 2, None),
    ),
    (
        "delete_objects",
        lambda c: c.delete_objects(Bucket="b1", Delete={"Objects": [{"Key": "k"}]}),
        DeleteObjects("b1"),
    ),
    (
        "put_object",
        lambda c: c.put_object(Bucket="b1", Key=WEIRD_KEY, Body=b"x"),
        PutObject("b1", WEIRD_KEY),
    ),
    (
        "put_object with a leading slash",
        lambda c: c.put_object(Bucket="b1", Key="/lead//x", Body=b"x"),
        PutObject("b1", "/lead//x"),
    ),
    (
        "get_object",
        lambda c: c.get_object(
            Bucket="b1",
            Key=WEIRD_KEY,
            VersionId="v1",
            PartNumber=2,
            ResponseContentType="text/plain",
            ResponseContentDisposition="attachment",
        ),
        GetObject(
            "b1",
            WEIRD_KEY,
            "v1",
            2,
            (("Content-Disposition", "attachment"), ("Content-Type", "text/plain")),
        ),
    ),
    (
        "head_object",
        lambda c: c.head_object(Bucket="b1", Key="k", PartNumber=1),
        HeadObject("b1", "k", None, 1),
    ),
    (
        "delete_object",
        lambda c: c.delete_object(Bucket="b1", Key="k", VersionId="v1"),
        DeleteObject("b1", "k", "v1"),
    ),
    (
        "copy_object",
        lambda c: c.copy_object(
            Bucket="b1",
            Key="dst",
            CopySource={"Bucket": "src", "Key": WEIRD_KEY, "VersionId": "v 1"},
            MetadataDirective="REPLACE",
        ),
        CopyObject("b1", "dst", CopySource("src", WEIRD_KEY, "v 1"), "REPLACE"),
    ),
    (
        "copy_object from a string",
        lambda c: c.copy_object(Bucket="b1", Key="dst", CopySource="src/a b"),
        CopyObject("b1", "dst", CopySource("src", "a b")),
    ),
    (
        "create_multipart_upload",
        lambda c: c.create_multipart_upload(Bucket="b1", Key="big"),
        CreateMultipartUpload("b1", "big"),
    ),
    (
        "upload_part",
        lambda c: c.upload_part(Bucket="b1", Key="big", UploadId="u/1", PartNumber=3, Body=b"x"),
        UploadPart("b1", "big", "u/1", 3),
    ),
    (
        "upload_part_copy",
        lambda c: c.upload_part_copy(
            Bucket="b1",
            Key="big",
            UploadId="u1",
            PartNumber=4,
            CopySource={"Bucket": "src", "Key": "k"},
            CopySourceRange="bytes=10-19",
        ),
        UploadPartCopy("b1", "big", "u1", 4, CopySource("src", "k"), ByteRange(10, 19)),
    ),
    (
        "complete_multipart_upload",
        lambda c: c.complete_multipart_upload(
            Bucket="b1",
            Key="big",
            UploadId="u1",
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"e"'}]},
        ),
        CompleteMultipartUpload("b1", "big", "u1"),
    ),
    (
        "abort_multipart_upload",
        lambda c: c.abort_multipart_upload(Bucket="b1", Key="big", UploadId="u1"),
        AbortMultipartUpload("b1", "big", "u1"),
    ),
    (
        "list_parts",
        lambda c: c.list_parts(
            Bucket="b1", Key="big", UploadId="u1", MaxParts=2, PartNumberMarker=1
        ),
        ListParts("b1", "big", "u1", 2, 1),
    ),
]

BOTO3_NOT_IMPLEMENTED: list[tuple[str, Callable[[Any], object]]] = [
    ("get_bucket_acl", lambda c: c.get_bucket_acl(Bucket="b1")),
    (
        "put_object_tagging",
        lambda c: c.put_object_tagging(
            Bucket="b1", Key="k", Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}
        ),
    ),
    ("list_object_versions", lambda c: c.list_object_versions(Bucket="b1")),
    (
        "put_bucket_versioning",
        lambda c: c.put_bucket_versioning(
            Bucket="b1", VersioningConfiguration={"Status": "Enabled"}
        ),
    ),
    ("get_bucket_policy", lambda c: c.get_bucket_policy(Bucket="b1")),
    ("get_bucket_cors", lambda c: c.get_bucket_cors(Bucket="b1")),
    (
        "get_bucket_lifecycle_configuration",
        lambda c: c.get_bucket_lifecycle_configuration(Bucket="b1"),
    ),
]


@pytest.fixture(scope="module", params=["path", "virtual"])
def wire(request: pytest.FixtureRequest) -> Wire:
    return Wire(request.param)


@pytest.mark.parametrize(
    ("call", "expected"),
    [pytest.param(call, expected, id=name) for name, call, expected in BOTO3_CALLS],
)
def test_boto3_requests(wire: Wire, call: Callable[[Any], object], expected: Operation):
    assert wire.route(call) == expected


@pytest.mark.parametrize(
    "call", [pytest.param(call, id=name) for name, call in BOTO3_NOT_IMPLEMENTED]
)
def test_boto3_requests_not_implemented(wire: Wire, call: Callable[[Any], object]):
    with pytest.raises(errors.NotImplemented):
        wire.route(call)
