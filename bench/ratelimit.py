"""Client-side link emulation: a token bucket per client and direction (the city's 10 Mbps and
100 Mbps client links), applied where the client sends a body and where it reads one.

``TokenBucket`` is pure arithmetic on a clock it is given; ``Throttle`` sleeps on the event loop.
Reads are throttled by reading in small slices and sleeping before each, so the socket's receive
buffer fills and TCP flow control slows the server down, as a slow link would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

MBPS = 10**6 / 8  # bytes per second in one megabit per second


@dataclass(slots=True)
class TokenBucket:
    """``rate_bytes_per_s`` sustained, at most ``burst_bytes`` ahead of it.

    ``take(n, now)`` books ``n`` bytes and returns how long to wait before sending them. Booking
    may drive the balance negative (a debt the next callers wait out), so a slice larger than the
    burst is still allowed, only delayed:

    >>> tb = TokenBucket(rate_bytes_per_s=1000, burst_bytes=500, tokens=500, updated_s=0.0)
    >>> tb.take(500, now_s=0.0)  # the burst is there: no wait
    0.0
    >>> tb.take(250, now_s=0.0)  # 250 bytes of debt at 1000 B/s
    0.25
    >>> tb.take(1000, now_s=1.0)  # 0.75 s later the debt is paid and 500 refilled (the cap)
    0.5
    """

    rate_bytes_per_s: float
    burst_bytes: float
    tokens: float
    updated_s: float

    @classmethod
    def full(cls, rate_bytes_per_s: float, burst_bytes: float, now_s: float) -> TokenBucket:
        if rate_bytes_per_s <= 0 or burst_bytes <= 0:
            raise ValueError("rate and burst must be positive")
        return cls(rate_bytes_per_s, burst_bytes, burst_bytes, now_s)

    def take(self, nbytes: int, now_s: float) -> float:
        elapsed = max(0.0, now_s - self.updated_s)
        self.tokens = min(self.burst_bytes, self.tokens + elapsed * self.rate_bytes_per_s)
        self.updated_s = max(self.updated_s, now_s)
        self.tokens -= nbytes
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate_bytes_per_s


def slice_bytes_for(rate_bytes_per_s: float) -> int:
    """The slice a throttled stream moves at a time: ~20 ms of the link, 4-256 KiB.

    >>> slice_bytes_for(10 * MBPS), slice_bytes_for(100 * MBPS), slice_bytes_for(10**9)
    (25000, 250000, 262144)
    """
    return int(min(256 * 1024, max(4096, rate_bytes_per_s * 0.02)))


class Throttle:
    """A token bucket on the running loop's clock: ``await throttle.wait(n)`` before moving n."""

    def __init__(self, rate_bytes_per_s: float, burst_s: float = 0.05) -> None:
        self.rate_bytes_per_s = rate_bytes_per_s
        self.slice_bytes = slice_bytes_for(rate_bytes_per_s)
        self._burst_bytes = max(self.slice_bytes, rate_bytes_per_s * burst_s)
        self._bucket: TokenBucket | None = None

    async def wait(self, nbytes: int) -> None:
        loop = asyncio.get_running_loop()
        if self._bucket is None:
            self._bucket = TokenBucket.full(self.rate_bytes_per_s, self._burst_bytes, loop.time())
        delay = self._bucket.take(nbytes, loop.time())
        if delay > 0:
            await asyncio.sleep(delay)

    async def paced(self, body: AsyncIterator[memoryview]) -> AsyncIterator[memoryview]:
        """``body`` re-sliced to the throttle's slice and released at its rate."""
        async for chunk in body:
            for start in range(0, len(chunk), self.slice_bytes):
                piece = chunk[start : start + self.slice_bytes]
                await self.wait(len(piece))
                yield piece
