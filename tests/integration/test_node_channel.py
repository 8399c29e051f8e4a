"""The node RPC channel over real sockets: a NodeServer over a real LocalDrive in a temp folder,
reached by the gateway's NodeClient/RemoteDrive. Authentication of the upgrade, batching,
errors crossing the wire, and a node going away mid-channel."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from storage import node_protocol as proto
from storage.errors import DriveError, DriveNotFound
from storage.local_drive import LocalDrive
from storage.node_server import NodeServer
from storage.records import BucketRecord
from storage.remote_drive import NodeClient, RemoteDrive, Timeouts
from tests.records import small_record

IDENTITY = proto.ClusterIdentity("dep-1", 1, "s3cret")
CHANNEL = proto.PREFIX + "/channel"


@asynccontextmanager
async def node(tmp_path: Path, port: int = 0) -> AsyncIterator[tuple[str, NodeServer]]:
    executor = ThreadPoolExecutor(4)
    drive = LocalDrive(tmp_path / "d1", executor)
    server = NodeServer("n1", {"d1": drive}, IDENTITY)
    runner = web.AppRunner(server.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    sockets = site._server.sockets  # type: ignore[union-attr]
    try:
        yield f"127.0.0.1:{sockets[0].getsockname()[1]}", server
    finally:
        await runner.cleanup()
        drive.close()
        executor.shutdown()


@asynccontextmanager
async def remote(
    address: str, drive: str = "d1", client: NodeClient | None = None
) -> AsyncIterator[RemoteDrive]:
    """A remote drive on the node at ``address``; its client closed however the test ends."""
    client = client or NodeClient(IDENTITY)
    try:
        yield RemoteDrive(client, address, "n1", drive)
    finally:
        await client.close()


def run(fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(fn())


@pytest.mark.parametrize(
    ("identity", "status"),
    [
        (None, 401),  # unsigned
        (proto.ClusterIdentity("dep-1", 1, "wrong secret"), 401),
        (proto.ClusterIdentity("dep-2", 1, "s3cret"), 409),  # another deployment
        (proto.ClusterIdentity("dep-1", 2, "s3cret"), 409),  # another topology version
    ],
)
def test_the_channel_upgrade_must_be_signed_for_this_cluster(
    tmp_path: Path, identity: proto.ClusterIdentity | None, status: int
) -> None:
    async def go() -> None:
        async with node(tmp_path) as (address, _), aiohttp.ClientSession() as session:
            headers = {}
            if identity is not None:
                headers = proto.sign_headers(identity, "GET", CHANNEL, _now_ms())
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(f"http://{address}{CHANNEL}", headers=headers)
            assert refused.value.status == status

    run(go)


def test_calls_batch_and_errors_cross_the_wire(tmp_path: Path) -> None:
    async def go() -> None:
        async with node(tmp_path) as (address, _):
            client = NodeClient(IDENTITY)
            drive = RemoteDrive(client, address, "n1", "d1")
            try:
                await drive.make_bucket(BucketRecord("bkt", 1, "me"))
                # Twenty calls made in one turn: one message, twenty answers in order.
                names = await asyncio.gather(
                    *(drive.get_bucket("bkt") for _ in range(10)),
                    *(drive.info() for _ in range(10)),
                )
                assert [getattr(n, "name", None) for n in names[:10]] == ["bkt"] * 10
                with pytest.raises(DriveNotFound):
                    await drive.get_bucket("missing")
                with pytest.raises(DriveError, match="no such drive"):
                    await RemoteDrive(client, address, "n1", "nope").info()
                # A malformed batch closes the channel; the next call opens a new one.
                channel = await client._channels.get(drive.base)
                await channel._ws.send_bytes(b'{"nonsense": true}')
                await asyncio.sleep(0.2)
                assert channel.closed
                client.down.clear()
                assert (await drive.get_bucket("bkt")).name == "bkt"
            finally:
                await client.close()

    run(go)


def test_versions_cross_with_their_inline_shard_or_without_it(tmp_path: Path) -> None:
    """A GET's read takes each version's inline shard; a HEAD's (inline=False) leaves it on the
    node and gets the same records otherwise."""

    async def go() -> None:
        async with node(tmp_path) as (address, _), remote(address) as drive:
            await drive.make_bucket(BucketRecord("b", 1, "me"))
            record = small_record("k")
            assert await drive.commit_object(record, []) is False
            assert await drive.get_versions("b", "k") == [record]
            bare = await drive.get_versions("b", "k", inline=False)
            assert bare == [dataclasses.replace(record, inline=None)]

    run(go)


def test_a_node_gone_mid_channel_fails_calls_and_comes_back(tmp_path: Path) -> None:
    async def go() -> None:
        client = NodeClient(IDENTITY, Timeouts(rpc_s=1.0, probe_s=0.2))
        try:
            async with node(tmp_path) as (address, _):
                drive = RemoteDrive(client, address, "n1", "d1")
                await drive.make_bucket(BucketRecord("bkt", 1, "me"))
            port = int(address.rsplit(":", 1)[1])
            # The node is gone: the open channel breaks, the node is marked down.
            with pytest.raises(DriveError):
                await drive.get_bucket("bkt")
            assert drive.base in client.down
            async with node(tmp_path, port):  # back on the same port with the same drive
                for _ in range(50):
                    if drive.base not in client.down:
                        break
                    await asyncio.sleep(0.1)
                assert (await drive.get_bucket("bkt")).name == "bkt"
        finally:
            await client.close()

    run(go)


def _now_ms() -> int:
    return int(time.time() * 1000)
