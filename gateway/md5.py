"""MD5 for the ETag of large uploads, the blocks of concurrent uploads hashed side by side.

hashlib's MD5 hashes one message at ~0.84 GB/s per core here (1.19 CPU-s/GB, the largest stage
of a PUT's gateway CPU). ``gateway._md5lanes`` (C, AVX-512) hashes up to 16 messages at once,
one per 32-bit lane: 3.0 GB/s with 8, 6.1 GB/s with 16 (docs/benchmarks.md). ``Md5Lanes`` is
the thread that does it for the gateway: the uploads' encode threads hand it their blocks and
go on encoding and sending them; every ``SEGMENT`` bytes it takes the blocks that arrived
meanwhile into free lanes, so an upload never waits for another to start nor to finish.

``new_md5`` picks per upload: an upload whose first block is large goes to the lanes, anything
else (small objects, no compiler, a CPU without AVX-512) to hashlib.
"""

from __future__ import annotations

import hashlib
import struct
import threading
import time
from collections import deque
from typing import Protocol, TypeAlias

try:
    import gateway._md5lanes as _md5lanes
except ImportError:  # built without a C compiler (setup.py marks it optional)
    _md5lanes = None  # type: ignore[assignment]

LANES = _md5lanes.LANES if _md5lanes is not None else 16  # the extension's vector width
SEGMENT = 512 * 1024  # bytes per lane per call: how long a new block waits to join, at most
GATHER_S = 0.05  # how long the lanes may wait for every open upload's block before they start
LANE_MIN = 1024 * 1024  # a first block this large sends the upload to the lanes
Buffer: TypeAlias = bytes | bytearray | memoryview
_INIT = struct.pack("<4I", 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)


class Md5(Protocol):
    """What a body's hasher offers: hashlib.md5's update and digest."""

    def update(self, data: Buffer, /) -> None: ...

    def digest(self) -> bytes: ...


def lanes_available() -> bool:
    """Whether several uploads can share the vector lanes (the extension and AVX-512)."""
    return _md5lanes is not None and bool(_md5lanes.available())


def padding(length: int) -> bytes:
    """MD5's padding after ``length`` bytes: 0x80, zeros to 56 mod 64, the bit length (LE).

    >>> len(padding(0)), len(padding(55)), len(padding(56)), padding(3)[-8:].hex()
    (64, 9, 72, '1800000000000000')
    """
    return b"\x80" + b"\0" * ((55 - length) % 64) + struct.pack("<Q", (length * 8) % 2**64)


class _Job:
    __slots__ = ("born", "done", "error", "offset", "state", "urgent", "view")

    def __init__(self, state: bytearray, view: memoryview) -> None:
        self.state = state
        self.view = view
        self.offset = 0
        self.born = time.monotonic()
        self.urgent = False  # its upload waits for it: no more gathering
        self.done = threading.Event()
        self.error: BaseException | None = None


