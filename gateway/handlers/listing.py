"""ListObjects (v1) and ListObjectsV2."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from gateway import s3xml
from gateway.context import Ctx
from gateway.errors import InvalidArgument
from gateway.handlers.common import xml_response
from gateway.operations import ListObjects, ListObjectsV2


def encode_token(key: str) -> str:
    """Continuation tokens are opaque to clients: the last key or prefix returned, base64url.

    >>> encode_token("a/b"), decode_token(encode_token("a/b"))
    ('YS9i', 'a/b')
    """
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument(
            "The continuation token provided is incorrect", ArgumentName="continuation-token"
        ) from None


def _owner(ctx: Ctx) -> s3xml.Owner:
    return s3xml.Owner(ctx.config.owner_id, ctx.config.owner_name)


async def list_objects_v1(ctx: Ctx, op: ListObjects) -> web.StreamResponse:
    page = await ctx.storage.listing.list_objects(
        op.bucket, op.prefix, op.delimiter or "", op.marker, op.max_keys
    )
    body = s3xml.list_objects_v1_xml(
        bucket=op.bucket,
        prefix=op.prefix,
        marker=op.marker,
        max_keys=op.max_keys,
        delimiter=op.delimiter,
        encoding_type=op.encoding_type,
        is_truncated=page.is_truncated,
        next_marker=page.next_marker if op.delimiter else None,
        contents=page.objects,
        common_prefixes=page.common_prefixes,
        owner=_owner(ctx),
    )
    return xml_response(body)


async def list_objects_v2(ctx: Ctx, op: ListObjectsV2) -> web.StreamResponse:
    if op.continuation_token is not None:
        after = decode_token(op.continuation_token)
    else:
        after = op.start_after or ""
    page = await ctx.storage.listing.list_objects(
        op.bucket, op.prefix, op.delimiter or "", after, op.max_keys
    )
    body = s3xml.list_objects_v2_xml(
        bucket=op.bucket,
        prefix=op.prefix,
        max_keys=op.max_keys,
        delimiter=op.delimiter,
        encoding_type=op.encoding_type,
        is_truncated=page.is_truncated,
        contents=page.objects,
        common_prefixes=page.common_prefixes,
        continuation_token=op.continuation_token,
        next_continuation_token=encode_token(page.next_marker) if page.next_marker else None,
        start_after=op.start_after,
        owner=_owner(ctx) if op.fetch_owner else None,
    )
    return xml_response(body)
