"""The S3 XML layer, judged by boto3: every body we build is fed to a real boto3 client (its whole
response pipeline: parser, S3 handlers, URL decoding) and every body boto3 sends is parsed back.
Malformed documents and XML bombs must come out as MalformedXML.
"""

from __future__ import annotations

import doctest
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.config import Config
from mypy_boto3_s3 import S3Client

from gateway import errors, s3xml
from gateway.s3xml import CompletedPart, ObjectEntry, Owner, PartEntry, UploadEntry

WHEN = datetime(2026, 11, 29, 17, 0, 0, 123456, UTC)
WHEN_MS = WHEN.replace(microsecond=123000)  # what a client reads back: milliseconds
OWNER = Owner("owner-id-1", "alice")
KEYS = [
    "plain",
    "dir/sub/file.txt",
    " lead and trail ",
    "a+b c&d=e?f#g%h",
    "été 😀 日本",
    "<tag attr=\"q\" other='s'>",
    "~tilde*star",
    "cr\rlf\ntab\t",
]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        yield self.body


class FakeS3:
    """A boto3 client talking to nothing: each request is recorded and answered with ``body``."""

    def __init__(self) -> None:
        self.body = b""
        self.status = 200
        self.sent: list[AWSPreparedRequest] = []
        self.client: S3Client = boto3.client(
            "s3",
            region_name="us-east-1",
            endpoint_url="http://s3.example.com:9000",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="secret",
            config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
        )
        self.client.meta.events.register("before-send.s3", self._send)

    # -> Any, not AWSResponse: botocore-stubs type event handlers as returning None.
    def _send(self, request: AWSPreparedRequest, **kwargs: Any) -> Any:
        self.sent.append(request)
        return AWSResponse(request.url, self.status, HTTPHeaders(), _Raw(self.body))

    def answer(self, body: bytes, status: int = 200) -> S3Client:
        self.body, self.status = body, status
        return self.client

    def request_body(self) -> bytes:
        body = self.sent[-1].body
        assert isinstance(body, bytes)
        return body


@pytest.fixture(scope="module")
def s3() -> FakeS3:
    return FakeS3()


def _prolog_and_namespace(body: bytes, root: str) -> None:
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    assert f'<{root} xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'.encode() in body


# --- builders, read by boto3 -------------------------------------------------------------------


def test_error(s3: FakeS3):
    body = s3xml.error_xml(
        "NoSuchKey",
        "The specified key does not exist.",
        "/photos/a <b>&c",
        "req-1",
        {"Key": "a <b>&c", "BucketName": "photos"},
    )
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>')
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        s3.answer(body, 404).get_object(Bucket="photos", Key="a <b>&c")
    assert caught.value.response["Error"] == {
        "Code": "NoSuchKey",
        "Message": "The specified key does not exist.",
        "Key": "a <b>&c",
        "BucketName": "photos",
        "Resource": "/photos/a <b>&c",
    }
    # botocore reads the request id from the x-amz-request-id header and drops this copy.
    assert b"<RequestId>req-1</RequestId></Error>" in body


def test_error_of_an_s3_error_class(s3: FakeS3):
    error = errors.InvalidArgument("bad max-keys", ArgumentName="max-keys", ArgumentValue="-1")
    body = s3xml.error_xml(error.code, error.detail, "/b", "r", error.extra)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        s3.answer(body, error.status).list_objects_v2(Bucket="b")
    fields = dict(caught.value.response["Error"])
    assert (fields["Code"], fields["ArgumentName"], fields["ArgumentValue"]) == (
        "InvalidArgument",
        "max-keys",
        "-1",
    )


@pytest.mark.parametrize("name", ["Code", "Message", "RequestId", "Resource", "1x", "a b", "<x>"])
def test_error_refuses_bad_extra_names(name: str):
    with pytest.raises(ValueError):
        s3xml.error_xml("InternalError", "m", extra={name: "v"})


