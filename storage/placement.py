"""Placement: which erasure set holds an object, and which drive of the set holds each shard.

Pure functions. An object maps to a set by a keyed hash of bucket/key (key = deployment id), and
shard i lives on drive ``(i + offset) % set_size`` of that set, so parity load spreads over drives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Placement:
    set_index: int
    offset: int

    def drive_of_shard(self, shard_index: int, set_size: int) -> int:
        """Position within the set of the drive holding ``shard_index``.

        >>> Placement(set_index=0, offset=5).drive_of_shard(9, 12)
        2
        """
        return (shard_index + self.offset) % set_size

    def shard_of_drive(self, position: int, set_size: int) -> int:
        """Inverse of ``drive_of_shard``.

        >>> Placement(set_index=0, offset=5).shard_of_drive(2, 12)
        9
        """
        return (position - self.offset) % set_size


def place(deployment_id: str, bucket: str, key: str, set_count: int, set_size: int) -> Placement:
    """Map bucket/key to (set, rotation) with a hash keyed by the deployment id.

    Deterministic for a deployment, unpredictable without its id (no hot-set attacks by key choice).
    """
    digest = hashlib.blake2b(
        f"{bucket}/{key}".encode(), key=deployment_id.encode()[:64], digest_size=16
    ).digest()
    return Placement(
        set_index=int.from_bytes(digest[:8], "big") % set_count,
        offset=int.from_bytes(digest[8:], "big") % set_size,
    )


def erasure_sets(drives: Sequence[_T], set_size: int) -> list[list[_T]]:
    """Split an ordered drive list into sets of ``set_size`` consecutive drives.

    The caller orders the list so consecutive drives sit on different nodes where that matters.

    >>> erasure_sets(list("abcdef"), 3)
    [['a', 'b', 'c'], ['d', 'e', 'f']]
    """
    if set_size <= 0 or len(drives) % set_size:
        raise ValueError(f"{len(drives)} drives cannot form sets of {set_size}")
    return [list(drives[i : i + set_size]) for i in range(0, len(drives), set_size)]
