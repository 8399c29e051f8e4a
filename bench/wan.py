"""WAN profile: many clients behind slow links (the city's 10 Mbps and 100 Mbps client links),
each rate-limited in the client by a token bucket on upload and on download.

Every client has its own connection (small socket receive buffer, so a slow reader's TCP window
closes and the server feels it) and alternates PUT and GET of its own object for the duration.
An object is about ``object_link_s`` seconds of its client's link, so per-request overhead does
not masquerade as starvation. Reported: each client's MB/s and its share of its cap, Jain's
fairness index over those shares, and whether the fast clients reach their cap while the slow
ones are busy (not starved).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench.client import Credentials, S3Client
from bench.progress import Progress
from bench.ratelimit import MBPS, Throttle
from bench.results import MB, OpOutcome, WorkloadResult, jain_fairness, summarize
from bench.workloads import CheckFailed, Meter, Payload

FAST_CAP_SHARE = 0.8  # the suite's "not starved" bar: a fast client gets >= 80% of its link
_RECV_BUFFER_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class LinkClass:
    label: str  # "slow" | "fast"
    clients: int
    mbps: float


@dataclass(frozen=True, slots=True)
class WanSpec:
    slow: LinkClass = LinkClass("slow", 20, 10)
    fast: LinkClass = LinkClass("fast", 4, 100)
    duration_s: float = 60.0
    object_link_s: float = 2.0

    def object_size(self, link: LinkClass) -> int:
        """``object_link_s`` of the link, whole 64 KiB, at least 64 KiB.

        >>> WanSpec().object_size(LinkClass("slow", 1, 10)), WanSpec().object_size(
        ...     LinkClass("fast", 1, 100))
        (2490368, 24969216)
        """
        unit = 64 * 1024
        return max(unit, int(link.mbps * MBPS * self.object_link_s) // unit * unit)


@dataclass(frozen=True, slots=True)
class ClientOutcome:
    name: str  # "slow-03"
    cap_mb_s: float
    moved_bytes: int
    elapsed_s: float

    @property
    def mb_s(self) -> float:
        return self.moved_bytes / MB / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def share_of_cap(self) -> float:
        return self.mb_s / self.cap_mb_s


def wan_figures(clients: Sequence[ClientOutcome]) -> dict[str, float | None]:
    """Fairness and starvation figures, plus each client's MB/s (keys ``c:<name>``).

    >>> cs = [ClientOutcome("slow-01", 1.25, 12_500_000, 10.0),
    ...       ClientOutcome("slow-02", 1.25, 6_250_000, 10.0),
    ...       ClientOutcome("fast-01", 12.5, 100_000_000, 10.0)]
    >>> f = wan_figures(cs)
    >>> f["fast_min_share_of_cap"], f["slow_mean_share_of_cap"], round(f["jain_share_of_cap"], 3)
    (0.8, 0.75, 0.933)
    >>> f["c:slow-02"]
    0.625
    """
    out: dict[str, float | None] = {}
    for label in ("slow", "fast"):
        group = [c for c in clients if c.name.startswith(label)]
        shares = [c.share_of_cap for c in group]
        out[f"{label}_clients"] = float(len(group))
        out[f"{label}_mean_mb_s"] = sum(c.mb_s for c in group) / len(group) if group else None
        out[f"{label}_mean_share_of_cap"] = sum(shares) / len(shares) if shares else None
        out[f"{label}_min_share_of_cap"] = min(shares) if shares else None
        out[f"jain_{label}"] = jain_fairness([c.mb_s for c in group])
    out["jain_share_of_cap"] = jain_fairness([c.share_of_cap for c in clients])
    fast_min = out["fast_min_share_of_cap"]
    out["fast_not_starved"] = None if fast_min is None else float(fast_min >= FAST_CAP_SHARE)
    for c in clients:
        out[f"c:{c.name}"] = c.mb_s
    return out


async def _client_loop(
    endpoint: str | Sequence[str],
    credentials: Credentials,
    bucket: str,
    name: str,
    link: LinkClass,
    payload: Payload,
    deadline: float,
    outcomes: list[OpOutcome],
) -> ClientOutcome:
    up, down = Throttle(link.mbps * MBPS), Throttle(link.mbps * MBPS)
    key = f"wan/{name}"
    size = len(payload.data)
    moved = 0
    started = time.perf_counter()
    async with S3Client(
        endpoint,
        credentials,
        1,
        read_bufsize_bytes=_RECV_BUFFER_BYTES,
        recv_buffer_bytes=_RECV_BUFFER_BYTES,
        sock_read_timeout_s=600,
    ) as client:
        written = False
        while time.perf_counter() < deadline:
            op_started = time.perf_counter()
            try:
                if written:
                    got = await client.get_object(bucket, key, throttle=down)
                    if got.received_bytes != size:
                        raise CheckFailed(f"{key}: {got.received_bytes} bytes, expected {size}")
                else:
                    put = await client.put_object(bucket, key, payload.data, throttle=up)
                    if put.etag != payload.md5_hex:
                        raise CheckFailed(f"{key}: ETag {put.etag!r}")
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"[:300]
                outcomes.append(OpOutcome(time.perf_counter() - op_started, 0, error))
                await asyncio.sleep(0.5)  # a failing server is not hammered by the loop
                continue
            outcomes.append(OpOutcome(time.perf_counter() - op_started, size))
            moved += size
            written = not written
        with_delete = time.perf_counter()
        # Best effort: the bucket's clean-up reports leftovers.
        with contextlib.suppress(Exception):
            await client.delete_object(bucket, key)
        elapsed = with_delete - started
    return ClientOutcome(name, link.mbps * MBPS / MB, moved, elapsed)


async def measure_wan(
    endpoint: str | Sequence[str],
    credentials: Credentials,
    bucket: str,
    spec: WanSpec,
    payloads: dict[int, Payload],
    meter: Meter,
    progress: Progress,
) -> WorkloadResult:
    """Run every client for ``spec.duration_s``; one result (all clients' requests)."""
    links = [spec.slow] * spec.slow.clients + [spec.fast] * spec.fast.clients
    names = [f"{spec.slow.label}-{i + 1:02d}" for i in range(spec.slow.clients)]
    names += [f"{spec.fast.label}-{i + 1:02d}" for i in range(spec.fast.clients)]
    outcomes: list[OpOutcome] = []
    label = (
        f"WAN {spec.slow.clients} x {spec.slow.mbps:g} Mbps + "
        f"{spec.fast.clients} x {spec.fast.mbps:g} Mbps"
    )
    progress.start(label, spec.duration_s, " s")
    meter.start()
    started = time.perf_counter()
    deadline = started + spec.duration_s

    async def tick() -> None:
        while (left := deadline - time.perf_counter()) > 0:
            progress.set(spec.duration_s - left)
            await asyncio.sleep(min(0.5, left))

    async with asyncio.TaskGroup() as tg:
        tasks = [
            tg.create_task(
                _client_loop(
                    endpoint,
                    credentials,
                    bucket,
                    name,
                    link,
                    payloads[spec.object_size(link)],
                    deadline,
                    outcomes,
                )
            )
            for name, link in zip(names, links, strict=True)
        ]
        tg.create_task(tick())
    wall_s = time.perf_counter() - started
    usage = meter.stop()
    progress.finish()
    clients = [t.result() for t in tasks]
    return summarize(
        label,
        "WAN",
        0,
        len(clients),
        outcomes,
        wall_s,
        usage.server_cpu_s,
        usage.client_cpu_s,
        kind="wan",
        server_cpu_by_kind=usage.server_cpu_by_kind,
        peak_rss=usage.peak_rss,
        figures=wan_figures(clients),
    )
