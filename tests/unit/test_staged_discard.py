"""After a commit, only the positions that did not commit are asked to remove a staged shard:
a drive that committed renamed its shard into place, and asking it anyway cost a request per
shard of every large PUT (a DELETE to each node)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

from erasure.layout import Layout
from storage.drive import ShardWriter
from storage.sets import ObjectSet
from storage.streams import ShardWriters, StagedShards


class _Writer:
    def __init__(self, aborted: list[int], position: int) -> None:
        self._aborted = aborted
        self._position = position

    async def write(self, pieces: Sequence[bytes | memoryview]) -> None:
        raise AssertionError("not written in this test")

    async def finish(self) -> None:
        raise AssertionError("not finished in this test")

    async def abort(self) -> None:
        self._aborted.append(self._position)


def _staged(aborted: list[int], live: Sequence[bool]) -> StagedShards:
    writers = ShardWriters(cast(ObjectSet, None), Layout("isal", 4, 2), quorum=5)
    writers.writers = [
        cast(ShardWriter, _Writer(aborted, p)) if up else None for p, up in enumerate(live)
    ]
    return StagedShards("d" * 32, 10, list(live), inline=None, writers=writers)


def test_committed_positions_are_not_asked_to_discard() -> None:
    aborted: list[int] = []
    staged = _staged(aborted, [True, True, False, True, True, True])
    committed = [True, False, False, True, False, True]
    asyncio.run(staged.discard(committed))
    assert sorted(aborted) == [1, 4]  # live and not committed; position 2 had no writer
    assert staged.writers is not None and staged.writers.writers == [None] * 6


def test_a_failed_write_discards_every_live_shard() -> None:
    aborted: list[int] = []
    staged = _staged(aborted, [True] * 6)
    asyncio.run(staged.discard())
    assert sorted(aborted) == list(range(6))
    asyncio.run(staged.discard())  # nothing live any more: nothing asked twice
    assert sorted(aborted) == list(range(6))
