"""A minimal HTTP/1.1 keep-alive client for the benchmark's own requests (``bench.client``).

The client shares the box's two cores with the server it measures, so what it spends per
request is taken from the server. aiohttp's client cost 105-180 µs of CPU per 4 KiB operation
here; this one 60-80 (docs/benchmarks.md, "A leaner client for the suite"). It does only what the
suite needs: one request at a time per connection, a body given as bytes, and an answer
framed by Content-Length or chunked (or by the connection's end), read into the protocol's
own buffer (``asyncio.BufferedProtocol``: no bytes object per read) and either kept (small
answers, errors) or handed to a sink slice by slice (a GET's body is counted, never held).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from storage.shard_connection import ResponseError, parse_fields

__all__ = ["Connection", "Head", "Pool", "Response", "ResponseError", "Sink", "parse_head"]

Sink = Callable[[memoryview], None]

_BUFFER_BYTES = 256 * 1024
_MAX_HEAD_BYTES = 64 * 1024
_NO_BODY_STATUSES = frozenset({204, 304})


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes  # empty when the body went to a sink


@dataclass(frozen=True, slots=True)
class Head:
    status: int
    headers: dict[str, str]
    length: int | None  # None: chunked, or until the connection ends
    chunked: bool


def parse_head(raw: bytes) -> Head:
    """A response's status line and headers (without the blank line that ends them).

    >>> h = parse_head(b"HTTP/1.1 200 OK\\r\\nContent-Length: 5\\r\\nETag: \\"x\\"")
    >>> h.status, h.length, h.headers["etag"]
    (200, 5, '"x"')
    >>> parse_head(b"HTTP/1.1 200 OK\\r\\nTransfer-Encoding: chunked").chunked
    True
    """
    _, status, headers = parse_fields(raw)
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    length = headers.get("content-length")
    if length is not None and not length.isdigit():
        raise ResponseError(f"bad Content-Length: {length!r}")
    return Head(status, headers, None if chunked or length is None else int(length), chunked)


class _Chunks:
    """Decodes a chunked body fed in pieces; ``feed`` returns the data bytes of each piece and
    whether the body ended (trailers are read and ignored)."""

    def __init__(self) -> None:
        self._pending = bytearray()  # an unfinished size line, or the CRLF after a chunk
        self._left = 0  # data bytes left in the current chunk
        self._state = "size"  # size | data | crlf | trailers | done

    def feed(self, data: memoryview) -> tuple[list[memoryview], bool]:
        out: list[memoryview] = []
        i = 0
        while i < len(data) and self._state != "done":
            if self._state == "data":
                take = min(self._left, len(data) - i)
                out.append(data[i : i + take])
                i += take
                self._left -= take
                if self._left == 0:
                    self._state = "crlf"
                continue
            self._pending += data[i : i + 1]
            i += 1
            if not self._pending.endswith(b"\r\n"):
                if len(self._pending) > 4096:
                    raise ResponseError("chunk framing line too long")
                continue
            line = bytes(self._pending[:-2])
            self._pending.clear()
            if self._state == "crlf":
                if line:
                    raise ResponseError("chunk not followed by CRLF")
                self._state = "size"
            elif self._state == "size":
                size_text = line.split(b";", 1)[0].strip()
                try:
                    self._left = int(size_text, 16)
                except ValueError:
                    raise ResponseError(f"bad chunk size: {size_text[:20]!r}") from None
                self._state = "data" if self._left else "trailers"
            elif not line:  # the blank line after the trailers
                self._state = "done"
        return out, self._state == "done"


class Connection(asyncio.BufferedProtocol):
    """One keep-alive connection; ``exchange`` sends a request and waits for its answer."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._view = memoryview(bytearray(_BUFFER_BYTES))
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Response] | None = None
        self._head_bytes = bytearray()
        self._head: Head | None = None
        self._chunks: _Chunks | None = None
        self._left = 0  # body bytes still to come (Content-Length framing)
        self._until_close = False  # the body ends with the connection (no length, not chunked)
        self._body = bytearray()
        self._sink: Sink | None = None
        self._no_body = False
        self.received_any = False  # a byte of the current answer arrived
        self.last_read = 0.0
        self.closed = False

    # asyncio.BufferedProtocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._head is not None and self._until_close:
            self._finish()  # framed by the connection's end
        elif self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc or ConnectionResetError("connection closed"))

    def eof_received(self) -> bool:
        return False  # close the transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        self.received_any = True
        self.last_read = self._loop.time()
        try:
            self._feed(self._view[:nbytes])
        except ResponseError as exc:
            self._fail(exc)

    # the request -------------------------------------------------------------------------------

    async def exchange(
        self, head: bytes, body: bytes | memoryview | None, no_body: bool, sink: Sink | None
    ) -> Response:
        """Send ``head`` (request line and headers, blank line included) and ``body``; the
        answer. ``no_body``: the answer has none whatever it says (HEAD). ``sink``: a 2xx
        answer's body goes there instead of into ``Response.body``."""
        if self._transport is None or self.closed:
            raise ConnectionResetError("connection closed")
        self._waiter = self._loop.create_future()
        self._no_body, self._sink = no_body, sink
        self.received_any = False
        self.last_read = self._loop.time()
        if body:
            self._transport.writelines((head, body))
        else:
            self._transport.write(head)
        return await self._waiter

    def abort(self, exc: Exception) -> None:
        self._fail(exc)
        if self._transport is not None:
            self._transport.abort()

    def _fail(self, exc: Exception) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        if self._transport is not None:
            self._transport.close()

    def _feed(self, data: memoryview) -> None:
        if self._waiter is None or self._waiter.done():
            raise ResponseError("bytes arrived with no request waiting")
        if self._head is None:
            self._head_bytes += data
            end = self._head_bytes.find(b"\r\n\r\n")
            if end < 0:
                if len(self._head_bytes) > _MAX_HEAD_BYTES:
                    raise ResponseError("response head too large")
                return
            head = self._head = parse_head(bytes(self._head_bytes[:end]))
            rest = memoryview(bytes(self._head_bytes[end + 4 :]))
            self._head_bytes.clear()
            if self._no_body or head.status in _NO_BODY_STATUSES or 100 <= head.status < 200:
                if 100 <= head.status < 200:
                    raise ResponseError(f"unexpected interim answer {head.status}")
                self._finish()
                return
            if not 200 <= head.status < 300:
                self._sink = None  # an error's body is kept for the caller
            if head.chunked:
                self._chunks = _Chunks()
            elif head.length is not None:
                self._left = head.length
                if self._left == 0:
                    self._finish()
                    return
            else:
                self._until_close = True
            data = rest
            if not data:
                return
        if self._chunks is not None:
            pieces, ended = self._chunks.feed(data)
            for piece in pieces:
                self._take(piece)
            if ended:
                self._finish()
            return
        if self._until_close:
            self._take(data)
            return
        if len(data) > self._left:
            raise ResponseError("more bytes than the answer's Content-Length")
        self._take(data)
        self._left -= len(data)
        if self._left == 0:
            self._finish()

    def _take(self, data: memoryview) -> None:
        if self._sink is not None:
            self._sink(data)
        else:
            self._body += data

    def _finish(self) -> None:
        head, waiter = self._head, self._waiter
        assert head is not None and waiter is not None
        self._head, self._chunks = None, None
        body, self._body = bytes(self._body), bytearray()
        if self._until_close or head.headers.get("connection", "").lower() == "close":
            self._until_close = False
            self.closed = True
            if self._transport is not None:
                self._transport.close()
        if not waiter.done():
            waiter.set_result(Response(head.status, head.headers, body))


