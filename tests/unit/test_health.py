"""Readiness as a pure function of the set layout and per-drive health."""

from __future__ import annotations

import pytest

from storage.health import SetHealth, is_ready, readiness_report, set_health

TWELVE = [f"drive-{i:02d}" for i in range(1, 13)]


def healthy_except(*failing: str, drives: list[str] = TWELVE) -> dict[str, bool]:
    return {d: d not in failing for d in drives}


@pytest.mark.parametrize(
    ("k", "m", "failing", "readable", "writable"),
    [
        (8, 4, (), True, True),
        (8, 4, TWELVE[:1], True, True),
        (8, 4, TWELVE[:4], True, True),  # m drives down: still 8 = k = write quorum
        (8, 4, TWELVE[:5], False, False),
        (6, 6, TWELVE[:5], True, True),  # k == m: write quorum k + 1 = 7
        (6, 6, TWELVE[:6], True, False),  # 6 left: readable (k), not writable (k + 1)
        (6, 6, TWELVE[:7], False, False),
    ],
)
def test_one_set(k: int, m: int, failing: tuple[str, ...], readable: bool, writable: bool):
    (s,) = set_health([TWELVE], healthy_except(*failing), k, m)
    assert (s.drives, s.healthy) == (12, 12 - len(failing))
    assert (s.readable, s.writable) == (readable, writable)
    assert is_ready([s]) == (readable and writable)


def test_every_set_must_have_quorum():
    layout = [TWELVE[:6], TWELVE[6:]]  # two sets of 4+2
    health = set_health(layout, healthy_except("drive-07", "drive-08", "drive-09"), 4, 2)
    assert [(s.index, s.healthy, s.writable) for s in health] == [(0, 6, True), (1, 3, False)]
    assert not is_ready(health)
    assert is_ready(set_health(layout, healthy_except("drive-01", "drive-07"), 4, 2))


def test_a_drive_nobody_reported_on_is_not_healthy():
    (s,) = set_health([["a", "b", "c"]], {"a": True, "b": True}, 2, 1)
    assert s.healthy == 2
    assert s.writable


def test_no_sets_is_not_ready():
    assert not is_ready([])


def test_report_counts_only():
    report = readiness_report([SetHealth(0, 12, 7, 8, 8)])
    assert report == {
        "status": "unavailable",
        "sets": [{"set": 0, "drives": 12, "healthy": 7, "read_quorum": 8, "write_quorum": 8}],
    }
