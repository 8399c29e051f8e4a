"""Helpers shared by the S3 handlers."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from gateway.body import RequestBody
from gateway.chunked import decoder_for
from gateway.context import Ctx
from gateway.errors import EntityTooLarge, InvalidArgument, MissingContentLength

XML_CONTENT_TYPE = "application/xml"


def xml_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type=XML_CONTENT_TYPE)


def empty_response(status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, headers=headers)


def upload_size(ctx: Ctx) -> int:
    """The payload size of an upload: x-amz-decoded-content-length for aws-chunked bodies."""
    raw = ctx.headers.get("content-length")
    if ctx.auth.payload_mode.streaming:
        if ctx.auth.decoded_content_length is None:
            raise MissingContentLength()
        size = ctx.auth.decoded_content_length
    elif raw is None:
        raise MissingContentLength()
    else:
        try:
            size = int(raw)
        except ValueError:
            raise InvalidArgument("Content-Length is not a number") from None
    if size < 0:
        raise InvalidArgument("Negative size")
    if size > ctx.config.max_object_size_bytes:
        raise EntityTooLarge()
    return size


def request_body(ctx: Ctx, also: Sequence[str] = ()) -> RequestBody:
    """The request's upload body; ``also`` names checksums to compute even if not requested."""
    return RequestBody(ctx.request.content, ctx.auth, ctx.headers, decoder_for(ctx.auth), also)


async def read_small_body(ctx: Ctx, limit: int) -> bytes:
    """A whole (XML) request body, up to ``limit`` bytes, decoded and verified."""
    size = upload_size(ctx)
    if size > limit:
        raise EntityTooLarge()
    body = request_body(ctx)
    data = bytes(await body.read(size))
    body.update(data)
    await body.finish()
    return data
