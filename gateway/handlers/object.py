"""Object operations: PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects, CopyObject."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from gateway import checksums, s3xml
from gateway.conditions import (
    check_copy_source_conditions,
    check_read_conditions,
    check_write_conditions,
)
from gateway.context import Ctx
from gateway.errors import (
    InvalidRequest,
    NoSuchKey,
    NotModified,
    S3Error,
    to_s3_error,
)
from gateway.handlers.common import empty_response, read_small_body, request_body, upload_size
from gateway.headers import (
    http_date,
    metadata_from_headers,
    object_headers,
    refuse_unsupported,
)
from gateway.names import validate_object_key
from gateway.operations import CopyObject, DeleteObject, GetObject, HeadObject, PutObject
from gateway.ranges import ByteRange, parse_range, part_range
from storage.api import BodyDigest, ObjectInfo, ObjectReader
from storage.errors import ObjectNotFound

log = logging.getLogger(__name__)


async def current_etag(ctx: Ctx, bucket: str, key: str) -> str | None:
    try:
        return (await ctx.storage.objects.head_object(bucket, key)).etag
    except ObjectNotFound:
        return None


async def check_conditional_write(ctx: Ctx, bucket: str, key: str) -> None:
    if "if-match" in ctx.headers or "if-none-match" in ctx.headers:
        check_write_conditions(ctx.headers, await current_etag(ctx, bucket, key))


def _checksum_headers(info: ObjectInfo) -> dict[str, str]:
    return {checksums.header_name(alg): value for alg, value in info.checksums.items()}


async def put_object(ctx: Ctx, op: PutObject) -> web.StreamResponse:
    validate_object_key(op.key)
    refuse_unsupported(ctx.headers)
    size = upload_size(ctx)
    metadata = metadata_from_headers(ctx.headers)
    await check_conditional_write(ctx, op.bucket, op.key)
    info = await ctx.storage.objects.put_object(
        op.bucket, op.key, request_body(ctx), size, metadata
    )
    return empty_response(headers={"ETag": f'"{info.etag}"', **_checksum_headers(info)})


async def _open(ctx: Ctx, bucket: str, key: str, version_id: str | None) -> ObjectReader:
    if version_id not in (None, "null"):
        raise NoSuchKey()  # versioning is not enabled on any bucket yet
    return await ctx.storage.objects.open_object(bucket, key)


def _check_read_conditions(ctx: Ctx, info: ObjectInfo) -> None:
    try:
        check_read_conditions(ctx.headers, info.etag, info.last_modified)
    except NotModified as exc:
        # A 304 carries the validators so caches can refresh theirs (RFC 9110 15.4.5), as S3's.
        exc.headers = {"ETag": f'"{info.etag}"', "Last-Modified": http_date(info)}
        raise


def _requested_range(ctx: Ctx, info: ObjectInfo, part_number: int | None) -> ByteRange | None:
    """The bytes a GET/HEAD asks for: a Range header, or one part (?partNumber=N)."""
    if part_number is None:
        return parse_range(ctx.headers.get("range"), info.size)
    if "range" in ctx.headers:
        raise InvalidRequest("Cannot specify both Range header and partNumber query parameter")
    rng = part_range(info.part_sizes, info.size, part_number)
    return rng if rng.length > 0 else None


async def head_object(ctx: Ctx, op: HeadObject) -> web.StreamResponse:
    if op.version_id not in (None, "null"):
        raise NoSuchKey()
    info = await ctx.storage.objects.head_object(op.bucket, op.key)
    _check_read_conditions(ctx, info)
    headers = object_headers(info, ctx.headers.get("x-amz-checksum-mode") == "ENABLED")
    rng = _requested_range(ctx, info, op.part_number)
    if rng is not None:
        headers["Content-Range"] = rng.content_range(info.size)
    resp = web.StreamResponse(status=206 if rng else 200, headers=headers)
    resp.content_length = rng.length if rng else info.size
    await resp.prepare(ctx.request)
    await resp.write_eof()
    return resp


async def get_object(ctx: Ctx, op: GetObject) -> web.StreamResponse:
    reader = await _open(ctx, op.bucket, op.key, op.version_id)
    info = reader.info
    _check_read_conditions(ctx, info)
    rng = _requested_range(ctx, info, op.part_number)
    headers = object_headers(info, ctx.headers.get("x-amz-checksum-mode") == "ENABLED" and not rng)
    for name, value in op.response_headers:
        headers[name] = value
    start, end = (rng.start, rng.end) if rng else (0, info.size - 1)
    if rng is not None:
        headers["Content-Range"] = rng.content_range(info.size)
    # Closed however the handler ends (a client gone mid-body cancels it): the shard streams
    # it holds open to the nodes are closed with it.
    async with contextlib.aclosing(reader.stream(start, end)) as chunks:
        # Fetch the first block before the headers go out: too few readable shards is then a
        # clean 503 ServiceUnavailable instead of a 200 whose body breaks off.
        first = await anext(chunks, None)
        length = end - start + 1
        if first is not None and len(first) == length:  # small: headers and body in one write
            return web.Response(status=206 if rng else 200, headers=headers, body=bytes(first))
        resp = web.StreamResponse(status=206 if rng else 200, headers=headers)
        resp.content_length = length
        await resp.prepare(ctx.request)
        await send_stream(ctx, resp, _prepend(first, chunks))
        return resp


async def _prepend(
    first: bytes | memoryview | None, rest: AsyncIterator[bytes | memoryview]
) -> AsyncIterator[bytes | memoryview]:
    if first is None:
        return
    yield first
    async for chunk in rest:
        yield chunk


async def send_stream(
    ctx: Ctx, resp: web.StreamResponse, chunks: AsyncIterator[bytes | memoryview]
) -> None:
    """Send a body after headers went out. A failure now aborts the connection: the client must
    see a broken transfer, never a short body that looks complete."""
    try:
        async for chunk in chunks:
            await resp.write(chunk)
        await resp.write_eof()
    except ConnectionResetError:
        # The client went away (or its connection broke): not the server's failure, and
        # nothing left to answer (aiohttp ends the response quietly).
        log.info("the client closed the connection during the body")
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("GET body failed after headers were sent; aborting the connection")
        transport = ctx.request.transport
        if transport is not None:
            transport.abort()
        raise


async def delete_object(ctx: Ctx, op: DeleteObject) -> web.StreamResponse:
    if op.version_id not in (None, "null"):
        return empty_response(204)
    await ctx.storage.objects.delete_object(op.bucket, op.key)
    return empty_response(204)


async def delete_objects(ctx: Ctx, bucket: str) -> web.StreamResponse:
    quiet, keys = s3xml.parse_delete_objects(await read_small_body(ctx, 2 * 1024 * 1024))
    await ctx.storage.buckets.head_bucket(bucket)
    sem = asyncio.Semaphore(16)

    async def one(key: str, version_id: str | None) -> S3Error | None:
        async with sem:
            try:
                validate_object_key(key)
                if version_id in (None, "null"):
                    await ctx.storage.objects.delete_object(bucket, key)
                return None
            except Exception as exc:
                if not isinstance(exc, S3Error):
                    log.warning("delete of one key failed: %r", exc)
                return to_s3_error(exc)

    results = await asyncio.gather(*(one(k, v) for k, v in keys))
    deleted = [(k, v) for (k, v), r in zip(keys, results, strict=True) if r is None]
    errors = [(k, r.code, r.detail) for (k, _), r in zip(keys, results, strict=True) if r]
    return web.Response(
        body=s3xml.delete_result_xml(deleted, errors, quiet), content_type="application/xml"
    )


class CopyBody:
    """A source object's bytes as an upload body (CopyObject, UploadPartCopy)."""

    def __init__(self, chunks: AsyncIterator[bytes | memoryview], algorithms: list[str]) -> None:
        self._chunks = chunks
        self._pending = bytearray()
        self._md5 = hashlib.md5()
        self._checksummers = {a: checksums.new_checksummer(a) for a in algorithms}

    async def read(self, size: int) -> bytes:
        while len(self._pending) < size:
            try:
                self._pending += await anext(self._chunks)
            except StopAsyncIteration:
                break
        out = bytes(self._pending[:size])
        del self._pending[:size]
        return out

    def update(self, block: bytes | bytearray | memoryview) -> None:
        self._md5.update(block)
        for c in self._checksummers.values():
            c.update(block)

    async def finish(self) -> BodyDigest:
        return BodyDigest(
            md5_hex=self._md5.hexdigest(),
            checksums={a: c.digest_b64() for a, c in self._checksummers.items()},
        )


