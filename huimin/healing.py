"""The healing service of a gateway process: the heal queue worker, periodic scans (and deeper
scrubs that re-verify every shard hash), and the operator endpoints ``/_huimin/heal/status``
(GET) and ``/_huimin/heal/start`` (POST, ``?deep=true`` to verify every shard)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiohttp import web

from gateway.app import AdminHandler
from storage.heal import Healer

log = logging.getLogger("huimin.heal")


class HealService:
    def __init__(self, healer: Healer, scan_interval_s: float, scrub_interval_s: float) -> None:
        self.healer = healer
        self.scan_interval_s = scan_interval_s
        self.scrub_interval_s = scrub_interval_s
        self._tasks: list[asyncio.Task[None]] = []
        self._scan: asyncio.Task[object] | None = None

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.healer.run_queue()),
            asyncio.create_task(self._periodic()),
        ]

    async def stop(self) -> None:
        for task in [*self._tasks, *([self._scan] if self._scan else [])]:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def _periodic(self) -> None:
        last_scrub = time.monotonic()
        while True:
            await asyncio.sleep(self.scan_interval_s)
            deep = time.monotonic() - last_scrub >= self.scrub_interval_s
            if deep:
                last_scrub = time.monotonic()
            try:
                await self.start_scan(deep)
                if self._scan is not None:
                    await self._scan
            except Exception:
                log.exception("periodic heal scan failed")

    async def start_scan(self, deep: bool) -> bool:
        """Start a scan in the background unless one runs; True when this call started it."""
        if self._scan is not None and not self._scan.done():
            return False
        self._scan = asyncio.create_task(self.healer.scan(deep))
        return True

    def routes(self) -> dict[str, AdminHandler]:
        async def status(request: web.Request) -> web.StreamResponse:
            return web.json_response(self.healer.status())

        async def start(request: web.Request) -> web.StreamResponse:
            if request.method != "POST":
                return web.json_response({"error": "use POST"}, status=405)
            started = await self.start_scan(request.query.get("deep", "") in ("1", "true"))
            return web.json_response({"started": started, **self.healer.status()}, status=202)

        return {"heal/status": status, "heal/start": start}
