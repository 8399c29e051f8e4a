"""Shard range responses read straight into block buffers: a minimal HTTP/1.1 client for the
one request a GET streams from a node (``GET /shard/...?offset=&length=``).

aiohttp's client hands a response body over as the pieces it received (uvloop copies every
socket read into a new bytes object) and ``readexactly`` joins them: two copies of every shard
byte in the gateway, the largest user-space cost of a GET. Here the socket is read with
``recv_into`` into the buffer of the block being read (an ``asyncio.BufferedProtocol``): the
kernel's copy is the only one. Between reads the socket is paused, so TCP's window pushes
back on the node and nothing but the socket buffers reads ahead.

Connections are kept alive per node and reused once a response was read to its end.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from storage.tcp import set_congestion

_HEAD_LIMIT_BYTES = 16 * 1024  # response status line + headers
_SCRATCH_BYTES = 4 * 1024  # socket reads while the headers arrive (the body may follow them)


class ResponseError(Exception):
    """A malformed response, or the connection ended before the response did."""


@dataclass(frozen=True, slots=True)
class ResponseHead:
    status: int
    content_length: int
    keep_alive: bool


def parse_fields(head: bytes) -> tuple[str, int, dict[str, str]]:
    """A response's status line and headers (without the blank line): its HTTP version, its
    status and its header fields (names in lower case); ResponseError when malformed.

    >>> parse_fields(b"HTTP/1.1 404 Not Found\\r\\nETag: x\\r\\nX-A: 1")
    ('HTTP/1.1', 404, {'etag': 'x', 'x-a': '1'})
    """
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ResponseError(f"bad status line {lines[0][:80]!r}")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise ResponseError(f"bad header line {line[:80]!r}")
        fields[name.strip().lower()] = value.strip()
    return parts[0], int(parts[1]), fields


def parse_head(head: bytes) -> ResponseHead:
    """Status line and headers (without the blank line) -> what reading the body needs.

    >>> parse_head(b"HTTP/1.1 200 OK\\r\\nContent-Length: 12\\r\\nContent-Type: x")
    ResponseHead(status=200, content_length=12, keep_alive=True)
    >>> parse_head(b"HTTP/1.1 404 Not Found\\r\\nconnection: close\\r\\ncontent-length: 3")
    ResponseHead(status=404, content_length=3, keep_alive=False)
    """
    version, status, fields = parse_fields(head)
    if "transfer-encoding" in fields or not fields.get("content-length", "").isdigit():
        raise ResponseError("a shard response needs a Content-Length")
    keep_alive = fields.get("connection", "").lower() != "close" and version == "HTTP/1.1"
    return ResponseHead(status, int(fields["content-length"]), keep_alive)


def request_bytes(
    host: str, path_qs: str, headers: Mapping[str, str], method: str = "GET"
) -> bytes:
    """A request's head (a GET's whole request).

    >>> request_bytes("h:1", "/p?x=1", {"X-A": "b"})
    b'GET /p?x=1 HTTP/1.1\\r\\nHost: h:1\\r\\nX-A: b\\r\\n\\r\\n'
    >>> request_bytes("h:1", "/p", {"Content-Length": "3"}, "PUT")
    b'PUT /p HTTP/1.1\\r\\nHost: h:1\\r\\nContent-Length: 3\\r\\n\\r\\n'
    """
    lines = [f"{method} {path_qs} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class ShardConnection(asyncio.BufferedProtocol):
    """One connection to a node, one response at a time: ``head()`` then ``read_into()``
    until the body is consumed. Reading is paused unless a read waits."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.body_left = 0
        self.keep_alive = False
        self._scratch = bytearray(_SCRATCH_BYTES)
        self._head = bytearray()
        self._in_head = False
        self._spill = memoryview(b"")  # body bytes that arrived with the headers
        self._target: memoryview | None = None
        self._filled = 0
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None

    # asyncio.BufferedProtocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.pause_reading()

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._target is not None:
            return self._target[self._filled :]
        return memoryview(self._scratch)

    def buffer_updated(self, nbytes: int) -> None:
        if self._target is not None:
            self._filled += nbytes
            if self._filled == len(self._target):
                self._wake()
            return
        if not self._in_head:
            # Read after a read completed, before the pause took effect: kept for the next.
            self._spill = memoryview(bytes(self._spill) + self._scratch[:nbytes])
            if len(self._spill) > _HEAD_LIMIT_BYTES:
                self.fail(ResponseError("bytes from the node that nobody asked for"))
            return
        self._head += self._scratch[:nbytes]
        end = self._head.find(b"\r\n\r\n")
        if end >= 0:
            self._spill = memoryview(bytes(self._head[end + 4 :]))
            del self._head[end:]
            self._in_head = False
            self._wake()
        elif len(self._head) > _HEAD_LIMIT_BYTES:
            self.fail(ResponseError("response headers too long"))

    def eof_received(self) -> bool:
        self.fail(ResponseError("the node closed the connection"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(exc if exc is not None else ResponseError("connection closed"))

    # Reading a response -------------------------------------------------------------------

    def fail(self, exc: BaseException) -> None:
        """End the current and every later read with ``exc`` (a watchdog's verdict, too)."""
        if self._error is None:
            self._error = exc
        self.keep_alive = False
        self._wake()

    def _wake(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        if self._error is not None:
            raise self._error
        assert self.transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.resume_reading()
        try:
            await self._waiter
        finally:
            self._waiter = None
        if self._error is not None:
            raise self._error

    async def head(self, request: bytes) -> ResponseHead:
        """Send ``request``; the response's status line and headers."""
        assert self.transport is not None
        self._head = bytearray()
        self._in_head = True
        self.transport.write(request)
        while self._in_head:
            await self._wait()
        parsed = parse_head(bytes(self._head))
        self.body_left = parsed.content_length
        self.keep_alive = parsed.keep_alive
        if len(self._spill) > self.body_left:
            raise ResponseError("more bytes than the Content-Length")
        return parsed

    async def read_into(self, buffer: memoryview) -> None:
        """Fill ``buffer`` with the next body bytes (ResponseError if the body is shorter)."""
        n = len(buffer)
        if n > self.body_left:
            raise ResponseError(f"read of {n} bytes, {self.body_left} left in the body")
        spilled = min(len(self._spill), n)
        if spilled:
            buffer[:spilled] = self._spill[:spilled]
            self._spill = self._spill[spilled:]
        if spilled < n:
            self._target, self._filled = buffer, spilled
            try:
                while self._filled < n:
                    await self._wait()
            finally:
                self._target = None
        self.body_left -= n

    @property
    def reusable(self) -> bool:
        """Idle, in step (the last body read to its end) and open."""
        return (
            self.keep_alive
            and self.body_left == 0
            and self._error is None
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def close(self) -> None:
        self.keep_alive = False
        if self.transport is not None:
            self.transport.abort()  # unread bytes in flight: nothing worth a graceful close


class ShardConnections:
    """Idle keep-alive connections per node (``host:port``)."""

    def __init__(self, tls: ssl.SSLContext | None, tcp_congestion: str = "") -> None:
        self._tls = tls
        self._tcp_congestion = tcp_congestion
        self._idle: dict[str, list[ShardConnection]] = {}

    async def get(self, address: str) -> tuple[ShardConnection, bool]:
        """A connection to ``address``, and whether it was reused (a reused connection the
        node closed meanwhile fails its first read: the caller retries on a new one)."""
        idle = self._idle.get(address, [])
        while idle:
            conn = idle.pop()
            if conn.reusable:
                return conn, True
            conn.close()
        host, _, port = address.rpartition(":")
        loop = asyncio.get_running_loop()
        transport, conn = await loop.create_connection(
            ShardConnection,
            host,
            int(port),
            ssl=self._tls,
            server_hostname=host if self._tls is not None else None,
        )
        sock = transport.get_extra_info("socket")
        if sock is not None:
            set_congestion(sock, self._tcp_congestion)
        return conn, False

    def put(self, address: str, conn: ShardConnection) -> None:
        if conn.reusable:
            self._idle.setdefault(address, []).append(conn)
        else:
            conn.close()

    def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
