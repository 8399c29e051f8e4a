"""Quorum rules and the reduction of per-drive outcomes. Pure functions.

Every object version is written to the k+m drives of its set; a write succeeds when at least
``write_quorum`` drives committed it. A version is readable when at least k drives hold it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from storage.errors import ObjectNotFound, QuorumNotReached, StorageError


def write_quorum(k: int, m: int) -> int:
    """Drives that must commit a write: k, or k+1 when k == m (so two halves cannot both win).

    >>> write_quorum(8, 4), write_quorum(2, 2)
    (8, 3)
    """
    return k + 1 if k == m else k


def read_quorum(k: int, m: int) -> int:
    """Drives that must agree on a version to read it: k (any k shards rebuild the data)."""
    return k


def reduce_write(outcomes: Sequence[BaseException | None], quorum: int) -> None:
    """Raise unless at least ``quorum`` outcomes succeeded (None = success).

    When the write failed and a domain error (e.g. BucketNotFound) explains at least a quorum
    of the failures, that error is raised; otherwise QuorumNotReached. Like MinIO's
    reduceQuorumErrs.
    """
    successes = sum(1 for o in outcomes if o is None)
    if successes >= quorum:
        return
    errors = [o for o in outcomes if o is not None]
    by_kind = Counter(type(e) for e in errors if _is_domain(e))
    if by_kind:
        kind, count = by_kind.most_common(1)[0]
        if count >= quorum or count + successes >= len(outcomes) - successes:
            raise next(e for e in errors if type(e) is kind)
    raise QuorumNotReached(f"{successes} of {len(outcomes)} drives succeeded, {quorum} needed")


def _is_domain(error: BaseException) -> bool:
    from storage.errors import DriveError

    return isinstance(error, StorageError) and not isinstance(error, DriveError)


class Versioned(Protocol):
    @property
    def version_id(self) -> str: ...

    @property
    def order(self) -> tuple[int, str]: ...


V = TypeVar("V", bound=Versioned)


@dataclass(frozen=True, slots=True)
class Agreement(Generic[V]):
    """The readable version and, per drive position, that drive's copy (None: absent or failed)."""

    version: V
    copies: tuple[V | None, ...]


def reads_from_k(k: int, m: int) -> bool:
    """Whether k drives that agree decide a read: when k > m, any version held by >= k
    drives (every readable one, and every acknowledged write or delete: write quorum >= k)
    is held by at least one of any k drives (k + k > k + m).

    >>> reads_from_k(8, 4), reads_from_k(4, 4), reads_from_k(2, 4)
    (True, False, False)
    """
    return k > m


def unanimous(per_drive: Sequence[Sequence[V] | None]) -> V | None:
    """The version that every drive answered with as its newest; None when one did not answer,
    holds nothing or holds another newest version (then ask every drive: ``pick_readable``).

    >>> from storage.drive import ListRow
    >>> old, new = ListRow("a", "v1", 1, 0, ""), ListRow("a", "v2", 2, 0, "")
    >>> unanimous([[new, old], [new]]).version_id, unanimous([[new, old], [old]])
    ('v2', None)
    """
    newest: V | None = None
    for versions in per_drive:
        if not versions:
            return None
        if newest is None:
            newest = versions[0]
        elif versions[0].version_id != newest.version_id:
            return None
    return newest


def pick_readable(per_drive: Sequence[Sequence[V] | None], k: int) -> Agreement[V]:
    """Choose the newest version that at least k drives hold.

    ``per_drive[i]`` is drive i's versions of one key, or None when the drive did not answer.
    A newer version held by fewer than k drives is a failed or interrupted write and is
    skipped, unless the drives that did not answer could complete it to k: then the answer is
    unknown and QuorumNotReached is raised instead of serving an older version.

    >>> from storage.drive import ListRow
    >>> old, new = ListRow("a", "v1", 1, 0, ""), ListRow("a", "v2", 2, 0, "")
    >>> pick_readable([[new, old], [old], [new, old]], k=2).version.version_id
    'v2'
    >>> pick_readable([[new, old], [old], [old]], k=2).version.version_id
    'v1'
    """
    missing = sum(1 for d in per_drive if d is None)
    counts: Counter[str] = Counter()
    newest: dict[str, V] = {}
    for versions in per_drive:
        for v in versions or ():
            counts[v.version_id] += 1
            newest.setdefault(v.version_id, v)
    for v in sorted(newest.values(), key=lambda v: v.order, reverse=True):
        held = counts[v.version_id]
        if held >= k:
            copies = tuple(
                next((x for x in d if x.version_id == v.version_id), None) if d else None
                for d in per_drive
            )
            return Agreement(version=v, copies=copies)
        if held + missing >= k:
            raise QuorumNotReached(f"version held by {held} drives, {missing} did not answer")
    if missing >= k:
        raise QuorumNotReached(f"{missing} drives did not answer")
    raise ObjectNotFound()
