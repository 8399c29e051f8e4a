"""The gateway's liveness probe of a node (NodeClient.answers) over real sockets: a live node
is not declared unresponsive because this gateway's own event loop stalled (overload), a hung
node is, and a refused connection is an answer at once. The "node" here serves only the
liveness route, from a thread of its own, so that it keeps answering while the gateway's
loop is blocked."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
import uvloop
from aiohttp import web

from storage import node_protocol as proto
from storage import remote_drive
from storage.remote_drive import NodeClient, Timeouts

IDENTITY = proto.ClusterIdentity("dep-1", 1, "s3cret")
PROBE_S = 0.2


@contextmanager
def live_endpoint(delays: list[float]) -> Iterator[str]:
    """A server in its own thread whose n-th liveness answer waits delays[n] seconds (the
    last delay repeats); yields its base URL."""
    loop = asyncio.new_event_loop()
    served = 0

    async def live(request: web.Request) -> web.StreamResponse:
        nonlocal served
        delay = delays[min(served, len(delays) - 1)]
        served += 1
        await asyncio.sleep(delay)
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/_huimin/health/live", live)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def answers(base: str, stall_s: float = 0.0) -> tuple[bool, float]:
    """NodeClient.answers(base), with this (the gateway's) loop blocked for ``stall_s`` right
    after the probe went out; returns the answer and the seconds it took."""

    async def go() -> tuple[bool, float]:
        client = NodeClient(IDENTITY, Timeouts(rpc_s=1.0, probe_s=PROBE_S))
        try:
            start = time.monotonic()
            probe = asyncio.ensure_future(client.answers(base))
            await asyncio.sleep(0.005)  # the probe is on its way (connecting)
            time.sleep(stall_s)  # the overloaded gateway: nothing runs on this loop
            return await probe, time.monotonic() - start
        finally:
            await client.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # as the gateway runs
        return runner.run(go())


def test_a_live_node_answers() -> None:
    with live_endpoint([0.0]) as base:
        assert answers(base)[0]


def test_a_stalled_gateway_loop_does_not_make_a_live_node_unresponsive() -> None:
    # The answer arrives while this loop is blocked past probe_s; when the loop runs again,
    # the probe's timer fires before the answer is read. A second probe settles it.
    with live_endpoint([0.0]) as base:
        assert answers(base, stall_s=3 * PROBE_S)[0]


def test_one_slow_answer_is_not_unresponsive() -> None:
    with live_endpoint([3 * PROBE_S, 0.0]) as base:
        assert answers(base)[0]


def test_a_hung_node_is_unresponsive_after_two_probes() -> None:
    with live_endpoint([5 * PROBE_S]) as base:
        ok, took = answers(base)
    assert not ok
    assert took >= remote_drive.LIVENESS_PROBES * PROBE_S


def test_a_refused_connection_is_no_answer() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert not answers(f"http://127.0.0.1:{port}")[0]


def test_connection_timeouts_do_not_mark_a_node_down() -> None:
    # aiohttp's connection timeout is a ClientConnectionError as well as a TimeoutError: only
    # the liveness probe may call a slow node down; refused or broken connections do at once.
    assert not remote_drive._broken(aiohttp.ConnectionTimeoutError("slow connect"))
    assert not remote_drive._broken(TimeoutError())
    assert remote_drive._broken(aiohttp.ServerDisconnectedError())
    assert remote_drive._broken(ConnectionRefusedError())
