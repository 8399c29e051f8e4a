"""A progress bar on stderr, no dependency: redrawn in place on a terminal, a line per quarter
otherwise (CI logs), silent when disabled. Counts requests or seconds, whichever a workload has.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_WIDTH = 30
_REDRAW_S = 0.2


def bar(done: float, total: float, width: int = _WIDTH) -> str:
    """
    >>> bar(3, 12, 8)
    '[##......]  25%'
    >>> bar(20, 10, 4)  # clamped
    '[####] 100%'
    """
    fraction = 0.0 if total <= 0 else min(1.0, max(0.0, done / total))
    filled = int(fraction * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:3.0f}%"


class Progress:
    """``progress.start("PUT 64 MiB", 16)``, ``progress.advance()`` per request, ``finish()``."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._enabled = enabled
        self._tty = enabled and self._stream.isatty()
        self._label = ""
        self._total = 0.0
        self._done = 0.0
        self._unit = ""
        self._drawn_s = 0.0
        self._quarter = 0

    def start(self, label: str, total: float, unit: str = "") -> None:
        self._label, self._total, self._done, self._unit = label, total, 0.0, unit
        self._drawn_s = 0.0
        self._quarter = 0
        self._draw(force=True)

    def advance(self, amount: float = 1) -> None:
        self._done += amount
        self._draw()

    def set(self, done: float) -> None:
        self._done = done
        self._draw()

    def finish(self) -> None:
        if not self._enabled or not self._label:
            return
        self._done = max(self._done, self._total)
        self._draw(force=True)
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()
        self._label = ""

    def _draw(self, force: bool = False) -> None:
        if not self._enabled or not self._label:
            return
        count = f"{self._done:.0f}/{self._total:.0f}{self._unit}"
        if self._tty:
            now = time.monotonic()
            if not force and now - self._drawn_s < _REDRAW_S:
                return
            self._drawn_s = now
            line = f"\r  {self._label} {bar(self._done, self._total)} {count}"
            self._stream.write(line.ljust(79))
            self._stream.flush()
            return
        quarter = 0 if self._total <= 0 else int(4 * min(1.0, self._done / self._total))
        if (force and self._done == 0) or quarter > self._quarter:
            self._quarter = quarter
            self._stream.write(f"  {self._label} {bar(self._done, self._total)} {count}\n")
            self._stream.flush()
