"""Storage metrics: erasure events, healing, erasure-set quorum, per-drive health, capacity and IO.

One ``StorageMetrics`` per process, on the process's registry (``huimin.observability``), handed
to the decorators that feed it: ``storage.metered_drive.MeteredDrive`` (every Drive call) and
``storage.monitor.DriveMonitor`` (capacity and quorum, refreshed when scraped). Label values are
bounded: ``drive`` (the deployment's drive names), ``operation`` (Drive method names, a closed
set), ``set`` (erasure-set index); never bucket or key names.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from storage.drive import Drive, DriveInfo
from storage.errors import BitrotError, DriveError, DriveNotFound, StorageError

# Local SSDs answer in well under a millisecond, a remote drive behind a WAN in tens to hundreds.
DRIVE_IO_BUCKETS_S = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

# The ``operation`` label of drive IO: the Drive protocol's methods plus the shard writer's.
DRIVE_OPERATIONS = frozenset(
    {
        "info",
        "make_bucket",
        "get_bucket",
        "list_buckets",
        "delete_bucket",
        "create_shard",
        "shard_write",
        "shard_finish",
        "read_shard",
        "open_shard",
        "commit_object",
        "get_versions",
        "prune_versions",
        "delete_version",
        "list_versions",
        "list_page",
        "put_upload",
        "get_upload",
        "list_uploads",
        "commit_part",
        "list_parts",
        "complete_upload",
        "abort_upload",
    }
)

# A drive is reported failing after this many drive-level errors in a row (one transient error
# on a busy disk is not a failing drive); a failed probe (``info``) marks it failing at once.
FAILING_AFTER_ERRORS = 3


def is_drive_failure(error: BaseException) -> bool:
    """Whether an exception from a Drive call says the drive itself is in trouble.

    Domain answers (BucketNotFound, "not on this drive") and bitrot (a data problem the read
    path repairs) are not; IO errors, timeouts and anything unexpected are.

    >>> is_drive_failure(DriveError("d1: EIO")), is_drive_failure(DriveNotFound("x"))
    (True, False)
    """
    if isinstance(error, DriveNotFound | BitrotError):
        return False
    if isinstance(error, StorageError):
        return isinstance(error, DriveError)
    return isinstance(error, Exception)


class HealProgress(Protocol):
    """What the healer reports (``storage.heal.HealStats`` has these fields)."""

    queue_depth: int
    shards_rebuilt: int
    bytes_rebuilt: int
    objects_checked: int
    errors: int
    scans_completed: int
    scan_running: bool
    scan_set: int


def scan_progress_ratio(progress: HealProgress, set_count: int) -> float:
    """How far the scanner is: sets done / sets while a scan runs; 1 after a completed scan.

    >>> from types import SimpleNamespace as P
    >>> scan_progress_ratio(P(scan_running=True, scan_set=1, scans_completed=0), 4)
    0.25
    >>> scan_progress_ratio(P(scan_running=False, scan_set=0, scans_completed=2), 4)
    1.0
    """
    if progress.scan_running:
        return min(progress.scan_set / max(set_count, 1), 1.0)
    return 1.0 if progress.scans_completed else 0.0


class _HealCollector:
    """Heal counters read from the healer's own stats when scraped (no code inside healing)."""

    def __init__(self) -> None:
        self.source: Callable[[], HealProgress] | None = None
        self.set_count = 1

    def describe(self) -> list[Metric]:
        return []  # families are the same on every scrape; no need to collect at registration

    def collect(self) -> Iterator[Metric]:
        if self.source is None:  # no healer in this process (a storage node)
            return
        p = self.source()
        yield GaugeMetricFamily(
            "huimin_heal_queue_depth",
            "Objects waiting in the heal queue (writes that missed drives).",
            value=p.queue_depth,
        )
        yield GaugeMetricFamily(
            "huimin_heal_scan_progress_ratio",
            "Progress of the running heal scan (sets done / sets); 1 after a completed scan.",
            value=scan_progress_ratio(p, self.set_count),
        )
        yield GaugeMetricFamily(
            "huimin_heal_scan_running", "1 while a heal scan runs.", value=int(p.scan_running)
        )
        for name, doc, value in (
            ("huimin_heal_shards_rebuilt", "Shards rebuilt by healing.", p.shards_rebuilt),
            ("huimin_heal_rebuilt_bytes", "Shard bytes written by healing.", p.bytes_rebuilt),
            (
                "huimin_heal_objects_checked",
                "Objects checked by the heal queue and scanner.",
                p.objects_checked,
            ),
            ("huimin_heal_errors", "Objects healing failed on.", p.errors),
            ("huimin_heal_scans_completed", "Heal scans completed.", p.scans_completed),
        ):
            yield CounterMetricFamily(name, doc, value=value)


