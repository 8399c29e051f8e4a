"""Quorum rules and the reduction of per-drive answers (storage/quorum.py)."""

from __future__ import annotations

import pytest

from storage.drive import ListRow
from storage.errors import BucketNotFound, DriveError, ObjectNotFound, QuorumNotReached
from storage.quorum import pick_readable, read_quorum, reduce_write, write_quorum

OLD = ListRow("k", "v1", 1, 10, "e1")
NEW = ListRow("k", "v2", 2, 20, "e2")


@pytest.mark.parametrize(
    ("k", "m", "wq", "rq"),
    [(8, 4, 8, 8), (4, 2, 4, 4), (2, 2, 3, 2), (1, 1, 2, 1), (10, 4, 10, 10)],
)
def test_quorum_sizes(k: int, m: int, wq: int, rq: int) -> None:
    assert (write_quorum(k, m), read_quorum(k, m)) == (wq, rq)


def test_reduce_write_succeeds_at_quorum() -> None:
    reduce_write([None] * 8 + [DriveError("x")] * 4, 8)


def test_reduce_write_fails_below_quorum() -> None:
    with pytest.raises(QuorumNotReached):
        reduce_write([None] * 7 + [DriveError("x")] * 5, 8)


def test_reduce_write_reports_the_domain_error_that_explains_it() -> None:
    with pytest.raises(BucketNotFound):
        reduce_write([BucketNotFound("b")] * 11 + [DriveError("x")], 8)


# pick_readable: per drive, its versions newest first; None = the drive did not answer.
@pytest.mark.parametrize(
    ("per_drive", "k", "expected"),
    [
        # every drive has both versions: the newest wins
        ([[NEW, OLD]] * 12, 8, "v2"),
        # the new version reached only 3 drives (a failed write): the old one is served
        ([[NEW, OLD]] * 3 + [[OLD]] * 9, 8, "v1"),
        # 4 drives down, the rest agree on the new version
        ([None] * 4 + [[NEW]] * 8, 8, "v2"),
        # the new version on exactly k drives
        ([[NEW]] * 8 + [[OLD]] * 4, 8, "v2"),
    ],
)
def test_pick_readable(per_drive: list[list[ListRow] | None], k: int, expected: str) -> None:
    agreement = pick_readable(per_drive, k)
    assert agreement.version.version_id == expected
    holders = sum(1 for c in agreement.copies if c is not None)
    assert holders >= k


@pytest.mark.parametrize(
    ("per_drive", "k", "error"),
    [
        # nobody has it and enough drives answered to be sure
        ([[]] * 12, 8, ObjectNotFound),
        ([None] * 4 + [[]] * 8, 8, ObjectNotFound),
        # a version on 3 drives (a failed write) and no older one: not found
        ([[NEW]] * 3 + [[]] * 9, 8, ObjectNotFound),
        # too many drives silent: the object may exist on them
        ([None] * 8 + [[]] * 4, 8, QuorumNotReached),
        # the newest version could still reach k with the silent drives: undecidable
        ([[NEW, OLD]] * 6 + [None] * 2 + [[OLD]] * 4, 8, QuorumNotReached),
    ],
)
def test_pick_readable_errors(
    per_drive: list[list[ListRow] | None], k: int, error: type[Exception]
) -> None:
    with pytest.raises(error):
        pick_readable(per_drive, k)
