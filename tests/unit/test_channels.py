"""storage.node_channel.Channels: sharing and dropping a node's channel (no sockets)."""

from __future__ import annotations

import asyncio
from typing import cast

from storage.node_channel import Channels, NodeChannel


class FakeChannel:
    closed = False

    def __init__(self) -> None:
        self.closes = 0

    async def close(self) -> None:
        self.closes += 1


def test_a_channel_dropped_while_opening_is_closed_once_open_and_its_callers_get_it() -> None:
    """A node marked down while a batch waits for its channel to open: the waiting batch must
    get an answer (here the channel; a dead node's connect fails), never a cancellation that
    leaves its callers waiting forever."""

    async def go() -> None:
        release = asyncio.Event()
        fake = FakeChannel()
        channel = cast(NodeChannel, fake)

        async def connect(base: str) -> NodeChannel:
            await release.wait()
            return channel

        channels = Channels(connect)
        waiter = asyncio.ensure_future(channels.get("node-a"))
        await asyncio.sleep(0)
        channels.drop("node-a")
        release.set()
        assert await waiter is channel
        await asyncio.sleep(0)
        assert fake.closes == 1
        # The next caller opens a new channel.
        release.clear()
        again = asyncio.ensure_future(channels.get("node-a"))
        await asyncio.sleep(0)
        assert not again.done()
        release.set()
        assert await again is channel

    asyncio.run(go())
