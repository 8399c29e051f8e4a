"""SigV4 verification against the real signers: botocore (boto3's own), awscrt, and AWS's examples.

Requests are signed by a real boto3 client whose HTTP send is intercepted, so the path, query and
headers are byte for byte what boto3 would put on the wire.
"""

from __future__ import annotations

import doctest
import functools
import hashlib
import io
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import awscrt.auth
import awscrt.http
import boto3
import botocore.auth
import botocore.crt.auth
import pytest
from botocore.awsrequest import AWSRequest, AWSResponse, HTTPHeaders
from botocore.config import Config
from botocore.credentials import Credentials

from gateway import sigv4
from gateway.errors import (
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidRequest,
    MissingContentLength,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
    XAmzContentSHA256Mismatch,
)
from gateway.sigv4 import AuthRequest, PayloadMode, authenticate

NOW = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)
ACCESS_KEY = "HUIMINTESTKEY"
SECRET = "s3cr3t/with+Special=chars"
SECRETS = {ACCESS_KEY: SECRET, "OTHERKEY": "other-secret"}
ENDPOINT = "127.0.0.1:9000"

AWS_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_NOW = datetime(2013, 5, 24, tzinfo=UTC)
EMPTY = sigv4.EMPTY_SHA256

TRICKY_KEYS = [
    "plain.txt",
    "with space/and+plus",
    "tilde~and-dash_underscore.dot",
    "ünïcødé/日本語/😀",
    "literal%2Fpercent%20escapes%",
    "sub-delims!$&'()*,;=:@",
    "query-like?a=b&c#frag",
    "double//slash/./dot/../segments",
    "trailing space ",
    '[brackets]{braces}|pipe^caret`back\\slash"quote<>',
]


def lookup(access_key: str) -> str | None:
    return SECRETS.get(access_key)


def to_auth(request: Any) -> AuthRequest:
    """What an HTTP server receives for a botocore request: target as sent, headers as sent."""
    split = urlsplit(str(request.url))
    target = split.path + (f"?{split.query}" if split.query else "")
    headers: list[tuple[str, str]] = [
        (str(name), value.decode() if isinstance(value, bytes) else str(value))
        for name, value in request.headers.items()
    ]
    if not any(name.lower() == "host" for name, _ in headers):
        headers.append(("host", split.netloc))  # the HTTP client adds it
    return AuthRequest.from_wire(str(request.method), target, headers)


def with_header(req: AuthRequest, name: str, value: str | None) -> AuthRequest:
    headers = dict(req.headers)
    if value is None:
        del headers[name]
    else:
        headers[name] = value
    return AuthRequest(req.method, req.raw_path, req.query, headers)


def _fixed_now(remove_tzinfo: bool = True) -> datetime:
    return NOW.replace(tzinfo=None) if remove_tzinfo else NOW


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", _fixed_now)
    monkeypatch.setattr(botocore.crt.auth, "get_current_datetime", _fixed_now)


@pytest.fixture
def signer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """boto3 signs with awscrt when it is installed (as here), else with botocore's Python.

    awscrt unless a test asks for both with ``BOTH_SIGNERS``.
    """
    name = getattr(request, "param", "crt")
    if name == "python":
        monkeypatch.setitem(botocore.auth.AUTH_TYPE_MAPS, "s3v4", botocore.auth.S3SigV4Auth)
        monkeypatch.setitem(
            botocore.auth.AUTH_TYPE_MAPS, "s3v4-query", botocore.auth.S3SigV4QueryAuth
        )
    else:
        assert botocore.auth.AUTH_TYPE_MAPS["s3v4"] is botocore.crt.auth.CrtS3SigV4Auth
    return str(name)


BOTH_SIGNERS = pytest.mark.parametrize("signer", ["crt", "python"], indirect=True)


class _NoBody:
    def stream(self, **_: Any) -> Iterator[bytes]:
        return iter([b""])


