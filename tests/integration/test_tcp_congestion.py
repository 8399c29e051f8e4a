"""The congestion control settings end to end over real sockets: what a served site's
connections use (huimin.process.start_site, as every process listens), and what a gateway's
connections to a node use (NodeClient's shard streams and channel)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from huimin.process import BACKLOG, start_site
from storage.records import BucketRecord
from storage.remote_drive import NodeClient
from storage.tcp import congestion_of
from tests.integration.test_node_channel import IDENTITY, node, remote
from tests.unit.test_tcp import LINUX_ONLY, SYSTEM_DEFAULT

pytestmark = LINUX_ONLY


async def _served_with(algorithm: str) -> str:
    """The algorithm of the connection a request to a site started with ``algorithm`` came on."""

    async def handler(request: web.Request) -> web.Response:
        assert request.transport is not None
        return web.Response(text=congestion_of(request.transport.get_extra_info("socket")))

    app = web.Application()
    app.router.add_get("/", handler)
    runner, _ = await start_site(app, "127.0.0.1:0", tcp_congestion=algorithm)
    try:
        host, port = runner.addresses[0][:2]
        async with aiohttp.ClientSession() as session, session.get(f"http://{host}:{port}/") as r:
            return await r.text()
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(("algorithm", "used"), [("reno", "reno"), ("", SYSTEM_DEFAULT)])
def test_a_site_s_connections_use_its_setting(algorithm: str, used: str) -> None:
    assert asyncio.run(_served_with(algorithm)) == used


def test_a_gateway_s_connections_to_a_node_use_the_node_setting(tmp_path: Path) -> None:
    async def go() -> None:
        client = NodeClient(IDENTITY, tcp_congestion="reno")
        async with node(tmp_path) as (address, _), remote(address, client=client) as drive:
            await drive.make_bucket(BucketRecord("b", 1, "o", "r"))  # over the channel
            conn, _ = await client.shard_connections.get(address)
            try:
                assert conn.transport is not None
                assert congestion_of(conn.transport.get_extra_info("socket")) == "reno"
            finally:
                conn.close()

    asyncio.run(go())


@pytest.mark.skipif(shutil.which("ss") is None, reason="reads the backlog with iproute2's ss")
def test_a_site_listens_with_its_full_backlog() -> None:
    """aiohttp's socket sites listen with a backlog of 128 unless told: a burst of uploads
    connecting at once would see refused or retried connections."""

    async def go() -> str:
        runner, _ = await start_site(web.Application(), "127.0.0.1:0")
        try:
            port = runner.addresses[0][1]
            ss = ["ss", "-ltnH", f"sport = :{port}"]
            return subprocess.run(ss, capture_output=True, text=True, check=True).stdout
        finally:
            await runner.cleanup()

    state, _, backlog, *_ = asyncio.run(go()).split()
    assert (state, int(backlog)) == ("LISTEN", BACKLOG)
