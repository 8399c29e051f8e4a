"""The benchmark's S3 client spreads requests over several endpoints in turn, each signed for
the host it goes to (two stand-in servers that verify the signature and record the request)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiohttp import web

from bench.client import Credentials, S3Client
from gateway.sigv4 import AuthRequest, authenticate


async def _serve(seen: list[tuple[int, str, str]], index: int) -> tuple[web.AppRunner, str]:
    async def handle(request: web.Request) -> web.Response:
        auth = AuthRequest.from_wire(request.method, request.raw_path, request.headers.items())
        signer = authenticate(auth, {"AK": "SK"}.get, datetime.now(UTC)).access_key
        seen.append((index, request.host, signer or ""))
        return web.Response()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


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
