"""Range header resolution, table-driven: what a client gets back for each header."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidArgument, InvalidRange
from gateway.ranges import (
    ByteRange,
    parse_copy_source_range,
    parse_range,
    unsatisfied_content_range,
)

SIZE = 100


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", ByteRange(0, 9)),
        ("bytes=0-0", ByteRange(0, 0)),
        ("bytes=99-99", ByteRange(99, 99)),
        ("bytes=0-99", ByteRange(0, 99)),
        ("bytes=90-200", ByteRange(90, 99)),  # end clamped
        ("bytes=95-", ByteRange(95, 99)),
        ("bytes=0-", ByteRange(0, 99)),
        ("bytes=-10", ByteRange(90, 99)),
        ("bytes=-100", ByteRange(0, 99)),
        ("bytes=-500", ByteRange(0, 99)),  # suffix longer than the object: whole object
        ("bytes=007-008", ByteRange(7, 8)),
        ("BYTES=1-2", ByteRange(1, 2)),  # range units are case-insensitive (RFC 9110 14.1)
        (" bytes=1-2 ", ByteRange(1, 2)),
        ("bytes=10-99999999999999999999999999999", ByteRange(10, 99)),
        # Ignored by S3: whole object with 200.
        ("", None),
        ("bytes=", None),
        ("bytes=-", None),
        ("bytes=5-2", None),
        ("bytes=0-1,3-4", None),
        ("bytes=0-1, 3-4", None),
        ("bytes=abc", None),
        ("bytes=a-b", None),
        ("bytes=1", None),
        ("bytes=+1-2", None),
        ("bytes=1_0-20", None),
        ("bytes= 1-2", None),
        ("bytes=\u0661-\u0662", None),  # Arabic-Indic digits are not ASCII digits
        ("items=0-1", None),
        ("0-1", None),
        ("bytes 0-1", None),
    ],
)
def test_parse_range(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize(
    "header",
    ["bytes=100-", "bytes=100-200", "bytes=150-160", "bytes=-0", "bytes=" + "9" * 5000 + "-"],
)
def test_unsatisfiable_range_is_416(header: str) -> None:
    with pytest.raises(InvalidRange) as caught:
        parse_range(header, SIZE)
    assert caught.value.status == 416
    assert caught.value.code == "InvalidRange"
    assert caught.value.extra == {"RangeRequested": header, "ActualObjectSize": str(SIZE)}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=-5", None),  # AWS answers 200 with the empty body
        ("bytes=-1", None),
        ("bytes=5-2", None),
        ("bytes=0-1,2-3", None),
        ("nonsense", None),
    ],
)
def test_empty_object_ignored_ranges(header: str, expected: ByteRange | None) -> None:
    assert parse_range(header, 0) == expected


@pytest.mark.parametrize(
    "header", ["bytes=0-", "bytes=0-0", "bytes=0-100", "bytes=5-9", "bytes=-0"]
)
def test_empty_object_first_last_range_is_416(header: str) -> None:
    with pytest.raises(InvalidRange):
        parse_range(header, 0)


def test_byte_range_headers() -> None:
    r = ByteRange(10, 19)
    assert r.length == 10
    assert r.content_range(100) == "bytes 10-19/100"
    assert ByteRange(0, 0).length == 1
    assert unsatisfied_content_range(100) == "bytes */100"


def test_byte_range_is_frozen() -> None:
    r = ByteRange(1, 2)
    with pytest.raises(AttributeError):
        r.start = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=0-9", 10, ByteRange(0, 9)),
        ("bytes=2-2", 10, ByteRange(2, 2)),
        ("bytes=9-9", 10, ByteRange(9, 9)),
        ("bytes=5242880-10485759", 20 << 20, ByteRange(5 << 20, (10 << 20) - 1)),
    ],
)
def test_parse_copy_source_range(header: str | None, size: int, expected: ByteRange | None) -> None:
    assert parse_copy_source_range(header, size) == expected


FORM_MESSAGE = (
    "The x-amz-copy-source-range value must be of the form bytes=first-last where first and "
    "last are the zero-based offsets of the first and last bytes to copy"
)


@pytest.mark.parametrize(
    "header",
    [
        "0-2",
        "bytes=0",
        "bytes=hello-world",
        "bytes=0-bar",
        "bytes=hello-",
        "bytes=0-2,3-5",
        "bytes=0-",
        "bytes=-5",
        "bytes=5-2",
        "BYTES=0-1",
        "",
    ],
)
def test_copy_source_range_malformed(header: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_copy_source_range(header, 10)
    assert caught.value.status == 400
    assert caught.value.detail == FORM_MESSAGE
    assert caught.value.extra == {
        "ArgumentName": "x-amz-copy-source-range",
        "ArgumentValue": header,
    }


@pytest.mark.parametrize(
    ("header", "size"),
    [("bytes=0-21", 5), ("bytes=0-10", 10), ("bytes=10-10", 10), ("bytes=0-0", 0)],
)
def test_copy_source_range_outside_source(header: str, size: int) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_copy_source_range(header, size)
    assert caught.value.detail == f"Range specified is not valid for source object of size: {size}"
