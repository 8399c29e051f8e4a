"""NodeServer's channel dispatch (storage/node_server.py): every call of a batch gets an
answer, whatever the drive raised or the gateway sent."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from storage import node_protocol as proto
from storage.local_drive import LocalDrive
from storage.node_server import NodeServer


class BrokenDrive:
    async def delete_bucket(self, name: str) -> None:
        raise RuntimeError("disk on fire")

    async def commit_object(self, *args: object) -> bool:
        raise AssertionError("a malformed record reached the drive")


@pytest.mark.parametrize(
    ("method", "args", "message"),
    [
        ("delete_bucket", {"name": "b"}, "disk on fire"),  # an unexpected exception
        ("delete_bucket", {}, "bad request"),  # an argument missing
        ("commit_object", {"record": ["short"], "staged": []}, "bad request"),
        ("no_such_method", {}, "no such drive or method"),
    ],
)
def test_a_failing_call_is_answered_with_an_error(
    method: str, args: dict[str, Any], message: str
) -> None:
    server = NodeServer(
        "n1", {"d1": cast(LocalDrive, BrokenDrive())}, proto.ClusterIdentity("d", 1, "s")
    )
    answer = asyncio.run(server._call("d1", method, args))
    assert answer["error"] == "DriveError"
    assert message in answer["message"]
