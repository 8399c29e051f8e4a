"""Placement of objects into erasure sets (storage/placement.py)."""

from __future__ import annotations

from collections import Counter

import pytest

from storage.placement import Placement, erasure_sets, place


def test_place_is_deterministic_per_deployment() -> None:
    a = place("dep-1", "bucket", "key", 4, 12)
    assert a == place("dep-1", "bucket", "key", 4, 12)
    others = {place(f"dep-{i}", "bucket", "key", 4, 12) for i in range(50)}
    assert len(others) > 10  # the deployment id keys the hash


def test_place_spreads_keys_over_sets_and_rotations() -> None:
    placements = [place("dep", "b", f"key-{i}", 4, 12) for i in range(4000)]
    sets = Counter(p.set_index for p in placements)
    offsets = Counter(p.offset for p in placements)
    assert set(sets) == {0, 1, 2, 3}
    assert min(sets.values()) > 800
    assert set(offsets) == set(range(12))


@pytest.mark.parametrize("offset", range(12))
def test_shard_drive_mapping_is_a_bijection(offset: int) -> None:
    p = Placement(set_index=0, offset=offset)
    drives = [p.drive_of_shard(s, 12) for s in range(12)]
    assert sorted(drives) == list(range(12))
    assert [p.shard_of_drive(d, 12) for d in drives] == list(range(12))


def test_erasure_sets() -> None:
    assert erasure_sets(list(range(24)), 12) == [list(range(12)), list(range(12, 24))]
    with pytest.raises(ValueError, match="cannot form"):
        erasure_sets(list(range(13)), 12)
