"""AWS Signature Version 4 for S3: header auth, presigned URLs, and what streaming bodies need.

Pure functions, no IO. The HTTP layer builds an :class:`AuthRequest` from what it received and
calls :func:`authenticate`; the body of a ``STREAMING-*`` upload is then decoded and verified by
``gateway.chunked.ChunkedDecoder`` from the :class:`StreamingContext` returned here.

S3 corners that differ from the generic SigV4 recipe:

* The canonical URI is the path as the client sent it: S3 neither normalises it (no ``.``/``..``
  or ``//`` folding) nor double-encodes it (botocore ``S3SigV4Auth._normalize_url_path``). A
  client that put characters on the wire that SigV4 would have encoded (``!``, ``*``, ...) or
  encoded unreserved ones (``%7E``) signed the strict encoding instead, so that form is tried
  second; both stand for the same decoded path, segment by segment.
* The payload hash line is the ``x-amz-content-sha256`` header, which S3 requires on header auth:
  a hex digest (checked against the body by the caller), ``UNSIGNED-PAYLOAD`` or one of the
  ``STREAMING-*`` values (aws-chunked body). Presigned URLs use ``UNSIGNED-PAYLOAD`` unless
  they signed an ``x-amz-content-sha256`` header.
* Every ``x-amz-*`` header present must be signed (AWS: "There were headers present in the
  request which were not signed"), so an unsigned one cannot change what a signature allowed.
  A presigned request may carry an unsigned ``x-amz-content-sha256``; it is then ignored.
* Any region in the credential scope is accepted; the signature is computed with that region.
* Signature V2 (``AWS key:sig``, ``?AWSAccessKeyId=``) and V4a are refused. Note that boto3's
  ``generate_presigned_url`` makes V2 URLs for a custom endpoint unless the client is configured
  with ``signature_version="s3v4"``.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, quote, unquote_to_bytes

from gateway.errors import (
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidRequest,
    MissingContentLength,
    RequestTimeTooSkewed,
    S3Error,
    SignatureDoesNotMatch,
    XAmzContentSHA256Mismatch,
)

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
TERMINATOR = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
MAX_PRESIGN_EXPIRES_S = 604800  # one week, AWS's limit

_AMZ_DATE_LEN = 16  # 20130524T000000Z
_HEX = frozenset("0123456789abcdefABCDEF")
_DIGITS = frozenset("0123456789")
_QUERY_AUTH_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)
# A presigned URL stripped of X-Amz-Algorithm is still one (not an anonymous request).
_QUERY_AUTH_MARKERS = frozenset({"X-Amz-Credential", "X-Amz-Signature"})
_UNSUPPORTED_MECHANISM = (
    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."
)
_QUERY_PARAMS_REQUIRED = (
    "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
    "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
)
_HEADER_COMPONENTS = (
    "The authorization header is malformed; the authorization header requires three "
    "components: Credential, SignedHeaders, and Signature."
)
_CREDENTIAL_FORM = 'expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'


class PayloadMode(enum.Enum):
    """How the request body is protected, from ``x-amz-content-sha256``.

    There is no separate "empty" mode: an empty body is ``SIGNED`` with :data:`EMPTY_SHA256`.
    """

    UNSIGNED = "UNSIGNED-PAYLOAD"
    SIGNED = "SHA256"  # payload_sha256 holds the digest the caller must check
    STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
    STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

    @property
    def streaming(self) -> bool:
        """True when the body is aws-chunked and must go through ``ChunkedDecoder``."""
        return self.value.startswith("STREAMING-")

    @property
    def chunk_signed(self) -> bool:
        return self in (PayloadMode.STREAMING_SIGNED, PayloadMode.STREAMING_SIGNED_TRAILER)

    @property
    def trailer(self) -> bool:
        return self.value.endswith("-TRAILER")


# x-amz-content-sha256 values naming a mode (a hex digest means SIGNED).
_PAYLOAD_MODES = {mode.value: mode for mode in PayloadMode if mode is not PayloadMode.SIGNED}


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """What authentication needs from an HTTP request.

    ``raw_path`` is the path exactly as received (percent-encoded, no query); ``query`` holds the
    percent-decoded ``(name, value)`` pairs in wire order (``?acl`` is ``("acl", "")``);
    ``headers`` has lower-case names, repeated headers joined with ``","``.
    """

    method: str
    raw_path: str
    query: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]

    @classmethod
    def from_wire(cls, method: str, target: str, headers: Iterable[tuple[str, str]]) -> AuthRequest:
        """Build from the request-target as received and the header fields, repeats included.

        For aiohttp: ``AuthRequest.from_wire(r.method, r.raw_path, r.headers.items())``.
        Query values are decoded like a form (``+`` is a space), as S3 does.

        >>> r = AuthRequest.from_wire("GET", "/b/a%20b?prefix=x+y%2B&acl",
        ...                           [("Host", "h"), ("X-A", "1"), ("x-a", " 2 ")])
        >>> r.raw_path, r.query, r.headers
        ('/b/a%20b', (('prefix', 'x y+'), ('acl', '')), {'host': 'h', 'x-a': '1,2'})
        """
        raw_path, _, raw_query = target.partition("?")
        joined: dict[str, str] = {}
        for name, value in headers:
            key = name.lower()
            joined[key] = f"{joined[key]},{value.strip()}" if key in joined else value.strip()
        query = tuple(parse_qsl(raw_query, keep_blank_values=True))
        return cls(method, raw_path, query, joined)


@dataclass(frozen=True, slots=True)
class StreamingContext:
    """What verifying the chunk signatures of an aws-chunked body needs.

    ``seed_signature`` is the request's own signature, which the first chunk chains from.
    """

    signing_key: bytes = field(repr=False)
    seed_signature: str
    scope: str  # 20130524/us-east-1/s3/aws4_request
    amz_date: str  # 20130524T000000Z


@dataclass(frozen=True, slots=True)
class AuthResult:
    """Who sent the request and how its body must be checked.

    * ``access_key`` is None for an anonymous request (no Authorization header, no query auth).
    * ``payload_sha256`` is the expected lower-case hex digest when ``payload_mode`` is SIGNED.
    * ``streaming`` is set for the chunk-signed modes (STREAMING_SIGNED[_TRAILER]).
    * ``trailer_names`` (from ``x-amz-trailer``) and ``decoded_content_length`` (from
      ``x-amz-decoded-content-length``) are set for every streaming mode.
    """

    access_key: str | None
    payload_mode: PayloadMode
    payload_sha256: str | None
    streaming: StreamingContext | None
    presigned: bool
    trailer_names: tuple[str, ...] = ()
    decoded_content_length: int | None = None


# --- the SigV4 building blocks -----------------------------------------------------------------


def uri_encode(value: str | bytes) -> str:
    """SigV4's URI-encode: every byte but ``A-Za-z0-9-_.~`` as ``%XX`` (upper-case hex).

    >>> uri_encode("a b/c~d+é")
    'a%20b%2Fc~d%2B%C3%A9'
    """
    return quote(value, safe="")


def canonical_query_string(query: Iterable[tuple[str, str]]) -> str:
    """Encode decoded ``(name, value)`` pairs and sort them by encoded name, then value.

    >>> canonical_query_string([("prefix", "a b"), ("list-type", "2"), ("acl", "")])
    'acl=&list-type=2&prefix=a%20b'
    """
    pairs = sorted((uri_encode(name), uri_encode(value)) for name, value in query)
    return "&".join(f"{name}={value}" for name, value in pairs)


def canonical_header_value(value: str) -> str:
    """Trim and collapse runs of whitespace to one space (SigV4 ``Trimall``).

    >>> canonical_header_value("  a   b \\t c ")
    'a b c'
    """
    return " ".join(value.split())


def canonical_request(
    method: str,
    canonical_uri: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
    payload_hash: str,
) -> str:
    """The SigV4 canonical request.

    ``canonical_uri`` is used as given (for S3: the path as received); ``query`` is decoded pairs
    (drop ``X-Amz-Signature`` first for a presigned URL); ``signed_headers`` are lower-case names
    in the order the client listed them; a signed header missing from ``headers`` is empty.

    >>> canonical_request("GET", "/b/k", [], {"host": "h", "x-amz-date": "20130524T000000Z"},
    ...                   ["host", "x-amz-date"], UNSIGNED_PAYLOAD).split("\\n")
    ['GET', '/b/k', '', 'host:h', 'x-amz-date:20130524T000000Z', '', 'host;x-amz-date', \
'UNSIGNED-PAYLOAD']
    """
    header_lines = "".join(
        f"{name}:{canonical_header_value(headers.get(name, ''))}\n" for name in signed_headers
    )
    return "\n".join(
        (
            method,
            canonical_uri or "/",
            canonical_query_string(query),
            header_lines,
            ";".join(signed_headers),
            payload_hash,
        )
    )


def string_to_sign(amz_date: str, scope: str, canonical_request: str) -> str:
    """``AWS4-HMAC-SHA256 \\n date \\n scope \\n hex(sha256(canonical request))``.

    >>> string_to_sign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request", "").split()[-1]
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    """
    # surrogateescape: header bytes that are not UTF-8 reach us as lone surrogates (aiohttp);
    # hash the bytes as received instead of failing with a UnicodeEncodeError.
    digest = hashlib.sha256(canonical_request.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


@functools.lru_cache(maxsize=256)  # four HMACs per request otherwise; one key per day
def signing_key(secret: str, date: str, region: str, service: str = SERVICE) -> bytes:
    """Derive the day's signing key: HMAC chain over date, region, service, ``aws4_request``.

    >>> signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1",
    ...             "iam").hex()[:16]
    'c4afb1cc5771d871'
    """
    key = _hmac(f"AWS4{secret}".encode(), date)
    for part in (region, service, TERMINATOR):
        key = _hmac(key, part)
    return key


def sign(key: bytes, string_to_sign: str) -> str:
    """Lower-case hex HMAC-SHA256 of ``string_to_sign`` under ``key``."""
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def strict_uri(raw_path: str) -> str:
    """Re-encode a received path the strict SigV4 way, segment by segment.

    What a client signed when it sent a looser (or stricter) encoding than SigV4's on the wire;
    ``%2F`` stays inside its segment.

    >>> strict_uri("/b/it's%7Ea%2Fb!")
    '/b/it%27s~a%2Fb%21'
    """
    return "/".join(
        uri_encode(unquote_to_bytes(segment.encode("utf-8", "surrogateescape")))
        for segment in raw_path.split("/")
    )


def verify_payload_sha256(expected_hex: str, computed_hex: str) -> None:
    """Raise XAmzContentSHA256Mismatch unless the body's digest is the one that was signed."""
    if not hmac.compare_digest(expected_hex.lower().encode(), computed_hex.lower().encode()):
        raise XAmzContentSHA256Mismatch(
            ClientComputedContentSHA256=expected_hex, S3ComputedContentSHA256=computed_hex
        )


