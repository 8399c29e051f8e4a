"""The erasure sets of a deployment: drives grouped k+m, plus the EC parameters new writes use."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from storage.drive import Drive
from storage.placement import Placement, erasure_sets, place

_T = TypeVar("_T")


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

    def shard_of(self, position: int) -> int:
        return self.placement.shard_of_drive(position, len(self.drives))


class ErasureSets:
    def __init__(self, deployment_id: str, drives: Sequence[Drive], params: ECParams) -> None:
        self.deployment_id = deployment_id
        self.params = params
        self.sets = erasure_sets(drives, params.k + params.m)
        self.drives = list(drives)

    def for_object(self, bucket: str, key: str) -> ObjectSet:
        placement = place(self.deployment_id, bucket, key, len(self.sets), len(self.sets[0]))
        return ObjectSet(drives=tuple(self.sets[placement.set_index]), placement=placement)


def new_id() -> str:
    """A random id for versions, uploads and shard data (128 bits, hex)."""
    return uuid.uuid4().hex


async def each(
    drives: Sequence[Drive], call: Callable[[Drive], Awaitable[_T]]
) -> list[_T | BaseException]:
    """Run ``call`` on every drive concurrently; failures come back as exception values."""
    results = await asyncio.gather(*(call(d) for d in drives), return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException) and not isinstance(r, Exception):
            raise r  # cancellation, KeyboardInterrupt: never swallowed
    return results


def outcomes(results: Sequence[object]) -> list[BaseException | None]:
    return [r if isinstance(r, BaseException) else None for r in results]
