"""Probing the drives of the erasure sets: capacity, reachability and per-set quorum.

``DriveMonitor.check`` asks every drive for ``info`` (concurrently, with a deadline), records
capacity and health through the drives' metrics, updates the per-set gauges and returns the
sets' health (``storage.health``). It runs when the metrics or readiness endpoint is requested,
at most once per ``max_age_s``: an idle process does no IO for monitoring. A scrape waits for
the probe only briefly (``refresh``); readiness waits for its answer (``check``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from storage.drive import Drive
from storage.health import SetHealth, set_health
from storage.metered_drive import MeteredDrive
from storage.metrics import StorageMetrics


class DriveMonitor:
    def __init__(
        self,
        sets: Sequence[Sequence[Drive]],
        k: int,
        m: int,
        metrics: StorageMetrics,
        probe_timeout_s: float = 2.0,
        max_age_s: float = 1.0,
        refresh_budget_s: float = 0.5,
    ) -> None:
        self.sets = [list(s) for s in sets]
        self.k = k
        self.m = m
        self.metrics = metrics
        self.probe_timeout_s = probe_timeout_s
        self.max_age_s = max_age_s
        self.refresh_budget_s = refresh_budget_s
        self._last: tuple[float, list[SetHealth]] | None = None
        self._running: asyncio.Task[list[SetHealth]] | None = None

    async def check(self) -> list[SetHealth]:
        """The sets' health, probed now unless a probe finished less than max_age_s ago."""
        if self._last is not None and time.monotonic() - self._last[0] < self.max_age_s:
            return self._last[1]
        if self._running is None:
            self._running = asyncio.create_task(self._probe())
            self._running.add_done_callback(self._probed)
        # Callers share one probe; shield it so one caller going away does not cancel it.
        return await asyncio.shield(self._running)

    async def refresh(self) -> None:
        """Update the gauges before a scrape, waiting at most refresh_budget_s: a scrape must
        stay fast while a drive hangs (the probe finishes in the background, marking it)."""
        try:
            async with asyncio.timeout(self.refresh_budget_s):
                await self.check()
        except TimeoutError:
            pass

    def _probed(self, task: asyncio.Task[list[SetHealth]]) -> None:
        self._running = None
        if not task.cancelled() and task.exception() is None:
            self._last = (time.monotonic(), task.result())

    async def _probe_one(self, drive: Drive) -> bool:
        try:
            async with asyncio.timeout(self.probe_timeout_s):
                await drive.info()  # a MeteredDrive records capacity and health itself
        except Exception:
            if isinstance(drive, MeteredDrive):
                drive.drive_metrics.record_unreachable()
            return False
        if isinstance(drive, MeteredDrive):
            return drive.drive_metrics.healthy  # also failing after repeated IO errors
        return True

    async def _probe(self) -> list[SetHealth]:
        drives = [d for s in self.sets for d in s]
        answered = await asyncio.gather(*(self._probe_one(d) for d in drives))
        healthy = {d.name: ok for d, ok in zip(drives, answered, strict=True)}
        layout = [[d.name for d in s] for s in self.sets]
        sets = set_health(layout, healthy, self.k, self.m)
        m = self.metrics
        for s in sets:
            label = str(s.index)
            m.set_drives.labels(label).set(s.drives)
            m.set_healthy.labels(label).set(s.healthy)
            m.set_read_quorum.labels(label).set(s.read_quorum)
            m.set_write_quorum.labels(label).set(s.write_quorum)
        return sets
