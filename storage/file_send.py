"""A file range sent to an HTTP connection with ``os.sendfile``: the kernel moves page-cache
pages to the socket, so the node neither copies shard bytes into Python objects nor copies
them again into the socket (``pread`` + write cost it ~2x the CPU per GB).

uvloop has no ``loop.sendfile`` (aiohttp falls back to reading chunks), and it refuses
``add_writer`` on a transport's socket, so the sending runs in a worker thread: ``sendfile``
on the (non-blocking) socket, ``poll`` for room when it is full, back to the event loop after
a short wait without room (so a stalled peer holds no thread, and cancellation is noticed).

The thread works on a duplicate of the socket's descriptor, never on the transport's own
number: if the connection is closed meanwhile, that number may be reused by a new connection,
which must never receive these bytes; likewise for the file. Both are duplicated and closed
once the thread is done, even when the caller was cancelled meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import select
import threading
import time
from concurrent.futures import Executor, Future

_POLL_WAIT_MS = 100  # longest a thread waits for socket room before handing back to the loop


class FileShorterThanRange(OSError):
    """The file ended before the range did (sendfile returned 0)."""


def send_some(sock_fd: int, file_fd: int, offset: int, count: int, stop: threading.Event) -> int:
    """Send up to ``count`` bytes of ``file_fd`` from ``offset`` to a non-blocking socket;
    the bytes sent. Returns early once the socket had no room for ``_POLL_WAIT_MS`` or
    ``stop`` is set. Blocking: runs in a worker thread."""
    poller = select.poll()
    poller.register(sock_fd, select.POLLOUT)
    sent = 0
    while sent < count and not stop.is_set():
        try:
            n = os.sendfile(sock_fd, file_fd, offset + sent, count - sent)
        except BlockingIOError:
            if not poller.poll(_POLL_WAIT_MS):
                break
            continue
        if n == 0:
            raise FileShorterThanRange(f"file ended at {offset + sent}, {count - sent} short")
        sent += n
    return sent


async def sendfile_range(
    transport: asyncio.BaseTransport,
    file_fd: int,
    offset: int,
    count: int,
    executor: Executor,
    idle_timeout_s: float,
) -> None:
    """Send ``count`` bytes of ``file_fd`` from ``offset`` on ``transport``'s socket, after
    whatever the transport still buffers (the response headers). TimeoutError when the peer
    takes nothing for ``idle_timeout_s``; OSError when the connection breaks."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        raise NotImplementedError("transport has no socket")
    write_buffer_size = getattr(transport, "get_write_buffer_size", lambda: 0)
    deadline = time.monotonic() + idle_timeout_s
    # The headers still queued go first. They normally left at once; only a full socket
    # buffer (a peer not reading) keeps them, which a short poll covers without a callback.
    while write_buffer_size():
        if time.monotonic() > deadline:
            raise TimeoutError("peer took no bytes")
        await asyncio.sleep(0.001)
    # Own descriptors for the thread: closed only once it is done, whatever happens here.
    sock_fd = os.dup(sock.fileno())
    file_dup = os.dup(file_fd)

    def release(_: object = None) -> None:
        os.close(sock_fd)
        os.close(file_dup)

    stop = threading.Event()
    loop = asyncio.get_running_loop()
    running: Future[int] | None = None
    try:
        sent = 0
        idle_since = time.monotonic()
        while sent < count:
            running = executor.submit(
                send_some, sock_fd, file_dup, offset + sent, count - sent, stop
            )
            n = await asyncio.wrap_future(running, loop=loop)
            running = None
            now = time.monotonic()
            if n:
                sent += n
                idle_since = now
            elif now - idle_since > idle_timeout_s:
                raise TimeoutError(f"peer took no bytes for {idle_timeout_s} s")
    finally:
        stop.set()  # a thread still sending (we were cancelled) stops within _POLL_WAIT_MS
        if running is not None:
            running.add_done_callback(release)
        else:
            release()