def test_list_buckets(s3: FakeS3):
    later = WHEN + timedelta(days=1)
    body = s3xml.list_buckets_xml("owner-id-1", "alice", [("photos", WHEN), ("logs", later)])
    _prolog_and_namespace(body, "ListAllMyBucketsResult")
    answer = s3.answer(body).list_buckets()
    assert answer["Owner"] == {"ID": "owner-id-1", "DisplayName": "alice"}
    assert [(b["Name"], b["CreationDate"]) for b in answer["Buckets"]] == [
        ("photos", WHEN_MS),
        ("logs", later.replace(microsecond=123000)),
    ]


def test_list_buckets_empty(s3: FakeS3):
    assert s3.answer(s3xml.list_buckets_xml("o", "o", [])).list_buckets()["Buckets"] == []


@pytest.mark.parametrize(("region", "expected"), [("us-east-1", None), ("eu-west-3", "eu-west-3")])
def test_location(s3: FakeS3, region: str, expected: str | None):
    body = s3xml.location_xml(region)
    _prolog_and_namespace(body, "LocationConstraint")
    answer = s3.answer(body).get_bucket_location(Bucket="b")
    assert answer.get("LocationConstraint") == expected


def _entries(keys: list[str]) -> list[ObjectEntry]:
    return [ObjectEntry(key, WHEN, f"etag{i}", i * 10) for i, key in enumerate(keys)]


def test_list_objects_v1_url_encoded(s3: FakeS3):
    # boto3 adds encoding-type=url to every listing it sends, then decodes what S3 encodes.
    body = s3xml.list_objects_v1_xml(
        bucket="photos",
        prefix="",
        marker="a b",
        max_keys=100,
        delimiter="|",
        encoding_type="url",
        is_truncated=True,
        next_marker="été 😀",
        contents=_entries(KEYS),
        owner=OWNER,
        common_prefixes=["x y|", "ü|"],
    )
    _prolog_and_namespace(body, "ListBucketResult")
    answer = s3.answer(body).list_objects(Bucket="photos", Delimiter="|", Marker="a b")
    assert [o["Key"] for o in answer["Contents"]] == KEYS
    assert [p["Prefix"] for p in answer["CommonPrefixes"]] == ["x y|", "ü|"]
    assert (answer["Marker"], answer["NextMarker"], answer["Delimiter"]) == ("a b", "été 😀", "|")
    assert (answer["MaxKeys"], answer["IsTruncated"], answer["Name"]) == (100, True, "photos")
    first = answer["Contents"][1]
    assert first["ETag"] == '"etag1"'
    assert (first["Size"], first["LastModified"], first["StorageClass"]) == (
        10,
        WHEN_MS,
        "STANDARD",
    )
    assert first["Owner"] == {"ID": "owner-id-1", "DisplayName": "alice"}


def test_list_objects_v1_prefix_is_encoded_as_s3_documents(s3: FakeS3):
    # S3 encodes Prefix in v1 too; botocore does not decode that one (boto/boto3#3534).
    body = s3xml.list_objects_v1_xml(
        bucket="b",
        prefix="a b/",
        marker="",
        max_keys=1000,
        delimiter=None,
        encoding_type="url",
        is_truncated=False,
        next_marker=None,
        contents=[],
        common_prefixes=[],
    )
    assert b"<Prefix>a+b/</Prefix>" in body
    assert b"<Marker></Marker>" in body
    assert b"NextMarker" not in body and b"Delimiter" not in body


def test_list_objects_v1_raw(s3: FakeS3):
    keys = [key for key in KEYS if "\r" not in key]
    body = s3xml.list_objects_v1_xml(
        bucket="b",
        prefix="a b",
        marker="",
        max_keys=2,
        delimiter=None,
        encoding_type=None,
        is_truncated=False,
        next_marker=None,
        contents=_entries(keys),
        common_prefixes=[],
    )
    assert b"EncodingType" not in body
    # A client that asked for no encoding (explicitly "url" here, so botocore leaves it alone)
    # reads the keys as written.
    answer = s3.answer(body).list_objects(Bucket="b", EncodingType="url")
    assert [o["Key"] for o in answer["Contents"]] == keys
    assert answer["Prefix"] == "a b"
    assert "Owner" not in answer["Contents"][0]


