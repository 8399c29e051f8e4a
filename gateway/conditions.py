"""Conditional request headers: pure evaluation against an object's ETag and Last-Modified.

Reads (GetObject/HeadObject) follow RFC 9110 13.2.2's order, which is also what S3 documents:

1. ``If-Match`` false -> 412. When present it replaces ``If-Unmodified-Since``, so "If-Match true
   and If-Unmodified-Since false" is 200 (S3 GetObject docs).
2. else ``If-Unmodified-Since`` false -> 412.
3. ``If-None-Match`` false (an ETag matches) -> 304. When present it replaces
   ``If-Modified-Since``, so "If-None-Match false and If-Modified-Since true" is 304 (S3 docs).
4. else ``If-Modified-Since`` false (not modified since) -> 304.

CopyObject/UploadPartCopy evaluate ``x-amz-copy-source-if-*`` the same way, but every failure is
412 (S3 CopyObject docs). Conditional writes (PutObject, CompleteMultipartUpload) take
``If-None-Match: *`` and ``If-Match: <etag>`` only; see ``check_write_conditions``.

ETags compare without quotes and without a weak ``W/`` prefix; a header may list several ETags
(``"a", "b"``). ``*`` matches any existing object. Dates are HTTP-dates (IMF-fixdate, RFC 850 or
asctime); an unparsable date is ignored, as RFC 9110 requires. Last-Modified is compared at
whole-second precision because that is all an HTTP-date carries. A header whose value is empty or
only whitespace counts as absent (S3 strips such values; Swift's s3api ``_header_strip``).

Header names are looked up in lower case: pass aiohttp's case-insensitive headers, or a mapping
with lower-case keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from gateway import errors
from gateway.errors import NoSuchKey, NotModified, PreconditionFailed


def check_read_conditions(headers: Mapping[str, str], etag: str, last_modified: datetime) -> None:
    """Evaluate If-Match / If-Unmodified-Since / If-None-Match / If-Modified-Since for a read.

    Returns when the object should be served; raises ``PreconditionFailed`` (412) or
    ``NotModified`` (304). For an object with ETag ``abc`` last modified at 12:00:00 (date only
    shown):

    ======================================================  ==========
    ``If-Match: "abc"``                                     serve
    ``If-Match: "xyz"``                                     412
    ``If-Match: "abc"`` + ``If-Unmodified-Since: 11:00``    serve
    ``If-Unmodified-Since: 11:00``                          412
    ``If-None-Match: "abc"``                                304
    ``If-None-Match: *``                                    304
    ``If-None-Match: "abc"`` + ``If-Modified-Since: 11:00``  304
    ``If-Modified-Since: 12:00``                            304
    ``If-Modified-Since: 11:59:59``                         serve
    ``If-Match: "xyz"`` + ``If-None-Match: "abc"``          412
    ======================================================  ==========
    """
    failure = _evaluate(
        etag,
        last_modified,
        if_match=_header(headers, "if-match"),
        if_none_match=_header(headers, "if-none-match"),
        if_modified_since=_header(headers, "if-modified-since"),
        if_unmodified_since=_header(headers, "if-unmodified-since"),
    )
    if failure is None:
        return
    status, condition = failure
    if status == 412:
        raise PreconditionFailed(Condition=condition)
    raise NotModified()


def check_copy_source_conditions(
    headers: Mapping[str, str], etag: str, last_modified: datetime
) -> None:
    """Evaluate ``x-amz-copy-source-if-*`` against the copy source; any failure is 412.

    Same order and precedence as ``check_read_conditions``: if-match true makes
    if-unmodified-since irrelevant (copy proceeds); if-none-match false fails even when
    if-modified-since is true.

    >>> from datetime import UTC, datetime
    >>> check_copy_source_conditions(
    ...     {"x-amz-copy-source-if-match": '"abc"'}, "abc", datetime(2024, 1, 1, tzinfo=UTC)
    ... )
    """
    failure = _evaluate(
        etag,
        last_modified,
        if_match=_header(headers, "x-amz-copy-source-if-match"),
        if_none_match=_header(headers, "x-amz-copy-source-if-none-match"),
        if_modified_since=_header(headers, "x-amz-copy-source-if-modified-since"),
        if_unmodified_since=_header(headers, "x-amz-copy-source-if-unmodified-since"),
    )
    if failure is not None:
        raise PreconditionFailed(Condition="x-amz-copy-source-" + failure[1])


def check_write_conditions(headers: Mapping[str, str], current_etag: str | None) -> None:
    """Evaluate a conditional write (PutObject, CompleteMultipartUpload, CopyObject target).

    ``current_etag`` is the ETag of the current object at the key, ``None`` when there is none.
    S3 behaviour, all observed on AWS:

    ==========================================  =====================  =====================
    headers                                     object exists          no object
    ==========================================  =====================  =====================
    ``If-None-Match: *``                        412                    write
    ``If-None-Match: "abc"`` (not ``*``)        501 NotImplemented     501 NotImplemented
    ``If-Match: "abc"``, same ETag              write                  404 NoSuchKey
    ``If-Match: "xyz"``                         412                    404 NoSuchKey
    ``If-Match: *``                             write                  404 NoSuchKey
    both If-Match and If-None-Match             501 NotImplemented     501 NotImplemented
    ==========================================  =====================  =====================

    Sources: NotImplemented for an ETag in If-None-Match (aws-sdk-ruby issue #3144); NoSuchKey for
    If-Match on a missing key (MinIO issue #21526, with AWS CLI output); NotImplemented for both
    headers together (versitygw PR #1727). The caller must evaluate this atomically with the
    write (under the key's lock) or answer 409 ConditionalRequestConflict.
    """
    if_match = _header(headers, "if-match")
    if_none_match = _header(headers, "if-none-match")
    if if_none_match is not None:
        if if_none_match != "*" or if_match is not None:
            raise errors.NotImplemented(Header="If-None-Match")
        if current_etag is not None:
            raise PreconditionFailed(Condition="If-None-Match")
        return
    if if_match is None:
        return
    if current_etag is None:
        raise NoSuchKey()
    if not _etag_matches(if_match, current_etag):
        raise PreconditionFailed(Condition="If-Match")


def parse_http_date(value: str) -> datetime | None:
    """Parse an HTTP-date (RFC 9110 5.6.7) to an aware UTC datetime; ``None`` if invalid.

    >>> parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT")
    datetime.datetime(1994, 11, 6, 8, 49, 37, tzinfo=datetime.timezone.utc)
    >>> parse_http_date("Sun Nov  6 08:49:37 1994")  # asctime carries no zone: it is GMT
    datetime.datetime(1994, 11, 6, 8, 49, 37, tzinfo=datetime.timezone.utc)
    >>> parse_http_date("yesterday") is None
    True
    """
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _evaluate(
    etag: str,
    last_modified: datetime,
    *,
    if_match: str | None,
    if_none_match: str | None,
    if_modified_since: str | None,
    if_unmodified_since: str | None,
) -> tuple[int, str] | None:
    """``(status, failed header)`` of the first failing precondition of a read, else None."""
    if if_match is not None:
        if not _etag_matches(if_match, etag):
            return 412, "If-Match"
    elif if_unmodified_since is not None:
        date = parse_http_date(if_unmodified_since)
        if date is not None and _seconds(last_modified) > date:
            return 412, "If-Unmodified-Since"
    if if_none_match is not None:
        if _etag_matches(if_none_match, etag):
            return 304, "If-None-Match"
    elif if_modified_since is not None:
        date = parse_http_date(if_modified_since)
        if date is not None and _seconds(last_modified) <= date:
            return 304, "If-Modified-Since"
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _etag_matches(header_value: str, etag: str) -> bool:
    """True when ``*`` or any listed ETag equals ``etag`` (quotes and ``W/`` ignored)."""
    if header_value == "*":
        return True
    wanted = _bare_etag(etag)
    return any(_bare_etag(candidate) == wanted for candidate in header_value.split(","))


def _bare_etag(etag: str) -> str:
    etag = etag.strip()
    if etag[:2] in ("W/", "w/"):
        etag = etag[2:]
    return etag.strip('"')


def _seconds(moment: datetime) -> datetime:
    """``moment`` truncated to whole seconds, as an aware UTC datetime (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.replace(microsecond=0)
