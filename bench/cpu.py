"""CPU seconds of a process tree (the server under test) and of the benchmark itself.

``/proc/<pid>/stat`` utime+stime already sum all of a process's threads; cutime+cstime add the
children it has reaped. A tree is the root and every live descendant, so a gateway with node
processes (or codec worker processes) is charged in full. Resolution is one clock tick (10 ms).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
GB = 10**9


@dataclass(frozen=True, slots=True)
class CpuTimes:
    user_s: float
    system_s: float

    @property
    def total_s(self) -> float:
        return self.user_s + self.system_s

    def __add__(self, other: CpuTimes) -> CpuTimes:
        return CpuTimes(self.user_s + other.user_s, self.system_s + other.system_s)

    def __sub__(self, other: CpuTimes) -> CpuTimes:
        return CpuTimes(self.user_s - other.user_s, self.system_s - other.system_s)


ZERO = CpuTimes(0.0, 0.0)


def cpu_s_per_gb(cpu_s: float, object_bytes: int) -> float | None:
    """CPU seconds per GB (10^9 bytes) of object data; None when no data moved.

    >>> round(cpu_s_per_gb(3.2, 16 * 64 * 2**20), 2)  # 3.2 s for 16 x 64 MiB
    2.98
    """
    if object_bytes <= 0:
        return None
    return cpu_s * GB / object_bytes


@dataclass(frozen=True, slots=True)
class ProcStat:
    pid: int
    ppid: int
    cpu: CpuTimes  # own threads + reaped children


def parse_stat(text: str, clock_ticks_per_s: int) -> ProcStat:
    """One ``/proc/<pid>/stat`` line. The command name is in parentheses and may itself hold
    spaces and parentheses, so fields are counted from the last ``)``.

    >>> line = "42 (py (x)) S 1 42 42 0 -1 0 0 0 0 0 250 50 10 5 20 0 3"
    >>> parse_stat(line, 100)
    ProcStat(pid=42, ppid=1, cpu=CpuTimes(user_s=2.6, system_s=0.55))
    """
    head, _, tail = text.rpartition(")")
    pid = int(head.partition(" ")[0])
    fields = tail.split()  # fields[0] is field 3 (state) of proc(5)
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return ProcStat(
        pid=pid,
        ppid=int(fields[1]),
        cpu=CpuTimes((utime + cutime) / clock_ticks_per_s, (stime + cstime) / clock_ticks_per_s),
    )


def descendants(root: int, parents: dict[int, int]) -> list[int]:
    """``root`` and every pid below it, given pid -> parent pid.

    >>> descendants(10, {10: 1, 11: 10, 12: 11, 13: 1})
    [10, 11, 12]
    """
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    out = [root]
    i = 0
    while i < len(out):
        out.extend(sorted(children.get(out[i], [])))
        i += 1
    return out


def _read_all_stats(clock_ticks_per_s: int) -> dict[int, ProcStat]:
    stats: dict[int, ProcStat] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stats[int(entry.name)] = parse_stat((entry / "stat").read_text(), clock_ticks_per_s)
        except (OSError, ValueError, IndexError):
            continue  # exited while we looked
    return stats


def tree_cpu(root_pid: int) -> CpuTimes:
    """CPU time so far of ``root_pid`` and its live descendants (raises if root is gone)."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats = _read_all_stats(ticks)
    if root_pid not in stats:
        raise ProcessLookupError(f"no process {root_pid}")
    total = ZERO
    for pid in descendants(root_pid, {p: s.ppid for p, s in stats.items()}):
        if pid in stats:
            total = total + stats[pid].cpu
    return total


def self_cpu() -> CpuTimes:
    """CPU time so far of this (the benchmark client's) process, all threads."""
    t = os.times()
    return CpuTimes(t.user, t.system)


@dataclass(frozen=True, slots=True)
class ServerProcess:
    """One process of the server under test. ``kind`` groups the CPU breakdown: "gateway",
    "node", or "server" (embedded, or a pid given with --server-pid)."""

    name: str
    kind: str
    pid: int


def trees_cpu(roots: list[int]) -> dict[int, CpuTimes]:
    """CPU so far of each root's process tree, from one scan of /proc; a pid below two roots is
    charged to the first. Roots that are gone are left out.

    (A cluster's processes are detached, so their trees do not overlap; an embedded server's
    codec or worker children, if any, are charged to it.)
    """
    ticks = os.sysconf("SC_CLK_TCK")
    stats = _read_all_stats(ticks)
    parents = {p: s.ppid for p, s in stats.items()}
    seen: set[int] = set()
    out: dict[int, CpuTimes] = {}
    for root in roots:
        if root not in stats:
            continue
        total = ZERO
        for pid in descendants(root, parents):
            if pid in stats and pid not in seen:
                seen.add(pid)
                total = total + stats[pid].cpu
        out[root] = total
    return out


def parse_vmhwm(status_text: str) -> int | None:
    """Peak resident set size in bytes from ``/proc/<pid>/status``.

    >>> parse_vmhwm("Name:\\tpython\\nVmHWM:\\t  204800 kB\\nVmRSS:\\t 1024 kB\\n")
    209715200
    >>> parse_vmhwm("Name:\\tkthreadd\\n") is None
    True
    """
    for line in status_text.splitlines():
        if line.startswith("VmHWM:"):
            value, _, unit = line[6:].strip().partition(" ")
            return int(value) * (1024 if unit.strip().lower() == "kb" else 1)
    return None


def peak_rss_bytes(pid: int) -> int | None:
    """The process's peak RSS (VmHWM) since start or since the last ``reset_peak_rss``."""
    try:
        return parse_vmhwm((_PROC / str(pid) / "status").read_text())
    except OSError:
        return None


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (``echo 5 > /proc/<pid>/clear_refs``, Linux >= 4.0);
    False when not permitted (another user's process) or not supported."""
    try:
        (_PROC / str(pid) / "clear_refs").write_text("5")
    except OSError:
        return False
    return True
