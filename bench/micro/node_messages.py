"""A storage node's CPU per channel message of small-object calls, in one process.

    .venv/bin/python -m bench.micro.node_messages [N]

Two drives in a temporary folder behind a NodeServer; N messages (default 3000) each holding
one call per drive, 8 in flight like a gateway's PUTs: commit_object of a 4 KiB object's
inline shard (a PUT), get_versions (a GET or HEAD), prune_versions durable (a DELETE). Prints
CPU ms per message, every thread of the process (committers included), no HTTP or WebSocket:
what the node's own code costs, measured without the noise of a whole cluster on the box.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from storage import node_protocol as proto
from storage.local_drive import LocalDrive
from storage.node_server import NodeServer
from storage.records import BucketRecord, ObjectRecord, PartRef

CONCURRENCY = 8
ETAG = "d41d8cd98f00b204e9800998ecf8427e"


class _Socket:
    closed = False

    async def send_bytes(self, data: bytes) -> None:
        pass


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _record(i: int, shard_index: int) -> ObjectRecord:
    return ObjectRecord(
        bucket="prof",
        key=f"ob/4096/{i}",
        version_id=f"{i:032x}",
        mod_time_ns=time.time_ns(),
        size=4096,
        etag=ETAG,
        codec="rs-isal",
        k=8,
        m=4,
        block_size=1 << 20,
        shard_index=shard_index,
        parts=(PartRef(1, 4096, ETAG, None, {}),),
        metadata={"content-type": "application/octet-stream"},
        inline=os.urandom(528),
    )


async def _answer(server: NodeServer, message: bytes) -> None:
    """What NodeServer.channel does with one message."""
    batch_id, calls = proto.decode_batch(proto.decode_message(message))
    looked_up = server._look_up(calls)
    if looked_up is None:
        await server._answer_calls(_Socket(), batch_id, calls)  # type: ignore[arg-type]
    else:
        proto.encode_results(looked_up, batch_id)


def _deal(messages: list[bytes]) -> list[list[bytes]]:
    """The messages split among ``CONCURRENCY`` senders."""
    return [messages[i::CONCURRENCY] for i in range(CONCURRENCY)]


async def _drain(server: NodeServer, messages: list[bytes]) -> None:
    for message in messages:
        await _answer(server, message)


async def run(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(4) as pool:
        drives = {name: LocalDrive(Path(tmp) / name, pool) for name in ("d1", "d2")}
        server = NodeServer("n1", drives, proto.ClusterIdentity("dep", 1, "s"))
        for drive in drives.values():
            await drive.make_bucket(BucketRecord("prof", 1, "me"))

        def calls(method: str, args: Callable[[int, int], dict[str, Any]]) -> list[bytes]:
            return [
                proto.encode_batch([(d, method, args(i, j)) for j, d in enumerate(drives)], i)
                for i in range(n)
            ]

        workloads = {
            "put": calls(
                "commit_object",
                lambda i, j: {"record": proto.to_wire(_record(i, j)), "staged": [], "shard": None},
            ),
            "get": calls("get_versions", lambda i, j: {"bucket": "prof", "key": f"ob/4096/{i}"}),
            "delete": calls(
                "prune_versions",
                lambda i, j: {
                    "bucket": "prof",
                    "key": f"ob/4096/{i}",
                    "before": [time.time_ns(), "~"],
                    "durable": True,
                },
            ),
        }
        try:
            for name, messages in workloads.items():
                cpu = _cpu_s()
                start = time.monotonic()
                await asyncio.gather(*(_drain(server, m) for m in _deal(messages)))
                seconds = time.monotonic() - start
                per = (_cpu_s() - cpu) / n * 1000
                print(f"{name}: {per:.3f} CPU ms/message, {n / seconds:.0f} messages/s")
        finally:
            for drive in drives.values():
                drive.close()


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 3000))