def test_list_objects_v2_url_encoded(s3: FakeS3):
    body = s3xml.list_objects_v2_xml(
        bucket="photos",
        prefix="p q/",
        max_keys=3,
        delimiter="/",
        encoding_type="url",
        is_truncated=True,
        contents=_entries(KEYS),
        common_prefixes=["p q/r s/"],
        continuation_token="tok+/=",
        next_continuation_token="next+/=",
        start_after="p q/a",
    )
    _prolog_and_namespace(body, "ListBucketResult")
    answer = s3.answer(body).list_objects_v2(Bucket="photos", Prefix="p q/", Delimiter="/")
    assert [o["Key"] for o in answer["Contents"]] == KEYS
    assert answer["CommonPrefixes"] == [{"Prefix": "p q/r s/"}]
    assert (answer["Prefix"], answer["Delimiter"], answer["StartAfter"]) == ("p q/", "/", "p q/a")
    assert (answer["ContinuationToken"], answer["NextContinuationToken"]) == ("tok+/=", "next+/=")
    assert (answer["KeyCount"], answer["MaxKeys"], answer["IsTruncated"]) == (
        len(KEYS) + 1,
        3,
        True,
    )
    assert answer["EncodingType"] == "url"


def test_list_objects_v2_raw_with_owner(s3: FakeS3):
    body = s3xml.list_objects_v2_xml(
        bucket="b",
        prefix="",
        max_keys=1000,
        delimiter=None,
        encoding_type=None,
        is_truncated=False,
        contents=_entries(KEYS),
        owner=OWNER,
        common_prefixes=[],
    )
    for absent in (b"ContinuationToken", b"StartAfter", b"Delimiter", b"EncodingType"):
        assert absent not in body
    answer = s3.answer(body).list_objects_v2(Bucket="b", EncodingType="url", FetchOwner=True)
    assert [o["Key"] for o in answer["Contents"]] == KEYS
    assert answer["Contents"][0]["Owner"] == {"ID": "owner-id-1", "DisplayName": "alice"}
    assert answer["KeyCount"] == len(KEYS)


def test_url_encoding_matches_s3():
    # UTF-8 percent-encoding, space as '+', '/' and '*' kept, '~' encoded (as S3 and MinIO do).
    body = s3xml.list_objects_v2_xml(
        bucket="b",
        prefix="a b/c~d+é*",
        max_keys=1,
        delimiter=None,
        encoding_type="url",
        is_truncated=False,
        contents=[ObjectEntry("\x01\r\n&<", WHEN, "e", 1)],
        common_prefixes=[],
    )
    assert b"<Prefix>a+b/c%7Ed%2B%C3%A9*</Prefix>" in body
    assert b"<Key>%01%0D%0A%26%3C</Key>" in body


def test_characters_xml_cannot_carry_are_character_references():
    body = s3xml.list_objects_v2_xml(
        bucket="b",
        prefix="",
        max_keys=1,
        delimiter=None,
        encoding_type=None,
        is_truncated=False,
        contents=[ObjectEntry("a\x01b\rc\x1fd\ufffe", WHEN, "e", 1)],
        common_prefixes=[],
    )
    # What S3 sends: well-formed only for lenient parsers, hence encoding-type=url.
    assert b"<Key>a&#x1;b&#xD;c&#x1F;d&#xFFFE;</Key>" in body


def test_copy_object_result(s3: FakeS3):
    body = s3xml.copy_object_result_xml(
        "9b2cf535f27731c974343645a3985328",
        WHEN,
        {"CRC32": "AAAAAA==", "SHA256": "x" * 44},
        "FULL_OBJECT",
    )
    _prolog_and_namespace(body, "CopyObjectResult")
    answer = s3.answer(body).copy_object(Bucket="b", Key="k", CopySource="src/k")
    result = answer["CopyObjectResult"]
    assert result["ETag"] == '"9b2cf535f27731c974343645a3985328"'
    assert result["LastModified"] == WHEN_MS
    assert (result["ChecksumCRC32"], result["ChecksumSHA256"]) == ("AAAAAA==", "x" * 44)
    assert result["ChecksumType"] == "FULL_OBJECT"


