"""The S3 gateway's HTTP edge: authenticate, route, dispatch, render errors.

One aiohttp handler for everything; ``/_huimin/`` paths (never a valid bucket name) are the
gateway's own health endpoints. After authentication the request becomes a typed operation
(``gateway.router``) and one ``match`` sends it to the handler module of its S3 concern.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from aiohttp import HttpVersion11, web

from gateway import s3xml
from gateway.context import REQUEST_ID, Ctx, GatewayConfig, extended_request_id
from gateway.errors import AccessDenied, NotModified, S3Error, to_s3_error
from gateway.handlers import bucket, listing, multipart, object
from gateway.metrics import OPERATION, TENANT
from gateway.operations import (
    AbortMultipartUpload,
    CompleteMultipartUpload,
    CopyObject,
    CreateBucket,
    CreateMultipartUpload,
    DeleteBucket,
    DeleteObject,
    DeleteObjects,
    GetBucketLocation,
    GetBucketVersioning,
    GetObject,
    HeadBucket,
    HeadObject,
    ListBuckets,
    ListMultipartUploads,
    ListObjects,
    ListObjectsV2,
    ListParts,
    Operation,
    PutObject,
    UploadPart,
    UploadPartCopy,
)
from gateway.router import route
from gateway.sigv4 import AuthRequest, authenticate
from storage.api import Storage
from storage.errors import StorageError

log = logging.getLogger("huimin.gateway")

ADMIN_PREFIX = "/_huimin/"
SecretLookup = Callable[[str], str | None]


async def dispatch(ctx: Ctx, op: Operation) -> web.StreamResponse:
    match op:
        case ListBuckets():
            return await bucket.list_buckets(ctx)
        case CreateBucket(bucket=name):
            return await bucket.create_bucket(ctx, name)
        case HeadBucket(bucket=name):
            return await bucket.head_bucket(ctx, name)
        case DeleteBucket(bucket=name):
            return await bucket.delete_bucket(ctx, name)
        case GetBucketLocation(bucket=name):
            return await bucket.get_bucket_location(ctx, name)
        case GetBucketVersioning(bucket=name):
            return await bucket.get_bucket_versioning(ctx, name)
        case ListObjects():
            return await listing.list_objects_v1(ctx, op)
        case ListObjectsV2():
            return await listing.list_objects_v2(ctx, op)
        case PutObject():
            return await object.put_object(ctx, op)
        case GetObject():
            return await object.get_object(ctx, op)
        case HeadObject():
            return await object.head_object(ctx, op)
        case DeleteObject():
            return await object.delete_object(ctx, op)
        case DeleteObjects(bucket=name):
            return await object.delete_objects(ctx, name)
        case CopyObject():
            return await object.copy_object(ctx, op)
        case CreateMultipartUpload():
            return await multipart.create_upload(ctx, op)
        case UploadPart():
            return await multipart.upload_part(ctx, op)
        case UploadPartCopy():
            return await multipart.upload_part_copy(ctx, op)
        case CompleteMultipartUpload():
            return await multipart.complete_upload(ctx, op)
        case AbortMultipartUpload():
            return await multipart.abort_upload(ctx, op)
        case ListParts():
            return await multipart.list_parts(ctx, op)
        case ListMultipartUploads():
            return await multipart.list_uploads(ctx, op)


def error_response(error: S3Error, resource: str, request_id: str, head: bool) -> web.Response:
    headers: dict[str, str] = dict(error.headers)
    if isinstance(error, NotModified) or head:
        # 304 and HEAD answers carry no body (the status says it all).
        return web.Response(status=error.status, headers=headers)
    body = s3xml.error_xml(error.code, error.detail, resource, request_id, error.extra)
    return web.Response(
        status=error.status, body=body, content_type="application/xml", headers=headers
    )


AdminHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Gateway:
    def __init__(
        self,
        storage: Storage,
        config: GatewayConfig,
        secrets: SecretLookup,
        admin_routes: Mapping[str, AdminHandler] | None = None,
    ) -> None:
        self.storage = storage
        self.config = config
        self.secrets = secrets
        # Operator endpoints under /_huimin/ (e.g. "heal/status"); SigV4-signed by a known key.
        self.admin_routes = dict(admin_routes or {})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        request_id = os.urandom(8).hex().upper()  # 16 hex digits (a uuid4 costs several times more)
        request["request_id"] = request_id
        REQUEST_ID.set(request_id)
        path = request.raw_path.partition("?")[0]
        if path.startswith(ADMIN_PREFIX):
            return await self.admin(request, path)
        try:
            auth_request = AuthRequest.from_wire(
                request.method, request.raw_path, request.headers.items()
            )
            auth = authenticate(
                auth_request,
                self.secrets,
                datetime.now(UTC),
                region=self.config.region,
                max_skew_s=self.config.max_clock_skew_s,
            )
            op = route(
                request.method,
                auth_request.raw_path,
                auth_request.query,
                auth_request.headers,
                self.config.virtual_host_suffix,
            )
            request[OPERATION] = type(op).__name__  # metrics label (gateway.metrics)
            if auth.access_key is None:
                raise AccessDenied()  # no anonymous access until bucket policies exist
            request[TENANT] = self.config.owner_name  # one root tenant until tenants exist
            ctx = Ctx(
                request, self.storage, self.config, auth, dict(auth_request.headers), request_id
            )
            response = await dispatch(ctx, op)
        except Exception as exc:
            if not isinstance(exc, S3Error | StorageError):
                log.exception("request %s failed", request_id)
            elif not isinstance(exc, S3Error):
                log.info("request %s: %s: %s", request_id, type(exc).__name__, exc)
            error = to_s3_error(exc)
            if request.transport is None or request.transport.is_closing():
                raise
            return error_response(error, path, request_id, request.method == "HEAD")
        return response

    async def admin(self, request: web.Request, path: str) -> web.StreamResponse:
        if path == ADMIN_PREFIX + "health/live":
            return web.json_response({"status": "ok"})
        if path == ADMIN_PREFIX + "health/ready":
            try:
                await self.storage.buckets.list_buckets()
            except StorageError as exc:
                return web.json_response({"status": "unavailable", "reason": str(exc)}, status=503)
            return web.json_response({"status": "ready"})
        handler = self.admin_routes.get(path[len(ADMIN_PREFIX) :])
        if handler is None:
            return web.json_response({"error": "not found"}, status=404)
        try:
            auth = authenticate(
                AuthRequest.from_wire(request.method, request.raw_path, request.headers.items()),
                self.secrets,
                datetime.now(UTC),
                max_skew_s=self.config.max_clock_skew_s,
            )
            if auth.access_key is None:
                raise AccessDenied()
        except S3Error as error:
            return error_response(error, path, request["request_id"], request.method == "HEAD")
        return await handler(request)


async def _stamp_request_id(request: web.Request, response: web.StreamResponse) -> None:
    request_id = request.get("request_id")
    if request_id is not None:
        response.headers["x-amz-request-id"] = request_id
        response.headers["x-amz-id-2"] = extended_request_id(request_id)


async def _expect_continue(request: web.Request) -> None:
    """``Expect: 100-continue`` as aiohttp answers it; any other expectation is ignored (RFC 9110
    allows that) so the client gets an S3 answer rather than aiohttp's plain-text 417."""
    expect = request.headers.get("Expect", "").lower()
    if request.version == HttpVersion11 and expect == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the response itself has not started yet


def make_app(gateway: Gateway) -> web.Application:
    app = web.Application(
        client_max_size=1024**2,
        handler_args={
            # Bodies are stored exactly as sent: a "Content-Encoding: gzip" object must not be
            # inflated by the server.
            "auto_decompress": False,
            # Fewer transport pause/resume cycles on big uploads than aiohttp's 256 KiB; aiohttp
            # buffers up to twice this per connection, so 4 MiB held 8 MiB per upload for
            # nothing measurable (docs/benchmarks.md, "Read buffers of uploads").
            "read_bufsize": 1024 * 1024,
            "max_field_size": 16 * 1024,
            "max_line_size": 16 * 1024,
        },
    )
    # (?s): keys may contain a newline (%0A), which a plain ".*" does not match (aiohttp 404).
    app.router.add_route("*", "/{tail:(?s:.*)}", gateway.handle, expect_handler=_expect_continue)
    app.on_response_prepare.append(_stamp_request_id)
    return app
