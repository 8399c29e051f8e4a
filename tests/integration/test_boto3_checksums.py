"""Flexible checksums, Content-Encoding with aws-chunked, payload signing, through boto3.

Two request shapes carry a flexible checksum: a plain ``x-amz-checksum-*`` header (botocore over
http) and an aws-chunked body with the checksum in a trailer (botocore over https; see
``force_trailer_checksums``). Both are exercised for every algorithm.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
from typing import Any

import pytest
from awscrt import checksums as crt

from tests.conftest import Server, boto3_client
from tests.integration.boto3_support import (
    KIB,
    MIB,
    force_trailer_checksums,
    md5_hex,
    payload,
    quoted,
    s3_error,
)

ALGORITHMS = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]


def digest(algorithm: str, data: bytes) -> bytes:
    if algorithm == "CRC32":
        return int(crt.crc32(data)).to_bytes(4, "big")
    if algorithm == "CRC32C":
        return int(crt.crc32c(data)).to_bytes(4, "big")
    if algorithm == "CRC64NVME":
        return int(crt.crc64nvme(data)).to_bytes(8, "big")
    return hashlib.new(algorithm.lower(), data).digest()


def checksum(algorithm: str, data: bytes) -> str:
    """The ``x-amz-checksum-<algorithm>`` value of ``data``: base64 of the big-endian digest."""
    return base64.b64encode(digest(algorithm, data)).decode()


@pytest.fixture(params=["header", "trailer"])
def client(request: pytest.FixtureRequest, server: Server) -> Any:
    """A boto3 client sending checksums in a header or in an aws-chunked trailer."""
    s3 = boto3_client(server)
    if request.param == "trailer":
        force_trailer_checksums(s3)
    return s3


def sent_headers(client: Any) -> list[dict[str, str]]:
    """Record the headers of every request ``client`` sends from now on."""
    seen: list[dict[str, str]] = []

    def record(request: Any, **_: Any) -> None:
        seen.append(
            {
                k.lower(): v.decode() if isinstance(v, bytes) else v
                for k, v in request.headers.items()
            }
        )

    client.meta.events.register("before-send.s3", record)
    return seen


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("size", [0, 1000, MIB + 1])
def test_checksum_verified_stored_and_returned(client, bucket, algorithm, size):
    data = payload(size, seed=size)
    want = checksum(algorithm, data)
    put = client.put_object(Bucket=bucket, Key="k", Body=data, ChecksumAlgorithm=algorithm)
    assert put[f"Checksum{algorithm}"] == want
    assert put["ETag"] == quoted(md5_hex(data))

    head = client.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert head[f"Checksum{algorithm}"] == want
    # botocore validates the returned checksum against the body it reads.
    got = client.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert got[f"Checksum{algorithm}"] == want
    assert got["Body"].read() == data
    # Not asked for, not sent.
    assert f"Checksum{algorithm}" not in client.head_object(Bucket=bucket, Key="k")


def test_requests_carry_the_checksum_where_expected(server, bucket):
    header_client = boto3_client(server)
    trailer_client = boto3_client(server)
    force_trailer_checksums(trailer_client)
    plain, chunked = sent_headers(header_client), sent_headers(trailer_client)
    header_client.put_object(Bucket=bucket, Key="h", Body=b"abc", ChecksumAlgorithm="SHA256")
    trailer_client.put_object(Bucket=bucket, Key="t", Body=b"abc", ChecksumAlgorithm="SHA256")
    assert plain[0]["x-amz-checksum-sha256"] == checksum("SHA256", b"abc")
    assert chunked[0]["x-amz-trailer"] == "x-amz-checksum-sha256"
    assert chunked[0]["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    assert chunked[0]["content-encoding"] == "aws-chunked"
    for key in ("h", "t"):
        head = header_client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert head["ChecksumSHA256"] == checksum("SHA256", b"abc")
        # aws-chunked is how the body travelled, not a property of the object.
        assert "ContentEncoding" not in head


def test_default_when_supported_sends_crc32(server, bucket):
    s3 = boto3_client(server)  # request_checksum_calculation="when_supported" is the default
    seen = sent_headers(s3)
    data = payload(3000, seed=1)
    put = s3.put_object(Bucket=bucket, Key="k", Body=data)
    assert seen[0]["x-amz-checksum-crc32"] == checksum("CRC32", data)
    assert put["ChecksumCRC32"] == checksum("CRC32", data)
    got = s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == checksum("CRC32", data)
    assert got["Body"].read() == data


def test_when_required_sends_no_checksum(server, bucket):
    s3 = boto3_client(server, request_checksum_calculation="when_required")
    seen = sent_headers(s3)
    data = payload(MIB + 5, seed=2)
    put = s3.put_object(Bucket=bucket, Key="k", Body=data)
    assert not [h for h in seen[0] if h.startswith("x-amz-checksum-")]
    assert put["ETag"] == quoted(md5_hex(data))
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == data
    # Asked for explicitly, the checksum is still sent and verified.
    put = s3.put_object(Bucket=bucket, Key="k2", Body=data, ChecksumAlgorithm="CRC32C")
    assert put["ChecksumCRC32C"] == checksum("CRC32C", data)


def test_content_encoding_survives_aws_chunked(server, bucket):
    s3 = boto3_client(server)
    force_trailer_checksums(s3)
    seen = sent_headers(s3)
    original = b"compressible " * 1000
    body = gzip.compress(original)
    s3.put_object(
        Bucket=bucket, Key="k.gz", Body=body, ContentEncoding="gzip", ChecksumAlgorithm="CRC32"
    )
    assert seen[0]["content-encoding"] == "gzip,aws-chunked"
    got = s3.get_object(Bucket=bucket, Key="k.gz")
    assert got["ContentEncoding"] == "gzip"
    # Stored as sent: not inflated by the server.
    stored = got["Body"].read()
    assert stored == body
    assert gzip.decompress(stored) == original


@pytest.mark.parametrize("algorithm", ["CRC32", "SHA256"])
@pytest.mark.parametrize("size", [10, 2 * MIB + 1])
def test_wrong_checksum_header_is_bad_digest_and_nothing_stored(client, bucket, algorithm, size):
    data = payload(size, seed=8)
    wrong = checksum(algorithm, b"something else")
    s3_error(
        lambda: client.put_object(
            Bucket=bucket, Key="k", Body=data, **{f"Checksum{algorithm}": wrong}
        ),
        "BadDigest",
        400,
    )
    s3_error(lambda: client.head_object(Bucket=bucket, Key="k"), "404", 404)
    assert client.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def corrupt_trailer(client: Any) -> None:
    """Replace the checksum value in the aws-chunked trailer with another valid one."""

    def corrupt(request: Any, **_: Any) -> None:
        body = request.body.read() if hasattr(request.body, "read") else request.body
        name = request.headers["X-Amz-Trailer"]
        name = name if isinstance(name, bytes) else name.encode()
        match = re.search(rb"\r\n" + name + rb":([A-Za-z0-9+/=]+)\r\n", body)
        assert match, body[-200:]
        value = base64.b64decode(match[1])
        bad = base64.b64encode(bytes([value[0] ^ 0xFF]) + value[1:])
        request.body = body[: match.start(1)] + bad + body[match.end(1) :]

    client.meta.events.register("before-send.s3.PutObject", corrupt)


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC64NVME", "SHA1"])
def test_wrong_checksum_trailer_is_bad_digest_and_nothing_stored(server, bucket, algorithm):
    s3 = boto3_client(server)
    force_trailer_checksums(s3)
    corrupt_trailer(s3)
    s3_error(
        lambda: s3.put_object(
            Bucket=bucket, Key="k", Body=payload(300 * KIB), ChecksumAlgorithm=algorithm
        ),
        "BadDigest",
        400,
    )
    s3_error(lambda: s3.head_object(Bucket=bucket, Key="k"), "404", 404)


def test_wrong_checksum_keeps_the_previous_object(client, bucket):
    client.put_object(Bucket=bucket, Key="k", Body=b"keep me")
    s3_error(
        lambda: client.put_object(
            Bucket=bucket, Key="k", Body=b"new", ChecksumCRC32=checksum("CRC32", b"old")
        ),
        "BadDigest",
        400,
    )
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"keep me"


@pytest.mark.parametrize("algorithm", ["CRC32C", "SHA1"])
def test_copy_object_computes_the_requested_checksum(s3, bucket, algorithm):
    data = payload(MIB + 100, seed=6)
    s3.put_object(Bucket=bucket, Key="src", Body=data, ChecksumAlgorithm="CRC32")
    result = s3.copy_object(
        Bucket=bucket,
        Key="dst",
        CopySource={"Bucket": bucket, "Key": "src"},
        ChecksumAlgorithm=algorithm,
    )
    assert result["CopyObjectResult"][f"Checksum{algorithm}"] == checksum(algorithm, data)
    head = s3.head_object(Bucket=bucket, Key="dst", ChecksumMode="ENABLED")
    assert head[f"Checksum{algorithm}"] == checksum(algorithm, data)
    # Without a request the copy keeps the source's algorithm.
    s3.copy_object(Bucket=bucket, Key="dst2", CopySource={"Bucket": bucket, "Key": "src"})
    head = s3.head_object(Bucket=bucket, Key="dst2", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == checksum("CRC32", data)


def test_malformed_checksum_value_is_invalid_request(s3, bucket):
    s3_error(
        lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x", ChecksumCRC32="not base64"),
        "InvalidRequest",
        400,
    )


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "SHA1", "SHA256"])
def test_multipart_composite_checksum(client, bucket, algorithm):
    parts = [payload(5 * MIB, seed=1), payload(1000, seed=2)]
    upload_id = client.create_multipart_upload(
        Bucket=bucket, Key="mp", ChecksumAlgorithm=algorithm
    )["UploadId"]
    done = []
    for number, data in enumerate(parts, start=1):
        result = client.upload_part(
            Bucket=bucket,
            Key="mp",
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            ChecksumAlgorithm=algorithm,
        )
        assert result[f"Checksum{algorithm}"] == checksum(algorithm, data)
        done.append(
            {
                "PartNumber": number,
                "ETag": result["ETag"],
                f"Checksum{algorithm}": checksum(algorithm, data),
            }
        )
    listed = client.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id)
    assert [p[f"Checksum{algorithm}"] for p in listed["Parts"]] == [
        checksum(algorithm, d) for d in parts
    ]
    result = client.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    joined = b"".join(digest(algorithm, d) for d in parts)
    composite = f"{checksum(algorithm, joined)}-{len(parts)}"
    assert result[f"Checksum{algorithm}"] == composite
    head = client.head_object(Bucket=bucket, Key="mp", ChecksumMode="ENABLED")
    assert head[f"Checksum{algorithm}"] == composite
    assert client.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"".join(parts)


def test_multipart_full_object_crc64nvme(client, bucket):
    parts = [payload(5 * MIB, seed=3), payload(77, seed=4)]
    upload_id = client.create_multipart_upload(
        Bucket=bucket, Key="mp", ChecksumAlgorithm="CRC64NVME"
    )["UploadId"]
    done = []
    for number, data in enumerate(parts, start=1):
        result = client.upload_part(
            Bucket=bucket,
            Key="mp",
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            ChecksumAlgorithm="CRC64NVME",
        )
        done.append({"PartNumber": number, "ETag": result["ETag"]})
    result = client.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    whole = b"".join(parts)
    assert result["ChecksumCRC64NVME"] == checksum("CRC64NVME", whole)
    assert result["ChecksumType"] == "FULL_OBJECT"
    got = client.get_object(Bucket=bucket, Key="mp", ChecksumMode="ENABLED")
    assert got["ChecksumCRC64NVME"] == checksum("CRC64NVME", whole)
    assert got["Body"].read() == whole


def test_upload_part_wrong_checksum_is_bad_digest(client, bucket):
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    s3_error(
        lambda: client.upload_part(
            Bucket=bucket,
            Key="mp",
            UploadId=upload_id,
            PartNumber=1,
            Body=b"part",
            ChecksumSHA256=checksum("SHA256", b"other"),
        ),
        "BadDigest",
        400,
    )
    assert client.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id).get("Parts", []) == []


# --- payload signing -------------------------------------------------------------------------


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("size", [0, 1000, MIB + 3])
def test_payload_signing(server, bucket, signed, size):
    s3 = boto3_client(
        server, s3={"payload_signing_enabled": signed}, request_checksum_calculation="when_required"
    )
    seen = sent_headers(s3)
    data = payload(size, seed=size)
    s3.put_object(Bucket=bucket, Key="k", Body=data)
    content_sha256 = seen[0]["x-amz-content-sha256"]
    if signed:
        assert content_sha256 == hashlib.sha256(data).hexdigest()
    else:
        assert content_sha256 == "UNSIGNED-PAYLOAD"
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == data

    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=data)
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == data


def tamper_body(client: Any) -> None:
    """Flip one byte of every PutObject/UploadPart body after the request was signed."""

    def flip(request: Any, **_: Any) -> None:
        body = request.body.read() if hasattr(request.body, "read") else request.body
        request.body = bytes([body[0] ^ 1]) + body[1:]

    client.meta.events.register("before-send.s3.PutObject", flip)
    client.meta.events.register("before-send.s3.UploadPart", flip)


@pytest.mark.parametrize("size", [10, 2 * MIB])
def test_signed_payload_that_does_not_match_is_refused(server, bucket, size):
    s3 = boto3_client(
        server, s3={"payload_signing_enabled": True}, request_checksum_calculation="when_required"
    )
    tamper_body(s3)
    s3_error(
        lambda: s3.put_object(Bucket=bucket, Key="k", Body=payload(size)),
        "XAmzContentSHA256Mismatch",
        400,
    )
    s3_error(lambda: s3.head_object(Bucket=bucket, Key="k"), "404", 404)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    s3_error(
        lambda: s3.upload_part(
            Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=payload(size)
        ),
        "XAmzContentSHA256Mismatch",
        400,
    )
    assert s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id).get("Parts", []) == []
