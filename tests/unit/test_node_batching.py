"""How NodeClient groups drive calls into batches per node (storage/remote_drive.py): the calls
of one event-loop turn go together, calls made while the node's previous batch waits for its
answer go together once it is answered, and listing calls never wait behind other calls."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from storage import node_protocol as proto
from storage.remote_drive import NodeClient

BASE = "http://n1"


class HeldChannel:
    """A channel that records each batch's methods and answers when told to."""

    closed = False

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.release: dict[int, asyncio.Event] = {}

    async def call(self, calls: Sequence[tuple[str, str, Any]]) -> list[Any]:
        n = len(self.batches)
        self.batches.append([method for _, method, _ in calls])
        self.release[n] = asyncio.Event()
        await self.release[n].wait()
        return [{"result": method} for _, method, _ in calls]


class FakeChannels:
    def __init__(self, channel: HeldChannel) -> None:
        self.channel = channel

    def ready(self, base: str) -> HeldChannel:
        return self.channel

    async def get(self, base: str) -> HeldChannel:
        return self.channel

    async def close(self) -> None:
        pass


def held_client() -> tuple[NodeClient, HeldChannel]:
    """A NodeClient whose one node channel answers a batch only when the test releases it."""
    client = NodeClient(proto.ClusterIdentity("dep", 1, "s"))
    channel = HeldChannel()
    client._channels = FakeChannels(channel)  # type: ignore[assignment]  # a test double
    return client, channel


async def turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


@pytest.mark.parametrize("bulk", ["list_page", "read_shard"])
def test_calls_wait_for_the_batch_in_flight_and_go_together(bulk: str) -> None:
    async def go() -> None:
        client, channel = held_client()
        try:
            a = client.call(BASE, "d1", "n1/d1", "get_versions", {})
            b = client.call(BASE, "d2", "n1/d2", "get_versions", {})  # same turn: same batch
            await turns()
            assert channel.batches == [["get_versions", "get_versions"]]
            c = client.call(BASE, "d1", "n1/d1", "commit_object", {})
            await turns()
            d = client.call(BASE, "d2", "n1/d2", "prune_versions", {})
            # A listing call or shard read does not wait behind the batch in flight, nor hold
            # others up.
            listed = client.call(BASE, "d1", "n1/d1", bulk, {})
            await turns()
            assert channel.batches == [["get_versions", "get_versions"], [bulk]]
            channel.release[1].set()
            assert await listed == bulk
            channel.release[0].set()
            assert await a == await b == "get_versions"
            await turns()  # the answer sent what waited, as one batch
            assert channel.batches[2] == ["commit_object", "prune_versions"]
            channel.release[2].set()
            assert (await c, await d) == ("commit_object", "prune_versions")
            e = client.call(BASE, "d1", "n1/d1", "info", {})  # nothing in flight: sent at once
            await turns()
            assert channel.batches[3] == ["info"]
            channel.release[3].set()
            assert await e == "info"
        finally:
            await client.close()

    asyncio.run(go())


def test_a_call_made_by_a_request_the_answer_woke_joins_the_waiting_batch() -> None:
    """What waited for a batch goes at the end of the answer's turn: a request woken by that
    answer (e.g. a write's prune after its commit) adds its next call to the same batch."""

    async def go() -> None:
        client, channel = held_client()
        try:
            commit = client.call(BASE, "d1", "n1/d1", "commit_object", {})
            await turns()
            waiting = client.call(BASE, "d2", "n1/d2", "get_versions", {})

            async def write_then_prune() -> str:
                await commit
                return str(await client.call(BASE, "d1", "n1/d1", "prune_versions", {}))

            writer = asyncio.create_task(write_then_prune())
            await turns()
            channel.release[0].set()
            await turns()
            assert channel.batches == [["commit_object"], ["get_versions", "prune_versions"]]
            channel.release[1].set()
            assert (await waiting, await writer) == ("get_versions", "prune_versions")
        finally:
            await client.close()

    asyncio.run(go())


def test_calls_waiting_for_a_node_marked_down_fail_at_once() -> None:
    async def go() -> None:
        client, channel = held_client()
        try:
            first = client.call(BASE, "d1", "n1/d1", "info", {})
            await turns()
            waiting = client.call(BASE, "d1", "n1/d1", "info", {})
            await turns()
            client.down.add(BASE)  # as mark_down does, without its probe task
            channel.release[0].set()
            assert await first == "info"
            try:
                await waiting
                raise AssertionError("a call to a node marked down must fail")
            except Exception as exc:
                assert "marked down" in str(exc)
            assert len(channel.batches) == 1
        finally:
            await client.close()

    asyncio.run(go())


def test_answers_are_decoded_per_call_and_a_malformed_one_fails_only_its_call() -> None:
    def length(result: Any) -> int:
        if not isinstance(result, str) or result == "info":
            raise ValueError(f"malformed: {result!r}")
        return len(result)

    async def go() -> None:
        client, channel = held_client()
        try:
            good = client.call(BASE, "d1", "n1/d1", "get_versions", {}, length)
            bad = client.call(BASE, "d2", "n1/d2", "info", {}, length)
            raw = client.call(BASE, "d2", "n1/d2", "prune_versions", {})
            await turns()
            assert channel.batches == [["get_versions", "info", "prune_versions"]]
            channel.release[0].set()
            assert await good == len("get_versions")
            with pytest.raises(ValueError, match="malformed"):
                await bad
            assert await raw == "prune_versions"  # no decoder: the answer as it came
        finally:
            await client.close()

    asyncio.run(go())


def test_a_remote_drive_call_to_a_node_marked_down_fails_without_a_batch() -> None:
    from storage.errors import DriveError
    from storage.remote_drive import RemoteDrive

    async def go() -> None:
        client, channel = held_client()
        try:
            drive = RemoteDrive(client, "n1", "node-1", "d1")
            client.down.add(drive.base)
            with pytest.raises(DriveError, match="marked down"):
                await drive.get_versions("b", "k")
            await turns()
            assert channel.batches == []
        finally:
            await client.close()

    asyncio.run(go())


def test_cancelling_a_call_skips_its_decoding_and_keeps_the_others() -> None:
    decoded: list[Any] = []

    def keep(result: Any) -> Any:
        decoded.append(result)
        return result

    async def go() -> None:
        client, channel = held_client()
        try:
            cancelled = client.call(BASE, "d1", "n1/d1", "get_versions", {}, keep)
            kept = client.call(BASE, "d2", "n1/d2", "info", {}, keep)
            await turns()
            cancelled.cancel()
            channel.release[0].set()
            assert await kept == "info"
            assert cancelled.cancelled()
            assert decoded == ["info"]
        finally:
            await client.close()

    asyncio.run(go())