# --- authenticate ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Credential:
    access_key: str
    date: str
    region: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{SERVICE}/{TERMINATOR}"


@dataclass(frozen=True, slots=True)
class _Payload:
    mode: PayloadMode
    hash_line: str  # the canonical request's last line
    sha256: str | None = None
    trailer_names: tuple[str, ...] = ()
    decoded_content_length: int | None = None


def authenticate(
    req: AuthRequest,
    lookup_secret: Callable[[str], str | None],
    now: datetime,
    *,
    region: str = "us-east-1",
    max_skew_s: int = 900,
) -> AuthResult:
    """Check the request's SigV4 signature (Authorization header or presigned query).

    Returns who signed it (``access_key`` None when the request carries no auth at all) and how
    the body must be verified. ``now`` should be timezone-aware (naive is taken as UTC).
    ``region`` is the gateway's own region; scopes naming any region are accepted and verified
    with the region they name. Raises the S3 error the client should see.
    """
    del region  # any scope region is accepted: see the module docstring
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    authorization = req.headers.get("authorization")
    query_names = {name for name, _ in req.query}
    if "X-Amz-Algorithm" in query_names or (
        authorization is None and not query_names.isdisjoint(_QUERY_AUTH_MARKERS)
    ):
        if authorization is not None:
            raise InvalidArgument(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                "Signature query string parameter or the Authorization header should be specified",
                ArgumentName="Authorization",
            )
        return _authenticate_query(req, lookup_secret, now, max_skew_s)
    if authorization is not None:
        return _authenticate_header(req, authorization, lookup_secret, now, max_skew_s)
    if "AWSAccessKeyId" in query_names and "Signature" in query_names:
        raise InvalidRequest(_UNSUPPORTED_MECHANISM)  # SigV2 presigned URL
    payload = _payload(req.headers, required=False)
    if payload.mode.chunk_signed:
        raise InvalidRequest(
            f"x-amz-content-sha256 {payload.mode.value} requires an Authorization header"
        )
    return AuthResult(
        access_key=None,
        payload_mode=payload.mode,
        payload_sha256=payload.sha256,
        streaming=None,
        presigned=False,
        trailer_names=payload.trailer_names,
        decoded_content_length=payload.decoded_content_length,
    )


