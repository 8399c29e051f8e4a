"""Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, location, versioning."""

from __future__ import annotations

from aiohttp import web

from gateway import s3xml
from gateway.context import Ctx
from gateway.errors import InvalidArgument
from gateway.handlers.common import empty_response, read_small_body, xml_response
from gateway.names import validate_bucket_name


async def list_buckets(ctx: Ctx) -> web.StreamResponse:
    buckets = await ctx.storage.buckets.list_buckets()
    body = s3xml.list_buckets_xml(
        ctx.config.owner_id, ctx.config.owner_name, [(b.name, b.created) for b in buckets]
    )
    return xml_response(body)


async def create_bucket(ctx: Ctx, bucket: str) -> web.StreamResponse:
    validate_bucket_name(bucket)
    region = s3xml.parse_create_bucket(await read_small_body(ctx, 64 * 1024))
    if region and region != ctx.config.region:
        raise InvalidArgument(
            f"The location constraint {region!r} is not this server's region",
            ArgumentName="LocationConstraint",
        )
    await ctx.storage.buckets.create_bucket(bucket, ctx.config.owner_id, ctx.config.region)
    return empty_response(headers={"Location": f"/{bucket}"})


async def head_bucket(ctx: Ctx, bucket: str) -> web.StreamResponse:
    info = await ctx.storage.buckets.head_bucket(bucket)
    return empty_response(headers={"x-amz-bucket-region": info.region})


async def delete_bucket(ctx: Ctx, bucket: str) -> web.StreamResponse:
    await ctx.storage.buckets.delete_bucket(bucket)
    return empty_response(204)


async def get_bucket_location(ctx: Ctx, bucket: str) -> web.StreamResponse:
    info = await ctx.storage.buckets.head_bucket(bucket)
    return xml_response(s3xml.location_xml(info.region))


async def get_bucket_versioning(ctx: Ctx, bucket: str) -> web.StreamResponse:
    await ctx.storage.buckets.head_bucket(bucket)
    return xml_response(s3xml.versioning_xml(None))
