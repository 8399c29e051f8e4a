"""Authentication through boto3 and plain HTTP: presigned URLs, bad credentials, anonymous."""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from xml.etree import ElementTree

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config

from tests.conftest import Server, boto3_client
from tests.integration.boto3_support import MIB, md5_hex, payload, quoted, s3_error


def http_request(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """(status, lower-cased headers, body) of one plain HTTP request, errors included."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.netloc, timeout=30)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return (
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            response.read(),
        )
    finally:
        conn.close()


def error_code(body: bytes) -> str:
    return ElementTree.fromstring(body).findtext("Code") or ""


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


# --- presigned URLs --------------------------------------------------------------------------


@pytest.fixture
def presigner(server: Server) -> Any:
    """A client making SigV4 presigned URLs. Without ``signature_version="s3v4"`` botocore
    presigns S3 URLs with SigV2, which the gateway refuses (see the test below)."""
    return boto3_client(server, signature_version="s3v4")


def test_default_sigv2_presigned_url_is_refused(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    assert "Signature=" in url and "X-Amz-Signature" not in url
    status, _, body = http_request(url)
    assert (status, error_code(body)) == (400, "InvalidRequest")
    assert b"AWS4-HMAC-SHA256" in body


@pytest.mark.parametrize("key", ["plain.bin", "dir/ü nicode + spaces~%.bin"])
def test_presigned_get_with_urllib(s3, presigner, bucket, key):
    data = payload(MIB + 17, seed=1)
    s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="application/x-test")
    url = presigner.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300
    )
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        assert response.headers["ETag"] == quoted(md5_hex(data))
        assert response.headers["Content-Type"] == "application/x-test"
        assert response.read() == data


def test_presigned_get_with_response_overrides_and_range(s3, presigner, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"0123456789")
    url = presigner.generate_presigned_url(
        "get_object",
        Params={
            "Bucket": bucket,
            "Key": "k",
            "ResponseContentDisposition": 'attachment; filename="x.txt"',
            "ResponseContentType": "text/plain",
        },
    )
    status, headers, body = http_request(url, headers={"Range": "bytes=2-4"})
    assert (status, body) == (206, b"234")
    assert headers["content-disposition"] == 'attachment; filename="x.txt"'
    assert headers["content-type"] == "text/plain"


@pytest.mark.parametrize("size", [0, 1000, 2 * MIB + 1])
def test_presigned_put_with_http_client(s3, presigner, bucket, size):
    data = payload(size, seed=2)
    url = presigner.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "up/loaded"}, ExpiresIn=300
    )
    status, headers, body = http_request(url, "PUT", data)
    assert status == 200, body
    assert headers["etag"] == quoted(md5_hex(data))
    assert s3.get_object(Bucket=bucket, Key="up/loaded")["Body"].read() == data


def test_presigned_put_with_signed_content_type(s3, presigner, bucket):
    url = presigner.generate_presigned_url(
        "put_object",
        Params={"Bucket": bucket, "Key": "typed", "ContentType": "image/png"},
    )
    status, _, body = http_request(url, "PUT", b"png", {"Content-Type": "image/png"})
    assert status == 200, body
    assert s3.head_object(Bucket=bucket, Key="typed")["ContentType"] == "image/png"
    # A different Content-Type than the one signed is a different request.
    status, _, body = http_request(url, "PUT", b"png", {"Content-Type": "text/html"})
    assert (status, error_code(body)) == (403, "SignatureDoesNotMatch")


def test_presigned_url_expired(s3, presigner, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = presigner.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=1
    )
    time.sleep(2.1)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url, timeout=30)
    assert info.value.code == 403
    assert error_code(info.value.read()) == "AccessDenied"
    info.value.close()


def test_presigned_url_tampered(s3, presigner, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"secret")
    s3.put_object(Bucket=bucket, Key="other", Body=b"other")
    url = presigner.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    signature = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    for bad in (
        with_query(url, **{"X-Amz-Signature": flipped}),
        with_query(url, **{"X-Amz-Expires": "604800"}),
        url.replace(f"/{bucket}/k?", f"/{bucket}/other?"),
    ):
        status, _, body = http_request(bad)
        assert (status, error_code(body)) == (403, "SignatureDoesNotMatch"), bad
    credential = dict(parse_qsl(urlsplit(url).query))["X-Amz-Credential"]
    unknown = "AKIAUNKNOWNKEY000000/" + credential.partition("/")[2]
    status, _, body = http_request(with_query(url, **{"X-Amz-Credential": unknown}))
    assert (status, error_code(body)) == (403, "InvalidAccessKeyId")
    # The untampered URL still works.
    assert http_request(url)[::2] == (200, b"secret")


def test_presigned_get_cannot_be_used_for_another_method(s3, presigner, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"keep")
    url = presigner.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    status, _, body = http_request(url, "PUT", b"overwrite")
    assert (status, error_code(body)) == (403, "SignatureDoesNotMatch")
    status, _, body = http_request(url, "DELETE")
    assert (status, error_code(body)) == (403, "SignatureDoesNotMatch")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"keep"


# --- credentials -----------------------------------------------------------------------------


def client_with(server: Server, access_key: str, secret_key: str, **config: Any) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=server.region,
        config=Config(retries={"max_attempts": 1}, **config),
    )


def test_unknown_access_key(server, bucket):
    s3 = client_with(server, "AKIAUNKNOWNKEY000000", server.secret_key)
    s3_error(lambda: s3.list_buckets(), "InvalidAccessKeyId", 403)
    s3_error(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x"), "InvalidAccessKeyId", 403)
    s3_error(lambda: s3.head_object(Bucket=bucket, Key="k"), "403", 403)


def test_wrong_secret_key(server, bucket):
    s3 = client_with(server, server.access_key, "wrong-secret-wrong-secret-wrong-secret00")
    s3_error(lambda: s3.list_buckets(), "SignatureDoesNotMatch", 403)
    s3_error(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x"), "SignatureDoesNotMatch", 403)
    s3_error(lambda: s3.list_objects_v2(Bucket=bucket), "SignatureDoesNotMatch", 403)
    assert boto3_client(server).list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_anonymous_requests_are_denied(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"private")
    anonymous = client_with(server, "unused", "unused", signature_version=UNSIGNED)
    s3_error(lambda: anonymous.list_buckets(), "AccessDenied", 403)
    s3_error(lambda: anonymous.get_object(Bucket=bucket, Key="k"), "AccessDenied", 403)
    s3_error(lambda: anonymous.put_object(Bucket=bucket, Key="new", Body=b"x"), "AccessDenied", 403)
    s3_error(lambda: anonymous.list_objects_v2(Bucket=bucket), "AccessDenied", 403)
    s3_error(lambda: anonymous.create_bucket(Bucket=f"{bucket}-anon"), "AccessDenied", 403)
    # Plain HTTP without any signature.
    status, _, body = http_request(f"{server.endpoint}/{bucket}/k")
    assert (status, error_code(body)) == (403, "AccessDenied")
    assert b"private" not in body
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]
    s3_error(lambda: s3.head_bucket(Bucket=f"{bucket}-anon"), "404", 404)