class Pool:
    """Keep-alive connections to one ``host:port``, at most ``limit`` at once."""

    def __init__(self, host: str, port: int, limit: int, read_timeout_s: float) -> None:
        self._host, self._port = host, port
        self._open: set[Connection] = set()  # every connection not known to be closed
        self._idle: list[Connection] = []  # those of them between requests
        self._slots = asyncio.Semaphore(limit)
        self._read_timeout_s = read_timeout_s

    async def request(
        self,
        head: bytes,
        body: bytes | memoryview | None = None,
        no_body: bool = False,
        sink: Sink | None = None,
    ) -> Response:
        """One exchange on an idle connection (or a new one). A kept-alive connection the
        server closed before answering anything is replaced once (the request is resent)."""
        async with self._slots:
            for attempt in range(2):
                conn, reused = await self._connection()
                try:
                    response = await self._bounded(conn, head, body, no_body, sink)
                except OSError as exc:  # ConnectionError; TimeoutError (no retry) too
                    self._open.discard(conn)
                    stale = reused and not conn.received_any and not isinstance(exc, TimeoutError)
                    if attempt == 0 and stale:
                        continue
                    raise
                except BaseException:
                    self._open.discard(conn)
                    conn.abort(ConnectionResetError("request abandoned"))
                    raise
                if conn.closed:
                    self._open.discard(conn)
                else:
                    self._idle.append(conn)
                return response
            raise AssertionError("unreachable")

    async def _connection(self) -> tuple[Connection, bool]:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn, True
            self._open.discard(conn)
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: Connection(loop), self._host, self._port)
        self._open.add(conn)
        return conn, False

    async def _bounded(
        self,
        conn: Connection,
        head: bytes,
        body: bytes | memoryview | None,
        no_body: bool,
        sink: Sink | None,
    ) -> Response:
        """The exchange, failed with TimeoutError once nothing arrived for read_timeout_s."""
        loop = asyncio.get_running_loop()
        timeout = self._read_timeout_s
        timer: asyncio.TimerHandle | None = None  # rearmed by check while bytes still come

        def check() -> None:
            nonlocal timer
            quiet = loop.time() - conn.last_read
            if quiet >= timeout:
                conn.abort(TimeoutError(f"no answer for {timeout:.0f} s"))
            else:
                timer = loop.call_later(timeout - quiet, check)

        timer = loop.call_later(timeout, check)
        try:
            return await conn.exchange(head, body, no_body, sink)
        finally:
            timer.cancel()

    def close(self) -> None:
        for conn in self._open:  # the idle ones among them
            conn.abort(ConnectionResetError("client closed"))
        self._open.clear()
        self._idle.clear()
