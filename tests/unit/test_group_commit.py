"""Group-committed index writes: what a batch's writers see (storage.index, .group_commit)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from storage.errors import BucketNotFound
from storage.group_commit import PendingWrite
from storage.index import Index
from storage.records import BucketRecord, ObjectRecord
from tests.records import small_record

_T = TypeVar("_T")


def record(key: str, bucket: str = "b") -> ObjectRecord:
    return small_record(key, bucket)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    ix = Index(tmp_path / "i.db")
    ix.make_bucket(BucketRecord("b", 1, "me")).result(5)
    yield ix
    ix.close()


def keys(path: Path) -> list[str]:
    """Committed keys, as another process would read them."""
    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute("SELECT key FROM objects ORDER BY key")]


def hold_committer(index: Index) -> threading.Event:
    """Block the committer inside a write until the event is set: what is queued meanwhile
    goes into the next batch together."""
    release = threading.Event()
    started = threading.Event()

    def wait(_: sqlite3.Connection) -> None:
        started.set()
        release.wait(5)

    index.write(wait)
    assert started.wait(5)
    return release


@pytest.mark.parametrize("replayable", [True, False])
def test_a_failing_write_does_not_fail_the_rest_of_its_batch(
    index: Index, replayable: bool
) -> None:
    """Replayable writes run without savepoints, then again in savepoints after a failure;
    others run in savepoints at once: either way only the failing writes fail."""
    publish = None if replayable else (lambda: None)
    release = hold_committer(index)
    ok1 = index.insert_object(record("a"), publish, None)
    bad = index.insert_object(record("x", bucket="nope"), publish, None)

    def half_then_fail(db: sqlite3.Connection) -> None:
        db.execute("DELETE FROM objects WHERE key='a'")
        raise ValueError("no")

    failing = index.write(half_then_fail, replayable=replayable)
    ok2 = index.insert_object(record("c"), publish, None)
    release.set()
    assert ok1.result(5) is False and ok2.result(5) is False
    with pytest.raises(BucketNotFound):
        bad.result(5)
    with pytest.raises(ValueError):
        failing.result(5)
    assert keys(index.path) == ["a", "c"]  # the failed write's delete was rolled back alone


def test_a_failing_write_alone_in_its_batch_leaves_nothing(index: Index) -> None:
    def half_then_fail(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO info VALUES('x', 'y')")
        raise ValueError("no")

    with pytest.raises(ValueError):
        index.write(half_then_fail).result(5)
    index.insert_object(record("a"), lambda: None, lambda _: None).result(5)
    with sqlite3.connect(index.path) as db:
        assert db.execute("SELECT 1 FROM info WHERE name='x'").fetchone() is None
    assert keys(index.path) == ["a"]


def test_a_write_is_acknowledged_only_once_committed(tmp_path: Path) -> None:
    gate = threading.Event()

    def wait_for_gate() -> None:
        gate.wait(5)

    ix = Index(tmp_path / "i.db", before_commit=wait_for_gate)
    try:
        gate.set()
        ix.make_bucket(BucketRecord("b", 1, "me")).result(5)
        gate.clear()

        async def put() -> list[str]:
            pending = ix.insert_object(record("a"), lambda: None, lambda _: None)
            await asyncio.sleep(0.05)
            assert not pending.done()  # the commit waits on the gate
            task = asyncio.ensure_future(_await(pending))
            await asyncio.sleep(0.05)
            assert not task.done()
            gate.set()
            await task
            return keys(ix.path)  # visible to another connection: committed

        assert asyncio.run(put()) == ["a"]
    finally:
        gate.set()
        ix.close()


async def _await(pending: PendingWrite[_T]) -> _T:
    return await pending


def test_a_failed_commit_fails_every_write_of_the_batch(tmp_path: Path) -> None:
    broken = threading.Event()

    def check() -> None:
        if broken.is_set():
            raise OSError("drive gone")

    ix = Index(tmp_path / "i.db", before_commit=check)
    try:
        ix.make_bucket(BucketRecord("b", 1, "me")).result(5)
        release = hold_committer(ix)
        writes = [ix.insert_object(record(k), lambda: None, lambda _: None) for k in "abc"]
        broken.set()
        release.set()
        for w in writes:
            with pytest.raises(OSError):
                w.result(5)
        assert keys(ix.path) == []
    finally:
        ix.close()


def test_many_waiters_on_one_loop_all_resume(index: Index) -> None:
    async def put_all() -> list[bool]:
        release = hold_committer(index)
        pendings = [
            index.insert_object(record(f"k{i}"), lambda: None, lambda _: None) for i in range(50)
        ]
        tasks = [asyncio.ensure_future(_await(p)) for p in pendings]
        await asyncio.sleep(0)
        release.set()
        return [bool(r) for r in await asyncio.gather(*tasks)]

    assert asyncio.run(put_all()) == [False] * 50
    assert len(keys(index.path)) == 50


def test_a_write_cancelled_before_its_batch_is_dropped(index: Index) -> None:
    async def cancel_one() -> None:
        release = hold_committer(index)
        pending = index.insert_object(record("a"), lambda: None, lambda _: None)
        task = asyncio.ensure_future(_await(pending))
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        release.set()
        index.insert_object(record("b"), lambda: None, lambda _: None).result(5)

    asyncio.run(cancel_one())
    assert keys(index.path) == ["b"]