async def open_copy_source(ctx: Ctx, bucket: str, key: str, version_id: str | None) -> ObjectReader:
    reader = await _open(ctx, bucket, key, version_id)
    check_copy_source_conditions(ctx.headers, reader.info.etag, reader.info.last_modified)
    return reader


async def copy_object(ctx: Ctx, op: CopyObject) -> web.StreamResponse:
    validate_object_key(op.key)
    refuse_unsupported(ctx.headers)
    src = op.source
    reader = await open_copy_source(ctx, src.bucket, src.key, src.version_id)
    info = reader.info
    if op.metadata_directive == "REPLACE":
        metadata = metadata_from_headers(ctx.headers)
    else:
        if (src.bucket, src.key) == (op.bucket, op.key):
            raise InvalidRequest(
                "This copy request is illegal because it is trying to copy an object to itself"
                " without changing the object's metadata, storage class, website redirect"
                " location or encryption attributes."
            )
        metadata = dict(info.metadata)
    await check_conditional_write(ctx, op.bucket, op.key)
    wanted = checksums.requested_checksums(ctx.headers)
    algorithms = list(wanted) or list(info.checksums)
    # Closed on the way out, so a failed copy closes the source's shard streams at once.
    async with contextlib.aclosing(reader.stream(0, info.size - 1)) as chunks:
        body = CopyBody(chunks, algorithms)
        new = await ctx.storage.objects.put_object(op.bucket, op.key, body, info.size, metadata)
    xml = s3xml.copy_object_result_xml(new.etag, new.last_modified, new.checksums or None)
    return web.Response(body=xml, content_type="application/xml")
