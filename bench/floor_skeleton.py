"""Measuring the small-operation floor: the skeleton of one S3 request as the cluster serves it
(client -> gateway -> one message to each node that holds the object's shards -> answers ->
response) with no work in any process: no HTTP parsing, auth, JSON, index, fsync or coding.

Each process is a child (``forkserver``, like ``bench.floor_measure``) running a uvloop
``asyncio.Protocol`` over loopback TCP that exchanges length-prefixed frames of the sizes the
real operation moves. The gateway batches like Huimin's ``NodeClient`` (one batch in flight per
node; calls that arrive meanwhile go together in the next), each node answers a batch with one
frame. Every child reports its own ``getrusage`` around the timed window only, so the figures
hold on a shared box. What remains is the kernel's and the event loop's cost of the messages:
the least any Python implementation of this process layout can spend per operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection
from typing import Any, cast

import uvloop

from bench.floor_measure import CONGESTION, Log, child_process, cpu_s
from bench.ops_floor import OpShape
from storage.tcp import set_congestion

_LEN = struct.Struct("!I")
_COUNT = struct.Struct("!I")
_TIMEOUT_S = 120.0


class _Framed(asyncio.Protocol):
    """Length-prefixed frames; ``on_frame(self, payload)`` for each complete one."""

    def __init__(self, on_frame: Callable[[_Framed, bytes], None]) -> None:
        self._buf = bytearray()
        self._on_frame = on_frame
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._buf += data
        while len(self._buf) >= _LEN.size:
            (n,) = _LEN.unpack_from(self._buf)
            if len(self._buf) < _LEN.size + n:
                return
            payload = bytes(self._buf[_LEN.size : _LEN.size + n])
            del self._buf[: _LEN.size + n]
            self._on_frame(self, payload)

    def send(self, payload: bytes) -> None:
        assert self.transport is not None
        self.transport.write(_LEN.pack(len(payload)) + payload)


def _returning(proto: _Framed) -> Callable[[], _Framed]:
    """A protocol factory for one connection made with ``proto``."""
    return lambda: proto


async def _serve_commands(conn: Connection, state: dict[str, Any]) -> None:
    """Answer the parent's ``"cpu"`` with this process's CPU seconds until ``"stop"``."""
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "stop":
            return
        conn.send(cpu_s() if command == "cpu" else state.get(command))


def _node_main(conn: Connection, shape: OpShape) -> None:
    answer = b"n" * shape.node_answer_bytes

    def on_frame(proto: _Framed, payload: bytes) -> None:
        (count,) = _COUNT.unpack_from(payload)
        proto.send(answer * count)

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(
            lambda: _Framed(on_frame), "127.0.0.1", 0
        )
        set_congestion(server.sockets[0], CONGESTION)  # as a node's listener
        conn.send(server.sockets[0].getsockname()[1])
        await _serve_commands(conn, {})

    uvloop.run(main())


class _NodeLink:
    """The gateway's end of one node: one batch in flight, the rest queued for the next."""

    def __init__(self, shape: OpShape) -> None:
        self._request = b"g" * shape.node_request_bytes
        self._in_flight: list[asyncio.Future[None]] = []
        self._queued: list[asyncio.Future[None]] = []
        self.proto = _Framed(self._answered)

    def call(self) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append(future)
        if not self._in_flight:
            self._flush()
        return future

    def _flush(self) -> None:
        self._in_flight, self._queued = self._queued, []
        count = len(self._in_flight)
        self.proto.send(_COUNT.pack(count) + self._request * count)

    def _answered(self, _: _Framed, __: bytes) -> None:
        for future in self._in_flight:
            future.set_result(None)
        self._in_flight = []
        if self._queued:
            self._flush()


