"""Range resolution against a slicing model: the bytes served are the bytes asked for."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import InvalidArgument, InvalidRange
from gateway.ranges import parse_copy_source_range, parse_range

sizes = st.integers(min_value=0, max_value=10_000)
offsets = st.integers(min_value=0, max_value=20_000)


def expected_slice(size: int, first: int | None, last: int | None) -> tuple[int, int] | None:
    """What S3 serves, as a Python half-open slice, or None for "whole object, 200"."""
    if first is None:
        assert last is not None
        return None if size == 0 else (max(size - last, 0), size)
    if last is not None and last < first:
        return None
    return (first, size if last is None else min(last + 1, size))


@given(size=sizes, first=offsets, last=st.none() | offsets)
def test_first_last_matches_slicing(size: int, first: int, last: int | None) -> None:
    header = f"bytes={first}-{'' if last is None else last}"
    model = expected_slice(size, first, last)
    unsatisfiable = model is not None and first >= size
    try:
        got = parse_range(header, size)
    except InvalidRange:
        assert unsatisfiable
        return
    assert not unsatisfiable
    if model is None:
        assert got is None
    else:
        assert got is not None
        assert (got.start, got.end + 1) == model
        assert 0 <= got.start <= got.end < size
        assert got.length == model[1] - model[0]


@given(size=sizes, suffix=offsets)
def test_suffix_matches_slicing(size: int, suffix: int) -> None:
    header = f"bytes=-{suffix}"
    if suffix == 0:
        try:
            parse_range(header, size)
        except InvalidRange:
            return
        raise AssertionError("bytes=-0 must be unsatisfiable")
    got = parse_range(header, size)
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    if size == 0:
        assert got is None
    else:
        assert got is not None
        assert data[got.start : got.end + 1] == data[-suffix:]


@given(header=st.text(max_size=40), size=sizes)
def test_any_header_is_ignored_served_or_416(header: str, size: int) -> None:
    try:
        got = parse_range(header, size)
    except InvalidRange:
        return
    if got is not None:
        assert 0 <= got.start <= got.end < size


@given(size=sizes, first=offsets, last=offsets)
def test_copy_range_is_exact_or_refused(size: int, first: int, last: int) -> None:
    try:
        got = parse_copy_source_range(f"bytes={first}-{last}", size)
    except InvalidArgument:
        assert last < first or last >= size
        return
    assert got is not None
    assert (got.start, got.end) == (first, last)
