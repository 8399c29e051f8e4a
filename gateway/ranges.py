"""Byte ranges: the ``Range`` header of GetObject/HeadObject and ``x-amz-copy-source-range``.

Pure functions, no IO. S3 semantics, which differ from plain RFC 9110 in a few corners:

* S3 serves one range per request. A multi-range header (``bytes=0-1,3-4``) is *ignored*: the
  whole object comes back with 200 (observed on AWS, aws-c-s3 issue #257, riak_cs PR #304).
* A header that does not parse (``items=0-1``, ``bytes=abc``, ``bytes=5-2``, ``bytes=-``) is
  ignored too: whole object, 200 (RFC 9110 14.2 lets a server ignore it; AWS does; Scality
  cloudserver PR #2194, versitygw PR #1124).
* A range starting at or past the end is ``InvalidRange`` (416). On a 0-byte object every
  ``first-[last]`` range is therefore 416 (MinIO PR #6557 and #17713 checked against AWS), but a
  suffix range ``bytes=-n`` on a 0-byte object is answered 200 with the empty body (observed on
  AWS: arrow-rs-object-store issue #846, floci issue #1141), so it is ignored here.
* ``bytes=-0`` asks for nothing and is 416 (RFC 9110 14.1.1: a zero suffix is unsatisfiable).

UploadPartCopy is stricter: anything but ``bytes=first-last`` is ``InvalidArgument``, and a range
that does not lie inside the source is ``InvalidArgument`` too (AWS, versitygw issue #610), never
silently clamped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.errors import InvalidArgument, InvalidPartNumber, InvalidRange

# ASCII digits only: `\d` would also accept e.g. Arabic-Indic digits, which int() then parses.
_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)", re.IGNORECASE | re.ASCII)
_COPY_RANGE = re.compile(r"bytes=([0-9]+)-([0-9]+)", re.ASCII)

# Offsets beyond any object we can store; also keeps int() away from its 4300-digit limit.
_MAX_DIGITS = 20
_HUGE = 1 << 66

_COPY_RANGE_FORM = (
    "The x-amz-copy-source-range value must be of the form bytes=first-last where first and "
    "last are the zero-based offsets of the first and last bytes to copy"
)


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Inclusive byte range ``[start, end]`` of an object, already resolved against its size.

    >>> r = ByteRange(10, 19)
    >>> r.length
    10
    >>> r.content_range(100)
    'bytes 10-19/100'
    """

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        """The ``Content-Range`` header of a 206 answer for an object of ``size`` bytes."""
        return f"bytes {self.start}-{self.end}/{size}"


def unsatisfied_content_range(size: int) -> str:
    """The ``Content-Range`` header of a 416 answer: ``bytes */<size>`` (RFC 9110 15.5.17)."""
    return f"bytes */{size}"


