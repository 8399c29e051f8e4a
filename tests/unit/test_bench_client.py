"""The benchmark's S3 client: it spreads requests over several endpoints in turn, each signed
for the host it goes to, and answers alike over either of its transports (stand-in servers
that verify every signature)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from aiohttp import web

from bench.client import Credentials, S3Client, S3RequestError
from gateway.sigv4 import AuthRequest, authenticate

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _listen(handle: Handler) -> tuple[web.AppRunner, str]:
    """A server on a free port answering every path with ``handle``: its runner and URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


async def _serve(seen: list[tuple[int, str, str]], index: int) -> tuple[web.AppRunner, str]:
    async def handle(request: web.Request) -> web.Response:
        auth = AuthRequest.from_wire(request.method, request.raw_path, request.headers.items())
        signer = authenticate(auth, {"AK": "SK"}.get, datetime.now(UTC)).access_key
        seen.append((index, request.host, signer or ""))
        return web.Response()

    return await _listen(handle)


def test_requests_go_to_the_endpoints_in_turn_signed_for_each_host() -> None:
    async def main() -> list[tuple[int, str, str]]:
        seen: list[tuple[int, str, str]] = []
        servers = [await _serve(seen, i) for i in range(2)]
        try:
            endpoints = [url for _, url in servers]
            async with S3Client(endpoints, Credentials("AK", "SK"), 4) as client:
                for i in range(4):
                    await client.put_object("b", f"k{i}", b"x")
            assert [host for _, host, _ in seen] == [e[len("http://") :] for e in endpoints] * 2
        finally:
            for runner, _ in servers:
                await runner.cleanup()
        return seen

    seen = asyncio.run(main())
    assert [index for index, _, _ in seen] == [0, 1, 0, 1]
    assert [signer for _, _, signer in seen] == ["AK"] * 4  # each verified where it arrived


async def _serve_objects(objects: dict[str, bytes]) -> tuple[web.AppRunner, str]:
    """A stand-in store of ``objects`` (path -> body): GET, HEAD, PUT, DELETE, 404s."""

    async def handle(request: web.Request) -> web.StreamResponse:
        auth = AuthRequest.from_wire(request.method, request.raw_path, request.headers.items())
        if authenticate(auth, {"AK": "SK"}.get, datetime.now(UTC)).access_key != "AK":
            return web.Response(status=403)
        path = request.raw_path
        if request.method == "PUT":
            objects[path] = await request.read()
            return web.Response(headers={"ETag": '"e"'})
        if request.method == "DELETE":
            objects.pop(path, None)
            return web.Response(status=204)
        if path not in objects:
            return web.Response(status=404, body=b"<Error><Code>NoSuchKey</Code></Error>")
        return web.Response(body=objects[path])

    return await _listen(handle)


@pytest.mark.parametrize("lean", [True, False], ids=["bench.http1", "aiohttp"])
def test_both_transports_give_the_same_answers(lean: bool) -> None:
    """Small requests go over bench.http1 unless the client is told otherwise (``--client
    aiohttp``), or has a set receive buffer (the WAN workload's). Both answer alike."""

    async def main() -> None:
        objects: dict[str, bytes] = {}
        runner, url = await _serve_objects(objects)
        try:
            async with S3Client(url, Credentials("AK", "SK"), 2, lean=lean) as client:
                await client.create_bucket("bucket")
                assert (await client.put_object("bucket", "k", b"abc")).etag == "e"
                assert await client.head_object("bucket", "k") == 3
                assert await client.get_object_bytes("bucket", "k") == b"abc"
                got = await client.get_object("bucket", "k", verify=True)
                assert (got.received_bytes, got.content_length) == (3, 3)
                assert got.md5_hex == hashlib.md5(b"abc").hexdigest()
                for _ in range(3):  # 204s keep the connection usable
                    await client.delete_object("bucket", "k")
                with pytest.raises(S3RequestError) as missing:
                    await client.get_object_bytes("bucket", "k")
                assert missing.value.status == 404
        finally:
            await runner.cleanup()

    asyncio.run(main())
