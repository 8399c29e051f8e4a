"""Micro-benchmarks: SigV4 verification as the gateway runs it on every request.

Not part of the main suite (``testpaths`` is ``tests``). Run with::

    pytest bench/micro/test_sigv4_bench.py --benchmark-only

The requests are signed by botocore (boto3's own signer) with the headers boto3 sends, so the
canonical request has a real client's size. Each benchmark first checks that the request is
accepted: a rejected one would time the error path. ``from_wire`` is the request's parse
(header names lowered, repeats joined, query decoded); ``authenticate`` is the check itself
(scope, date and skew, canonical request, string to sign, signing key, HMAC).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from gateway.sigv4 import AuthRequest, authenticate

ACCESS_KEY = "HMBENCHACCESSKEY0001"
SECRET_KEY = "bench-secret-key-0000000000000000000000"
NOW = datetime.now(UTC)  # botocore signs at its own clock: within the 15 minutes allowed
ENDPOINT = "http://127.0.0.1:9000"
BODY = b"x" * 4096
# What boto3 sends with a PutObject besides what the signer adds.
BOTO3_PUT_HEADERS = {
    "User-Agent": "Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux#6.1.0 lang/python#3.11.2",
    "Content-Type": "application/octet-stream",
    "Content-MD5": "qAZkwPf6vAqfgYKj3w0TSQ==",
    "x-amz-meta-department": "radiology",
    "amz-sdk-invocation-id": "6c3f1a4e-58a9-4d3c-9d0e-0d4f5f2a1b7c",
    "amz-sdk-request": "attempt=1",
    "Content-Length": str(len(BODY)),
}


def lookup(access_key: str) -> str | None:
    return SECRET_KEY if access_key == ACCESS_KEY else None


def _signed(request: AWSRequest, auth: SigV4Auth) -> AWSRequest:
    auth.add_auth(request)
    return request


def _header_signed(method: str, url: str, headers: dict[str, str], body: bytes) -> AuthRequest:
    credentials = Credentials(ACCESS_KEY, SECRET_KEY)
    request = _signed(
        AWSRequest(method=method, url=url, headers=headers, data=body),
        S3SigV4Auth(credentials, "s3", "us-east-1"),
    )
    prepared = request.prepare()
    target = prepared.url.removeprefix(ENDPOINT)
    return AuthRequest.from_wire(
        method, target, [("Host", "127.0.0.1:9000"), *prepared.headers.items()]
    )


def _presigned(method: str, url: str) -> AuthRequest:
    credentials = Credentials(ACCESS_KEY, SECRET_KEY)
    request = _signed(
        AWSRequest(method=method, url=url), S3SigV4QueryAuth(credentials, "s3", "us-east-1", 3600)
    )
    target = request.prepare().url.removeprefix(ENDPOINT)
    return AuthRequest.from_wire(method, target, [("Host", "127.0.0.1:9000")])


REQUESTS = {
    "PUT 4 KiB (boto3 headers, payload hash signed)": lambda: _header_signed(
        "PUT", f"{ENDPOINT}/pacs/study/0001/series/02.dcm", dict(BOTO3_PUT_HEADERS), BODY
    ),
    "GET (no body)": lambda: _header_signed(
        "GET", f"{ENDPOINT}/pacs/study/0001/series/02.dcm", {"Range": "bytes=0-1023"}, b""
    ),
    "LIST v2 (query)": lambda: _header_signed(
        "GET", f"{ENDPOINT}/catalog?list-type=2&prefix=dept%2Fhealth%2F&max-keys=1000", {}, b""
    ),
    "presigned GET": lambda: _presigned("GET", f"{ENDPOINT}/courseware/lesson%2001.mp4"),
}


@pytest.fixture(params=list(REQUESTS))
def signed(request: pytest.FixtureRequest) -> AuthRequest:
    auth_request = REQUESTS[request.param]()
    assert authenticate(auth_request, lookup, NOW).access_key == ACCESS_KEY
    return auth_request


def test_authenticate(benchmark: Any, signed: AuthRequest) -> None:
    benchmark(authenticate, signed, lookup, NOW)


def test_from_wire_boto3_put(benchmark: Any) -> None:
    parsed = REQUESTS["PUT 4 KiB (boto3 headers, payload hash signed)"]()
    wire = list(parsed.headers.items())
    target = parsed.raw_path
    assert AuthRequest.from_wire("PUT", target, wire) == parsed
    benchmark(AuthRequest.from_wire, "PUT", target, wire)