def _authenticate_header(
    req: AuthRequest,
    authorization: str,
    lookup_secret: Callable[[str], str | None],
    now: datetime,
    max_skew_s: int,
) -> AuthResult:
    algorithm, _, params = authorization.strip().partition(" ")
    if algorithm == "AWS":
        raise InvalidRequest(_UNSUPPORTED_MECHANISM)  # SigV2
    if algorithm != ALGORITHM:
        raise InvalidArgument("Unsupported Authorization Type", ArgumentName="Authorization")
    fields: dict[str, str] = {}
    for part in params.split(","):
        name, eq, value = part.strip().partition("=")
        if not eq or name in fields:
            raise AuthorizationHeaderMalformed(_HEADER_COMPONENTS)
        fields[name] = value.strip()
    if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        raise AuthorizationHeaderMalformed(_HEADER_COMPONENTS)

    credential = _parse_credential(fields["Credential"], header=True)
    signed_headers = _parse_signed_headers(fields["SignedHeaders"], header=True)
    signature = fields["Signature"]
    if not _is_hex64(signature):
        raise AuthorizationHeaderMalformed(
            "The authorization header is malformed; the Signature must be 64 hexadecimal digits."
        )
    amz_date, request_time = _request_date(req.headers)
    if credential.date != amz_date[:8]:
        raise AuthorizationHeaderMalformed(
            "The authorization header is malformed; Invalid credential date. "
            "Date is not the same as X-Amz-Date."
        )
    _check_all_amz_headers_signed(req.headers, signed_headers)
    if abs(request_time - now) > timedelta(seconds=max_skew_s):
        raise RequestTimeTooSkewed(
            RequestTime=amz_date,
            ServerTime=_iso8601(now),
            MaxAllowedSkewMilliseconds=str(max_skew_s * 1000),
        )
    payload = _payload(req.headers, required=True)
    secret = _lookup(lookup_secret, credential.access_key)
    key = signing_key(secret, credential.date, credential.region)
    _verify(req, credential, signed_headers, req.query, payload.hash_line, key, amz_date, signature)
    return _result(credential, payload, key, amz_date, signature, presigned=False)


