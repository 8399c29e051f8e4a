"""Delimiter listings skip-scan on the drives: the index walks one entry per common prefix
(storage/index.py ``_skip_rows``), and a set whose drives agree lists a page of common
prefixes in one drive call each (storage/listing.py)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from storage.drive import Drive
from storage.index import Index
from storage.listing import ErasureListing
from storage.records import BucketRecord
from storage.sets import ECParams, ErasureSets
from tests.listing_drives import IndexDrive, load

K, M = 4, 2


@pytest.fixture
def drives(tmp_path: Path) -> Iterator[list[IndexDrive]]:
    indexes = [Index(tmp_path / f"d{i}.db") for i in range(K + M)]
    for ix in indexes:
        ix.make_bucket(BucketRecord("b", 1, "me")).result()
    yield [IndexDrive(ix) for ix in indexes]
    for ix in indexes:
        ix.close()


def entries(drive: IndexDrive, prefix: str, delimiter: str, after: str = "") -> list[str]:
    page = drive.index.list_page("b", prefix, after, 100, True, delimiter)
    return [f"{r.key}@{r.version_id}" for r in page.rows()]


Q = ["q@v1", "qx\U0010ffff1@v1", "qx\U0010ffff2@v1", "qy@v1"]


@pytest.mark.parametrize(
    ("prefix", "delimiter", "after", "want"),
    [
        ("", "/", "", ["a/1@v2", "b@v1", "c/1@v1", "c0@v1", *Q, "日本/x@v1"]),
        ("", "/", "a/1", ["a/2@v1", "b@v1", "c/1@v1", "c0@v1", *Q, "日本/x@v1"]),  # inside a/
        ("", "/", "a/" + "\U0010ffff" * 4, ["b@v1", "c/1@v1", "c0@v1", *Q, "日本/x@v1"]),
        ("c", "/", "", ["c/1@v1", "c0@v1"]),
        ("c/", "/", "", ["c/1@v1", "c/2/x@v1"]),
        ("", "/1", "", ["a/1@v2", "a/2@v1", "b@v1", "c/1@v1", "c/2/x@v1", "c0@v1", *Q,
                        "日本/x@v1", "日本/語a@v1", "日本/語b@v1"]),
        ("日本/", "語", "", ["日本/x@v1", "日本/語a@v1"]),
        # A delimiter ending with U+10FFFF: its common prefix's upper bound is "qy".
        ("", "x\U0010ffff", "q", ["qx\U0010ffff1@v1", "qy@v1", "日本/x@v1", "日本/語a@v1",
                                  "日本/語b@v1"]),
    ],
)  # fmt: skip
def test_index_skip_scan_returns_one_newest_row_per_entry(
    drives: list[IndexDrive], prefix: str, delimiter: str, after: str, want: list[str]
) -> None:
    rows = [("a/1", "v1"), ("a/1", "v2"), ("a/2", "v1"), ("b", "v1"), ("c/1", "v1")]
    rows += [("c/2/x", "v1"), ("c0", "v1"), ("日本/語a", "v1"), ("日本/語b", "v1")]
    rows += [("日本/x", "v1"), ("q", "v1"), ("qx\U0010ffff1", "v1"), ("qx\U0010ffff2", "v1")]
    rows += [("qy", "v1")]
    load(drives[0], rows)
    assert entries(drives[0], prefix, delimiter, after) == want


def test_index_skip_scan_limit_counts_entries(drives: list[IndexDrive]) -> None:
    load(drives[0], [(f"d{i}/o{j}", "v1") for i in range(5) for j in range(3)])
    page = drives[0].index.list_page("b", "", "", 2, False, "/")
    assert (page.count, page.last_key) == (2, "d1/o0")


def listing(drives: list[IndexDrive]) -> ErasureListing:
    params = ECParams(codec="isal", k=K, m=M, block_size=1024, inline_threshold=1024)
    return ErasureListing(ErasureSets("test", cast(list[Drive], drives), params))


def test_a_page_of_prefixes_is_one_call_to_each_of_k_drives_when_they_agree(
    drives: list[IndexDrive],
) -> None:
    rows = [(f"d{i:03}/o{j}", "v1") for i in range(300) for j in range(20)]
    for d in drives:
        load(d, rows)
    page = asyncio.run(listing(drives).list_objects("b", "", "/", "d009/", 100))
    assert page.common_prefixes == [f"d{i:03}/" for i in range(10, 110)]
    assert page.is_truncated and page.next_marker == "d109/"
    calls = sum((d.calls for d in drives), Counter[str]())
    assert calls == {"list_page": K - 1, "list_page (rows)": 1}  # k drives decide


def test_k_drives_that_differ_mean_every_drive_is_asked(drives: list[IndexDrive]) -> None:
    rows = [(f"d{i:03}/o{j}", "v1") for i in range(30) for j in range(3)]
    for d in drives:
        load(d, rows)
    load(drives[1], [("d000/partial", "v2")])  # a write that reached one drive only
    page = asyncio.run(listing(drives).list_objects("b", "", "", "", 5))
    assert [o.key for o in page.objects] == ["d000/o0", "d000/o1", "d000/o2", "d001/o0", "d001/o1"]
    calls = sum((d.calls for d in drives), Counter[str]())
    assert calls["list_page"] + calls["list_page (rows)"] > K


def test_a_partial_write_costs_a_few_calls_and_hides_only_its_key(
    drives: list[IndexDrive],
) -> None:
    rows = [(f"d{i:03}/o{j}", "v1") for i in range(300) for j in range(20)]
    for i, d in enumerate(drives):
        # On 2 drives only (< k): a new directory and a newer version of d050's first key.
        extra = [("d049x/o0", "v1"), ("d050/o0", "v2")] if i < 2 else []
        load(d, rows + extra)
    drives[5].down = True  # and one drive does not answer
    page = asyncio.run(listing(drives).list_objects("b", "", "/", "", 1000))
    assert page.common_prefixes == [f"d{i:03}/" for i in range(300)]
    calls = sum((d.calls for d in drives), Counter[str]())
    assert calls["list_versions"] <= 2 * (K + M)  # two exact merges of one batch, at most
    assert calls["list_page"] + calls["list_page (rows)"] <= 8 * (K + M)