class _IoSeries:
    """One (drive, operation) series of ``huimin_drive_io_duration_seconds``."""

    __slots__ = ("bounds", "counts", "lock", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # per bucket (not cumulative); last: > all bounds
        self.sum = 0.0
        self.lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        i = bisect_left(self.bounds, seconds)  # first bound >= seconds: Prometheus's "le"
        with self.lock:
            self.counts[i] += 1
            self.sum += seconds


class _IoHistogram:
    """``huimin_drive_io_duration_seconds{drive, operation}``, observed on the IO hot path
    (every shard write of every block): ~0.5 us per observation where prometheus_client's
    Histogram takes ~2.5 us (a lock per bucket counter). Same exposition."""

    NAME = "huimin_drive_io_duration_seconds"

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self._series: dict[tuple[str, str], _IoSeries] = {}
        self._lock = threading.Lock()

    def labels(self, drive: str, operation: str) -> _IoSeries:
        with self._lock:
            return self._series.setdefault((drive, operation), _IoSeries(self.bounds))

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(self.NAME, "", labels=["drive", "operation"])]

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(
            self.NAME,
            "Drive call latency, by drive and Drive method.",
            labels=["drive", "operation"],
        )
        with self._lock:
            series = sorted(self._series.items())
        for (drive, operation), s in series:
            with s.lock:
                counts, total = list(s.counts), s.sum
            cumulative, buckets = 0, []
            for le, n in zip((*map(repr, s.bounds), "+Inf"), counts, strict=True):
                cumulative += n
                buckets.append((le, cumulative))
            family.add_metric([drive, operation], buckets, total)
        yield family


class _Total:
    """A counter without labels on the IO hot path (every commit on every drive): an int under
    a lock, ~0.2 us per increment where prometheus_client's Counter takes ~2 us. Same
    exposition (``<name>_total``; no ``_created`` sample, as the heal counters)."""

    def __init__(self, name: str, documentation: str) -> None:
        self.name = name
        self.documentation = documentation
        self._value = 0
        self._lock = threading.Lock()

    def inc(self, amount: int) -> None:
        with self._lock:
            self._value += amount

    @property
    def value(self) -> int:
        return self._value

    def describe(self) -> list[Metric]:
        return [CounterMetricFamily(self.name, self.documentation)]

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.documentation, value=self._value)


class _NodesCollector:
    """``huimin_node_reachable{node}``: the gateway's view of each storage node."""

    def __init__(self) -> None:
        self.source: Callable[[], Mapping[str, bool]] | None = None

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        if self.source is None:  # embedded server or storage node: no remote nodes
            return
        family = GaugeMetricFamily(
            "huimin_node_reachable",
            "1 while this gateway reaches the storage node, 0 while it is marked down.",
            labels=["node"],
        )
        for node, reachable in sorted(self.source().items()):
            family.add_metric([node], int(reachable))
        yield family


class StorageMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.shards_written = _Total(
            "huimin_erasure_shards_written",
            "Shards committed on drives (one per drive per object part; healing included).",
        )
        registry.register(self.shards_written)
        self.degraded_reads = Counter(
            "huimin_erasure_degraded_reads_total",
            "Shard reads that failed during a GET, so parity was read instead, by failing drive.",
            ["drive"],
            registry=registry,
        )
        self.bitrot = Counter(
            "huimin_erasure_bitrot_detected_total",
            "Shard blocks that failed their hash check (or were truncated), by drive.",
            ["drive"],
            registry=registry,
        )
        self.drive_healthy = Gauge(
            "huimin_drive_healthy",
            f"1 while the drive answers; 0 after {FAILING_AFTER_ERRORS} IO errors in a row or a "
            "failed probe.",
            ["drive"],
            registry=registry,
        )
        self.drive_total = Gauge(
            "huimin_drive_total_bytes", "Drive capacity.", ["drive"], registry=registry
        )
        self.drive_free = Gauge(
            "huimin_drive_free_bytes", "Free bytes on the drive.", ["drive"], registry=registry
        )
        self.drive_used = Gauge(
            "huimin_drive_used_bytes", "Capacity minus free bytes.", ["drive"], registry=registry
        )
        self.drive_io = _IoHistogram(DRIVE_IO_BUCKETS_S)
        registry.register(self.drive_io)
        self.drive_errors = Counter(
            "huimin_drive_io_errors_total",
            "Drive calls that failed at the drive level (IO error, timeout, unreachable).",
            ["drive"],
            registry=registry,
        )
        self.set_drives = Gauge(
            "huimin_erasure_set_drives", "Drives in the erasure set.", ["set"], registry=registry
        )
        self.set_healthy = Gauge(
            "huimin_erasure_set_drives_healthy",
            "Drives of the erasure set that answer.",
            ["set"],
            registry=registry,
        )
        self.set_read_quorum = Gauge(
            "huimin_erasure_set_read_quorum_drives",
            "Drives the set needs to serve reads.",
            ["set"],
            registry=registry,
        )
        self.set_write_quorum = Gauge(
            "huimin_erasure_set_write_quorum_drives",
            "Drives the set needs to accept writes.",
            ["set"],
            registry=registry,
        )
        self._heal = _HealCollector()
        registry.register(self._heal)
        self._nodes = _NodesCollector()
        registry.register(self._nodes)

    def drive(self, name: str) -> DriveMetrics:
        return DriveMetrics(self, name)

    def watch_heal(self, source: Callable[[], HealProgress], set_count: int) -> None:
        """Report the healer's progress (read when scraped)."""
        self._heal.source = source
        self._heal.set_count = set_count

    def watch_nodes(self, source: Callable[[], Mapping[str, bool]]) -> None:
        """Report, per storage node, whether this gateway reaches it (read when scraped)."""
        self._nodes.source = source


