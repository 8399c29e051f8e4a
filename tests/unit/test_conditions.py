"""Conditional headers, table-driven: 200, 304, 412 or 404 as a client would see them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from multidict import CIMultiDict

from gateway.conditions import (
    check_copy_source_conditions,
    check_read_conditions,
    check_write_conditions,
    parse_http_date,
)
from gateway.errors import NoSuchKey, NotModified, PreconditionFailed
from gateway.errors import NotImplemented as NotImplementedS3

ETAG = "d41d8cd98f00b204e9800998ecf8427e"
# Stored with sub-second precision; HTTP-dates only carry whole seconds.
MODIFIED = datetime(2024, 5, 1, 12, 0, 0, 750_000, tzinfo=UTC)
AT = "Wed, 01 May 2024 12:00:00 GMT"  # == Last-Modified at second precision
BEFORE = "Wed, 01 May 2024 11:59:59 GMT"
AFTER = "Wed, 01 May 2024 12:00:01 GMT"

OK = None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, OK),
        # If-Match
        ({"if-match": f'"{ETAG}"'}, OK),
        ({"if-match": ETAG}, OK),  # unquoted, as boto3 users often send
        ({"if-match": f'W/"{ETAG}"'}, OK),  # weak tolerated
        ({"if-match": f'"other", "{ETAG}"'}, OK),  # list
        ({"if-match": "*"}, OK),
        ({"if-match": '"other"'}, PreconditionFailed),
        ({"if-match": f'"{ETAG}-2"'}, PreconditionFailed),
        # If-Unmodified-Since
        ({"if-unmodified-since": AT}, OK),
        ({"if-unmodified-since": AFTER}, OK),
        ({"if-unmodified-since": BEFORE}, PreconditionFailed),
        ({"if-unmodified-since": "Sat, 29 Oct 1994 19:43:31 GMT"}, PreconditionFailed),
        ({"if-unmodified-since": "not a date"}, OK),  # invalid dates are ignored
        # If-None-Match
        ({"if-none-match": f'"{ETAG}"'}, NotModified),
        ({"if-none-match": ETAG}, NotModified),
        ({"if-none-match": f'W/"{ETAG}"'}, NotModified),
        ({"if-none-match": "*"}, NotModified),
        ({"if-none-match": f'"a", "{ETAG}", "b"'}, NotModified),
        ({"if-none-match": '"other"'}, OK),
        # If-Modified-Since
        ({"if-modified-since": AT}, NotModified),  # equal: not modified since
        ({"if-modified-since": AFTER}, NotModified),
        ({"if-modified-since": BEFORE}, OK),
        ({"if-modified-since": "Sat, 29 Oct 1994 19:43:31 GMT"}, OK),
        ({"if-modified-since": "garbage"}, OK),
        ({"if-modified-since": "Wednesday, 01-May-24 12:00:00 GMT"}, NotModified),  # RFC 850
        ({"if-modified-since": "Wed May  1 12:00:00 2024"}, NotModified),  # asctime
        ({"if-modified-since": "Wed, 01 May 2024 14:00:00 +0200"}, NotModified),
        # S3's documented combinations.
        ({"if-match": f'"{ETAG}"', "if-unmodified-since": BEFORE}, OK),
        ({"if-none-match": f'"{ETAG}"', "if-modified-since": BEFORE}, NotModified),
        # If-None-Match replaces If-Modified-Since (RFC 9110 13.1.3).
        ({"if-none-match": '"other"', "if-modified-since": AFTER}, OK),
        # Order: 412 classes before 304 classes.
        ({"if-match": '"other"', "if-none-match": f'"{ETAG}"'}, PreconditionFailed),
        ({"if-unmodified-since": BEFORE, "if-modified-since": AFTER}, PreconditionFailed),
        ({"if-unmodified-since": BEFORE, "if-none-match": f'"{ETAG}"'}, PreconditionFailed),
        ({"if-match": f'"{ETAG}"', "if-none-match": f'"{ETAG}"'}, NotModified),
        ({"if-match": f'"{ETAG}"', "if-modified-since": AFTER}, NotModified),
        # Empty values count as absent.
        ({"if-match": "", "if-none-match": "  "}, OK),
    ],
)
def test_read_conditions(headers: dict[str, str], expected: type[Exception] | None) -> None:
    if expected is None:
        check_read_conditions(headers, ETAG, MODIFIED)
    else:
        with pytest.raises(expected):
            check_read_conditions(headers, ETAG, MODIFIED)


def test_read_condition_errors_carry_status_and_condition() -> None:
    with pytest.raises(PreconditionFailed) as failed:
        check_read_conditions({"if-match": '"x"'}, ETAG, MODIFIED)
    assert failed.value.status == 412
    assert failed.value.extra == {"Condition": "If-Match"}
    with pytest.raises(PreconditionFailed) as failed:
        check_read_conditions({"if-unmodified-since": BEFORE}, ETAG, MODIFIED)
    assert failed.value.extra == {"Condition": "If-Unmodified-Since"}
    with pytest.raises(NotModified) as not_modified:
        check_read_conditions({"if-none-match": "*"}, ETAG, MODIFIED)
    assert not_modified.value.status == 304


def test_stored_quoted_etag_and_naive_last_modified() -> None:
    naive = datetime(2024, 5, 1, 12, 0, 0)  # naive means UTC
    with pytest.raises(NotModified):
        check_read_conditions({"if-none-match": ETAG}, f'"{ETAG}"', naive)
    with pytest.raises(NotModified):
        check_read_conditions({"if-modified-since": AT}, ETAG, naive)


def test_other_timezone_last_modified() -> None:
    plus_two = MODIFIED.astimezone(timezone(timedelta(hours=2)))
    with pytest.raises(NotModified):
        check_read_conditions({"if-modified-since": AT}, ETAG, plus_two)
    check_read_conditions({"if-modified-since": BEFORE}, ETAG, plus_two)


def test_case_insensitive_headers() -> None:
    headers = CIMultiDict({"If-None-Match": f'"{ETAG}"'})
    with pytest.raises(NotModified):
        check_read_conditions(headers, ETAG, MODIFIED)


CS = "x-amz-copy-source-"


@pytest.mark.parametrize(
    ("headers", "fails"),
    [
        ({}, False),
        ({CS + "if-match": f'"{ETAG}"'}, False),
        ({CS + "if-match": '"other"'}, True),
        ({CS + "if-none-match": f'"{ETAG}"'}, True),  # 412, never 304, for a copy
        ({CS + "if-none-match": '"other"'}, False),
        ({CS + "if-modified-since": AT}, True),
        ({CS + "if-modified-since": BEFORE}, False),
        ({CS + "if-unmodified-since": BEFORE}, True),
        ({CS + "if-unmodified-since": AFTER}, False),
        ({CS + "if-unmodified-since": "nope"}, False),
        # S3's documented combinations.
        ({CS + "if-match": f'"{ETAG}"', CS + "if-unmodified-since": BEFORE}, False),
        ({CS + "if-none-match": f'"{ETAG}"', CS + "if-modified-since": BEFORE}, True),
        # Plain conditional headers do not apply to the source.
        ({"if-match": '"other"', "if-none-match": f'"{ETAG}"'}, False),
    ],
)
def test_copy_source_conditions(headers: dict[str, str], fails: bool) -> None:
    if fails:
        with pytest.raises(PreconditionFailed) as caught:
            check_copy_source_conditions(headers, ETAG, MODIFIED)
        assert caught.value.status == 412
        assert caught.value.extra["Condition"].startswith("x-amz-copy-source-If-")
    else:
        check_copy_source_conditions(headers, ETAG, MODIFIED)


@pytest.mark.parametrize(
    ("headers", "current", "expected"),
    [
        ({}, None, OK),
        ({}, ETAG, OK),
        ({"if-none-match": "*"}, None, OK),
        ({"if-none-match": "*"}, ETAG, PreconditionFailed),
        ({"if-none-match": f'"{ETAG}"'}, ETAG, NotImplementedS3),
        ({"if-none-match": f'"{ETAG}"'}, None, NotImplementedS3),
        ({"if-match": f'"{ETAG}"'}, ETAG, OK),
        ({"if-match": ETAG}, f'"{ETAG}"', OK),
        ({"if-match": '"other"'}, ETAG, PreconditionFailed),
        ({"if-match": f'"{ETAG}"'}, None, NoSuchKey),
        ({"if-match": "*"}, ETAG, OK),
        ({"if-match": "*"}, None, NoSuchKey),
        ({"if-match": f'"{ETAG}"', "if-none-match": "*"}, ETAG, NotImplementedS3),
        ({"if-match": f'"{ETAG}"', "if-none-match": "*"}, None, NotImplementedS3),
        ({"if-none-match": ""}, ETAG, OK),
    ],
)
def test_write_conditions(
    headers: dict[str, str], current: str | None, expected: type[Exception] | None
) -> None:
    if expected is None:
        check_write_conditions(headers, current)
    else:
        with pytest.raises(expected):
            check_write_conditions(headers, current)


def test_write_condition_statuses() -> None:
    with pytest.raises(PreconditionFailed) as failed:
        check_write_conditions({"if-none-match": "*"}, ETAG)
    assert failed.value.status == 412
    with pytest.raises(NoSuchKey) as missing:
        check_write_conditions({"if-match": ETAG}, None)
    assert missing.value.status == 404
    with pytest.raises(NotImplementedS3) as unsupported:
        check_write_conditions({"if-none-match": ETAG}, None)
    assert unsupported.value.status == 501


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Sun, 06 Nov 1994 08:49:37 GMT", datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)),
        ("Sunday, 06-Nov-94 08:49:37 GMT", datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)),
        ("Sun Nov  6 08:49:37 1994", datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)),
        ("Sun, 06 Nov 1994 10:49:37 +0200", datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)),
        ("Sun, 31 Feb 1994 08:49:37 GMT", None),
        ("2024-01-01T00:00:00Z", None),
        ("", None),
        ("yesterday", None),
    ],
)
def test_parse_http_date(value: str, expected: datetime | None) -> None:
    assert parse_http_date(value) == expected
