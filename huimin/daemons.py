"""Detached local processes: start one that outlives its starter, tell whether it still runs
(pid reuse and zombies included), signal its process group, stop a few at once.

Linux-first: liveness and identity come from /proc (start time), with ``kill(pid, 0)`` elsewhere.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

LOG_TAIL_LINES = 25


@dataclass
class Daemon:
    """A detached process: its pid, and the start time that tells it from a reuse of the pid."""

    name: str
    pid: int
    start_time: int | None  # clock ticks since boot, from /proc; None where unknown

    def alive(self) -> bool:
        return process_alive(self.pid, self.start_time)


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) from /proc, or None if there is no such pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces
    return fields[0], int(fields[19])


def process_start_time(pid: int) -> int | None:
    stat = _proc_stat(pid) if Path("/proc/self/stat").exists() else None
    return stat[1] if stat else None


def process_alive(pid: int, start_time: int | None) -> bool:
    """True if ``pid`` runs and is the process started at ``start_time`` (zombies are dead)."""
    if Path("/proc/self/stat").exists():
        stat = _proc_stat(pid)
        if stat is None or stat[0] in ("Z", "X"):
            return False
        return start_time is None or stat[1] == start_time
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# A tiny launcher so the started process is not our child: it is spawned in its own session by a
# short-lived intermediate that exits at once, and is re-parented to init (no zombies to reap in
# long-lived callers such as a test run).
_LAUNCHER = """\
import os, sys
null = os.open(os.devnull, os.O_RDONLY)
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ, setsid=True,
                     file_actions=[(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, 2, 1)])
print(pid)
"""


def spawn_detached(
    argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
) -> tuple[int, int | None]:
    """Start ``argv`` detached with stdout+stderr appended to ``log_path``: (pid, start time).

    The child gets the caller's environment minus HUIMIN_* settings (its config file is the
    whole truth: a stray HUIMIN_LISTEN in the caller's shell must not override it), plus
    ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HUIMIN_")}
    clean.update(env or {})
    with log_path.open("ab") as log:
        done = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            env=clean,
            check=False,
            timeout=30,
        )
    if done.returncode != 0:
        raise ChildProcessError(f"could not start {argv}:\n{tail(log_path)}")
    pid = int(done.stdout)
    return pid, process_start_time(pid)


def send_signal(proc: Daemon, sig: int) -> bool:
    """Signal the process group of ``proc`` (the process and anything it started)."""
    if not proc.alive():
        return False
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop(procs: Sequence[Daemon], timeout_s: float = 10) -> None:
    """SIGTERM, wait up to ``timeout_s``, then SIGKILL what is left and wait for it to go."""
    for p in procs:
        if send_signal(p, signal.SIGTERM):
            send_signal(p, signal.SIGCONT)  # a stopped (SIGSTOP) process handles SIGTERM now
    deadline = time.monotonic() + timeout_s
    while any(p.alive() for p in procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    for p in procs:
        send_signal(p, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(p.alive() for p in procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [p.name for p in procs if p.alive()]
    if left:
        raise ChildProcessError(f"processes did not stop after SIGKILL: {left}")


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