class DriveMetrics:
    """One drive's metric children, bound once so the IO path does no label lookups, and the
    drive's health (thread-safe: local shard writes report from worker threads)."""

    def __init__(self, owner: StorageMetrics, drive: str) -> None:
        self.drive = drive
        self._owner = owner
        self._io: dict[str, _IoSeries] = {}
        self._errors = owner.drive_errors.labels(drive)
        self._degraded = owner.degraded_reads.labels(drive)
        self._bitrot = owner.bitrot.labels(drive)
        self._healthy = owner.drive_healthy.labels(drive)
        self._healthy.set(1)
        self._lock = threading.Lock()
        self._failures = 0

    @property
    def healthy(self) -> bool:
        return self._failures < FAILING_AFTER_ERRORS

    def io(self, operation: str) -> _IoSeries:
        child = self._io.get(operation)
        if child is None:
            child = self._io.setdefault(
                operation, self._owner.drive_io.labels(self.drive, operation)
            )
        return child

    def record(self, operation: str, seconds: float, error: BaseException | None) -> None:
        """One finished drive call."""
        self.io(operation).observe(seconds)
        if error is None:
            if self._failures:  # the common case takes no lock
                self._count_failures(lambda _: 0)
        elif is_drive_failure(error):
            self._errors.inc()
            self._count_failures(lambda n: n + 1)
        # a domain answer (BucketNotFound, not on this drive) leaves the health as it was

    def record_unreachable(self) -> None:
        """The drive did not answer a probe: failing now, not after several requests."""
        self._count_failures(lambda n: max(n, FAILING_AFTER_ERRORS))

    def _count_failures(self, update: Callable[[int], int]) -> None:
        with self._lock:
            was = self.healthy
            self._failures = update(self._failures)
            now = self.healthy
            if was != now:
                self._healthy.set(int(now))

    def record_capacity(self, info: DriveInfo) -> None:
        self._owner.drive_total.labels(self.drive).set(info.total_bytes)
        self._owner.drive_free.labels(self.drive).set(info.free_bytes)
        self._owner.drive_used.labels(self.drive).set(info.total_bytes - info.free_bytes)

    def record_degraded_read(self, error: BaseException) -> None:
        self._degraded.inc()
        if isinstance(error, BitrotError):
            self._bitrot.inc()

    def record_bitrot(self) -> None:
        self._bitrot.inc()

    def record_shards_written(self, count: int) -> None:
        self._owner.shards_written.inc(count)


def record_bitrot(drive: Drive, error: BaseException) -> None:
    """Called by the scrubber when a shard of ``drive`` failed verification: counted as bitrot
    when it is (a drive that did not answer is not), if the drive is metered."""
    metrics = getattr(drive, "drive_metrics", None)
    if isinstance(metrics, DriveMetrics) and isinstance(error, BitrotError):
        metrics.record_bitrot()


def record_degraded_read(drive: Drive, error: BaseException) -> None:
    """Called by the read path when a shard of ``drive`` could not be used (so parity is).

    Counts only when the drive is metered (``MeteredDrive`` carries its ``DriveMetrics``), so
    the object layer needs no metrics object of its own.
    """
    metrics = getattr(drive, "drive_metrics", None)
    if isinstance(metrics, DriveMetrics):
        metrics.record_degraded_read(error)
