"""Bad input gets an S3 error and changes nothing (DESIGN.md invariant 7).

Every request here is built by hand and signed with botocore's SigV4 signer, so exactly one thing
is wrong with it, then sent with http.client (or a raw socket) with a timeout: a hang fails the
test instead of blocking the suite. After each refusal the test checks that nothing was stored
and that the server still answers ``/_huimin/health/ready``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import random
import socket
import time
import urllib.parse
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.conftest import Server, boto3_client

TIMEOUT_S = 10
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def code(self) -> str | None:
        """The ``<Code>`` of an S3 XML error body (None when there is no body)."""
        if not self.body:
            return None
        root = ET.fromstring(self.body)
        assert root.tag == "Error", self.body[:500]
        code = root.findtext("Code")
        assert code, self.body[:500]
        assert root.findtext("Message") is not None, self.body[:500]
        return code


@dataclass
class Signed:
    """A request ready to send: target (path + query) and headers incl. the SigV4 ones."""

    method: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)


def sign(
    server: Server,
    method: str,
    target: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    access_key: str | None = None,
    secret_key: str | None = None,
    when: datetime | None = None,
) -> Signed:
    """Sign ``method target`` (percent-encoded) as boto3 would, payload hash included."""
    request = AWSRequest(
        method=method, url=server.endpoint + target, data=body, headers=dict(headers or {})
    )
    credentials = Credentials(access_key or server.access_key, secret_key or server.secret_key)
    signer = S3SigV4Auth(credentials, "s3", server.region)
    if when is None:
        signer.add_auth(request)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            signer.add_auth(request)
    return Signed(method, target, {k: str(v) for k, v in request.headers.items()})


def send(
    server: Server, request: Signed, body: bytes = b"", *, content_length: bool = True
) -> Reply:
    """Send a request with http.client; a server that does not answer in time fails the test."""
    url = urllib.parse.urlsplit(server.endpoint)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=TIMEOUT_S)
    try:
        conn.putrequest(request.method, request.target, skip_accept_encoding=True)
        for name, value in request.headers.items():
            conn.putheader(name, value)
        if content_length:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        response = conn.getresponse()
        return Reply(response.status, dict(response.getheaders()), response.read())
    finally:
        conn.close()


def call(server: Server, method: str, target: str, body: bytes = b"", **kw: object) -> Reply:
    return send(server, sign(server, method, target, body=body, **kw), body)  # type: ignore[arg-type]


def assert_error(reply: Reply, status: int, code: str) -> None:
    assert (reply.status, reply.code) == (status, code), (reply.status, reply.body[:500])


def assert_healthy(server: Server) -> None:
    url = urllib.parse.urlsplit(server.endpoint)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=TIMEOUT_S)
    try:
        conn.request("GET", "/_huimin/health/ready")
        assert conn.getresponse().status == 200
    finally:
        conn.close()
    assert server.alive()


def assert_absent(server: Server, bucket: str, key_target: str) -> None:
    """HEAD of the (encoded) key answers 404 and the bucket lists no keys."""
    assert call(server, "HEAD", f"/{bucket}/{key_target}").status == 404
    s3 = boto3_client(server)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert_healthy(server)


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


# --- XML bodies ------------------------------------------------------------------------------

BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'.encode()
        for i in range(1, 10)
    )
    + b"]>\n"
)
MALFORMED = [
    b"<Delete><Object><Key>a</Key></Object>",  # unclosed
    b"not xml at all",
    b"<Delete><Object><Key>a</Key></Object></Delete>trailing",
    b"\xff\xfe<\x00D\x00",
]


@pytest.mark.parametrize("body", MALFORMED, ids=["unclosed", "text", "trailing", "binary"])
def test_delete_objects_with_malformed_xml_deletes_nothing(
    server: Server, bucket: str, body: bytes
):
    s3 = boto3_client(server)
    s3.put_object(Bucket=bucket, Key="a", Body=b"keep me")
    reply = call(server, "POST", f"/{bucket}?delete", body, headers={"Content-MD5": md5_b64(body)})
    assert_error(reply, 400, "MalformedXML")
    assert s3.get_object(Bucket=bucket, Key="a")["Body"].read() == b"keep me"
    assert_healthy(server)


def test_complete_multipart_with_malformed_xml_stores_nothing(server: Server, bucket: str):
    s3 = boto3_client(server)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    etag = s3.upload_part(
        Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=b"part one"
    )["ETag"]
    for body in (
        f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag>".encode(),
        b"<CompleteMultipartUpload><Part><PartNumber>one</PartNumber></Part>"
        b"</CompleteMultipartUpload>",
        BILLION_LAUGHS + b"<CompleteMultipartUpload>&lol9;</CompleteMultipartUpload>",
    ):
        reply = call(server, "POST", f"/{bucket}/mp?uploadId={upload_id}", body)
        assert_error(reply, 400, "MalformedXML")
    assert_absent(server, bucket, "mp")
    # The upload itself is untouched and can still be completed properly.
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"part one"


@pytest.mark.parametrize(
    "body",
    [
        b"<CreateBucketConfiguration><LocationConstraint>us-east-1",
        b"<CreateBucketConfiguration><Bogus/></CreateBucketConfiguration>",
        BILLION_LAUGHS
        + b"<CreateBucketConfiguration><LocationConstraint>&lol9;</LocationConstraint>"
        b"</CreateBucketConfiguration>",
    ],
    ids=["unclosed", "unknown-element", "billion-laughs"],
)
def test_create_bucket_with_malformed_xml_creates_nothing(server: Server, body: bytes):
    name = f"malformed-{random.randrange(10**9)}"
    started = time.monotonic()
    reply = call(server, "PUT", f"/{name}", body)
    assert time.monotonic() - started < 2, "the XML bomb must be refused quickly"
    assert_error(reply, 400, "MalformedXML")
    assert call(server, "HEAD", f"/{name}").status == 404
    assert_healthy(server)


def test_xml_bomb_on_delete_objects_is_refused_quickly(server: Server, bucket: str):
    s3 = boto3_client(server)
    s3.put_object(Bucket=bucket, Key="lol", Body=b"x")
    body = BILLION_LAUGHS + b"<Delete><Object><Key>&lol9;</Key></Object></Delete>"
    started = time.monotonic()
    reply = call(server, "POST", f"/{bucket}?delete", body, headers={"Content-MD5": md5_b64(body)})
    assert time.monotonic() - started < 2
    assert_error(reply, 400, "MalformedXML")
    assert s3.head_object(Bucket=bucket, Key="lol")["ContentLength"] == 1
    assert_healthy(server)


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "ab",
        "x" * 64,
        "UpperCase",
        "under_score",
        "-leading",
        "trailing-",
        "a..b",
        "a.-b",
        "192.168.1.10",
        "xn--punycode",
        "bucket-s3alias",
        "sp%20ace",
    ],
)
def test_invalid_bucket_name(server: Server, name: str):
    s3 = boto3_client(server)
    before = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert_error(call(server, "PUT", f"/{name}"), 400, "InvalidBucketName")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == before
    assert_healthy(server)


@pytest.mark.parametrize(
    ("key_target", "code"),
    [
        ("..", "InvalidArgument"),
        ("a/%2E%2E/b", "InvalidArgument"),
        ("%2E%2E/etc/passwd", "InvalidArgument"),
        ("a/./b", "InvalidArgument"),
        ("nul%00byte", "InvalidArgument"),
        ("k" * 1025, "KeyTooLongError"),
        ("%E4%B8%AD" * 342, "KeyTooLongError"),  # 1026 UTF-8 bytes, 342 characters
    ],
    ids=["dotdot", "dotdot-segment", "dotdot-lead", "dot-segment", "nul", "long", "long-utf8"],
)
def test_bad_object_key_stores_nothing(server: Server, bucket: str, key_target: str, code: str):
    reply = call(server, "PUT", f"/{bucket}/{key_target}", b"payload")
    assert_error(reply, 400, code)
    assert boto3_client(server).list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert_healthy(server)


def _sign_raw_header(server: Server, target: str, name: str, value: bytes) -> Signed:
    """Sign a PUT carrying header ``name: value`` as raw bytes (not UTF-8): botocore signs
    header values as text, so the canonical request is built here, byte for byte."""
    host = urllib.parse.urlsplit(server.endpoint).netloc
    amz_date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    signed = f"host;x-amz-content-sha256;x-amz-date;{name}"
    canonical = b"\n".join(
        [
            b"PUT",
            target.encode(),
            b"",
            f"host:{host}\nx-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:{amz_date}\n".encode()
            + f"{name}:".encode()
            + value
            + b"\n",
            signed.encode(),
            b"UNSIGNED-PAYLOAD",
        ]
    )
    scope = f"{amz_date[:8]}/{server.region}/s3/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical).hexdigest()}"
    key = f"AWS4{server.secret_key}".encode()
    for part in (amz_date[:8], server.region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return Signed(
        "PUT",
        target,
        {  # http.client adds "Host: {host}"
            "x-amz-date": amz_date,
            "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
            name: value.decode("latin-1"),  # http.client sends str headers as latin-1: the bytes
            "Authorization": f"AWS4-HMAC-SHA256 Credential={server.access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}",
        },
    )


@pytest.mark.parametrize("name", ["x-amz-meta-note", "content-type"])
def test_metadata_that_is_not_utf8_stores_nothing(server: Server, bucket: str, name: str):
    reply = send(server, _sign_raw_header(server, f"/{bucket}/k", name, b"caf\xe9"), b"payload")
    assert_error(reply, 400, "InvalidArgument")
    assert_absent(server, bucket, "k")
    # The same request with UTF-8 bytes is signed right and stored.
    reply = send(
        server, _sign_raw_header(server, f"/{bucket}/k", name, "café".encode()), b"payload"
    )
    assert reply.status == 200, reply.body[:500]


# --- integrity headers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Content-MD5": md5_b64(b"something else")}, 400, "BadDigest"),
        ({"Content-MD5": "not base64!"}, 400, "InvalidDigest"),
        ({"Content-MD5": base64.b64encode(b"short").decode()}, 400, "InvalidDigest"),
        (
            {
                "x-amz-checksum-crc32": base64.b64encode(
                    (zlib.crc32(b"other") & 0xFFFFFFFF).to_bytes(4, "big")
                ).decode()
            },
            400,
            "BadDigest",
        ),
    ],
    ids=["md5-wrong", "md5-not-base64", "md5-short", "crc32-wrong"],
)
def test_wrong_digest_stores_nothing(
    server: Server, bucket: str, headers: dict[str, str], status: int, code: str
):
    for size in (100, 300 * 1024):  # inline and shard-file objects
        body = random.randbytes(size)
        assert_error(call(server, "PUT", f"/{bucket}/obj", body, headers=headers), status, code)
        assert_absent(server, bucket, "obj")


def test_payload_not_matching_signed_sha256_stores_nothing(server: Server, bucket: str):
    for size in (100, 300 * 1024):
        signed_body = random.randbytes(size)
        sent_body = bytes(b ^ 1 for b in signed_body)
        request = sign(server, "PUT", f"/{bucket}/obj", body=signed_body)
        assert_error(send(server, request, sent_body), 400, "XAmzContentSHA256Mismatch")
        assert_absent(server, bucket, "obj")


def test_correct_digests_are_accepted(server: Server, bucket: str):
    """The control for the tests above: the same requests, correct, do store the object."""
    body = b"hello digests"
    crc = base64.b64encode((zlib.crc32(body) & 0xFFFFFFFF).to_bytes(4, "big")).decode()
    headers = {"Content-MD5": md5_b64(body), "x-amz-checksum-crc32": crc}
    assert call(server, "PUT", f"/{bucket}/obj", body, headers=headers).status == 200
    assert boto3_client(server).get_object(Bucket=bucket, Key="obj")["Body"].read() == body


@pytest.mark.parametrize("size", [1000, 3 * 1024 * 1024])
def test_truncated_body_stores_nothing_and_does_not_hang(server: Server, bucket: str, size: int):
    body = random.randbytes(size)
    request = sign(server, "PUT", f"/{bucket}/short", body=body)
    url = urllib.parse.urlsplit(server.endpoint)
    head = f"PUT {request.target} HTTP/1.1\r\nHost: {url.netloc}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
    head += f"Content-Length: {size}\r\n\r\n"
    with socket.create_connection((url.hostname, url.port), timeout=TIMEOUT_S) as sock:
        sock.sendall(head.encode() + body[: size // 2])
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):  # a hang raises socket.timeout
            answer += chunk
    if answer:  # the server may answer 400 or just close: never 2xx, never 5xx
        status = int(answer.split(b" ", 2)[1])
        assert 400 <= status < 500, answer[:500]
    deadline = time.monotonic() + 5
    while call(server, "HEAD", f"/{bucket}/short").status != 404:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert_absent(server, bucket, "short")


def test_missing_content_length(server: Server, bucket: str):
    request = sign(server, "PUT", f"/{bucket}/nolength")
    reply = send(server, request, content_length=False)
    assert_error(reply, 411, "MissingContentLength")
    assert_absent(server, bucket, "nolength")


# --- authentication --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "status", "code"),
    [
        ({"secret_key": "wrong-secret-0123456789abcdefghijkl"}, 403, "SignatureDoesNotMatch"),
        ({"access_key": "HMNOSUCHKEY000000000"}, 403, "InvalidAccessKeyId"),
        ({"when": datetime.now(UTC) - timedelta(hours=1)}, 403, "RequestTimeTooSkewed"),
        ({"when": datetime.now(UTC) + timedelta(hours=1)}, 403, "RequestTimeTooSkewed"),
    ],
    ids=["bad-signature", "unknown-key", "past", "future"],
)
def test_bad_authentication_stores_nothing(
    server: Server, bucket: str, kw: dict[str, object], status: int, code: str
):
    for method, target, body in [
        ("PUT", f"/{bucket}/obj", b"data"),
        ("GET", f"/{bucket}", b""),
        ("DELETE", f"/{bucket}", b""),
        ("PUT", "/auth-new-bucket", b""),
    ]:
        reply = call(server, method, target, body, **kw)
        assert_error(reply, status, code)
    assert_absent(server, bucket, "obj")
    assert call(server, "HEAD", "/auth-new-bucket").status == 404


def test_tampered_request_after_signing(server: Server, bucket: str):
    """Changing a signed header or the path after signing breaks the signature."""
    request = sign(server, "PUT", f"/{bucket}/obj", body=b"data", headers={"x-amz-meta-a": "1"})
    request.headers["x-amz-meta-a"] = "2"
    assert_error(send(server, request, b"data"), 403, "SignatureDoesNotMatch")
    request = sign(server, "PUT", f"/{bucket}/obj", body=b"data")
    request.target = f"/{bucket}/other"
    assert_error(send(server, request, b"data"), 403, "SignatureDoesNotMatch")
    assert_absent(server, bucket, "obj")


# --- operations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target", "status", "code"),
    [
        ("GET", "/{b}?acl", 501, "NotImplemented"),
        ("PUT", "/{b}/obj?acl", 501, "NotImplemented"),
        ("PUT", "/{b}?lifecycle", 501, "NotImplemented"),
        ("GET", "/{b}/obj?tagging", 501, "NotImplemented"),
        ("PATCH", "/{b}/obj", 405, "MethodNotAllowed"),
        ("PATCH", "/{b}", 405, "MethodNotAllowed"),
        ("POST", "/{b}/obj", 405, "MethodNotAllowed"),
        ("OPTIONS", "/{b}/obj", 405, "MethodNotAllowed"),
    ],
)
def test_unknown_operation(
    server: Server, bucket: str, method: str, target: str, status: int, code: str
):
    body = b"<AccessControlPolicy/>" if method in ("PUT", "PATCH") else b""
    assert_error(call(server, method, target.format(b=bucket), body), status, code)
    assert_absent(server, bucket, "obj")


# --- fuzz ------------------------------------------------------------------------------------

_METHODS = ["GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", "OPTIONS", "COPY", "PROPFIND", "TRACE"]
_HEADER_NAMES = [
    "Content-MD5",
    "Range",
    "x-amz-copy-source",
    "x-amz-checksum-crc32",
    "x-amz-checksum-sha256",
    "x-amz-content-sha256",
    "If-Match",
    "If-None-Match",
    "x-amz-meta-x",
    "Content-Type",
    "x-amz-decoded-content-length",
    "Content-Encoding",
    "x-amz-date",
    "x-amz-metadata-directive",
    "x-amz-copy-source-range",
    "x-amz-checksum-algorithm",
    "Expect",
]
_QUERY_NAMES = [
    "uploads",
    "uploadId",
    "partNumber",
    "delete",
    "list-type",
    "max-keys",
    "prefix",
    "continuation-token",
    "versionId",
    "acl",
    "location",
    "marker",
    "encoding-type",
    "delimiter",
    "X-Amz-Algorithm",
    "X-Amz-Signature",
    "response-content-type",
]


def _garbage(rng: random.Random, n: int) -> str:
    alphabet = "abcAZ09-_.~/%+=&?:;,' *\"<>!$()@\\^`{|}\t" + "中é"
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(n)))


def _fuzz_request(rng: random.Random, server: Server, bucket: str) -> tuple[Signed, bytes]:
    method = rng.choice(_METHODS)
    segments = [rng.choice([bucket, bucket, "nobucket", _garbage(rng, 12)])]
    if rng.random() < 0.7:
        segments.append(rng.choice(["k", "a/b", "..", _garbage(rng, 40)]))
    path = "/" + "/".join(urllib.parse.quote(s, safe=rng.choice(["/", "/%", ""])) for s in segments)
    if rng.random() < 0.1:
        path = rng.choice(["/", "//", "/%zz", "/%ff%fe", "/" + "a" * 2000])
    query = "&".join(
        urllib.parse.quote(rng.choice(_QUERY_NAMES))
        + rng.choice(["", "=", "=" + urllib.parse.quote(_garbage(rng, 20))])
        for _ in range(rng.randrange(3))
    )
    target = path + ("?" + query if query else "")
    headers = {
        rng.choice(_HEADER_NAMES): _garbage(rng, 30).replace("\t", " ").strip() or "x"
        for _ in range(rng.randrange(4))
    }
    body = rng.randbytes(rng.choice([0, 0, 10, 1000, 70_000]))
    if rng.random() < 0.3:
        body = rng.choice(MALFORMED) + body[:100]
    mode = rng.random()
    if mode < 0.6:  # signed: exercises the handlers behind authentication
        signed = sign(server, method, target, body=body, headers=headers)
        if rng.random() < 0.2:  # and then damaged
            signed.headers[rng.choice(list(signed.headers))] = _garbage(rng, 50).strip() or "x"
    else:
        signed = Signed(method, target, headers)
        if mode < 0.8:
            signed.headers["Authorization"] = (
                rng.choice(
                    [
                        "AWS4-HMAC-SHA256 " + _garbage(rng, 80),
                        "AWS a:b",
                        "Bearer x",
                        _garbage(rng, 20),
                    ]
                ).strip()
                or "x"
            )
    return signed, body


def test_fuzz_garbage_requests_get_s3_answers(own_server: Server):
    s3 = boto3_client(own_server)
    bucket = "fuzz"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"existing")
    rng = random.Random(20260)
    started = time.monotonic()
    for i in range(200):
        request, body = _fuzz_request(rng, own_server, bucket)
        try:
            reply = send(own_server, request, body)
        except (http.client.InvalidURL, ValueError):
            continue  # http.client refuses to send it: not a server question
        context = (i, request.method, request.target[:200], request.headers, reply.status)
        assert reply.status < 500 or reply.status == 501, (*context, reply.body[:500])
        if reply.status >= 300 and reply.body:
            assert reply.code, context
        elif reply.body and reply.headers.get("Content-Type", "").startswith("application/xml"):
            ET.fromstring(reply.body)
    assert time.monotonic() - started < 60
    assert_healthy(own_server)
    assert "Traceback" not in own_server.log(), own_server.log()[-5000:]
