"""Object metadata <-> HTTP headers."""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import format_datetime

from gateway import checksums, errors
from gateway.errors import InvalidArgument, InvalidStorageClass, MetadataTooLarge
from storage.api import ObjectInfo

# Standard headers stored with an object and returned on GET/HEAD.
STORED_HEADERS = (
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
)
USER_META_PREFIX = "x-amz-meta-"
MAX_USER_METADATA_BYTES = 2048


def metadata_from_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The metadata to store with an object: standard headers and x-amz-meta-* (names lower-case).

    >>> metadata_from_headers({"content-type": "text/plain", "x-amz-meta-a": "1", "host": "h"})
    {'content-type': 'text/plain', 'x-amz-meta-a': '1'}

    ``aws-chunked`` is how the body travelled, not how it is stored: S3 drops it.

    >>> metadata_from_headers({"content-encoding": "gzip,aws-chunked"})
    {'content-encoding': 'gzip'}
    >>> metadata_from_headers({"content-encoding": "aws-chunked"})
    {}
    """
    meta = {name: value for name, value in headers.items() if name in STORED_HEADERS}
    if "aws-chunked" in meta.get("content-encoding", "").lower():
        codings = [c.strip() for c in meta.pop("content-encoding").split(",")]
        stored = ",".join(c for c in codings if c and c.lower() != "aws-chunked")
        if stored:
            meta["content-encoding"] = stored
    user = {n: v for n, v in headers.items() if n.startswith(USER_META_PREFIX)}
    if not all(_is_utf8(v) for v in (*meta.values(), *user.values())):
        raise InvalidArgument("Metadata values must be valid UTF-8")
    size = sum(len(n) - len(USER_META_PREFIX) + len(v.encode()) for n, v in user.items())
    if size > MAX_USER_METADATA_BYTES:
        raise MetadataTooLarge()
    for name in user:
        if not name[len(USER_META_PREFIX) :]:
            raise InvalidArgument("Empty user metadata name")
    meta.update(user)
    return meta


def _is_utf8(value: str) -> bool:
    """Header bytes that are not UTF-8 reach the gateway as lone surrogates (aiohttp decodes
    with surrogateescape); they cannot be stored, nor sent back, as text.

    >>> _is_utf8("caf\u00e9"), _is_utf8("caf" + chr(0xDCE9))
    (True, False)
    """
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def http_date(info: ObjectInfo) -> str:
    return format_datetime(info.last_modified.replace(microsecond=0), usegmt=True)


def object_headers(info: ObjectInfo, with_checksums: bool) -> dict[str, str]:
    """Response headers describing an object (GET and HEAD)."""
    headers = {
        "ETag": f'"{info.etag}"',
        "Last-Modified": http_date(info),
        "Accept-Ranges": "bytes",
        "Content-Type": info.metadata.get("content-type", "binary/octet-stream"),
    }
    for name, value in info.metadata.items():
        if name in STORED_HEADERS and name != "content-type":
            headers["-".join(p.capitalize() for p in name.split("-"))] = value
        elif name.startswith(USER_META_PREFIX):
            headers[name] = value
    if info.parts_count > 1:
        headers["x-amz-mp-parts-count"] = str(info.parts_count)
    if with_checksums:
        for alg, value in info.checksums.items():
            headers[checksums.header_name(alg)] = value
    return headers


# Request headers for features not built yet: refused rather than silently dropped, so a client
# asking for encryption or a retention lock is never told it got one.
UNSUPPORTED_WRITE_HEADERS = (
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
    "x-amz-tagging",
)
STORAGE_CLASSES = ("STANDARD",)


def refuse_unsupported(headers: Mapping[str, str]) -> None:
    """Raise NotImplemented for a write asking for a feature Huimin does not have yet.

    >>> refuse_unsupported({"content-type": "a/b", "x-amz-storage-class": "STANDARD"})
    >>> refuse_unsupported({"x-amz-server-side-encryption": "AES256"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    gateway.errors.NotImplemented: A header you provided implies functionality...
    """
    for name in UNSUPPORTED_WRITE_HEADERS:
        if name in headers:
            raise errors.NotImplemented(Header=name)
    storage_class = headers.get("x-amz-storage-class", "STANDARD")
    if storage_class not in STORAGE_CLASSES:
        raise InvalidStorageClass(StorageClassRequested=storage_class)