class Md5Lanes:
    """The thread hashing every waiting block side by side, up to ``LANES`` at a time.

    A call costs the same for 3 lanes as for 16 (the steps are latency-bound), so the lanes
    start a round when every open upload has handed in its block, when an upload waits for
    its block's hash (``wait``), or ``GATHER_S`` after the first block came. An upload hands
    in its next block tens of milliseconds later and only then waits for this one, so the
    gathering delays no upload, and the lanes run fuller."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._thread: threading.Thread | None = None
        self._open = 0  # uploads that will hand in more blocks (``LaneMd5`` until its digest)

    def opened(self) -> None:
        with self._cond:
            self._open += 1

    def closed(self) -> None:
        with self._cond:
            self._open -= 1
            self._cond.notify()

    def hash(self, state: bytearray, view: memoryview) -> None:
        """Advance ``state`` over ``view`` (a multiple of 64 bytes); blocks until done."""
        self.wait(self.submit(state, view))

    def wait(self, job: _Job | None) -> None:
        """Until a submitted job is hashed (now: nothing more is gathered for it); raises what
        hashing it raised."""
        if job is None:
            return
        if not job.done.is_set():
            with self._cond:
                job.urgent = True
                self._cond.notify()
            job.done.wait()
        if job.error is not None:
            raise job.error

    def submit(self, state: bytearray, view: memoryview) -> _Job | None:
        """Start advancing ``state`` over ``view``: done when ``wait`` returns. Until then
        neither may change (nor be submitted again). Short views are hashed right here."""
        assert _md5lanes is not None
        if len(view) < SEGMENT:  # a hand-off costs more than one lane of it
            _md5lanes.md5_lanes((state,), (view,))
            return None
        job = _Job(state, view)
        with self._cond:
            self._queue.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="md5-lanes", daemon=True)
                self._thread.start()
            self._cond.notify()
        return job

    def _run(self) -> None:
        active: list[_Job] = []
        while True:
            try:
                self._gather(active)
                active = _step(active)
            except BaseException as exc:  # a bad buffer (or a bug): its uploads fail, none hangs
                for j in active:
                    j.error = exc
                    j.done.set()
                active = []

    def _gather(self, active: list[_Job]) -> None:
        """Fill ``active`` with waiting blocks: at least one; more while it is worth waiting."""
        with self._cond:
            while not self._queue and not active:
                self._cond.wait()
            while self._queue and len(active) < LANES:
                active.append(self._queue.popleft())
            oldest = min(j.born for j in active)
            while len(active) < min(self._open, LANES) and not any(j.urgent for j in active):
                left = oldest + GATHER_S - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)
                while self._queue and len(active) < LANES:
                    active.append(self._queue.popleft())


def _step(active: list[_Job]) -> list[_Job]:
    """Hash the next ``SEGMENT`` of every active block side by side; the unfinished ones."""
    assert _md5lanes is not None
    _md5lanes.md5_lanes(
        [j.state for j in active], [j.view[j.offset : j.offset + SEGMENT] for j in active]
    )
    still = []
    for j in active:
        j.offset += SEGMENT
        if j.offset < len(j.view):
            still.append(j)
        else:
            j.done.set()
    return still


_lanes = Md5Lanes()


class LaneMd5:
    """An MD5 whose whole 64-byte blocks are hashed in the shared lanes (``Md5Lanes``).

    ``update`` with immutable bytes returns before they are hashed: the lanes hash them while
    the upload encodes and sends the same block, and the next ``update`` (or ``digest``)
    waits for them. Anything mutable is hashed before ``update`` returns, like hashlib."""

    def __init__(self, lanes: Md5Lanes = _lanes) -> None:
        self._lanes = lanes
        self._state = bytearray(_INIT)
        self._tail = b""  # bytes after the last whole 64-byte block
        self._length = 0
        self._pending: _Job | None = None
        self._open = True
        lanes.opened()

    def _close(self) -> None:
        if self._open:
            self._open = False
            self._lanes.closed()

    def __del__(self) -> None:  # an upload that failed before its digest
        self._close()

    def update(self, data: Buffer, /) -> None:
        self._lanes.wait(self._pending)
        self._pending = None
        view = memoryview(data).cast("B")
        self._length += len(view)
        if self._tail:
            need = 64 - len(self._tail)
            self._tail += bytes(view[:need])
            view = view[need:]
            if len(self._tail) < 64:
                return
            self._lanes.hash(self._state, memoryview(self._tail))
            self._tail = b""
        whole = len(view) - len(view) % 64
        self._tail = bytes(view[whole:])
        if not whole:
            return
        job = self._lanes.submit(self._state, view[:whole])
        if isinstance(view.obj, bytes):
            self._pending = job
        else:
            self._lanes.wait(job)

    def digest(self) -> bytes:
        self._close()
        self._lanes.wait(self._pending)
        self._pending = None
        state = bytearray(self._state)
        self._lanes.hash(state, memoryview(self._tail + padding(self._length)))
        return bytes(state)

    def hexdigest(self) -> str:
        return self.digest().hex()


def new_md5(first_block: int) -> Md5:
    """The hasher for an upload whose first block has ``first_block`` bytes."""
    if first_block >= LANE_MIN and lanes_available():
        return LaneMd5()
    return hashlib.md5()