def test_copy_part_result(s3: FakeS3):
    body = s3xml.copy_part_result_xml('"already-quoted"', WHEN, {"CRC32C": "BBBBBB=="})
    _prolog_and_namespace(body, "CopyPartResult")
    answer = s3.answer(body).upload_part_copy(
        Bucket="b", Key="k", UploadId="u", PartNumber=1, CopySource="src/k"
    )
    assert answer["CopyPartResult"]["ETag"] == '"already-quoted"'
    assert answer["CopyPartResult"]["ChecksumCRC32C"] == "BBBBBB=="
    assert answer["CopyPartResult"]["LastModified"] == WHEN_MS


def test_initiate_multipart(s3: FakeS3):
    body = s3xml.initiate_multipart_xml("b", "dir/a b&c", "upload/id+1")
    _prolog_and_namespace(body, "InitiateMultipartUploadResult")
    answer = s3.answer(body).create_multipart_upload(Bucket="b", Key="dir/a b&c")
    assert (answer["Bucket"], answer["Key"], answer["UploadId"]) == (
        "b",
        "dir/a b&c",
        "upload/id+1",
    )


def test_complete_multipart(s3: FakeS3):
    body = s3xml.complete_multipart_xml(
        "http://s3.example.com/b/k", "b", "k", "abc-3", {"CRC64NVME": "AAAAAAAAAAA="}, "COMPOSITE"
    )
    _prolog_and_namespace(body, "CompleteMultipartUploadResult")
    answer = s3.answer(body).complete_multipart_upload(
        Bucket="b", Key="k", UploadId="u", MultipartUpload={"Parts": [{"PartNumber": 1}]}
    )
    assert answer["Location"] == "http://s3.example.com/b/k"
    assert (answer["Bucket"], answer["Key"], answer["ETag"]) == ("b", "k", '"abc-3"')
    assert answer["ChecksumCRC64NVME"] == "AAAAAAAAAAA="
    assert answer["ChecksumType"] == "COMPOSITE"


def test_list_parts(s3: FakeS3):
    parts = [
        PartEntry(1, WHEN, "e1", 5 * 2**20, {"CRC32": "AAAAAA=="}),
        PartEntry(2, WHEN, "e2", 1),
    ]
    body = s3xml.list_parts_xml(
        bucket="b",
        key="a b",
        upload_id="u1",
        part_number_marker=0,
        next_part_number_marker=2,
        max_parts=2,
        is_truncated=True,
        parts=parts,
        owner=OWNER,
        checksum_algorithm="CRC32",
        checksum_type="COMPOSITE",
    )
    _prolog_and_namespace(body, "ListPartsResult")
    answer = s3.answer(body).list_parts(Bucket="b", Key="a b", UploadId="u1")
    assert (answer["Bucket"], answer["Key"], answer["UploadId"]) == ("b", "a b", "u1")
    assert (answer["PartNumberMarker"], answer["NextPartNumberMarker"]) == (0, 2)
    assert (answer["MaxParts"], answer["IsTruncated"], answer["StorageClass"]) == (
        2,
        True,
        "STANDARD",
    )
    assert answer["Initiator"] == answer["Owner"] == {"ID": "owner-id-1", "DisplayName": "alice"}
    assert (answer["ChecksumAlgorithm"], answer["ChecksumType"]) == ("CRC32", "COMPOSITE")
    assert answer["Parts"] == [
        {
            "PartNumber": 1,
            "LastModified": WHEN_MS,
            "ETag": '"e1"',
            "Size": 5 * 2**20,
            "ChecksumCRC32": "AAAAAA==",
        },
        {"PartNumber": 2, "LastModified": WHEN_MS, "ETag": '"e2"', "Size": 1},
    ]


def test_list_parts_empty(s3: FakeS3):
    body = s3xml.list_parts_xml(
        bucket="b",
        key="k",
        upload_id="u",
        part_number_marker=5,
        next_part_number_marker=None,
        max_parts=1000,
        is_truncated=False,
        parts=[],
    )
    answer = s3.answer(body).list_parts(Bucket="b", Key="k", UploadId="u")
    assert "Parts" not in answer and "NextPartNumberMarker" not in answer
    assert answer["PartNumberMarker"] == 5


