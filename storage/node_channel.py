"""The gateway's end of a node's RPC channel: one WebSocket per node carrying batches of drive
calls, answered out of order and matched by batch id.

An HTTP request costs a few hundred microseconds of Python on each side (aiohttp client and
server); a WebSocket message costs tens. The channel is authenticated once, by the signed
upgrade request; TLS wraps it like any other node connection. When the connection breaks,
every batch waiting on it fails with a connection error (the node is then marked down and
probed like after any broken connection) and the next batch opens a new channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp

from storage import node_protocol as proto

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 256 * 1024 * 1024  # a listing page or a batch of inline objects


class ChannelClosed(aiohttp.ClientConnectionError):
    """The channel broke (node restarted, connection reset) before a batch was answered."""


class NodeChannel:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count()
        self._waiting: dict[int, asyncio.Future[list[Any]]] = {}
        self._closed = False
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(
        cls, session: aiohttp.ClientSession, url: str, headers: dict[str, str]
    ) -> NodeChannel:
        ws = await session.ws_connect(
            url, headers=headers, max_msg_size=MAX_MESSAGE_BYTES, compress=0, autoping=True
        )
        return cls(ws)

    @property
    def closed(self) -> bool:
        return self._closed

    async def call(self, calls: Sequence[tuple[str, str, Any]]) -> list[Any]:
        """Send one batch and wait for its results (one per call, in order)."""
        if self.closed:
            raise ChannelClosed("node channel closed")
        batch_id = next(self._ids)
        answer: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting[batch_id] = answer
        try:
            await self._ws.send_bytes(proto.encode_batch(calls, batch_id))
            return await answer
        finally:
            self._waiting.pop(batch_id, None)

    async def _read(self) -> None:
        try:
            async for msg in self._ws:
                if msg.type != aiohttp.WSMsgType.BINARY:
                    break
                doc = proto.decode_message(msg.data)
                answer = self._waiting.pop(doc["id"], None)
                if answer is not None and not answer.done():
                    answer.set_result(doc["results"])
        except Exception as exc:  # a garbled answer: drop the channel, callers retry on a new one
            log.warning("node channel failed: %r", exc)
        finally:
            # Closed before anything awaits: no new batch may wait on a reader that is gone.
            self._closed = True
            for answer in self._waiting.values():
                if not answer.done():
                    answer.set_exception(ChannelClosed("node channel closed"))
            self._waiting.clear()
            with contextlib.suppress(TimeoutError):  # a dead peer never answers the handshake
                async with asyncio.timeout(1.0):
                    await self._ws.close()

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader


class Channels:
    """Open channels by node base URL; concurrent callers share one connection attempt."""

    def __init__(self, connect: Callable[[str], Awaitable[NodeChannel]]) -> None:
        self._connect = connect
        self._channels: dict[str, asyncio.Future[NodeChannel]] = {}
        self._closing: set[asyncio.Future[None]] = set()

    def ready(self, base: str) -> NodeChannel | None:
        """The node's channel if it is open: most batches need no coroutine to get it."""
        opening = self._channels.get(base)
        if opening is None or not _opened(opening):
            return None
        channel = opening.result()
        return None if channel.closed else channel

    async def get(self, base: str) -> NodeChannel:
        opening = self._channels.get(base)
        if opening is not None and opening.done():
            if _opened(opening) and not opening.result().closed:
                return opening.result()
            opening = None
        if opening is None:
            opening = asyncio.ensure_future(self._connect(base))
            self._channels[base] = opening
        try:
            return await asyncio.shield(opening)
        except BaseException:
            if self._channels.get(base) is opening and opening.done():
                del self._channels[base]  # failed: the next call tries again
            raise

    def drop(self, base: str) -> None:
        """Forget (and close) the channel to a node marked down: waiting batches fail now. A
        channel still opening is closed once open (never cancelled: callers share it)."""
        opening = self._channels.pop(base, None)
        if opening is None:
            return
        if opening.done():
            self._close(opening)
        else:
            opening.add_done_callback(self._close)

    def _close(self, opening: asyncio.Future[NodeChannel]) -> None:
        if _opened(opening):
            task = asyncio.ensure_future(opening.result().close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        for base in list(self._channels):
            self.drop(base)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


def _opened(opening: asyncio.Future[NodeChannel]) -> bool:
    return opening.done() and not opening.cancelled() and opening.exception() is None