def _authenticate_query(
    req: AuthRequest,
    lookup_secret: Callable[[str], str | None],
    now: datetime,
    max_skew_s: int,
) -> AuthResult:
    err = AuthorizationQueryParametersError
    params: dict[str, str] = {}
    for name, value in req.query:
        if name in _QUERY_AUTH_PARAMS:
            if name in params:
                raise err(f"{name} must be given only once.")
            params[name] = value
    if len(params) != len(_QUERY_AUTH_PARAMS):
        raise err(_QUERY_PARAMS_REQUIRED)
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise err(f'X-Amz-Algorithm only supports "{ALGORITHM}"')
    credential = _parse_credential(params["X-Amz-Credential"], header=False)
    amz_date = params["X-Amz-Date"]
    request_time = _parse_amz_date(amz_date)
    if request_time is None:
        raise err("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    expires_text = params["X-Amz-Expires"]
    if not expires_text or len(expires_text) > 10 or not set(expires_text) <= _DIGITS:
        raise err("X-Amz-Expires should be a number")
    expires_s = int(expires_text)
    if expires_s < 1:
        raise err("X-Amz-Expires must be between 1 and 604800 seconds")
    if expires_s > MAX_PRESIGN_EXPIRES_S:
        raise err("X-Amz-Expires must be less than a week (in seconds) that is 604800")
    if credential.date != amz_date[:8]:
        raise err("Invalid credential date. Date is not the same as X-Amz-Date.")
    signed_headers = _parse_signed_headers(params["X-Amz-SignedHeaders"], header=False)
    signature = params["X-Amz-Signature"]
    if not _is_hex64(signature):
        raise err("X-Amz-Signature must be 64 hexadecimal digits.")
    if request_time - now > timedelta(seconds=max_skew_s):
        raise AccessDenied("Request is not valid yet")
    expiry = request_time + timedelta(seconds=expires_s)
    if now > expiry:
        raise AccessDenied(
            "Request has expired",
            **{"X-Amz-Expires": expires_text},
            Expires=_iso8601(expiry),
            ServerTime=_iso8601(now),
        )
    # A presigned request may carry x-amz-content-sha256 unsigned (it is then ignored).
    _check_all_amz_headers_signed(req.headers, (*signed_headers, "x-amz-content-sha256"))
    if "x-amz-content-sha256" in signed_headers:
        payload = _payload(req.headers, required=True)
    else:
        payload = _Payload(PayloadMode.UNSIGNED, UNSIGNED_PAYLOAD)
    secret = _lookup(lookup_secret, credential.access_key)
    key = signing_key(secret, credential.date, credential.region)
    query = tuple(pair for pair in req.query if pair[0] != "X-Amz-Signature")
    _verify(req, credential, signed_headers, query, payload.hash_line, key, amz_date, signature)
    return _result(credential, payload, key, amz_date, signature, presigned=True)


def _uri_forms(raw_uri: str) -> Iterator[str]:
    """The path as received, then (only if that signature did not match) its strict SigV4
    re-encoding when it differs.

    >>> list(_uri_forms("/b/k")), list(_uri_forms("/b/a!b"))
    (['/b/k'], ['/b/a!b', '/b/a%21b'])
    """
    yield raw_uri
    strict = strict_uri(raw_uri)
    if strict != raw_uri:
        yield strict


def _verify(
    req: AuthRequest,
    credential: _Credential,
    signed_headers: tuple[str, ...],
    query: tuple[tuple[str, str], ...],
    payload_hash: str,
    key: bytes,
    amz_date: str,
    signature: str,
) -> None:
    given = signature.lower().encode()
    raw_uri = req.raw_path or "/"
    first: tuple[str, str] | None = None
    for uri in _uri_forms(raw_uri):
        creq = canonical_request(req.method, uri, query, req.headers, signed_headers, payload_hash)
        sts = string_to_sign(amz_date, credential.scope, creq)
        if hmac.compare_digest(sign(key, sts).encode(), given):
            return
        first = first or (creq, sts)
    assert first is not None
    raise SignatureDoesNotMatch(
        AWSAccessKeyId=credential.access_key,
        StringToSign=first[1],
        SignatureProvided=signature,
        CanonicalRequest=first[0],
    )


def _result(
    credential: _Credential,
    payload: _Payload,
    key: bytes,
    amz_date: str,
    signature: str,
    *,
    presigned: bool,
) -> AuthResult:
    streaming = None
    if payload.mode.chunk_signed:
        streaming = StreamingContext(
            signing_key=key,
            seed_signature=signature.lower(),
            scope=credential.scope,
            amz_date=amz_date,
        )
    return AuthResult(
        access_key=credential.access_key,
        payload_mode=payload.mode,
        payload_sha256=payload.sha256,
        streaming=streaming,
        presigned=presigned,
        trailer_names=payload.trailer_names,
        decoded_content_length=payload.decoded_content_length,
    )


def _lookup(lookup_secret: Callable[[str], str | None], access_key: str) -> str:
    secret = lookup_secret(access_key)
    if secret is None:
        raise InvalidAccessKeyId(AWSAccessKeyId=access_key)
    return secret


def _parse_credential(value: str, *, header: bool) -> _Credential:
    parts = value.split("/")
    # The access key itself may not contain "/": five parts exactly.
    if len(parts) != 5 or not all(parts):
        raise _malformed(f"the Credential is mal-formed; {_CREDENTIAL_FORM}", header=header)
    access_key, date, scope_region, service, terminator = parts
    # Printable ASCII only: these end up in keys, HMAC input and error bodies.
    if not all(part.isascii() and part.isprintable() for part in (access_key, scope_region)):
        raise _malformed(f"the Credential is mal-formed; {_CREDENTIAL_FORM}", header=header)
    if len(date) != 8 or not set(date) <= _DIGITS:
        raise _malformed(f"the Credential is mal-formed; {_CREDENTIAL_FORM}", header=header)
    if service != SERVICE:
        raise _malformed(
            f"incorrect service '{service}'. This endpoint belongs to '{SERVICE}'.", header=header
        )
    if terminator != TERMINATOR:
        raise _malformed(
            f"incorrect terminal '{terminator}'. This endpoint uses '{TERMINATOR}'.", header=header
        )
    return _Credential(access_key, date, scope_region)


def _parse_signed_headers(value: str, *, header: bool) -> tuple[str, ...]:
    names = tuple(value.split(";"))
    if not all(names) or "host" not in names:
        raise _malformed(
            "SignedHeaders must list the signed headers, host among them.", header=header
        )
    return names


def _malformed(detail: str, *, header: bool) -> S3Error:
    if header:
        return AuthorizationHeaderMalformed(f"The authorization header is malformed; {detail}")
    return AuthorizationQueryParametersError(f"Error parsing the query parameters; {detail}")


def _check_all_amz_headers_signed(headers: Mapping[str, str], signed: Sequence[str]) -> None:
    unsigned = sorted(name for name in headers if name.startswith("x-amz-") and name not in signed)
    if unsigned:
        raise AccessDenied(
            "There were headers present in the request which were not signed",
            HeadersNotSigned=", ".join(unsigned),
        )


def _request_date(headers: Mapping[str, str]) -> tuple[str, datetime]:
    """The request's ``x-amz-date`` (else ``Date``) as SigV4 text and as a UTC datetime."""
    parsed: datetime | None = None
    amz_date = headers.get("x-amz-date")
    if amz_date is not None:
        parsed = _parse_amz_date(amz_date)
    elif (http_date := headers.get("date")) is not None:
        try:
            parsed = parsedate_to_datetime(http_date)
        except (TypeError, ValueError):
            parsed = None
        if parsed is not None:
            parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
            parsed = parsed.astimezone(UTC)
            amz_date = parsed.strftime("%Y%m%dT%H%M%SZ")
    if parsed is None or amz_date is None:
        raise AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
    return amz_date, parsed


def _parse_amz_date(text: str) -> datetime | None:
    """``20130524T000000Z`` as a UTC datetime, or None.

    >>> _parse_amz_date("20130524T010203Z")
    datetime.datetime(2013, 5, 24, 1, 2, 3, tzinfo=datetime.timezone.utc)
    """
    if (
        len(text) != _AMZ_DATE_LEN
        or text[8] != "T"
        or text[15] != "Z"
        or not set(text[:8] + text[9:15]) <= _DIGITS
    ):
        return None
    try:
        return datetime(
            int(text[0:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[9:11]),
            int(text[11:13]),
            int(text[13:15]),
            tzinfo=UTC,
        )
    except ValueError:
        return None


def _payload(headers: Mapping[str, str], *, required: bool) -> _Payload:
    value = headers.get("x-amz-content-sha256")
    if value is None:
        if required:
            raise InvalidRequest("Missing required header for this request: x-amz-content-sha256")
        return _Payload(PayloadMode.UNSIGNED, UNSIGNED_PAYLOAD)
    if _is_hex64(value):
        return _Payload(PayloadMode.SIGNED, value, value.lower())
    mode = _PAYLOAD_MODES.get(value)
    if mode is None:
        raise InvalidArgument(
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, "
            "or a valid sha256 value.",
            ArgumentName="x-amz-content-sha256",
        )
    if not mode.streaming:
        return _Payload(mode, value)
    length_text = headers.get("x-amz-decoded-content-length")
    if length_text is None:
        raise MissingContentLength(
            "You must provide the x-amz-decoded-content-length header for a streaming upload."
        )
    length_text = length_text.strip()
    if not length_text or len(length_text) > 19 or not set(length_text) <= _DIGITS:
        raise InvalidArgument(
            "x-amz-decoded-content-length must be a non-negative integer",
            ArgumentName="x-amz-decoded-content-length",
        )
    trailer_names: tuple[str, ...] = ()
    if mode.trailer:
        trailer_names = tuple(
            name.strip().lower()
            for name in headers.get("x-amz-trailer", "").split(",")
            if name.strip()
        )
    return _Payload(mode, value, None, trailer_names, int(length_text))


def _is_hex64(value: str) -> bool:
    return len(value) == 64 and set(value) <= _HEX


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def _iso8601(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
