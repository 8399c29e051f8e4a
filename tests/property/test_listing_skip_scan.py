"""Delimiter listings skip-scanned on the drives (storage/listing.py over Index._skip_rows)
list exactly what the visibility rule gives, evaluated by brute force over every drive's rows.

The rule: a key is listed when its newest version seen on the answering drives is held by >= k
of them, or else the newest version that is, unless a newer one could still reach k on the
silent drives (undecidable: not listed); a common prefix is listed when a key under it is.
The drives are real SQLite indexes; versions reach random subsets of drives (partial writes on
fewer than k drives, half-deleted keys) and up to m + 1 drives do not answer.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from storage.buckets import ErasureBuckets
from storage.drive import Drive
from storage.errors import QuorumNotReached
from storage.index import Index
from storage.listing import ErasureListing, common_prefix
from storage.records import BucketRecord
from storage.sets import ECParams, ErasureSets
from tests.listing_drives import TIMES, IndexDrive, load

MAX_DRIVES = 6
ALPHABET = "ab/"


@pytest.fixture(scope="module")
def drives() -> Iterator[list[IndexDrive]]:
    with tempfile.TemporaryDirectory() as tmp:
        indexes = [Index(Path(tmp) / f"d{i}.db") for i in range(MAX_DRIVES)]
        for ix in indexes:
            ix.make_bucket(BucketRecord("b", 1, "me")).result()
        yield [IndexDrive(ix) for ix in indexes]
        for ix in indexes:
            ix.close()


def readable(
    held: dict[str, dict[str, set[int]]], answering: set[int], k: int, silent: int
) -> list[str]:
    """Brute force: the keys the rule lists, from which drives hold which version."""
    out = []
    for key in sorted(held):
        for version in sorted(held[key], key=TIMES.__getitem__, reverse=True):
            n = len(held[key][version] & answering)
            if n >= k:
                out.append(key)
                break
            if n > 0 and n + silent >= k:
                break  # a newer version may be on the silent drives: undecidable
    return out


def expected(keys: list[str], prefix: str, delimiter: str, after: str) -> list[str]:
    """The listing's entries (keys and common prefixes, in order) after ``after``; after a
    common prefix itself, nothing under it (a resumed listing)."""
    skip = after if after and common_prefix(after, prefix, delimiter) == after else None
    out: list[str] = []
    for key in keys:
        if not key.startswith(prefix) or key <= after or (skip and key.startswith(skip)):
            continue
        entry = common_prefix(key, prefix, delimiter) or key
        if not out or out[-1] != entry:
            out.append(entry)
    return out


# None: on every drive (most versions); else the drives a partial write or delete reached.
holders = st.one_of(st.none(), st.none(), st.frozensets(st.integers(0, MAX_DRIVES - 1)))
objects = st.dictionaries(
    st.text(ALPHABET, min_size=1, max_size=5),
    st.dictionaries(st.sampled_from(sorted(TIMES)), holders, min_size=1, max_size=3),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(
    objects=objects,
    k=st.integers(1, 4),
    m=st.integers(1, 2),
    down=st.one_of(
        st.frozensets(st.integers(0, MAX_DRIVES - 1), max_size=2),
        st.frozensets(st.integers(0, MAX_DRIVES - 1), min_size=3, max_size=3),
    ),
    prefix=st.sampled_from(["", "", "a", "a/", "b/"]),
    delimiter=st.sampled_from(["/", "b/", "ab", "/", "\U0010ffff"]),
    after=st.one_of(st.just(""), st.text(ALPHABET, max_size=3)),
    max_keys=st.integers(1, 5),
    batch=st.integers(1, 4),
    reader=st.integers(0, MAX_DRIVES - 1),
)
def test_skip_scan_listing_is_the_rule(
    drives: list[IndexDrive],
    objects: dict[str, dict[str, frozenset[int] | None]],
    k: int,
    m: int,
    down: frozenset[int],
    prefix: str,
    delimiter: str,
    after: str,
    max_keys: int,
    batch: int,
    reader: int,
) -> None:
    n = k + m
    set_drives = drives[:n]
    held = {
        key: {v: set(range(n)) if h is None else {i for i in h if i < n} for v, h in vs.items()}
        for key, vs in objects.items()
    }
    for i, drive in enumerate(set_drives):
        load(drive, [(key, v) for key, vs in held.items() for v, on in vs.items() if i in on])
        drive.down = i in down
        drive.calls.clear()
    answering = set(range(n)) - down
    params = ECParams(codec="isal", k=k, m=m, block_size=1024, inline_threshold=1024)
    sets = ErasureSets("test", cast(list[Drive], set_drives), params)
    listing = ErasureListing(sets, batch=batch)
    listing.readers[0][0] = reader % n

    async def list_all() -> list[str]:
        got: list[str] = []
        marker = after
        for _ in range(200):
            page = await listing.list_objects("b", prefix, delimiter, marker, max_keys)
            entries = sorted([o.key for o in page.objects] + page.common_prefixes)
            assert len(entries) <= max_keys
            got += entries
            if not page.is_truncated:
                return got
            assert page.next_marker is not None
            marker = page.next_marker
        raise AssertionError("the listing does not end")

    if len(answering) < k:
        with pytest.raises(QuorumNotReached):
            asyncio.run(list_all())
        return
    want = expected(readable(held, answering, k, n - len(answering)), prefix, delimiter, after)
    try:
        got = asyncio.run(list_all())
    except QuorumNotReached:
        # An empty listing asks whether the bucket exists: that needs the buckets' quorum.
        assert not want and len(answering) < ErasureBuckets(sets).quorum
        return
    assert got == want
    calls = sum((d.calls for d in set_drives), Counter[str]())
    event("skip-scan" if delimiter != "\U0010ffff" and delimiter else "flat")
    event(f"pages differ: {'some' if calls['list_page (rows)'] else 'none'}")
    event(f"exact merges: {'some' if calls['list_versions'] else 'none'}")
    event(f"entries: {min(len(want), 10)}")


@settings(max_examples=200, deadline=None)
@given(
    keys=st.dictionaries(st.text(ALPHABET, min_size=1, max_size=5), st.integers(0, 2), max_size=30),
    sets_count=st.integers(1, 3),
    prefix=st.sampled_from(["", "a", "a/"]),
    delimiter=st.sampled_from(["", "/", "b/", "\U0010ffff"]),
    after=st.one_of(st.just(""), st.text(ALPHABET, max_size=3)),
    max_keys=st.integers(1, 5),
    batch=st.integers(1, 4),
)
def test_sets_merge_in_key_order(
    drives: list[IndexDrive],
    keys: dict[str, int],
    sets_count: int,
    prefix: str,
    delimiter: str,
    after: str,
    max_keys: int,
    batch: int,
) -> None:
    """Several sets (each key in one of them, on all of its drives): pages merge the sets'
    rows in key order, a common prefix once even when its keys are in several sets."""
    n = 2  # k=1, m=1
    set_drives = drives[: n * sets_count]
    for i, drive in enumerate(set_drives):
        load(drive, [(key, "v1") for key, s in keys.items() if s % sets_count == i // n])
        drive.down = False
    params = ECParams(codec="isal", k=1, m=1, block_size=1024, inline_threshold=1024)
    listing = ErasureListing(ErasureSets("test", cast(list[Drive], set_drives), params), batch)

    async def list_all() -> list[str]:
        got: list[str] = []
        marker = after
        for _ in range(200):
            page = await listing.list_objects("b", prefix, delimiter, marker, max_keys)
            got += sorted([o.key for o in page.objects] + page.common_prefixes)
            if not page.is_truncated:
                return got
            assert page.next_marker is not None
            marker = page.next_marker
        raise AssertionError("the listing does not end")

    if not expected(sorted(keys), prefix, delimiter, after):
        return  # an empty listing asks for the bucket (ErasureBuckets): not what is tested
    assert asyncio.run(list_all()) == expected(sorted(keys), prefix, delimiter, after)
