"""Pure S3 request routing: (method, path, query, headers) -> one typed `Operation` value.

No IO and no storage access: the router only decides *which* operation a request is and parses its
parameters, raising the S3 error the client should see when it cannot. Bucket-name syntax is
checked elsewhere; the router only refuses a bucket that is empty where one is needed.

The operation is chosen by a table keyed by (method, target, subresource), as in Garage's
``router.rs``: the target is the service (``/``), a bucket (``/b``) or an object (``/b/k``), and
the subresource is the one query keyword that selects an operation (``?uploads``, ``?uploadId=``,
``?delete``, ``?location``, ``?versioning``...). Supporting a new operation is one line in
`_ROUTES`; a subresource of an S3 feature we do not implement is one word in
`NOT_IMPLEMENTED_SUBRESOURCES` and answers 501 instead of 405.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, NoReturn, TypeAlias
from urllib.parse import unquote_to_bytes

from gateway import errors
from gateway.operations import (
    MAX_KEYS_LIMIT,
    MAX_PART_NUMBER,
    MIN_PART_NUMBER,
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
    EncodingType,
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
    MetadataDirective,
    Operation,
    PutObject,
    UploadPart,
    UploadPartCopy,
)
from gateway.ranges import copy_range_syntax

Target: TypeAlias = Literal["service", "bucket", "object"]

_INT32_MAX: Final = 2**31 - 1
_DIGITS = re.compile(
    r"[0-9]{1,10}"
)  # ASCII only: int() also takes "+1", " 1", "1_0" and non-ASCII digits
_BAD_PERCENT_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")

# GetObject query parameters that override a response header (S3 "response-*" parameters), in
# the order GetObject.response_headers lists them.
_RESPONSE_HEADER_OVERRIDES: Final[Mapping[str, str]] = {
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
    "response-content-language": "Content-Language",
    "response-content-type": "Content-Type",
    "response-expires": "Expires",
}

# Subresources of S3 features that are not implemented (yet): any method -> 501 NotImplemented.
NOT_IMPLEMENTED_SUBRESOURCES: Final[frozenset[str]] = frozenset(
    {
        "accelerate",
        "acl",
        "analytics",
        "attributes",
        "cors",
        "encryption",
        "intelligent-tiering",
        "inventory",
        "legal-hold",
        "lifecycle",
        "logging",
        "metadataConfiguration",
        "metadataTable",
        "metrics",
        "notification",
        "object-lock",
        "ownershipControls",
        "policy",
        "policyStatus",
        "publicAccessBlock",
        "replication",
        "requestPayment",
        "restore",
        "retention",
        "select",
        "session",
        "tagging",
        "torrent",
        "versions",
        "website",
    }
)


@dataclass(frozen=True, slots=True)
class _Request:
    """What the per-route builders see: decoded bucket/key, query and lower-cased headers."""

    bucket: str  # "" for the service target
    key: str  # "" unless the target is an object
    query: Mapping[str, str]  # first value of each name
    repeated: frozenset[str]  # names given more than once
    headers: Mapping[str, str]

    def param(self, name: str) -> str | None:
        if name in self.repeated:
            raise errors.InvalidArgument(
                f"Query parameter {name} was given more than once.", ArgumentName=name
            )
        return self.query.get(name)


_Builder: TypeAlias = Callable[[_Request], Operation]


def route(
    method: str,
    raw_path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    virtual_host_suffix: str | None = None,
) -> Operation:
    """Turn an HTTP request into the S3 operation it asks for.

    ``raw_path`` is the path as sent, still percent-encoded (anything from a ``?`` on is
    ignored, so aiohttp's ``request.raw_path`` can be passed as is); ``query`` holds the decoded
    query pairs in order; header names are matched case-insensitively. With
    ``virtual_host_suffix="s3.example.com"``, ``Host: photos.s3.example.com`` names the bucket
    ``photos`` and the whole path is the key.

    Raises MethodNotAllowed (no such operation for this method and resource), NotImplemented (an
    S3 operation we do not implement), InvalidURI (path not absolute, not UTF-8, bad escape),
    InvalidBucketName (empty bucket where one is needed), InvalidRequest (conflicting
    subresources) and InvalidArgument (bad or repeated parameter, copy source or range).

    >>> route("GET", "/photos/2026/cat%20pic.jpg", [("versionId", "v1")], {}).key
    '2026/cat pic.jpg'
    >>> route("POST", "/photos/big.iso", [("uploads", "")], {})
    CreateMultipartUpload(bucket='photos', key='big.iso')
    >>> route("GET", "/photos", [("list-type", "2"), ("max-keys", "5000")], {}).max_keys
    1000
    >>> route("PUT", "/cat.jpg", [], {"Host": "photos.s3.example.com"}, "s3.example.com")
    PutObject(bucket='photos', key='cat.jpg')
    """
    lower_headers = {name.lower(): value for name, value in headers.items()}
    host_bucket = _host_bucket(lower_headers.get("host"), virtual_host_suffix)
    bucket, key = _split_path(raw_path, host_bucket)
    target: Target = "service" if bucket is None else "object" if key else "bucket"

    first: dict[str, str] = {}
    repeated: set[str] = set()
    for name, value in query:
        if name in first:
            repeated.add(name)
        else:
            first[name] = value
    request = _Request(
        bucket=bucket or "",
        key=key,
        query=first,
        repeated=frozenset(repeated),
        headers=lower_headers,
    )

    subresource = _subresource(first)
    builder = _ROUTES.get((method, target, subresource))
    if builder is None:
        if subresource in NOT_IMPLEMENTED_SUBRESOURCES:
            _not_implemented(f"The ?{subresource} subresource")
        where = f"this {target}" + (f" with ?{subresource}" if subresource else "")
        raise errors.MethodNotAllowed(
            f"The specified method is not allowed against this resource: {method} on {where}.",
            Method=method,
            ResourceType=target.upper(),
        )
    return builder(request)


# --- path and host ---------------------------------------------------------------------------


def _host_bucket(host: str | None, suffix: str | None) -> str | None:
    """The bucket named by a virtual-hosted-style Host header, None for path style.

    >>> _host_bucket("photos.s3.example.com:9000", "s3.example.com")
    'photos'
    >>> _host_bucket("s3.example.com", "s3.example.com") is None
    True
    """
    if not host or not suffix:
        return None
    if host.startswith("["):  # an IPv6 literal never carries a bucket
        return None
    hostname, colon, port = host.rpartition(":")
    if not colon or not port.isdigit():
        hostname = host
    hostname = hostname.lower().rstrip(".")
    suffix = suffix.lower().strip(".")
    if hostname == suffix or not hostname.endswith("." + suffix):
        return None
    bucket = hostname[: -len(suffix) - 1]
    if not bucket:
        raise errors.InvalidBucketName("The bucket name in the Host header is empty.")
    return bucket


def _split_path(raw_path: str, host_bucket: str | None) -> tuple[str | None, str]:
    """(bucket or None for the service, decoded key or "").

    >>> _split_path("/b/a%2Fb/c%20d", None)
    ('b', 'a/b/c d')
    >>> _split_path("/b//lead", None)
    ('b', '/lead')
    """
    path = raw_path.partition("?")[0]
    if not path.startswith("/"):
        raise errors.InvalidURI(f"Couldn't parse the specified URI: {path[:64]!r}")
    if host_bucket is not None:
        return host_bucket, _percent_decode(path[1:])
    if path == "/":
        return None, ""
    bucket_raw, _, key_raw = path[1:].partition("/")
    bucket = _percent_decode(bucket_raw)
    if not bucket:
        raise errors.InvalidBucketName("The bucket name in the path is empty.", BucketName="")
    return bucket, _percent_decode(key_raw)


def _percent_decode(raw: str) -> str:
    """Decode %XX escapes as UTF-8; '+' stays '+' (this is a path, not a form)."""
    if "%" not in raw and raw.isascii():
        return raw  # nothing to decode (most keys)
    if _BAD_PERCENT_ESCAPE.search(raw):
        raise errors.InvalidURI("Couldn't parse the specified URI: bad percent-escape.")
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise errors.InvalidURI("Couldn't parse the specified URI: not UTF-8.") from None


def _subresource(query: Mapping[str, str]) -> str | None:
    found = [name for name in query if name in _SUBRESOURCES]
    if not found:
        return None
    if len(found) > 1:
        unsupported = [name for name in found if name in NOT_IMPLEMENTED_SUBRESOURCES]
        if unsupported:
            _not_implemented(f"The ?{unsupported[0]} subresource")
        raise errors.InvalidRequest(
            "Conflicting subresources: " + ", ".join(f"?{name}" for name in found)
        )
    return found[0]


# --- parameter parsing -----------------------------------------------------------------------


def _not_implemented(what: str) -> NoReturn:
    raise errors.NotImplemented(f"{what} is not implemented.")


def _int32(name: str, value: str) -> int:
    """A non-negative int32 written in ASCII digits; InvalidArgument otherwise."""
    if not _DIGITS.fullmatch(value) or int(value) > _INT32_MAX:
        raise errors.InvalidArgument(
            f"Argument {name} must be an integer between 0 and {_INT32_MAX}.",
            ArgumentName=name,
            ArgumentValue=value,
        )
    return int(value)


def _max_items(request: _Request, name: str) -> int:
    """max-keys / max-parts / max-uploads: default and ceiling 1000.

    ``"5"`` -> 5, absent -> 1000, ``"5000"`` -> 1000, ``"-1"`` or ``"ten"`` -> InvalidArgument.
    """
    value = request.param(name)
    if value is None:
        return MAX_KEYS_LIMIT
    return min(_int32(name, value), MAX_KEYS_LIMIT)


def _part_number(value: str) -> int:
    if not _DIGITS.fullmatch(value) or not MIN_PART_NUMBER <= int(value) <= MAX_PART_NUMBER:
        raise errors.InvalidArgument(
            f"Part number must be an integer between {MIN_PART_NUMBER} and {MAX_PART_NUMBER},"
            " inclusive",
            ArgumentName="partNumber",
            ArgumentValue=value,
        )
    return int(value)


def _optional_part_number(request: _Request) -> int | None:
    value = request.param("partNumber")
    return None if value is None else _part_number(value)


def _version_id(request: _Request) -> str | None:
    value = request.param("versionId")
    if value == "":
        raise errors.InvalidArgument(
            "Version id cannot be the empty string", ArgumentName="versionId", ArgumentValue=""
        )
    return value


def _encoding_type(request: _Request) -> EncodingType | None:
    value = request.param("encoding-type")
    if not value:
        return None
    if value.lower() != "url":
        raise errors.InvalidArgument(
            "Invalid Encoding Method specified in Request",
            ArgumentName="encoding-type",
            ArgumentValue=value,
        )
    return "url"


def _delimiter(request: _Request) -> str | None:
    return request.param("delimiter") or None


def _flag(request: _Request, name: str) -> bool:
    value = (request.param(name) or "false").lower()
    if value not in ("true", "false"):
        raise errors.InvalidArgument(
            f"Argument {name} must be true or false.", ArgumentName=name, ArgumentValue=value
        )
    return value == "true"


def _copy_source(value: str) -> CopySource:
    """Parse ``x-amz-copy-source``: ``[/]bucket/key[?versionId=v]``, percent-encoded.

    >>> _copy_source("/src/a%20b%3Fc?versionId=v%2B1")
    CopySource(bucket='src', key='a b?c', version_id='v+1')
    """
    path, question, query = value.partition("?")
    version_id: str | None = None
    try:
        if question:
            name, equals, raw_version = query.partition("=")
            if name != "versionId" or not equals or not raw_version:
                raise _bad_copy_source(value)
            version_id = _percent_decode(raw_version)
        decoded = _percent_decode(path)
    except errors.InvalidURI:
        raise _bad_copy_source(value) from None
    bucket, _, key = decoded.removeprefix("/").partition("/")
    if not bucket or not key:
        raise _bad_copy_source(value)
    return CopySource(bucket=bucket, key=key, version_id=version_id)


def _bad_copy_source(value: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(
        "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
        ArgumentName="x-amz-copy-source",
        ArgumentValue=value,
    )


def _copy_source_range(value: str | None) -> ByteRange | None:
    """``bytes=first-last`` (inclusive, both required) -> ByteRange; absent -> None.

    >>> _copy_source_range("bytes=0-9")
    ByteRange(start=0, end=9)
    """
    return copy_range_syntax(value)


def _metadata_directive(request: _Request) -> MetadataDirective:
    value = request.headers.get("x-amz-metadata-directive", "COPY")
    if value == "COPY":
        return "COPY"
    if value == "REPLACE":
        return "REPLACE"
    raise errors.InvalidArgument(
        "Unknown metadata directive.",
        ArgumentName="x-amz-metadata-directive",
        ArgumentValue=value,
    )


def _upload_id(request: _Request) -> str:
    # Only called on routes selected by ?uploadId, so the parameter is there; "" matches no
    # upload and is left to the handler to answer NoSuchUpload.
    return request.param("uploadId") or ""


# --- per-route builders ----------------------------------------------------------------------


def _list_objects(request: _Request) -> ListObjects | ListObjectsV2:
    list_type = request.param("list-type")
    if list_type == "2":
        return ListObjectsV2(
            bucket=request.bucket,
            prefix=request.param("prefix") or "",
            delimiter=_delimiter(request),
            continuation_token=request.param("continuation-token") or None,
            start_after=request.param("start-after") or None,
            max_keys=_max_items(request, "max-keys"),
            encoding_type=_encoding_type(request),
            fetch_owner=_flag(request, "fetch-owner"),
        )
    if list_type not in (None, "1"):
        raise errors.InvalidArgument(
            "Invalid list type specified.", ArgumentName="list-type", ArgumentValue=list_type
        )
    return ListObjects(
        bucket=request.bucket,
        prefix=request.param("prefix") or "",
        delimiter=_delimiter(request),
        marker=request.param("marker") or "",
        max_keys=_max_items(request, "max-keys"),
        encoding_type=_encoding_type(request),
    )


def _list_multipart_uploads(request: _Request) -> ListMultipartUploads:
    return ListMultipartUploads(
        bucket=request.bucket,
        prefix=request.param("prefix") or "",
        delimiter=_delimiter(request),
        key_marker=request.param("key-marker") or "",
        upload_id_marker=request.param("upload-id-marker") or "",
        max_uploads=_max_items(request, "max-uploads"),
        encoding_type=_encoding_type(request),
    )


def _get_object(request: _Request) -> GetObject:
    for name in _RESPONSE_HEADER_OVERRIDES:
        request.param(name)  # refuses a repeated override
    overrides = tuple(
        (header, request.query[name])
        for name, header in _RESPONSE_HEADER_OVERRIDES.items()
        if name in request.query
    )
    return GetObject(
        bucket=request.bucket,
        key=request.key,
        version_id=_version_id(request),
        part_number=_optional_part_number(request),
        response_headers=overrides,
    )


def _head_object(request: _Request) -> HeadObject:
    return HeadObject(
        bucket=request.bucket,
        key=request.key,
        version_id=_version_id(request),
        part_number=_optional_part_number(request),
    )


def _put_object(request: _Request) -> PutObject | CopyObject:
    if request.param("partNumber") is not None:
        raise errors.InvalidArgument(
            "A partNumber needs an uploadId.", ArgumentName="uploadId", ArgumentValue=""
        )
    if "x-amz-copy-source" in request.headers:
        return CopyObject(
            bucket=request.bucket,
            key=request.key,
            source=_copy_source(request.headers["x-amz-copy-source"]),
            metadata_directive=_metadata_directive(request),
        )
    return PutObject(bucket=request.bucket, key=request.key)


def _upload_part(request: _Request) -> UploadPart | UploadPartCopy:
    part_number = request.param("partNumber")
    if part_number is None:
        raise errors.InvalidArgument(
            "An uploadId needs a partNumber.", ArgumentName="partNumber", ArgumentValue=""
        )
    if "x-amz-copy-source" in request.headers:
        return UploadPartCopy(
            bucket=request.bucket,
            key=request.key,
            upload_id=_upload_id(request),
            part_number=_part_number(part_number),
            source=_copy_source(request.headers["x-amz-copy-source"]),
            source_range=_copy_source_range(request.headers.get("x-amz-copy-source-range")),
        )
    return UploadPart(
        bucket=request.bucket,
        key=request.key,
        upload_id=_upload_id(request),
        part_number=_part_number(part_number),
    )


def _list_parts(request: _Request) -> ListParts:
    marker = request.param("part-number-marker")
    return ListParts(
        bucket=request.bucket,
        key=request.key,
        upload_id=_upload_id(request),
        max_parts=_max_items(request, "max-parts"),
        part_number_marker=0 if not marker else _int32("part-number-marker", marker),
    )


def _refuse(operation: str) -> _Builder:
    """A route for an S3 operation that exists but is not implemented: 501, not 405."""

    def build(request: _Request) -> Operation:
        _not_implemented(operation)

    return build


# (method, target, subresource) -> builder. One line per S3 operation.
_ROUTES: Final[Mapping[tuple[str, Target, str | None], _Builder]] = {
    ("GET", "service", None): lambda r: ListBuckets(),
    # bucket
    ("PUT", "bucket", None): lambda r: CreateBucket(r.bucket),
    ("HEAD", "bucket", None): lambda r: HeadBucket(r.bucket),
    ("DELETE", "bucket", None): lambda r: DeleteBucket(r.bucket),
    ("GET", "bucket", None): _list_objects,  # ListObjects | ListObjectsV2 (?list-type=2)
    ("GET", "bucket", "location"): lambda r: GetBucketLocation(r.bucket),
    ("GET", "bucket", "versioning"): lambda r: GetBucketVersioning(r.bucket),
    ("PUT", "bucket", "versioning"): _refuse("PutBucketVersioning"),
    ("GET", "bucket", "uploads"): _list_multipart_uploads,
    ("POST", "bucket", "delete"): lambda r: DeleteObjects(r.bucket),
    ("POST", "bucket", None): _refuse("PostObject (browser form upload)"),
    # object
    ("GET", "object", None): _get_object,
    ("HEAD", "object", None): _head_object,
    ("PUT", "object", None): _put_object,  # PutObject | CopyObject (x-amz-copy-source)
    ("DELETE", "object", None): lambda r: DeleteObject(r.bucket, r.key, _version_id(r)),
    # multipart
    ("POST", "object", "uploads"): lambda r: CreateMultipartUpload(r.bucket, r.key),
    ("PUT", "object", "uploadId"): _upload_part,  # UploadPart | UploadPartCopy
    ("POST", "object", "uploadId"): lambda r: CompleteMultipartUpload(
        r.bucket, r.key, _upload_id(r)
    ),
    ("DELETE", "object", "uploadId"): lambda r: AbortMultipartUpload(
        r.bucket, r.key, _upload_id(r)
    ),
    ("GET", "object", "uploadId"): _list_parts,
}

_SUBRESOURCES: Final[frozenset[str]] = NOT_IMPLEMENTED_SUBRESOURCES | {
    subresource for _, _, subresource in _ROUTES if subresource is not None
}