def test_list_multipart_uploads(s3: FakeS3):
    uploads = [UploadEntry(key, f"u{i}", WHEN, owner=OWNER) for i, key in enumerate(KEYS)]
    body = s3xml.list_multipart_uploads_xml(
        bucket="b",
        prefix="",
        delimiter="/",
        key_marker="",
        upload_id_marker="",
        next_key_marker=KEYS[-1],
        next_upload_id_marker="u7",
        max_uploads=8,
        encoding_type=None,
        is_truncated=True,
        uploads=uploads,
        common_prefixes=["dir/"],
    )
    _prolog_and_namespace(body, "ListMultipartUploadsResult")
    answer = s3.answer(body).list_multipart_uploads(Bucket="b", Delimiter="/")
    assert [(u["Key"], u["UploadId"]) for u in answer["Uploads"]] == [
        (key, f"u{i}") for i, key in enumerate(KEYS)
    ]
    upload = answer["Uploads"][0]
    assert (upload["Initiated"], upload["StorageClass"]) == (WHEN_MS, "STANDARD")
    assert upload["Owner"] == upload["Initiator"] == {"ID": "owner-id-1", "DisplayName": "alice"}
    assert (answer["NextKeyMarker"], answer["NextUploadIdMarker"]) == (KEYS[-1], "u7")
    assert (answer["MaxUploads"], answer["IsTruncated"]) == (8, True)
    assert answer["CommonPrefixes"] == [{"Prefix": "dir/"}]


def test_list_multipart_uploads_url_encoded():
    body = s3xml.list_multipart_uploads_xml(
        bucket="b",
        prefix="a b",
        delimiter="/",
        key_marker="k m",
        upload_id_marker="u+1",
        next_key_marker="n m",
        next_upload_id_marker="u+2",
        max_uploads=1,
        encoding_type="url",
        is_truncated=True,
        uploads=[UploadEntry("a b/c", "u+3", WHEN)],
        common_prefixes=["a b/"],
    )
    for element in (
        b"<Prefix>a+b</Prefix>",
        b"<KeyMarker>k+m</KeyMarker>",
        b"<NextKeyMarker>n+m</NextKeyMarker>",
        b"<UploadIdMarker>u+1</UploadIdMarker>",  # upload ids are not keys: never encoded
        b"<NextUploadIdMarker>u+2</NextUploadIdMarker>",
        b"<Key>a+b/c</Key>",
        b"<UploadId>u+3</UploadId>",
        b"<Prefix>a+b/</Prefix>",
        b"<EncodingType>url</EncodingType>",
    ):
        assert element in body


@pytest.mark.parametrize("quiet", [False, True])
def test_delete_result(s3: FakeS3, quiet: bool):
    body = s3xml.delete_result_xml(
        [("gone", None), ("a b&c", "v1")], [("locked", "AccessDenied", "Access Denied")], quiet
    )
    _prolog_and_namespace(body, "DeleteResult")
    answer = s3.answer(body).delete_objects(Bucket="b", Delete={"Objects": [{"Key": "x"}]})
    expected_deleted = [] if quiet else [{"Key": "gone"}, {"Key": "a b&c", "VersionId": "v1"}]
    assert answer.get("Deleted", []) == expected_deleted
    assert answer["Errors"] == [
        {"Key": "locked", "Code": "AccessDenied", "Message": "Access Denied"}
    ]


@pytest.mark.parametrize("status", [None, "Enabled", "Suspended"])
def test_versioning(s3: FakeS3, status: str | None):
    body = s3xml.versioning_xml(status)
    _prolog_and_namespace(body, "VersioningConfiguration")
    answer = s3.answer(body).get_bucket_versioning(Bucket="b")
    assert answer.get("Status") == status


