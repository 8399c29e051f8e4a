"""Per-set listing merge (storage/listing.py): the same readability rule as reads."""

from __future__ import annotations

from storage.drive import ListRow
from storage.listing import common_prefix, merge_set_rows


def row(key: str, version: str = "v1", t: int = 1) -> ListRow:
    return ListRow(key, version, t, 1, "e")


def test_keys_on_k_drives_are_listed_others_not() -> None:
    full = [row("a"), row("b")]
    partial = [row("a"), row("b"), row("c")]  # "c" reached only 2 drives
    per_drive: list[list[ListRow] | None] = [partial, partial, *([full] * 10)]
    assert [r.key for r in merge_set_rows(per_drive, 8, None)] == ["a", "b"]


def test_newest_readable_version_wins() -> None:
    both = [row("a", "v2", 2), row("a", "v1", 1)]
    per_drive: list[list[ListRow] | None] = [both] * 12
    assert merge_set_rows(per_drive, 8, None)[0].version_id == "v2"


def test_failed_drives_do_not_hide_keys() -> None:
    per_drive: list[list[ListRow] | None] = [None] * 4 + [[row("a")]] * 8
    assert [r.key for r in merge_set_rows(per_drive, 8, None)] == ["a"]


def test_horizon_limits_to_keys_known_everywhere() -> None:
    per_drive: list[list[ListRow] | None] = [[row("a"), row("b"), row("c")]] * 12
    assert [r.key for r in merge_set_rows(per_drive, 8, "b")] == ["a", "b"]


def test_common_prefix() -> None:
    assert common_prefix("a/b/c", "", "/") == "a/"
    assert common_prefix("a/b/c", "a/", "/") == "a/b/"
    assert common_prefix("a/b", "a/", "/") is None
    assert common_prefix("a/b", "", "") is None
    assert common_prefix("x--y--z", "x", "--") == "x--"