def _gateway_main(conn: Connection, shape: OpShape, node_ports: list[int]) -> None:
    response = b"r" * shape.response_bytes

    async def main() -> None:
        loop = asyncio.get_running_loop()
        links = [_NodeLink(shape) for _ in node_ports]
        for link, port in zip(links, node_ports, strict=True):
            transport, _ = await loop.create_connection(_returning(link.proto), "127.0.0.1", port)
            set_congestion(transport.get_extra_info("socket"), CONGESTION)

        def on_frame(proto: _Framed, _: bytes) -> None:
            answers = asyncio.gather(*(link.call() for link in links))
            answers.add_done_callback(lambda _: proto.send(response))

        server = await loop.create_server(lambda: _Framed(on_frame), "127.0.0.1", 0)
        conn.send(server.sockets[0].getsockname()[1])
        await _serve_commands(conn, {})

    uvloop.run(main())


def _client_main(conn: Connection, shape: OpShape, port: int, count: int, concurrency: int) -> None:
    request = b"c" * shape.request_bytes

    async def main() -> None:
        loop = asyncio.get_running_loop()
        links: list[tuple[_Framed, list[asyncio.Future[None]]]] = []
        for _ in range(concurrency):
            waiting: list[asyncio.Future[None]] = []

            def on_frame(
                _: _Framed, __: bytes, waiting: list[asyncio.Future[None]] = waiting
            ) -> None:
                waiting.pop(0).set_result(None)

            proto = _Framed(on_frame)
            await loop.create_connection(_returning(proto), "127.0.0.1", port)
            links.append((proto, waiting))
        left = [count]

        async def worker(proto: _Framed, waiting: list[asyncio.Future[None]]) -> None:
            while left[0] > 0:
                left[0] -= 1
                future: asyncio.Future[None] = loop.create_future()
                waiting.append(future)
                proto.send(request)
                await future

        conn.send("ready")
        conn.recv()  # go
        started, before = time.perf_counter(), cpu_s()
        await asyncio.gather(*(worker(p, w) for p, w in links))
        conn.send({"wall_s": time.perf_counter() - started, "cpu_s": cpu_s() - before})

    uvloop.run(main())


@contextlib.contextmanager
def _servers(shape: OpShape) -> Iterator[tuple[int, list[Any]]]:
    """Nodes and a gateway, up: (the gateway's port, their children)."""
    with contextlib.ExitStack() as stack:
        nodes = [stack.enter_context(child_process(_node_main, shape)) for _ in range(shape.nodes)]
        ports = [int(n.result(60, "a skeleton node")) for n in nodes]
        gateway = stack.enter_context(child_process(_gateway_main, shape, ports))
        port = int(gateway.result(60, "the skeleton gateway"))
        try:
            yield port, [gateway, *nodes]
        finally:
            for server in (gateway, *nodes):
                with contextlib.suppress(OSError):
                    server.conn.send("stop")


def measure_skeleton(shape: OpShape, count: int, concurrency: int) -> dict[str, float]:
    """``count`` operations of ``shape`` at ``concurrency``: CPU microseconds per operation of
    the client, the gateway and the nodes together, and operations per second."""
    with (
        _servers(shape) as (port, servers),
        child_process(_client_main, shape, port, count, concurrency) as client,
    ):
        client.result(60, "the skeleton client")
        cpu_before = []
        for server in servers:
            server.conn.send("cpu")
            cpu_before.append(float(server.result(10, "a skeleton server")))
        client.conn.send("go")
        done = client.result(_TIMEOUT_S, "the skeleton client")
        cpu_after = []
        for server in servers:
            server.conn.send("cpu")
            cpu_after.append(float(server.result(10, "a skeleton server")))
    spent = [after - before for before, after in zip(cpu_before, cpu_after, strict=True)]
    per_op = 1e6 / count
    return {
        "client_us": done["cpu_s"] * per_op,
        "gateway_us": spent[0] * per_op,
        "nodes_us": sum(spent[1:]) * per_op,
        "ops_per_s": count / done["wall_s"],
    }


def measure_ops_floor(
    shapes: Sequence[OpShape], count: int, concurrency: int, repeats: int, log: Log
) -> dict[str, list[dict[str, float]]]:
    """Each operation's skeleton, ``repeats`` times."""
    samples: dict[str, list[dict[str, float]]] = {}
    for n in range(repeats):
        log(f"  floor: small-operation skeletons, repeat {n + 1}/{repeats}")
        for shape in shapes:
            samples.setdefault(shape.op, []).append(measure_skeleton(shape, count, concurrency))
    return samples