def test_timestamps_are_utc_milliseconds():
    plus_two = timezone(timedelta(hours=2))
    body = s3xml.copy_part_result_xml("e", datetime(2026, 11, 29, 19, 0, 0, 999999, plus_two))
    assert b"<LastModified>2026-11-29T17:00:00.999Z</LastModified>" in body
    body = s3xml.copy_part_result_xml("e", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert b"<LastModified>2026-01-02T03:04:05.000Z</LastModified>" in body


def test_naive_timestamps_are_refused():
    with pytest.raises(ValueError):
        s3xml.copy_part_result_xml("e", datetime(2026, 11, 29))


def test_builder_argument_checks():
    with pytest.raises(ValueError):
        s3xml.copy_part_result_xml("e", WHEN, {"CRC16": "x"})
    with pytest.raises(ValueError):
        s3xml.copy_object_result_xml("e", WHEN, checksum_type="PARTIAL")
    with pytest.raises(ValueError):
        s3xml.versioning_xml("On")


# --- parsers, fed what boto3 sends -------------------------------------------------------------


def test_parse_create_bucket_from_boto3(s3: FakeS3):
    s3.answer(b"").create_bucket(
        Bucket="b", CreateBucketConfiguration={"LocationConstraint": "eu-west-3"}
    )
    assert s3xml.parse_create_bucket(s3.request_body()) == "eu-west-3"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", None),
        (b"  \r\n", None),
        (b"<CreateBucketConfiguration/>", None),
        (b"<CreateBucketConfiguration><LocationConstraint/></CreateBucketConfiguration>", None),
        (
            b'<?xml version="1.0" encoding="UTF-8"?>\n<CreateBucketConfiguration xmlns='
            b'"http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint> us-west-2 '
            b"</LocationConstraint></CreateBucketConfiguration>",
            "us-west-2",
        ),
    ],
)
def test_parse_create_bucket(body: bytes, expected: str | None):
    assert s3xml.parse_create_bucket(body) == expected


def test_parse_delete_objects_from_boto3(s3: FakeS3):
    objects = [{"Key": key} for key in KEYS] + [{"Key": "v", "VersionId": "3/L4kqtJl"}]
    s3.answer(s3xml.delete_result_xml([], [], True)).delete_objects(
        Bucket="b",
        Delete={"Objects": objects, "Quiet": True},  # type: ignore[typeddict-item]
    )
    quiet, parsed = s3xml.parse_delete_objects(s3.request_body())
    assert quiet is True
    assert parsed == [(key, None) for key in KEYS] + [("v", "3/L4kqtJl")]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<Delete><Object><Key>k</Key></Object></Delete>", (False, [("k", None)])),
        (
            b"<Delete><Quiet>false</Quiet><Object><Key>k</Key><VersionId/></Object></Delete>",
            (False, [("k", None)]),
        ),
        (b"<Delete><Object><Key/></Object><Quiet> 1 </Quiet></Delete>", (True, [("", None)])),
        (
            b"<Delete>\n  <Object>\n    <Key>a&amp;b&#x20;&#xD;</Key>\n  </Object>\n</Delete>",
            (False, [("a&b \r", None)]),
        ),
        (b"<Delete><Object><Key>a<!-- c -->b</Key></Object></Delete>", (False, [("ab", None)])),
        (b"<Delete><Object><Key><![CDATA[<&>]]></Key></Object></Delete>", (False, [("<&>", None)])),
    ],
)
def test_parse_delete_objects(body: bytes, expected: tuple[bool, list[tuple[str, str | None]]]):
    assert s3xml.parse_delete_objects(body) == expected


def _delete_body(count: int) -> bytes:
    return b"<Delete>" + b"<Object><Key>k</Key></Object>" * count + b"</Delete>"


def test_parse_delete_objects_limit():
    assert len(s3xml.parse_delete_objects(_delete_body(1000))[1]) == 1000
    with pytest.raises(errors.MalformedXML):
        s3xml.parse_delete_objects(_delete_body(1001))


@pytest.mark.parametrize(
    "element", [b"<ETag>e</ETag>", b"<LastModifiedTime>2026-01-01T00:00:00Z</LastModifiedTime>"]
)
def test_parse_delete_objects_refuses_conditions(element: bytes):
    # Ignoring a condition would delete what the client asked to keep.
    with pytest.raises(errors.NotImplemented):
        s3xml.parse_delete_objects(
            b"<Delete><Object><Key>k</Key>" + element + b"</Object></Delete>"
        )


