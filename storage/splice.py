"""Move bytes from a socket into a file inside the kernel (splice(2) through a pipe).

A node receiving a shard through aiohttp pays, per 256 KiB socket read, the HTTP parser, the
stream reader and a thread hop, on top of two copies (socket to Python bytes, bytes to the
page cache). Spliced, socket pages go to a pipe by reference and from the pipe into the page
cache, with one Python iteration per MiB. The figures are in docs/benchmarks.md.

Blocking: run it in a thread. The socket may be non-blocking (it belongs to an event loop):
readiness is waited for with poll(2), so an idle peer costs ``idle_s`` at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import functools
import os
import select
import socket
import sys
import termios
import threading
import time
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")

PIPE_BYTES = 1024 * 1024
WAKE_BYTES = 256 * 1024  # SO_RCVLOWAT: poll wakes once this much is buffered (or at the end)
TRICKLE_MS = 1000  # how often a stream below WAKE_BYTES is looked at anyway
_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, Linux (named in Python 3.10+ only on some builds)


def available() -> bool:
    """Whether this platform has splice(2) (Linux)."""
    return hasattr(os, "splice")


def socket_to_file(sock_fd: int, file_fd: int, count: int, idle_s: float) -> int:
    """Move up to ``count`` bytes from socket ``sock_fd`` to the file position of ``file_fd``;
    the number moved (less than ``count`` only when the peer closed the connection).
    TimeoutError after ``idle_s`` seconds without a byte."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    sock = socket.socket(fileno=os.dup(sock_fd))  # for setsockopt; the same socket
    try:
        # Above /proc/sys/fs/pipe-max-size: keep the default (64 KiB).
        with contextlib.suppress(OSError):
            fcntl.fcntl(write_end, _F_SETPIPE_SZ, PIPE_BYTES)
        poller = select.poll()
        poller.register(sock_fd, select.POLLIN)
        moved = 0
        lowat = 0
        deadline = time.monotonic() + idle_s
        while moved < count:
            # Wake up for a worthwhile amount (or the end): with 100 uploads sharing the
            # link each stream trickles, and a wake-up per few KiB cost more than the bytes.
            want = min(WAKE_BYTES, count - moved)
            if want != lowat:
                lowat = want
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, lowat)
            if not poller.poll(TRICKLE_MS) and not _buffered(sock_fd):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no data for {idle_s} s")
                continue
            # Woken, or a slow sender's bytes below the wake-up mark: take them either way.
            try:
                n = os.splice(
                    sock_fd,
                    write_end,
                    min(PIPE_BYTES, count - moved),
                    flags=os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK,
                )
            except BlockingIOError:
                continue  # woken without data (a spurious wakeup)
            if n == 0:
                break  # the peer closed the connection
            _drain(read_end, file_fd, n)
            moved += n
            deadline = time.monotonic() + idle_s
        return moved
    finally:
        sock.close()
        os.close(read_end)
        os.close(write_end)


def _buffered(sock_fd: int) -> int:
    """Bytes waiting in the socket's receive queue (SIOCINQ)."""
    return int.from_bytes(fcntl.ioctl(sock_fd, termios.FIONREAD, bytes(4)), sys.byteorder)


def _drain(read_end: int, file_fd: int, n: int) -> None:
    """Move ``n`` bytes from the pipe to the file."""
    while n:
        try:
            n -= os.splice(read_end, file_fd, n, flags=os.SPLICE_F_MOVE)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            # This file system takes no splice: copy through user space instead.
            data = os.read(read_end, n)
            view = memoryview(data)
            while view:
                view = view[os.write(file_fd, view) :]
            n -= len(data)


def in_own_thread(fn: Callable[[], _T]) -> asyncio.Future[_T]:
    """Run blocking ``fn`` in a new thread of its own (a stream that waits on a socket for
    long must not hold a pooled thread that disk work needs); await its result."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def run() -> None:
        try:
            result = fn()
        except BaseException as exc:  # handed to the awaiting task
            deliver = functools.partial(_settle_exception, future, exc)
        else:
            deliver = functools.partial(_settle_result, future, result)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (shutdown)
            loop.call_soon_threadsafe(deliver)

    threading.Thread(target=run, name="huimin-splice", daemon=True).start()
    return future


def _settle_result(future: asyncio.Future[_T], result: _T) -> None:
    if not future.done():  # not cancelled meanwhile
        future.set_result(result)


def _settle_exception(future: asyncio.Future[_T], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
