"""Readiness from drive health: does every erasure set still have read and write quorum?

Pure functions over the set layout (drive names per set) and per-drive health, so the gateway's
``/_huimin/health/ready``, the set metrics and ``huimin cluster status`` can share one answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from storage.quorum import read_quorum, write_quorum


@dataclass(frozen=True, slots=True)
class SetHealth:
    index: int
    drives: int
    healthy: int
    read_quorum: int
    write_quorum: int

    @property
    def readable(self) -> bool:
        return self.healthy >= self.read_quorum

    @property
    def writable(self) -> bool:
        return self.healthy >= self.write_quorum


def set_health(
    layout: Sequence[Sequence[str]], healthy: Mapping[str, bool], k: int, m: int
) -> list[SetHealth]:
    """Per set: how many of its drives are healthy, against its quorums.

    A drive missing from ``healthy`` counts as not healthy (nobody vouched for it).

    >>> layout = [["d1", "d2", "d3", "d4"], ["d5", "d6", "d7", "d8"]]
    >>> ok = {d: True for s in layout for d in s} | {"d2": False, "d5": False, "d6": False}
    >>> [(s.healthy, s.readable, s.writable) for s in set_health(layout, ok, k=2, m=2)]
    [(3, True, True), (2, True, False)]
    """
    return [
        SetHealth(
            index=i,
            drives=len(drives),
            healthy=sum(1 for d in drives if healthy.get(d, False)),
            read_quorum=read_quorum(k, m),
            write_quorum=write_quorum(k, m),
        )
        for i, drives in enumerate(layout)
    ]


def is_ready(sets: Sequence[SetHealth]) -> bool:
    """Ready when every set can serve both reads and writes (and there is at least one set).

    >>> is_ready([SetHealth(0, 12, 8, 8, 8)]), is_ready([SetHealth(0, 12, 7, 8, 8)])
    (True, False)
    """
    return bool(sets) and all(s.readable and s.writable for s in sets)


def readiness_report(sets: Sequence[SetHealth]) -> dict[str, object]:
    """The JSON body of the readiness endpoint: counts only (no names, paths or addresses)."""
    return {
        "status": "ready" if is_ready(sets) else "unavailable",
        "sets": [
            {
                "set": s.index,
                "drives": s.drives,
                "healthy": s.healthy,
                "read_quorum": s.read_quorum,
                "write_quorum": s.write_quorum,
            }
            for s in sets
        ],
    }