def test_parse_complete_multipart_from_boto3(s3: FakeS3):
    parts = [
        {"PartNumber": 1, "ETag": '"e1"', "ChecksumCRC32": "AAAAAA=="},
        {"PartNumber": 2, "ETag": "e2"},
        {"PartNumber": 10000, "ETag": '"e3-2"', "ChecksumSHA256": "s", "ChecksumSHA1": "h"},
    ]
    s3.answer(s3xml.complete_multipart_xml("l", "b", "k", "e")).complete_multipart_upload(
        Bucket="b",
        Key="k",
        UploadId="u",
        MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
    )
    assert s3xml.parse_complete_multipart(s3.request_body()) == [
        CompletedPart(1, "e1", {"CRC32": "AAAAAA=="}),
        CompletedPart(2, "e2", {}),
        CompletedPart(10000, "e3-2", {"SHA1": "h", "SHA256": "s"}),
    ]


def test_parse_complete_multipart_keeps_request_order():
    body = (
        b"<CompleteMultipartUpload>"
        b"<Part><ETag>&quot;b&quot;</ETag><PartNumber> 2 </PartNumber></Part>"
        b"<Part><PartNumber>1</PartNumber><ETag>a</ETag></Part>"
        b"</CompleteMultipartUpload>"
    )
    assert s3xml.parse_complete_multipart(body) == [CompletedPart(2, "b"), CompletedPart(1, "a")]


def test_parse_complete_multipart_limit():
    part = b"<Part><PartNumber>1</PartNumber><ETag>e</ETag></Part>"
    body = b"<CompleteMultipartUpload>" + part * 10_000 + b"</CompleteMultipartUpload>"
    assert len(s3xml.parse_complete_multipart(body)) == 10_000
    body = b"<CompleteMultipartUpload>" + part * 10_001 + b"</CompleteMultipartUpload>"
    with pytest.raises(errors.MalformedXML):
        s3xml.parse_complete_multipart(body)


def test_parse_create_bucket_directory_bucket_is_not_implemented():
    body = (
        b"<CreateBucketConfiguration><Bucket><Type>Directory</Type></Bucket>"
        b"</CreateBucketConfiguration>"
    )
    with pytest.raises(errors.NotImplemented):
        s3xml.parse_create_bucket(body)


