"""Object metadata <-> HTTP headers."""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import format_datetime

from gateway import checksums
from gateway.errors import InvalidArgument, MetadataTooLarge
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
    size = sum(len(n) - len(USER_META_PREFIX) + len(v.encode()) for n, v in user.items())
    if size > MAX_USER_METADATA_BYTES:
        raise MetadataTooLarge()
    for name in user:
        if not name[len(USER_META_PREFIX) :]:
            raise InvalidArgument("Empty user metadata name")
    meta.update(user)
    return meta


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
