"""The erasure sets of a deployment: drives grouped k+m, plus the EC parameters new writes use."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from storage.drive import Drive, DriveInfo
from storage.placement import Placement, erasure_sets, place

_T = TypeVar("_T")
_D = TypeVar("_D")  # a drive, or whatever names one (its position)


@dataclass(frozen=True, slots=True)
class ECParams:
    codec: str
    k: int
    m: int
    block_size: int
    inline_threshold: int  # objects up to this size keep their shards in the index rows


@dataclass(frozen=True, slots=True)
class ObjectSet:
    """The drives of the set holding one object, in set order, and its shard rotation."""

    drives: tuple[Drive, ...]
    placement: Placement
    pool: int = 0

    def shard_of(self, position: int) -> int:
        return self.placement.shard_of_drive(position, len(self.drives))

    def positions_of(self, shards: range) -> list[int]:
        """The positions of the drives holding ``shards``, in shard order.

        >>> ObjectSet(drives=(None,) * 6, placement=Placement(0, 4)).positions_of(range(3))
        [4, 5, 0]
        """
        return [self.placement.drive_of_shard(s, len(self.drives)) for s in shards]


class ErasureSets:
    """Drives grouped into erasure sets, and sets into pools.

    Capacity grows by adding a pool: existing objects stay where they are (placement hashes
    within a pool's own sets, so a new pool moves nothing), new objects go to the pool with the
    most free space, and an existing key is overwritten in the pool that holds it.
    """

    FREE_SPACE_CACHE_S = 30.0

    def __init__(
        self,
        deployment_id: str,
        drives: Sequence[Drive],
        params: ECParams,
        pool_sizes: Sequence[int] | None = None,
    ) -> None:
        self.deployment_id = deployment_id
        self.params = params
        self.drives = list(drives)
        sizes = list(pool_sizes or [len(drives)])
        if sum(sizes) != len(drives):
            raise ValueError(f"pools of {sizes} drives do not add up to {len(drives)} drives")
        self.pools: list[list[list[Drive]]] = []
        start = 0
        for size in sizes:
            self.pools.append(erasure_sets(self.drives[start : start + size], params.k + params.m))
            start += size
        self.sets = [s for pool in self.pools for s in pool]
        self._free: tuple[float, int] | None = None  # (when, emptiest pool)

    def for_object(self, bucket: str, key: str, pool: int = 0) -> ObjectSet:
        sets = self.pools[pool]
        placement = place(self.deployment_id, bucket, key, len(sets), len(sets[0]))
        return ObjectSet(drives=tuple(sets[placement.set_index]), placement=placement, pool=pool)

    def all_for_object(self, bucket: str, key: str) -> list[ObjectSet]:
        """The set that would hold ``bucket/key`` in each pool."""
        return [self.for_object(bucket, key, pool) for pool in range(len(self.pools))]

    async def emptiest_pool(self) -> int:
        """The pool with the most free bytes (refreshed every FREE_SPACE_CACHE_S)."""
        if len(self.pools) == 1:
            return 0
        now = time.monotonic()
        if self._free is not None and now - self._free[0] < self.FREE_SPACE_CACHE_S:
            return self._free[1]
        free = []
        for pool in self.pools:
            drives = [d for s in pool for d in s]
            infos = await each(drives, lambda d: d.info())
            free.append(sum(i.free_bytes for i in infos if isinstance(i, DriveInfo)))
        best = max(range(len(free)), key=free.__getitem__)
        self._free = (now, best)
        return best


def new_id() -> str:
    """A random id for versions, uploads and shard data (128 bits, hex)."""
    return uuid.uuid4().hex


async def each(
    items: Iterable[_D], call: Callable[[_D], Awaitable[_T]]
) -> list[_T | BaseException]:
    """Run ``call`` on every item (drive) concurrently; failures come back as exception values.

    A call returning a future (a remote drive's) is awaited as it is, a coroutine runs in a
    task of its own (``ensure_future``). Awaited in order (cheaper than ``gather``: no
    gathering future, no done-callback per call); whatever is left is cancelled if this is.
    """
    calls: list[asyncio.Future[_T]] = []
    for item in items:
        try:
            aw = call(item)
            # The common case checked first: ensure_future costs three calls to find it out.
            calls.append(aw if isinstance(aw, asyncio.Future) else asyncio.ensure_future(aw))
        except Exception as exc:  # raised before it could return an awaitable
            failed: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
            failed.set_exception(exc)
            calls.append(failed)
    results: list[_T | BaseException] = []
    try:
        for future in calls:
            try:
                results.append(await future)
            except Exception as exc:
                results.append(exc)
    finally:
        for future in calls[len(results) :]:
            if not future.done():
                future.cancel()
            elif not future.cancelled():
                future.exception()  # retrieved: no "never retrieved" warning later
    return results


def outcomes(results: Sequence[object]) -> list[BaseException | None]:
    return [r if isinstance(r, BaseException) else None for r in results]
