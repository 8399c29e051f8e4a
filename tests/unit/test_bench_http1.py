"""The benchmark's HTTP/1.1 client (``bench.http1``) against real sockets: a scripted server
that answers each request with given bytes, so every framing and failure is exact."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence

import pytest

from bench import http1
from storage.shard_connection import request_bytes


class _Scripted:
    """A server answering the n-th request it reads (on any connection) with ``script[n]``;
    None closes that connection without answering, as does any n in ``close_after`` once
    answered. ``seen``: the requests it read."""

    def __init__(self, script: Sequence[bytes | None], close_after: frozenset[int]) -> None:
        self.script, self.close_after = script, close_after
        self.seen: list[bytes] = []
        self.connections = 0
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()
        # Aborted and closed transports finish in loop callbacks; let them run before the loop
        # ends, or their sockets are reported unclosed (ResourceWarning, an error here).
        await asyncio.sleep(0.01)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                self.seen.append(head + await reader.readexactly(length))
                n = len(self.seen) - 1
                answer = self.script[n]
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if n in self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


def _run(
    script: Sequence[bytes | None],
    requests: Callable[[http1.Pool], Awaitable[object]],
    read_timeout_s: float = 5,
    close_after: frozenset[int] = frozenset(),
    connections: list[int] | None = None,
) -> tuple[object, list[bytes]]:
    """``requests`` against a scripted server; what it returned, and the requests the server
    read (``connections``, if given, gets how many connections it accepted)."""

    async def main() -> tuple[object, list[bytes]]:
        server = _Scripted(script, close_after)
        pool = http1.Pool("127.0.0.1", await server.start(), 2, read_timeout_s)
        try:
            return await requests(pool), server.seen
        finally:
            if connections is not None:
                connections.append(server.connections)
            pool.close()
            await server.close()

    return asyncio.run(main())


GET = request_bytes("h", "/b/k", {})


def test_content_length_answers_on_one_kept_alive_connection() -> None:
    ok = b'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: "e"\r\n\r\nhello'

    async def two(pool: http1.Pool) -> list[http1.Response]:
        return [await pool.request(GET), await pool.request(GET)]

    answers, seen = _run([ok, ok], two)
    assert answers == [http1.Response(200, {"content-length": "5", "etag": '"e"'}, b"hello")] * 2
    assert seen == [GET, GET]


def test_a_body_goes_out_with_its_head() -> None:
    put = request_bytes("h", "/b/k", {"Content-Length": "3"}, "PUT")

    async def one(pool: http1.Pool) -> http1.Response:
        return await pool.request(put, b"abc")

    answer, seen = _run([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"], one)
    assert isinstance(answer, http1.Response) and answer.status == 200
    assert seen == [put + b"abc"]


def test_a_sink_gets_a_2xx_body_in_slices_and_the_answer_keeps_none() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB: several reads of the protocol's buffer
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    md5 = hashlib.md5()
    sizes: list[int] = []

    def sink(piece: memoryview) -> None:
        md5.update(piece)
        sizes.append(len(piece))

    async def one(pool: http1.Pool) -> http1.Response:
        return await pool.request(GET, sink=sink)

    answer, _ = _run([ok], one)
    assert isinstance(answer, http1.Response) and answer.body == b""
    assert md5.digest() == hashlib.md5(body).digest() and sum(sizes) == len(body)


def test_an_error_answer_keeps_its_body_even_with_a_sink() -> None:
    xml = b"<Error><Code>NoSuchKey</Code></Error>"
    answer_bytes = b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n" % len(xml) + xml

    async def one(pool: http1.Pool) -> http1.Response:
        return await pool.request(GET, sink=lambda piece: pytest.fail("sink called"))

    answer, _ = _run([answer_bytes], one)
    assert isinstance(answer, http1.Response) and (answer.status, answer.body) == (404, xml)


def test_chunked_answers_are_decoded_and_the_connection_kept() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    async def two(pool: http1.Pool) -> list[bytes]:
        return [(await pool.request(GET)).body, (await pool.request(GET)).body]

    bodies, seen = _run([chunked, ok], two)
    assert bodies == [b"hello world", b"ok"] and len(seen) == 2


def test_head_and_204_answers_have_no_body_whatever_their_length_says() -> None:
    head = request_bytes("h", "/b/k", {}, "HEAD")
    answers = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
    ]

    async def three(pool: http1.Pool) -> list[tuple[int, str, bytes]]:
        out = []
        for request, no_body in ((head, True), (GET, False), (GET, False)):
            r = await pool.request(request, no_body=no_body)
            out.append((r.status, r.headers.get("content-length", ""), r.body))
        return out

    connections: list[int] = []
    got, _ = _run(answers, three, connections=connections)
    assert got == [(200, "4096", b""), (204, "", b""), (200, "1", b"x")]
    assert connections == [1]  # none of them ended the connection


def test_an_answer_framed_by_the_connection_end_and_connection_close() -> None:
    answers = [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na",
        b"HTTP/1.1 200 OK\r\n\r\nuntil the end",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ]

    async def three(pool: http1.Pool) -> list[bytes]:
        return [(await pool.request(GET)).body for _ in range(3)]

    # Each answer but the last ends its connection: every request goes on a new one.
    bodies, seen = _run(answers, three, close_after=frozenset({1}))
    assert bodies == [b"a", b"until the end", b"ok"] and len(seen) == 3


def test_a_kept_alive_connection_the_server_dropped_is_replaced_once() -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    async def two(pool: http1.Pool) -> list[bytes]:
        return [(await pool.request(GET)).body, (await pool.request(GET)).body]

    # The second request's first try is read and dropped unanswered: sent again on a new one.
    bodies, seen = _run([ok, None, ok], two)
    assert bodies == [b"ok", b"ok"] and seen == [GET, GET, GET]


def test_a_new_connection_dropped_unanswered_fails() -> None:
    async def one(pool: http1.Pool) -> http1.Response:
        return await pool.request(GET)

    with pytest.raises(ConnectionError):
        _run([None], one)


def test_silence_fails_the_request_after_the_read_timeout() -> None:
    async def one(pool: http1.Pool) -> http1.Response:
        return await pool.request(GET)

    # An answer whose body never completes: 10 bytes promised, 2 sent.
    with pytest.raises(TimeoutError):
        _run([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab"], one, read_timeout_s=0.3)


@pytest.mark.parametrize(
    "answer",
    [
        b"SPDY/3 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\ntoo long",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
def test_malformed_answers_fail_the_request(answer: bytes) -> None:
    async def one(pool: http1.Pool) -> http1.Response:
        return await pool.request(GET)

    with pytest.raises(http1.ResponseError):
        _run([answer], one)