def _offset(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return _HUGE if len(digits) > _MAX_DIGITS else int(digits)


def parse_range(header: str | None, object_size: int) -> ByteRange | None:
    """Resolve a GetObject ``Range`` header against the object size.

    Returns the range to serve with 206, or ``None`` to serve the whole object with 200 (no
    header, or a header S3 ignores). Raises ``InvalidRange`` (416) when the range is syntactically
    fine but unsatisfiable. Worked examples for a 100-byte object:

    ======================  =============================================
    ``bytes=0-9``           ``ByteRange(0, 9)``: first 10 bytes
    ``bytes=90-200``        ``ByteRange(90, 99)``: end clamped to size - 1
    ``bytes=95-``           ``ByteRange(95, 99)``
    ``bytes=-10``           ``ByteRange(90, 99)``: last 10 bytes
    ``bytes=-500``          ``ByteRange(0, 99)``: suffix longer than the object
    ``bytes=100-``          ``InvalidRange``: starts past the last byte
    ``bytes=-0``            ``InvalidRange``
    ``bytes=5-2``           ``None``: invalid, ignored
    ``bytes=0-1,3-4``       ``None``: multi-range, ignored
    ======================  =============================================

    For a 0-byte object ``bytes=0-`` and ``bytes=0-0`` are ``InvalidRange``, ``bytes=-5`` is
    ``None`` (200, empty body).

    >>> parse_range("bytes=-10", 100)
    ByteRange(start=90, end=99)
    """
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first_digits, last_digits = match.groups()
    if not first_digits:
        if not last_digits:
            return None  # "bytes=-"
        suffix = _offset(last_digits)
        if suffix == 0:
            raise _invalid_range(header, object_size)
        if object_size == 0:
            return None
        return ByteRange(max(object_size - suffix, 0), object_size - 1)
    first = _offset(first_digits)
    last = _offset(last_digits) if last_digits else None
    if last is not None and last < first:
        return None
    if first >= object_size:
        raise _invalid_range(header, object_size)
    if last is None or last >= object_size:
        last = object_size - 1
    return ByteRange(first, last)


def parse_copy_source_range(header: str | None, source_size: int) -> ByteRange | None:
    """Resolve UploadPartCopy's ``x-amz-copy-source-range`` against the source object size.

    Returns ``None`` when the header is absent (copy the whole source). Only the exact form
    ``bytes=first-last`` with ``first <= last`` is accepted, else ``InvalidArgument``; a range
    that does not lie within the source is ``InvalidArgument`` with S3's "Range specified is not
    valid for source object of size: N". For a 10-byte source:

    ======================  ==============================================
    ``bytes=0-9``           ``ByteRange(0, 9)``
    ``bytes=2-2``           ``ByteRange(2, 2)``
    ``bytes=0-10``          ``InvalidArgument`` (not within the source)
    ``bytes=0-``            ``InvalidArgument`` (not bytes=first-last)
    ``bytes=-5``            ``InvalidArgument``
    ``bytes=5-2``           ``InvalidArgument``
    ``0-5``                 ``InvalidArgument``
    ======================  ==============================================

    >>> parse_copy_source_range("bytes=0-9", 10)
    ByteRange(start=0, end=9)
    """
    rng = copy_range_syntax(header)
    return None if rng is None or header is None else copy_range_within(rng, source_size, header)


def copy_range_syntax(header: str | None) -> ByteRange | None:
    """The form check of ``x-amz-copy-source-range`` alone (the router's part; the size is
    checked once the source is open, by ``copy_range_within``).

    >>> copy_range_syntax("bytes=0-9")
    ByteRange(start=0, end=9)
    """
    if header is None:
        return None
    match = _COPY_RANGE.fullmatch(header.strip())
    if match is None:
        raise _invalid_copy_range(header, _COPY_RANGE_FORM)
    first, last = _offset(match.group(1)), _offset(match.group(2))
    if last < first:
        raise _invalid_copy_range(header, _COPY_RANGE_FORM)
    return ByteRange(first, last)


def copy_range_within(rng: ByteRange, source_size: int, header: str) -> ByteRange:
    """``rng`` if it lies within a source of ``source_size`` bytes, else S3's InvalidArgument.

    >>> copy_range_within(ByteRange(0, 9), 10, "bytes=0-9")
    ByteRange(start=0, end=9)
    """
    if rng.end >= source_size:
        raise _invalid_copy_range(
            header, f"Range specified is not valid for source object of size: {source_size}"
        )
    return rng


def _invalid_range(header: str, size: int) -> InvalidRange:
    return InvalidRange(RangeRequested=header, ActualObjectSize=str(size))


def _invalid_copy_range(header: str, message: str) -> InvalidArgument:
    return InvalidArgument(message, ArgumentName="x-amz-copy-source-range", ArgumentValue=header)


def part_range(part_sizes: Sequence[int], object_size: int, part_number: int) -> ByteRange:
    """The bytes of part ``part_number`` (GET/HEAD ?partNumber=N). A single-part object has
    one part: itself (``part_sizes`` empty).

    >>> part_range([5, 5, 2], 12, 3)
    ByteRange(start=10, end=11)
    >>> part_range([], 7, 1)
    ByteRange(start=0, end=6)
    """
    sizes = list(part_sizes) or [object_size]
    if not 1 <= part_number <= len(sizes):
        raise InvalidPartNumber(
            PartNumberRequested=str(part_number), ActualPartCount=str(len(sizes))
        )
    start = sum(sizes[: part_number - 1])
    return ByteRange(start, start + sizes[part_number - 1] - 1)
