"""storage.shard_upload: a shard sent to a real node server from a worker thread over a plain
socket, as a large PUT's encoder sends it; its answer, its errors, aborts and a stalled node."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from storage import node_protocol as proto
from storage.errors import DriveError
from storage.remote_drive import NodeClient, RemoteDrive, Timeouts
from storage.shard_upload import ShardUpload
from tests.integration.test_node_channel import IDENTITY, node, remote

MIB = 1024 * 1024
DATA_ID = "cd" * 16


def staged(tmp_path: Path) -> list[str]:
    return os.listdir(tmp_path / "d1" / "tmp")


async def nothing_staged(tmp_path: Path) -> bool:
    """Whether the staged files are gone within 5 s (a node drops a cut-off shard once its
    receiving thread sees the connection end)."""
    for _ in range(100):
        if not staged(tmp_path):
            return True
        await asyncio.sleep(0.05)
    return False


async def upload(
    drive: RemoteDrive, pieces: Sequence[bytes | memoryview], size: int, data_id: str = DATA_ID
) -> ShardUpload:
    writer = await drive.create_shard(data_id, size)
    assert isinstance(writer, ShardUpload)
    for at in range(0, len(pieces), 3):  # a block's frames: several pieces per write
        await asyncio.to_thread(writer.write_blocking, pieces[at : at + 3])
    return writer


@pytest.mark.parametrize("size", [3 * MIB + 17, 200_000])  # read off the socket, or parsed
def test_a_shard_sent_in_pieces_lands_intact(tmp_path: Path, size: int) -> None:
    body = os.urandom(size)
    pieces = [body[at : at + 70_001] for at in range(0, size, 70_001)]

    async def go() -> None:
        async with node(tmp_path) as (address, _), remote(address) as drive:
            writer = await upload(drive, [memoryview(p) for p in pieces], size)
            await writer.finish()
            assert (tmp_path / "d1" / "tmp" / DATA_ID).read_bytes() == body

    asyncio.run(go())


def test_the_nodes_error_is_the_callers(tmp_path: Path) -> None:
    async def go() -> None:
        async with node(tmp_path) as (address, _), remote(address, "no-such-drive") as drive:
            writer = await drive.create_shard(DATA_ID, 10)
            with pytest.raises(DriveError):
                await writer.write([b"0123456789"])
                await writer.finish()

    asyncio.run(go())


def test_more_or_fewer_bytes_than_declared_fail(tmp_path: Path) -> None:
    async def go() -> None:
        async with node(tmp_path) as (address, _), remote(address) as drive:
            longer = await drive.create_shard(DATA_ID, 4)
            with pytest.raises(DriveError, match="longer"):
                await longer.write([b"12345"])
            await longer.abort()
            shorter = await drive.create_shard(DATA_ID, 4)
            await shorter.write([b"12"])
            with pytest.raises(DriveError, match="ended at 2 of 4"):
                await shorter.finish()
            await shorter.abort()
            assert await nothing_staged(tmp_path)

    asyncio.run(go())


def test_an_abort_midway_or_after_finish_leaves_no_staged_file(tmp_path: Path) -> None:
    async def go() -> None:
        async with node(tmp_path) as (address, _), remote(address) as drive:
            midway = await upload(drive, [os.urandom(MIB)] * 2, 4 * MIB, "01" * 16)
            await midway.abort()
            with pytest.raises(DriveError):  # nothing more goes out on it
                await midway.write([b"x"])
            finished = await upload(drive, [os.urandom(MIB)] * 2, 2 * MIB)
            await finished.finish()
            assert DATA_ID in staged(tmp_path)
            await finished.abort()  # a commit that failed: the finished shard is discarded
            assert await nothing_staged(tmp_path)

    asyncio.run(go())


def test_a_node_that_stops_reading_and_answering_fails_the_send_and_is_marked_down() -> None:
    # A listening socket nobody reads from: sends fill the buffers and block, and the
    # liveness probe (faked: no answer) fails them within rpc_s, then marks the node down.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        address = f"127.0.0.1:{listener.getsockname()[1]}"

        async def go() -> None:
            client = NodeClient(
                proto.ClusterIdentity("dep-1", 1, "s"), Timeouts(rpc_s=0.2, io_s=1.0)
            )

            async def answers(base: str) -> bool:
                return False

            client.answers = answers  # type: ignore[method-assign]  # the hung node's probe
            client.mark_down = lambda base: client.down.add(base)  # type: ignore[method-assign]
            async with remote(address, client=client) as drive:
                writer = await drive.create_shard(DATA_ID, 64 * MIB)
                start = time.monotonic()
                with pytest.raises(DriveError, match="unresponsive"):
                    for _ in range(64):
                        await writer.write([bytes(MIB)])
                assert time.monotonic() - start < 5.0
                assert drive.base in client.down

        asyncio.run(go())


def test_a_refused_connection_fails_the_write_and_marks_the_node_down() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        address = f"127.0.0.1:{listener.getsockname()[1]}"
    # closed: nothing listens there now

    async def go() -> None:
        client = NodeClient(IDENTITY)
        client.mark_down = lambda base: client.down.add(base)  # type: ignore[method-assign]
        async with remote(address, client=client) as drive:
            writer = await drive.create_shard(DATA_ID, 10)
            with pytest.raises(DriveError):
                await writer.write([b"0123456789"])
            # The worker thread queued the mark-down before its failure: the loop ran it first.
            assert drive.base in client.down

    asyncio.run(go())