class Recorder:
    """A boto3 S3 client whose requests are recorded in ``sent`` instead of being sent."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.sent: list[Any] = []
        client.meta.events.register("before-send", self._before_send)

    def _before_send(self, request: Any, **_: Any) -> Any:
        self.sent.append(request)
        return AWSResponse(request.url, 200, HTTPHeaders(), _NoBody())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


@functools.cache
def _recorder(scheme: str, key: str, secret: str, region: str, presign_v4: bool) -> Recorder:
    # Clients are reused across tests: making one costs ~10 ms. The signer and the clock are
    # looked up at signing time, so the fixtures below still apply.
    client = boto3.client(
        "s3",
        endpoint_url=f"{scheme}://{ENDPOINT}",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name=region,
        config=Config(signature_version="s3v4") if presign_v4 else None,
    )
    return Recorder(client)


@pytest.fixture
def capture(frozen_clock: None, signer: str) -> Callable[..., Recorder]:
    """Make a recording boto3 client (signed by the ``signer`` in use, at ``NOW``).

    ``presign_v4`` makes generate_presigned_url use SigV4 (boto3 defaults to V2 there).
    """

    def make(
        scheme: str = "http",
        key: str = ACCESS_KEY,
        secret: str = SECRET,
        region: str = "us-east-1",
        presign_v4: bool = False,
    ) -> Recorder:
        recorder = _recorder(scheme, key, secret, region, presign_v4)
        recorder.sent.clear()
        return recorder

    return make


# --- AWS's published examples ------------------------------------------------------------------


def test_signing_key_matches_the_aws_documentation_example() -> None:
    key = sigv4.signing_key(
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "iam"
    )
    assert key.hex() == "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"


def test_canonical_request_and_string_to_sign_match_the_aws_get_object_example() -> None:
    headers = {
        "host": "examplebucket.s3.amazonaws.com",
        "range": "bytes=0-9",
        "x-amz-content-sha256": EMPTY,
        "x-amz-date": "20130524T000000Z",
    }
    signed = ["host", "range", "x-amz-content-sha256", "x-amz-date"]
    creq = sigv4.canonical_request("GET", "/test.txt", [], headers, signed, EMPTY)
    assert creq == (
        "GET\n/test.txt\n\n"
        "host:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
        f"x-amz-content-sha256:{EMPTY}\nx-amz-date:20130524T000000Z\n\n"
        f"host;range;x-amz-content-sha256;x-amz-date\n{EMPTY}"
    )
    sts = sigv4.string_to_sign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request", creq)
    assert sts.endswith("7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972")
    key = sigv4.signing_key(AWS_SECRET, "20130524", "us-east-1")
    assert (
        sigv4.sign(key, sts) == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def _aws_header_request(
    method: str, target: str, headers: dict[str, str], signed: str, signature: str
) -> AuthRequest:
    authorization = (
        f"AWS4-HMAC-SHA256 Credential={AWS_ACCESS_KEY}/20130524/us-east-1/s3/aws4_request,"
        f"SignedHeaders={signed},Signature={signature}"
    )
    headers = {"x-amz-date": "20130524T000000Z", **headers, "authorization": authorization}
    return AuthRequest.from_wire(method, target, headers.items())


AWS_EXAMPLES = {
    "GET object": _aws_header_request(
        "GET",
        "/test.txt",
        {
            "host": "examplebucket.s3.amazonaws.com",
            "range": "bytes=0-9",
            "x-amz-content-sha256": EMPTY,
        },
        "host;range;x-amz-content-sha256;x-amz-date",
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    ),
    "GET bucket": _aws_header_request(
        "GET",
        "/?max-keys=2&prefix=J",
        {"host": "examplebucket.s3.amazonaws.com", "x-amz-content-sha256": EMPTY},
        "host;x-amz-content-sha256;x-amz-date",
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
    ),
    "presigned GET": AuthRequest.from_wire(
        "GET",
        "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
        [("host", "examplebucket.s3.amazonaws.com")],
    ),
    "streaming PUT": _aws_header_request(
        "PUT",
        "/examplebucket/chunkObject.txt",
        {
            "host": "s3.amazonaws.com",
            "x-amz-storage-class": "REDUCED_REDUNDANCY",
            "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            "content-encoding": "aws-chunked",
            "x-amz-decoded-content-length": "66560",
            "content-length": "66824",
        },
        "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
        "x-amz-decoded-content-length;x-amz-storage-class",
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    ),
    "streaming PUT with trailer": _aws_header_request(
        "PUT",
        "/examplebucket/chunkObject.txt",
        {
            "host": "s3.amazonaws.com",
            "x-amz-storage-class": "REDUCED_REDUNDANCY",
            "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
            "content-encoding": "aws-chunked",
            "x-amz-decoded-content-length": "66560",
            "x-amz-trailer": "x-amz-checksum-crc32c",
        },
        "content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;"
        "x-amz-storage-class;x-amz-trailer",
        "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e",
    ),
}


@pytest.mark.parametrize("name", list(AWS_EXAMPLES))
def test_aws_documented_requests_are_accepted(name: str) -> None:
    result = authenticate(AWS_EXAMPLES[name], {AWS_ACCESS_KEY: AWS_SECRET}.get, AWS_NOW)
    assert result.access_key == AWS_ACCESS_KEY
    assert result.presigned == name.startswith("presigned")


def test_streaming_example_gives_the_chunk_decoder_its_context() -> None:
    result = authenticate(
        AWS_EXAMPLES["streaming PUT with trailer"], {AWS_ACCESS_KEY: AWS_SECRET}.get, AWS_NOW
    )
    assert result.payload_mode is PayloadMode.STREAMING_SIGNED_TRAILER
    assert result.trailer_names == ("x-amz-checksum-crc32c",)
    assert result.decoded_content_length == 66560
    assert result.streaming is not None
    assert result.streaming.seed_signature.startswith("106e2a8a")
    assert result.streaming.scope == "20130524/us-east-1/s3/aws4_request"
    assert result.streaming.amz_date == "20130524T000000Z"
    assert result.streaming.signing_key == sigv4.signing_key(AWS_SECRET, "20130524", "us-east-1")
    assert "signing_key" not in repr(result)  # never in logs


# --- boto3-signed requests ---------------------------------------------------------------------


@BOTH_SIGNERS
@pytest.mark.parametrize("key", TRICKY_KEYS)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_boto3_put_object_with_tricky_keys_is_accepted(capture: Any, key: str, scheme: str) -> None:
    client = capture(scheme)
    client.put_object(Bucket="bucket", Key=key, Body=b"hello world", Metadata={"a": "b  c"})
    (request,) = client.sent
    result = authenticate(to_auth(request), lookup, NOW)
    assert result.access_key == ACCESS_KEY
    assert not result.presigned
    if scheme == "http":  # botocore signs the payload over plain HTTP
        assert result.payload_mode is PayloadMode.SIGNED
        assert result.payload_sha256 == hashlib.sha256(b"hello world").hexdigest()
    else:  # and streams it with a CRC32 trailer over HTTPS
        assert result.payload_mode is PayloadMode.STREAMING_UNSIGNED_TRAILER
        assert result.trailer_names == ("x-amz-checksum-crc32",)
        assert result.decoded_content_length == 11
        assert result.streaming is None


OPERATIONS: dict[str, Callable[[Any], Any]] = {
    "list_objects_v2": lambda c: c.list_objects_v2(
        Bucket="b", Prefix="a b+c/ü~", Delimiter="/", StartAfter="x=y&z"
    ),
    "get_object": lambda c: c.get_object(
        Bucket="b", Key="k k", Range="bytes=0-9", VersionId="v+1/2="
    ),
    "head_object": lambda c: c.head_object(Bucket="b", Key="k", IfNoneMatch='"etag"'),
    "copy_object": lambda c: c.copy_object(
        Bucket="b", Key="dst", CopySource={"Bucket": "s", "Key": "a b+ü"}
    ),
    "upload_part": lambda c: c.upload_part(
        Bucket="b", Key="k", PartNumber=7, UploadId="id/+=", Body=b"x"
    ),
    "delete_objects": lambda c: c.delete_objects(
        Bucket="b", Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]}
    ),
    "get_bucket_acl": lambda c: c.get_bucket_acl(Bucket="b"),
    "list_multipart_uploads": lambda c: c.list_multipart_uploads(
        Bucket="b", KeyMarker="m", UploadIdMarker="u"
    ),
    "put_object_stream": lambda c: c.put_object(
        Bucket="b", Key="k", Body=io.BytesIO(b"x" * 5000), ContentType="a/b"
    ),
    "list_buckets": lambda c: c.list_buckets(),
}


@BOTH_SIGNERS
@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_boto3_operations_are_accepted(capture: Any, operation: str, scheme: str) -> None:
    client = capture(scheme)
    OPERATIONS[operation](client)
    (request,) = client.sent
    assert authenticate(to_auth(request), lookup, NOW).access_key == ACCESS_KEY


@BOTH_SIGNERS
def test_any_region_in_the_scope_is_accepted(capture: Any) -> None:
    client = capture(region="eu-west-3")
    client.get_object(Bucket="b", Key="k")
    (request,) = client.sent
    assert "/eu-west-3/s3/" in request.headers["Authorization"].decode()
    assert authenticate(to_auth(request), lookup, NOW, region="us-east-1").access_key == ACCESS_KEY


def _signed_put(capture: Any) -> AuthRequest:
    client = capture()
    client.put_object(
        Bucket="bucket",
        Key="dir/key one",
        Body=b"payload",
        Metadata={"color": "blue"},
        ContentType="text/plain",
    )
    return to_auth(client.sent[0])


TAMPERINGS: dict[str, Callable[[AuthRequest], AuthRequest]] = {
    "signed header value": lambda r: with_header(r, "x-amz-meta-color", "red"),
    "content type": lambda r: with_header(r, "content-type", "text/html"),
    "signed header dropped": lambda r: with_header(r, "content-type", None),
    "payload hash": lambda r: with_header(r, "x-amz-content-sha256", "0" * 64),
    "path": lambda r: AuthRequest(r.method, "/bucket/dir/key%20two", r.query, r.headers),
    "bucket": lambda r: AuthRequest(r.method, "/other/dir/key%20one", r.query, r.headers),
    "query added": lambda r: AuthRequest(r.method, r.raw_path, (("acl", ""),), r.headers),
    "method": lambda r: AuthRequest("DELETE", r.raw_path, r.query, r.headers),
    "host": lambda r: with_header(r, "host", "evil.example:9000"),
}


@BOTH_SIGNERS
@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_tampered_requests_are_rejected(capture: Any, name: str) -> None:
    request = _signed_put(capture)
    assert authenticate(request, lookup, NOW).access_key == ACCESS_KEY
    with pytest.raises(SignatureDoesNotMatch) as info:
        authenticate(TAMPERINGS[name](request), lookup, NOW)
    assert info.value.extra["AWSAccessKeyId"] == ACCESS_KEY
    assert "CanonicalRequest" in info.value.extra


def test_wrong_secret_is_rejected(capture: Any) -> None:
    client = capture(secret="not-the-secret")
    client.list_buckets()
    with pytest.raises(SignatureDoesNotMatch):
        authenticate(to_auth(client.sent[0]), lookup, NOW)


def test_unknown_access_key_is_rejected(capture: Any) -> None:
    client = capture(key="NOSUCHKEY")
    client.list_buckets()
    with pytest.raises(InvalidAccessKeyId) as info:
        authenticate(to_auth(client.sent[0]), lookup, NOW)
    assert info.value.extra == {"AWSAccessKeyId": "NOSUCHKEY"}


def test_an_unsigned_amz_header_is_refused(capture: Any) -> None:
    request = with_header(_signed_put(capture), "x-amz-acl", "public-read")
    with pytest.raises(AccessDenied) as info:
        authenticate(request, lookup, NOW)
    assert info.value.extra == {"HeadersNotSigned": "x-amz-acl"}


def test_unsigned_ordinary_headers_are_fine(capture: Any) -> None:
    request = with_header(_signed_put(capture), "user-agent", "something else")
    assert authenticate(request, lookup, NOW).access_key == ACCESS_KEY


@pytest.mark.parametrize("skew", [timedelta(minutes=-14), timedelta(minutes=14)])
def test_clock_skew_within_limit_is_accepted(capture: Any, skew: timedelta) -> None:
    assert authenticate(_signed_put(capture), lookup, NOW + skew).access_key == ACCESS_KEY


@pytest.mark.parametrize("skew", [timedelta(minutes=-16), timedelta(minutes=16)])
def test_clock_skew_beyond_limit_is_refused(capture: Any, skew: timedelta) -> None:
    with pytest.raises(RequestTimeTooSkewed) as info:
        authenticate(_signed_put(capture), lookup, NOW + skew)
    assert info.value.extra["RequestTime"] == "20260314T150926Z"
    assert info.value.extra["MaxAllowedSkewMilliseconds"] == "900000"


def test_naive_now_is_taken_as_utc(capture: Any) -> None:
    assert authenticate(_signed_put(capture), lookup, NOW.replace(tzinfo=None)).access_key


def test_date_header_can_stand_in_for_x_amz_date(frozen_clock: None) -> None:
    request = AWSRequest(
        "GET",
        f"http://{ENDPOINT}/b/k",
        headers={"Date": "Sat, 14 Mar 2026 15:09:26 GMT", "X-Amz-Content-SHA256": EMPTY},
    )
    botocore.auth.S3SigV4Auth(Credentials(ACCESS_KEY, SECRET), "s3", "us-east-1").add_auth(request)
    assert "X-Amz-Date" not in request.headers
    assert authenticate(to_auth(request), lookup, NOW).access_key == ACCESS_KEY


def test_missing_date_is_refused(capture: Any) -> None:
    request = with_header(_signed_put(capture), "x-amz-date", None)
    with pytest.raises(AccessDenied, match="Date or x-amz-date"):
        authenticate(request, lookup, NOW)


def test_header_auth_needs_x_amz_content_sha256(frozen_clock: None) -> None:
    # The generic (non-S3) signer does not send it.
    request = AWSRequest("GET", f"http://{ENDPOINT}/b/k")
    botocore.auth.SigV4Auth(Credentials(ACCESS_KEY, SECRET), "s3", "us-east-1").add_auth(request)
    with pytest.raises(InvalidRequest, match="x-amz-content-sha256"):
        authenticate(to_auth(request), lookup, NOW)


def test_invalid_x_amz_content_sha256_is_refused(capture: Any) -> None:
    request = with_header(_signed_put(capture), "x-amz-content-sha256", "SHA256-PLEASE")
    with pytest.raises(InvalidArgument) as info:
        authenticate(request, lookup, NOW)
    assert info.value.extra == {"ArgumentName": "x-amz-content-sha256"}


def test_streaming_without_decoded_length_is_refused(capture: Any) -> None:
    client = capture("https")
    client.put_object(Bucket="b", Key="k", Body=b"abc")
    request = with_header(to_auth(client.sent[0]), "x-amz-decoded-content-length", None)
    with pytest.raises(MissingContentLength):
        authenticate(request, lookup, NOW)


def _authorization(signed_put: AuthRequest) -> str:
    return signed_put.headers["authorization"]


MALFORMED_AUTHORIZATION: dict[str, tuple[Callable[[str], str], type[Exception]]] = {
    "SigV2": (lambda a: "AWS HUIMINTESTKEY:c2lnbmF0dXJl", InvalidRequest),
    "SigV4a": (lambda a: a.replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"), InvalidArgument),
    "empty": (lambda a: "", InvalidArgument),
    "no components": (lambda a: "AWS4-HMAC-SHA256", AuthorizationHeaderMalformed),
    "missing signature": (lambda a: a.rpartition(",")[0], AuthorizationHeaderMalformed),
    "duplicate component": (lambda a: a + ", Signature=" + "0" * 64, AuthorizationHeaderMalformed),
    "unknown component": (lambda a: a + ", Foo=bar", AuthorizationHeaderMalformed),
    "short signature": (lambda a: a[:-2], AuthorizationHeaderMalformed),
    "non-hex signature": (lambda a: a[:-1] + "g", AuthorizationHeaderMalformed),
    "credential parts": (lambda a: a.replace("/aws4_request", ""), AuthorizationHeaderMalformed),
    "service": (lambda a: a.replace("/s3/", "/iam/"), AuthorizationHeaderMalformed),
    "terminator": (
        lambda a: a.replace("aws4_request", "aws5_request"),
        AuthorizationHeaderMalformed,
    ),
    "credential date": (
        lambda a: a.replace("/20260314/", "/20260313/"),
        AuthorizationHeaderMalformed,
    ),
    "date not digits": (
        lambda a: a.replace("/20260314/", "/2026031x/"),
        AuthorizationHeaderMalformed,
    ),
    "host not signed": (lambda a: a.replace("host;", ""), AuthorizationHeaderMalformed),
    "empty signed header": (lambda a: a.replace("host;", "host;;"), AuthorizationHeaderMalformed),
}


@pytest.mark.parametrize("name", list(MALFORMED_AUTHORIZATION))
def test_malformed_authorization_headers_are_refused(capture: Any, name: str) -> None:
    request = _signed_put(capture)
    mutate, error = MALFORMED_AUTHORIZATION[name]
    with pytest.raises(error):
        authenticate(
            with_header(request, "authorization", mutate(_authorization(request))), lookup, NOW
        )


def test_bytes_that_are_not_utf8_fail_cleanly(capture: Any) -> None:
    # aiohttp hands such header bytes over as lone surrogates (surrogateescape).
    request = _signed_put(capture)
    for tampered in (
        with_header(request, "x-amz-meta-color", "bl\udcffue"),
        AuthRequest(request.method, "/bucket/dir/key\udcff", request.query, request.headers),
    ):
        with pytest.raises(SignatureDoesNotMatch):
            authenticate(tampered, lookup, NOW)
    authorization = _authorization(request).replace("/us-east-1/", "/us-\udcff/")
    with pytest.raises(AuthorizationHeaderMalformed):
        authenticate(with_header(request, "authorization", authorization), lookup, NOW)


def test_spacing_in_the_authorization_header_is_tolerated(capture: Any) -> None:
    request = _signed_put(capture)
    loose = (
        _authorization(request)
        .replace(", ", " ,  ")
        .replace("AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA256   ")
    )
    assert authenticate(with_header(request, "authorization", loose), lookup, NOW).access_key


# --- the canonical URI: raw path first, the strict encoding second --------------------------


def _sign_url(url: str, frozen: None = None) -> AuthRequest:
    request = AWSRequest("GET", url, headers={"X-Amz-Content-SHA256": EMPTY})
    botocore.auth.S3SigV4Auth(Credentials(ACCESS_KEY, SECRET), "s3", "us-east-1").add_auth(request)
    return to_auth(request)


@pytest.mark.parametrize(
    ("signed_path", "wire_path"),
    [
        ("/b/it%27s%21%2A", "/b/it's!*"),  # signed strictly, sent loosely
        ("/b/a~b", "/b/a%7Eb"),  # signed unreserved, sent encoded
        ("/b/%C3%BC", "/b/%c3%bc"),  # lower-case escapes on the wire
    ],
)
def test_a_path_sent_with_another_encoding_than_signed_is_accepted(
    frozen_clock: None, signed_path: str, wire_path: str
) -> None:
    request = _sign_url(f"http://{ENDPOINT}{signed_path}")
    moved = AuthRequest(request.method, wire_path, request.query, request.headers)
    assert authenticate(moved, lookup, NOW).access_key == ACCESS_KEY


def test_an_encoded_slash_is_not_a_path_separator(frozen_clock: None) -> None:
    request = _sign_url(f"http://{ENDPOINT}/b/a%2Fb")
    moved = AuthRequest(request.method, "/b/a/b", request.query, request.headers)
    with pytest.raises(SignatureDoesNotMatch):
        authenticate(moved, lookup, NOW)


def test_strict_uri_round_trips_botocore_key_encoding() -> None:
    for key in TRICKY_KEYS:
        path = "/bucket/" + botocore.utils.percent_encode(key, safe="/~")
        assert sigv4.strict_uri(path) == path


# --- presigned URLs ----------------------------------------------------------------------------


def _presigned(
    capture: Any, method: str = "get_object", expires_s: int = 3600, **params: Any
) -> AuthRequest:
    # boto3 presigns with SigV2 unless told otherwise (see test_sigv2_presigned_url_is_refused).
    client = capture(presign_v4=True)
    url = client.generate_presigned_url(
        method, Params={"Bucket": "bucket", "Key": "a b+c/ü", **params}, ExpiresIn=expires_s
    )
    split = urlsplit(url)
    http_method = "PUT" if method.startswith("put") else "GET"
    return AuthRequest.from_wire(
        http_method, f"{split.path}?{split.query}", [("host", split.netloc)]
    )


@BOTH_SIGNERS
def test_presigned_get_is_accepted(capture: Any) -> None:
    result = authenticate(_presigned(capture), lookup, NOW + timedelta(seconds=3599))
    assert result.access_key == ACCESS_KEY
    assert result.presigned
    assert result.payload_mode is PayloadMode.UNSIGNED


@BOTH_SIGNERS
def test_presigned_with_operation_query_is_accepted(capture: Any) -> None:
    request = _presigned(capture, "get_object", VersionId="v 1+2", ResponseContentType="a/b; c=d")
    assert authenticate(request, lookup, NOW).presigned


@BOTH_SIGNERS
def test_presigned_put_must_send_the_signed_headers(capture: Any) -> None:
    request = _presigned(capture, "put_object", ContentType="image/png", Metadata={"k": "v"})
    with pytest.raises(SignatureDoesNotMatch):
        authenticate(request, lookup, NOW)
    headers = {**request.headers, "content-type": "image/png", "x-amz-meta-k": "v"}
    sent = AuthRequest(request.method, request.raw_path, request.query, headers)
    assert authenticate(sent, lookup, NOW).presigned
    with pytest.raises(SignatureDoesNotMatch):
        authenticate(with_header(sent, "x-amz-meta-k", "w"), lookup, NOW)


def test_presigned_with_unsigned_amz_header_is_refused(capture: Any) -> None:
    request = with_header(_presigned(capture), "x-amz-acl", "public-read")
    with pytest.raises(AccessDenied, match="not signed"):
        authenticate(request, lookup, NOW)


def test_expired_presigned_url_is_refused(capture: Any) -> None:
    with pytest.raises(AccessDenied, match="Request has expired") as info:
        authenticate(_presigned(capture), lookup, NOW + timedelta(seconds=3601))
    assert info.value.extra["X-Amz-Expires"] == "3600"


def test_presigned_url_from_the_future_is_refused(capture: Any) -> None:
    request = _presigned(capture)
    assert authenticate(request, lookup, NOW - timedelta(minutes=14)).presigned
    with pytest.raises(AccessDenied, match="not valid yet"):
        authenticate(request, lookup, NOW - timedelta(minutes=16))


def test_presigned_expiry_longer_than_a_week_is_refused(capture: Any) -> None:
    assert authenticate(_presigned(capture, expires_s=604800), lookup, NOW).presigned
    with pytest.raises(AuthorizationQueryParametersError, match="604800"):
        authenticate(_presigned(capture, expires_s=604801), lookup, NOW)


def _replace_query(request: AuthRequest, name: str, value: str | None) -> AuthRequest:
    """Set ``name`` to ``value`` in the query, or drop it when ``value`` is None."""
    query = [(n, v) for n, v in request.query if n != name]
    if value is not None:
        query.append((name, value))
    return AuthRequest(request.method, request.raw_path, tuple(query), request.headers)


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("X-Amz-Expires", "0", AuthorizationQueryParametersError),
        ("X-Amz-Expires", "-5", AuthorizationQueryParametersError),
        ("X-Amz-Expires", "1e3", AuthorizationQueryParametersError),
        ("X-Amz-Expires", None, AuthorizationQueryParametersError),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA512", AuthorizationQueryParametersError),
        ("X-Amz-Algorithm", None, AuthorizationQueryParametersError),  # not anonymous then
        ("X-Amz-Date", "2026-03-14T15:09:26Z", AuthorizationQueryParametersError),
        ("X-Amz-Date", "20260313T150926Z", AuthorizationQueryParametersError),  # credential date
        (
            "X-Amz-Credential",
            "HUIMINTESTKEY/20260314/us-east-1/s3",
            AuthorizationQueryParametersError,
        ),
        ("X-Amz-SignedHeaders", "content-type", AuthorizationQueryParametersError),
        ("X-Amz-Signature", "abc", AuthorizationQueryParametersError),
        ("X-Amz-Signature", None, AuthorizationQueryParametersError),
        ("X-Amz-Signature", "0" * 64, SignatureDoesNotMatch),
        ("X-Amz-Credential", "NOSUCHKEY/20260314/us-east-1/s3/aws4_request", InvalidAccessKeyId),
        ("X-Amz-Credential", "OTHERKEY/20260314/us-east-1/s3/aws4_request", SignatureDoesNotMatch),
        ("response-content-type", "text/html", SignatureDoesNotMatch),
    ],
)
def test_bad_presigned_query_is_refused(
    capture: Any, name: str, value: str | None, error: type[Exception]
) -> None:
    request = _presigned(capture, ResponseContentType="a/b")
    with pytest.raises(error):
        authenticate(_replace_query(request, name, value), lookup, NOW)


def test_presigned_duplicated_auth_parameter_is_refused(capture: Any) -> None:
    request = _presigned(capture)
    doubled = AuthRequest(
        request.method, request.raw_path, (*request.query, ("X-Amz-Date", "x")), request.headers
    )
    with pytest.raises(AuthorizationQueryParametersError):
        authenticate(doubled, lookup, NOW)


def test_presigned_path_tampering_is_refused(capture: Any) -> None:
    request = _presigned(capture)
    with pytest.raises(SignatureDoesNotMatch):
        authenticate(
            AuthRequest("GET", "/bucket/other", request.query, request.headers), lookup, NOW
        )
    with pytest.raises(SignatureDoesNotMatch):
        authenticate(
            AuthRequest("DELETE", request.raw_path, request.query, request.headers), lookup, NOW
        )


def test_header_and_query_auth_together_are_refused(capture: Any) -> None:
    request = with_header(_presigned(capture), "authorization", "AWS4-HMAC-SHA256 x")
    with pytest.raises(InvalidArgument, match="Only one auth mechanism"):
        authenticate(request, lookup, NOW)


def test_sigv2_presigned_url_is_refused(capture: Any) -> None:
    # What boto3's generate_presigned_url makes by default for a custom endpoint.
    url = capture().generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"})
    split = urlsplit(url)
    request = AuthRequest.from_wire("GET", f"{split.path}?{split.query}", [("host", split.netloc)])
    with pytest.raises(InvalidRequest, match="AWS4-HMAC-SHA256"):
        authenticate(request, lookup, NOW)


# --- anonymous requests ------------------------------------------------------------------------


def test_anonymous_request_has_no_access_key() -> None:
    result = authenticate(AuthRequest.from_wire("GET", "/b/k?acl", [("host", "h")]), lookup, NOW)
    assert result.access_key is None
    assert result.payload_mode is PayloadMode.UNSIGNED
    assert not result.presigned


def test_anonymous_request_may_still_ask_for_payload_verification() -> None:
    digest = hashlib.sha256(b"x").hexdigest().upper()
    request = AuthRequest.from_wire("PUT", "/b/k", [("x-amz-content-sha256", digest)])
    result = authenticate(request, lookup, NOW)
    assert (result.access_key, result.payload_mode) == (None, PayloadMode.SIGNED)
    assert result.payload_sha256 == digest.lower()


def test_anonymous_unsigned_trailer_upload_decodes(capture: Any) -> None:
    client = capture("https")
    client.put_object(Bucket="b", Key="k", Body=b"abc")
    request = with_header(to_auth(client.sent[0]), "authorization", None)
    result = authenticate(request, lookup, NOW)
    assert (result.access_key, result.payload_mode) == (
        None,
        PayloadMode.STREAMING_UNSIGNED_TRAILER,
    )


def test_anonymous_chunk_signed_upload_is_refused() -> None:
    headers = [
        ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
        ("x-amz-decoded-content-length", "3"),
    ]
    with pytest.raises(InvalidRequest):
        authenticate(AuthRequest.from_wire("PUT", "/b/k", headers), lookup, NOW)


# --- awscrt, AWS's C signer, as a second reference ---------------------------------------------


def _crt_sign(
    method: str,
    path: str,
    headers: list[tuple[str, str]],
    body_value: str,
    *,
    query_auth: bool = False,
) -> AuthRequest:
    request = awscrt.http.HttpRequest(
        method, path, awscrt.http.HttpHeaders([("host", ENDPOINT), *headers])
    )
    config = awscrt.auth.AwsSigningConfig(
        algorithm=awscrt.auth.AwsSigningAlgorithm.V4,
        signature_type=(
            awscrt.auth.AwsSignatureType.HTTP_REQUEST_QUERY_PARAMS
            if query_auth
            else awscrt.auth.AwsSignatureType.HTTP_REQUEST_HEADERS
        ),
        credentials_provider=awscrt.auth.AwsCredentialsProvider.new_static(ACCESS_KEY, SECRET),
        region="ap-southeast-2",
        service="s3",
        date=NOW,
        use_double_uri_encode=False,
        should_normalize_uri_path=False,
        signed_body_value=body_value,
        signed_body_header_type=(
            awscrt.auth.AwsSignedBodyHeaderType.NONE
            if query_auth
            else awscrt.auth.AwsSignedBodyHeaderType.X_AMZ_CONTENT_SHA_256
        ),
        expiration_in_seconds=600 if query_auth else None,
    )
    awscrt.auth.aws_sign_request(request, config).result(timeout=10)
    return AuthRequest.from_wire(method, request.path, list(request.headers))


@pytest.mark.parametrize(
    ("body_value", "mode"),
    [
        (EMPTY, PayloadMode.SIGNED),
        ("UNSIGNED-PAYLOAD", PayloadMode.UNSIGNED),
        ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", PayloadMode.STREAMING_SIGNED),
        ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", PayloadMode.STREAMING_SIGNED_TRAILER),
        ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", PayloadMode.STREAMING_UNSIGNED_TRAILER),
    ],
)
def test_awscrt_signed_requests_are_accepted(body_value: str, mode: PayloadMode) -> None:
    headers = [("x-amz-meta-Note", "  two  spaces "), ("content-type", "text/plain")]
    if mode.streaming:
        headers += [("x-amz-decoded-content-length", "10"), ("content-encoding", "aws-chunked")]
    if mode.trailer:
        headers.append(("x-amz-trailer", "x-amz-checksum-crc32c"))
    request = _crt_sign(
        "PUT", "/b/a%20b%2Bc/%C3%BC~?uploadId=x%2By&partNumber=2", headers, body_value
    )
    result = authenticate(request, lookup, NOW)
    assert (result.access_key, result.payload_mode) == (ACCESS_KEY, mode)
    assert (result.streaming is not None) == mode.chunk_signed


def test_awscrt_presigned_request_is_accepted() -> None:
    request = _crt_sign("GET", "/b/a%20b?versionId=1", [], "UNSIGNED-PAYLOAD", query_auth=True)
    assert authenticate(request, lookup, NOW).presigned


# --- helpers -----------------------------------------------------------------------------------


def test_verify_payload_sha256() -> None:
    digest = hashlib.sha256(b"abc").hexdigest()
    sigv4.verify_payload_sha256(digest, digest.upper())
    with pytest.raises(XAmzContentSHA256Mismatch) as info:
        sigv4.verify_payload_sha256(digest, EMPTY)
    assert info.value.extra == {
        "ClientComputedContentSHA256": digest,
        "S3ComputedContentSHA256": EMPTY,
    }


def test_canonical_query_string_sorts_by_encoded_name_then_value() -> None:
    query = [("b", "2"), ("a", "z"), ("a", "y"), ("A", ""), ("a b", "é"), ("~", "+")]
    assert sigv4.canonical_query_string(query) == "A=&a=y&a=z&a%20b=%C3%A9&b=2&~=%2B"


def test_docstring_examples() -> None:
    assert doctest.testmod(sigv4).failed == 0