# --- malformed documents and bombs -------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<ROOT>&lol9;</ROOT>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE ROOT [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ROOT>&xxe;</ROOT>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE ROOT SYSTEM "http://attacker.example/evil.dtd">
<ROOT/>"""
QUADRATIC = (
    b'<!DOCTYPE ROOT [<!ENTITY a "' + b"x" * 100_000 + b'">]><ROOT>' + b"&a;" * 1000 + b"</ROOT>"
)
PARAMETER_ENTITY = b"""<!DOCTYPE ROOT [<!ENTITY % p "<!ENTITY e 'x'>"> %p;]><ROOT/>"""
PLAIN_DTD = b"<!DOCTYPE ROOT><ROOT/>"

BOMBS = [BILLION_LAUGHS, XXE, EXTERNAL_DTD, QUADRATIC, PARAMETER_ENTITY, PLAIN_DTD]


def _with_root(template: bytes, root: bytes) -> bytes:
    return template.replace(b"ROOT", root)


MALFORMED_DELETE = [
    b"",
    b"   ",
    b"not xml",
    b"<Delete>",
    b"<Delete></Delete>",  # no objects
    b"<Delete><Quiet>true</Quiet></Delete>",
    b"<Remove><Object><Key>k</Key></Object></Remove>",  # wrong root
    b'<Delete xmlns="urn:other"><Object><Key>k</Key></Object></Delete>',  # foreign namespace
    b'<x:Delete xmlns:x="urn:other"><Object><Key>k</Key></Object></x:Delete>',
    b"<Delete><Object></Object></Delete>",  # no key
    b"<Delete><Object><Key>a</Key><Key>b</Key></Object></Delete>",
    b"<Delete><Object><Key>a</Key><VersionId>1</VersionId><VersionId>2</VersionId></Object></Delete>",
    b"<Delete><Object><Key><b>k</b></Key></Object></Delete>",  # element inside a leaf
    b"<Delete><Object><Key>k</Key><Colour>red</Colour></Object></Delete>",  # unknown element
    b"<Delete><Thing/><Object><Key>k</Key></Object></Delete>",
    b"<Delete>text<Object><Key>k</Key></Object></Delete>",  # stray text
    b"<Delete><Object><Key>k</Key></Object>tail</Delete>",
    b"<Delete><Quiet>yes</Quiet><Object><Key>k</Key></Object></Delete>",
    b"<Delete><Quiet>1</Quiet><Quiet>1</Quiet><Object><Key>k</Key></Object></Delete>",
    b"<Delete><Object><Key>\xff\xfe</Key></Object></Delete>",  # not UTF-8
    b"<Delete><Object><Key>&#x1;</Key></Object></Delete>",  # not an XML 1.0 character
    b"<Delete><Object><Key>&undefined;</Key></Object></Delete>",
    b"<Delete><Object><Key>k</Key></Object></Delete><Delete/>",  # two roots
    *[_with_root(bomb, b"Delete") for bomb in BOMBS],
]

MALFORMED_COMPLETE = [
    b"",
    b"<CompleteMultipartUpload/>",  # no parts
    b"<CompleteMultipartUpload></CompleteMultipartUpload>",
    b"<Complete><Part><PartNumber>1</PartNumber><ETag>e</ETag></Part></Complete>",
    *[
        b"<CompleteMultipartUpload><Part><PartNumber>"
        + number
        + b"</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>"
        for number in (b"", b"0", b"10001", b"-1", b"1.0", b"1e3", b"x", b"+1", b"99999999999999")
    ],
    b"<CompleteMultipartUpload><Part><ETag>e</ETag></Part></CompleteMultipartUpload>",
    b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>",
    b'<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>""</ETag></Part>'
    b"</CompleteMultipartUpload>",
    b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>e</ETag><Size>1</Size>"
    b"</Part></CompleteMultipartUpload>",
    b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>e</ETag>"
    b"<ChecksumCRC32>a</ChecksumCRC32><ChecksumCRC32>b</ChecksumCRC32></Part>"
    b"</CompleteMultipartUpload>",
    b"<CompleteMultipartUpload><Object/></CompleteMultipartUpload>",
    *[_with_root(bomb, b"CompleteMultipartUpload") for bomb in BOMBS],
]

MALFORMED_CREATE_BUCKET = [
    b"junk",
    b"<CreateBucket/>",
    b"<CreateBucketConfiguration><Region>x</Region></CreateBucketConfiguration>",
    b"<CreateBucketConfiguration><LocationConstraint>a</LocationConstraint>"
    b"<LocationConstraint>b</LocationConstraint></CreateBucketConfiguration>",
    b"<CreateBucketConfiguration><LocationConstraint><x/></LocationConstraint>"
    b"</CreateBucketConfiguration>",
    *[_with_root(bomb, b"CreateBucketConfiguration") for bomb in BOMBS],
]


@pytest.mark.parametrize("body", MALFORMED_DELETE)
def test_malformed_delete(body: bytes):
    with pytest.raises(errors.MalformedXML):
        s3xml.parse_delete_objects(body)


@pytest.mark.parametrize("body", MALFORMED_COMPLETE)
def test_malformed_complete(body: bytes):
    with pytest.raises(errors.MalformedXML):
        s3xml.parse_complete_multipart(body)


@pytest.mark.parametrize("body", MALFORMED_CREATE_BUCKET)
def test_malformed_create_bucket(body: bytes):
    with pytest.raises(errors.MalformedXML):
        s3xml.parse_create_bucket(body)


def test_oversized_bodies_are_refused_unparsed():
    padding = b" " * s3xml.MAX_XML_BODY_BYTES
    body = b"<Delete><Object><Key>k</Key></Object>" + padding + b"</Delete>"
    with pytest.raises(errors.MalformedXML):
        s3xml.parse_delete_objects(body)


def test_docstring_examples():
    assert doctest.testmod(s3xml).failed == 0
