"""NodeClient.bounded (storage/remote_drive.py): IO with a node waits while the node answers
its liveness probe, up to io_s; a node that does not answer fails the wait at once and is
marked down. Probes are faked: no sockets."""

from __future__ import annotations

import asyncio
import time

import pytest

from storage import node_protocol as proto
from storage.remote_drive import NodeClient, NodeUnresponsive, Timeouts

BASE = "http://n1"


def client(alive: bool) -> NodeClient:
    c = NodeClient(proto.ClusterIdentity("dep", 1, "s"), Timeouts(rpc_s=0.05, io_s=0.3))
    probes: list[str] = []

    async def answers(base: str) -> bool:
        probes.append(base)
        return alive

    c.answers = answers  # type: ignore[method-assign]  # a test double
    c.mark_down = lambda base: c.down.add(base)  # type: ignore[method-assign]  # no probe task
    return c


def test_an_answer_in_time_is_returned() -> None:
    async def go() -> None:
        c = client(alive=False)
        assert await c.bounded(BASE, asyncio.sleep(0.01, "answer")) == "answer"
        await asyncio.sleep(0.1)  # the timer was disarmed: nothing marks the node down later
        assert BASE not in c.down
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]

    asyncio.run(go())


def test_a_node_that_does_not_answer_its_probe_fails_the_wait_and_is_marked_down() -> None:
    async def go() -> None:
        c = client(alive=False)
        start = time.monotonic()
        with pytest.raises(NodeUnresponsive):
            await c.bounded(BASE, asyncio.sleep(10))
        assert time.monotonic() - start < 1.0
        assert BASE in c.down
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]

    asyncio.run(go())


def test_a_live_but_slow_node_gets_io_s() -> None:
    async def go() -> None:
        c = client(alive=True)
        start = time.monotonic()
        assert await c.bounded(BASE, asyncio.sleep(0.2, "late")) == "late"
        with pytest.raises(TimeoutError) as raised:
            await c.bounded(BASE, asyncio.sleep(10))
        assert not isinstance(raised.value, NodeUnresponsive)
        assert 0.3 <= time.monotonic() - start - 0.2 < 1.5
        assert BASE not in c.down

    asyncio.run(go())


def test_a_cancelled_caller_is_cancelled_not_failed() -> None:
    async def go() -> None:
        c = client(alive=False)
        task = asyncio.ensure_future(c.bounded(BASE, asyncio.sleep(10)))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.1)
        assert BASE not in c.down  # the timer went with the caller

    asyncio.run(go())
