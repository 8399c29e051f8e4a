"""A shard upload sent from worker threads over a plain blocking socket: the same
``PUT /shard/...`` with a Content-Length as ``RemoteShardWriter``, without aiohttp.

Why: a large PUT's gateway spent most of the time it held the GIL in its event loop writing
shard bytes into node sockets (uvloop writes with the GIL held; the kernel's copy, and on
loopback much of the receiver's work too, ran under it). One interpreter lock was the
bottleneck: 4, 8 or 16 uploads in flight all ran at the same MB/s, on a box with a core
idle. ``socket.sendmsg`` releases the GIL. The thread that encoded a block sends its frames
(``storage.streams``: ``write_blocking`` marks a writer the object layer writes from that
thread), each frame's pieces in one gather write, views of the block and all.

Liveness is watched as for every other call to a node (``storage.remote_drive._Watch``): a
send or the answer making no progress for ``rpc_s`` probes the node; a node that does not
answer the probe is marked down and the shard fails, and so does one that answers but makes
no progress for ``io_s``.

The node reads a body this large off the socket itself and closes the connection after its
answer (``storage.node_server._take_shard``): one connection per shard, opened by the first
write. Used for plain TCP and a known shard size; otherwise ``RemoteShardWriter``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from storage import node_protocol as proto
from storage.errors import DriveError, StorageError
from storage.shard_connection import ResponseError, parse_head, request_bytes
from storage.tcp import set_congestion

if TYPE_CHECKING:
    from storage.remote_drive import RemoteDrive

_HEAD_LIMIT_BYTES = 16 * 1024
_ANSWER_LIMIT_BYTES = 64 * 1024


class ShardUpload:
    """One shard streamed to a node: ``write_blocking`` from one worker thread at a time,
    ``finish`` for the node's fsync, ``abort`` from the event loop at any time."""

    def __init__(self, drive: RemoteDrive, data_id: str, size_bytes: int) -> None:
        self._drive = drive
        self._client = drive.client
        self._path = drive.path("shard", data_id)
        self._size = size_bytes
        self._written = 0
        self._loop = asyncio.get_running_loop()
        self._sock: socket.socket | None = None
        self._opened = False
        self._closed = False
        self._aborted = False  # the connection was cut on purpose: not the node's failure
        self._lock = threading.Lock()  # held by a send or the answer; ``abort`` waits for it

    # Blocking, in a worker thread ------------------------------------------------------

    def write_blocking(self, pieces: Sequence[bytes | memoryview]) -> None:
        views = [memoryview(p).cast("B") for p in pieces]
        with self._lock:
            self._written += sum(map(len, views))
            if self._written > self._size:
                raise DriveError(f"{self._drive.name}: shard longer than {self._size} bytes")
            self._guarded(self._send, views)

    def _send(self, views: list[memoryview]) -> None:
        sock = self._connected()
        deadline = time.monotonic() + self._client.timeouts.io_s
        while views:
            try:
                sent = sock.sendmsg(views)
            except TimeoutError:  # rpc_s without room in the socket's buffers
                self._still_alive(deadline)
                continue
            deadline = time.monotonic() + self._client.timeouts.io_s
            views = _advance(views, sent)

    def _connected(self) -> socket.socket:
        if self._closed:
            raise DriveError(f"{self._drive.name}: shard upload closed")
        if self._sock is None:
            host, _, port = self._drive.address.rpartition(":")
            timeouts = self._client.timeouts
            self._opened = True
            sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeouts.rpc_s)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            set_congestion(sock, self._client.tcp_congestion)
            self._sock = sock
            headers = self._client.headers("PUT", self._path)
            headers["Content-Length"] = str(self._size)
            headers["Connection"] = "close"
            sock.sendall(request_bytes(self._drive.address, self._path, headers, "PUT"))
        return self._sock

    def _answer(self) -> None:
        """The node's answer, once the whole body is sent: it comes after the fsync."""
        sock = self._connected()
        deadline = time.monotonic() + self._client.timeouts.io_s
        received = bytearray()
        while b"\r\n\r\n" not in received:
            if len(received) > _HEAD_LIMIT_BYTES:
                raise ResponseError("response head too long")
            received += self._recv(sock, deadline)
        head_bytes, _, body = bytes(received).partition(b"\r\n\r\n")
        head = parse_head(head_bytes)
        length = min(head.content_length, _ANSWER_LIMIT_BYTES)
        while len(body) < length:
            body += self._recv(sock, deadline)
        self._close()
        if head.status == 200:
            return
        doc: Any = {"error": "DriveError", "message": f"HTTP {head.status}"}
        with contextlib.suppress(ValueError):
            doc = json.loads(body[:length])
        raise proto.error_from(doc, self._drive.name)

    def _recv(self, sock: socket.socket, deadline: float) -> bytes:
        while True:
            try:
                data = sock.recv(_HEAD_LIMIT_BYTES)
            except TimeoutError:  # rpc_s without an answer (the node may be fsyncing)
                self._still_alive(deadline)
                continue
            if not data:
                raise ResponseError("node closed the connection before its answer")
            return data

    def _still_alive(self, deadline: float) -> None:
        """After rpc_s without progress: probe the node on the event loop (callers share the
        probe); raise if it does not answer, or if io_s went by without progress."""
        base = self._drive.base
        probe = asyncio.run_coroutine_threadsafe(self._client.answers(base), self._loop)
        timeouts = self._client.timeouts
        if not probe.result(timeout=timeouts.rpc_s + 4 * timeouts.probe_s):
            self._loop.call_soon_threadsafe(self._client.mark_down, base)
            raise TimeoutError(f"{base}: node unresponsive")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{base}: no progress in {timeouts.io_s} s")

    def _guarded(self, step: Callable[..., None], *args: Any) -> None:
        """Run ``step``; any failure closes the connection and becomes the drive's error (a
        refused or broken connection marks the node down, as for other calls)."""
        try:
            step(*args)
        except StorageError:
            self._close()
            raise
        except (OSError, ResponseError, ValueError, TimeoutError) as exc:
            self._close()
            if _broken(exc) and not self._aborted:
                self._loop.call_soon_threadsafe(self._client.mark_down, self._drive.base)
            raise DriveError(f"{self._drive.name}: {exc!r}") from exc

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        self._closed = True
        if sock is not None:
            sock.close()

    def _finish_blocking(self) -> None:
        with self._lock:
            self._guarded(self._answer)

    # The ShardWriter protocol, on the event loop ----------------------------------------

    async def write(self, pieces: Sequence[bytes | memoryview]) -> None:
        await asyncio.to_thread(self.write_blocking, pieces)

    async def finish(self) -> None:
        if self._written != self._size:
            # Ending the body early would leave the node waiting for the declared length.
            raise DriveError(
                f"{self._drive.name}: shard ended at {self._written} of {self._size} bytes"
            )
        await asyncio.to_thread(self._finish_blocking)

    async def abort(self) -> None:
        """Cut the connection (a send blocked on it fails at once, and the node drops the
        partial shard), then ask the node to discard a shard it may have finished."""
        self._aborted = True
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        await asyncio.to_thread(self._close_locked)
        if self._opened:
            with contextlib.suppress(Exception):
                await self._drive.call_raw("DELETE", self._path)

    def _close_locked(self) -> None:
        with self._lock:
            self._close()


def _advance(views: list[memoryview], sent: int) -> list[memoryview]:
    """What is left of ``views`` after ``sent`` bytes went out.

    >>> [bytes(v) for v in _advance([memoryview(b"ab"), memoryview(b"cde")], 3)]
    [b'de']
    """
    while sent and views:
        if sent >= len(views[0]):
            sent -= len(views[0])
            views = views[1:]
        else:
            views = [views[0][sent:], *views[1:]]
            sent = 0
    return [v for v in views if len(v)]


def _broken(exc: BaseException) -> bool:
    """A refused or cut connection (the node is gone), not a timeout or a bad answer."""
    return isinstance(exc, OSError) and not isinstance(exc, TimeoutError)
