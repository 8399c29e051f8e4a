"""Helpers shared by the boto3 integration tests (tests/integration/test_boto3_*.py)."""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

KIB = 1024
MIB = 1024 * KIB


def payload(size: int, seed: int = 0) -> bytes:
    """``size`` reproducible pseudo-random bytes (incompressible, unlike b"x" * size)."""
    return random.Random(seed).randbytes(size)


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def quoted(etag: str) -> str:
    return f'"{etag}"'


def multipart_etag(parts: list[bytes]) -> str:
    """S3's multipart ETag, computed independently of the server: md5(md5(p1)+md5(p2)+...)-N."""
    joined = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(joined).hexdigest()}-{len(parts)}"'


def s3_error(call: Callable[[], Any], code: str, status: int) -> ClientError:
    """Run ``call``; it must fail with S3 error ``code`` and HTTP ``status``."""
    with pytest.raises(ClientError) as info:
        call()
    error = info.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (
        code,
        status,
    ), error
    return info.value


def force_trailer_checksums(client: Any) -> None:
    """Make ``client`` send flexible checksums as aws-chunked trailers, as boto3 does over TLS.

    botocore only moves the checksum from a header into an aws-chunked trailer when the endpoint
    is https (``httpchecksum.resolve_request_checksum_algorithm``); the test server speaks plain
    http, so flip the location the same way before the request is built. The wire format is then
    exactly boto3's over https: ``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` + ``x-amz-trailer``.
    """

    def to_trailer(params: dict[str, Any], **_: Any) -> None:
        algorithm = params.get("context", {}).get("checksum", {}).get("request_algorithm")
        if isinstance(algorithm, dict) and algorithm.get("in") == "header":
            algorithm["in"] = "trailer"

    for operation in ("PutObject", "UploadPart"):
        client.meta.events.register(f"before-call.s3.{operation}", to_trailer)
