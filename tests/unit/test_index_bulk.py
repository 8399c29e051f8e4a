"""Index.insert_objects (bulk loading) writes the rows insert_object would, and list_page's
digest is the same for the same rows on two drives."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from storage.errors import BucketNotFound
from storage.index import Index
from storage.records import BucketRecord, ObjectRecord, PartRef


def record(key: str, version: str = "v1") -> ObjectRecord:
    return ObjectRecord(
        bucket="b", key=key, version_id=version, mod_time_ns=1, size=3, etag="e",
        codec="isal", k=2, m=1, block_size=1024, shard_index=0,
        parts=(PartRef(1, 3, "e", None),), inline=b"abc",
    )  # fmt: skip


def test_bulk_rows_read_back_and_list_like_single_inserts(tmp_path: Path) -> None:
    bulk, single = Index(tmp_path / "a.db"), Index(tmp_path / "b.db")
    try:
        for ix in (bulk, single):
            ix.make_bucket(BucketRecord("b", 1, "me")).result()
        records = [record(f"k{i}") for i in range(5)]
        bulk.insert_objects(records).result()
        for r in records:
            single.insert_object(r, lambda: None, lambda _: None).result()
        assert bulk.get_versions("b", "k3") == single.get_versions("b", "k3") == [records[3]]
        a, b = bulk.list_page("b", "", "", 10, True), single.list_page("b", "", "", 10, False)
        assert (a.digest, a.count, a.last_key) == (b.digest, 5, "k4")
        assert [r.key for r in a.rows()] == [f"k{i}" for i in range(5)]
        with pytest.raises(BucketNotFound):
            bulk.insert_objects([replace(record("x"), bucket="nope")]).result()
    finally:
        bulk.close()
        single.close()
