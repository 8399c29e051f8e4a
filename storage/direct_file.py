"""A new shard file written around the page cache (``O_DIRECT``), durably.

Shard bytes are written once and read rarely, and much later: caching them on the way to the
disk buys nothing and costs a copy into page cache, which on these VMs grows into memory the
host has to fault in (docs/benchmarks.md: 1.1-1.6 CPU-s per GB written through the page cache
and spliced, 0.3-0.4 written direct). MinIO and Ceph's BlueStore write data the same way.

Bytes are gathered in a page-aligned 1 MiB buffer (``O_DIRECT`` wants the address, the length
and the file offset aligned) and written a whole buffer at a time; the unaligned tail goes
through the page cache once ``O_DIRECT`` is turned off, then the file is fsync'd. A file that
never fills a buffer (a 1 MiB object's shard) is written through the page cache: for a write
that small, direct IO measured no cheaper (a waited-for device write per file, then the tail
and the fsync). A file system that refuses ``O_DIRECT`` (tmpfs on older kernels), or then
its writes, gets the same writes, buffered.

Blocking: call from a thread. Buffers come from a bounded pool (``MAX_BUFFERS``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import select
import socket
import sys
import termios
import threading
import time
from collections.abc import Iterable

ALIGN = 4096
BUFFER_BYTES = 1024 * 1024
# Aligned buffers per process (64 MiB): a file that finds none free (more shards being written
# at once than that) goes through the page cache in SMALL_BYTES writes, so memory stays bounded
# however many uploads run (100 at once in the embedded server: 1200 shards).
MAX_BUFFERS = 64
SMALL_BYTES = 64 * 1024
TRICKLE_MS = 1000  # how often a stream below SO_RCVLOWAT is looked at anyway


class _Buffers:
    """Page-aligned buffers, allocated up to ``MAX_BUFFERS`` and reused (their pages stay
    resident)."""

    def __init__(self) -> None:
        self._free: list[mmap.mmap] = []
        self._allocated = 0
        self._lock = threading.Lock()

    def take(self) -> mmap.mmap | None:
        with self._lock:
            if self._free:
                return self._free.pop()
            if self._allocated >= MAX_BUFFERS:
                return None
            self._allocated += 1
        return mmap.mmap(-1, BUFFER_BYTES)  # anonymous: page-aligned

    def give(self, buffer: mmap.mmap, reuse: bool) -> None:
        """Back to the pool; or, if ``reuse`` is false (someone may still be filling it),
        forgotten (freed once its last user lets go) and replaceable by a new one."""
        with self._lock:
            if reuse:
                self._free.append(buffer)
            else:
                self._allocated -= 1


_buffers = _Buffers()


class DirectFile:
    """Appends to a new file; ``finish`` makes it durable. One writer at a time. ``close``
    (an abort) may come from another thread while a ``write`` runs: it waits for that write
    (a lock), so no descriptor is closed under it and no pooled buffer is handed on while in
    use. A ``receive`` is not waited for (it may wait on its socket for long): it works on its
    own descriptor and view, and its buffer is not reused after an abort."""

    def __init__(self, path: str) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        self._fd = os.open(path, flags, 0o644)
        self.direct = False  # set with the first whole buffer, if the file system allows
        self._may_go_direct = True
        self._buffer = _buffers.take()
        if self._buffer is None:  # all in use: through the page cache, in small writes
            self._may_go_direct = False
            self._view = memoryview(bytearray(SMALL_BYTES))
        else:
            self._view = memoryview(self._buffer)
        self._capacity = len(self._view)
        self._filled = 0
        self.size = 0  # bytes accepted so far
        self._lock = threading.Lock()

    def write(self, pieces: Iterable[bytes | memoryview]) -> None:
        with self._lock:
            if self._fd < 0:
                raise ValueError("shard file closed")
            self._write(pieces)

    def _write(self, pieces: Iterable[bytes | memoryview]) -> None:
        for piece in pieces:
            data = memoryview(piece).cast("B")
            while data:
                n = min(len(data), self._capacity - self._filled)
                self._view[self._filled : self._filled + n] = data[:n]
                self._filled += n
                self.size += n
                data = data[n:]
                if self._filled == self._capacity:
                    self._go_direct(self._fd)
                    self._write_all(self._fd, self._view)
                    self._filled = 0

    def receive(self, sock_fd: int, count: int, idle_s: float) -> int:
        """Append up to ``count`` bytes read from socket ``sock_fd`` (``recv_into`` the
        buffer: one copy, none into page cache); the number received, less than ``count``
        only when the peer closed the connection. TimeoutError after ``idle_s`` seconds
        without a byte. Owns ``sock_fd`` (closes it), and writes through a duplicate of the
        file's descriptor, so a ``close`` meanwhile closes nothing in use.

        The socket may be non-blocking (it belongs to an event loop): readiness is waited for
        with poll(2) and ``SO_RCVLOWAT`` set to what fills the buffer (or ends the shard), so
        a wake-up is one ``recv_into`` and one whole-buffer write, and a hundred trickling
        uploads do not cost a wake-up per few KiB each."""
        with socket.socket(fileno=sock_fd) as sock:  # closed (with sock_fd) whatever happens
            file_fd = os.dup(self._fd)
            try:
                return self._receive(sock, file_fd, count, idle_s)
            finally:
                os.close(file_fd)

    def _receive(self, sock: socket.socket, file_fd: int, count: int, idle_s: float) -> int:
        view = self._view[:]  # still valid if ``close`` releases the buffer's view meanwhile
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        moved = 0
        lowat = 0
        deadline = time.monotonic() + idle_s
        while moved < count:
            if self._fd < 0:  # closed meanwhile (aborted): nothing more to take
                raise ValueError("shard file closed")
            want = min(self._capacity - self._filled, count - moved)
            if want != lowat:
                lowat = want
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, lowat)
            if not _wait_for_data(poller, sock):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no data for {idle_s} s")
                continue
            room = min(self._capacity - self._filled, count - moved)
            try:
                n = sock.recv_into(view[self._filled :], room, socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue  # woken without data (a spurious wake-up)
            if n == 0:
                break  # the peer closed the connection
            self._filled += n
            self.size += n
            moved += n
            if self._filled == self._capacity:
                self._go_direct(file_fd)  # this thread's own descriptor, like the write
                self._write_all(file_fd, view)
                self._filled = 0
            deadline = time.monotonic() + idle_s
        return moved

    def finish(self) -> None:
        """Write what is buffered, fsync and close."""
        with self._lock:
            if self._fd < 0:
                raise ValueError("shard file closed")
            try:
                self._finish()
            finally:
                self._close(reuse=True)

    def _finish(self) -> None:
        whole = self._filled - self._filled % ALIGN
        if whole:
            self._write_all(self._fd, self._view[:whole])
        if whole < self._filled:
            if self.direct:  # the tail is not a whole block: through the page cache
                _set_direct(self._fd, False)
            self._write_all(self._fd, self._view[whole : self._filled])
        self._filled = 0
        os.fsync(self._fd)

    def close(self) -> None:
        """Close without syncing (an aborted shard: the caller removes the file)."""
        with self._lock:
            self._close(reuse=False)

    def _close(self, reuse: bool) -> None:
        """The buffer goes back to the pool only from ``finish``: after an abort a
        ``receive`` may still be filling it."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)
        self._view = memoryview(b"")
        self._capacity = self._filled = 0
        buffer, self._buffer = self._buffer, None
        if buffer is not None:
            _buffers.give(buffer, reuse)

    def _go_direct(self, fd: int) -> None:
        """Before the first whole buffer is written: from here on, around the page cache."""
        if self._may_go_direct and not self.direct:
            self._may_go_direct = False
            try:
                _set_direct(fd, True)
            except OSError:
                return  # this file system takes no O_DIRECT (EINVAL): stay buffered
            self.direct = True

    def _write_all(self, fd: int, data: memoryview) -> None:
        while data:
            try:
                n = os.write(fd, data)
            except OSError as exc:
                if not self.direct or exc.errno != errno.EINVAL:
                    raise
                # O_DIRECT was taken but these writes are refused (an alignment this file
                # system does not accept): buffered from here on, nothing written twice.
                _set_direct(fd, False)
                self.direct = False
                continue
            data = data[n:]


def _set_direct(fd: int, on: bool) -> None:
    """Turn ``O_DIRECT`` on or off for the open file (its duplicates share the flag)."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_DIRECT if on else flags & ~os.O_DIRECT)


def _wait_for_data(poller: select.poll, sock: socket.socket) -> bool:
    """Whether ``sock`` has bytes to take: poll(2) for up to ``TRICKLE_MS`` (a sleep, which
    bench.profile counts as a wait, not CPU), or a trickle below the wake-up mark."""
    return bool(poller.poll(TRICKLE_MS)) or _buffered(sock.fileno()) > 0


def _buffered(sock_fd: int) -> int:
    """Bytes waiting in the socket's receive queue (SIOCINQ)."""
    return int.from_bytes(fcntl.ioctl(sock_fd, termios.FIONREAD, bytes(4)), sys.byteorder)
