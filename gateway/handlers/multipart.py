"""Multipart uploads: create, upload (copy) part, complete, abort, list parts and uploads."""

from __future__ import annotations

import contextlib

from aiohttp import web

from gateway import checksums, s3xml
from gateway.context import Ctx
from gateway.errors import InvalidPart, InvalidRequest
from gateway.handlers.common import read_small_body, request_body, upload_size, xml_response
from gateway.handlers.object import CopyBody, check_conditional_write, open_copy_source
from gateway.headers import metadata_from_headers, refuse_unsupported
from gateway.names import validate_object_key
from gateway.operations import (
    AbortMultipartUpload,
    CompleteMultipartUpload,
    CreateMultipartUpload,
    ListMultipartUploads,
    ListParts,
    UploadPart,
    UploadPartCopy,
)
from gateway.ranges import copy_range_within
from storage.api import PartInfo, UploadInfo

CHECKSUM_TYPE_META = "x-huimin-checksum-type"  # internal: never returned as a header


def _owner(ctx: Ctx) -> s3xml.Owner:
    return s3xml.Owner(ctx.config.owner_id, ctx.config.owner_name)


async def create_upload(ctx: Ctx, op: CreateMultipartUpload) -> web.StreamResponse:
    validate_object_key(op.key)
    refuse_unsupported(ctx.headers)
    metadata = metadata_from_headers(ctx.headers)
    wanted = checksums.requested_checksums(ctx.headers)
    algorithm = next(iter(wanted), None)
    checksum_type = checksums.requested_checksum_type(ctx.headers, algorithm)
    if checksum_type is not None:
        metadata[CHECKSUM_TYPE_META] = checksum_type
    upload_id = await ctx.storage.multipart.create_upload(op.bucket, op.key, metadata, algorithm)
    headers = {}
    if algorithm is not None and checksum_type is not None:
        headers = {"x-amz-checksum-algorithm": algorithm, "x-amz-checksum-type": checksum_type}
    resp = xml_response(s3xml.initiate_multipart_xml(op.bucket, op.key, upload_id))
    resp.headers.update(headers)
    return resp


def _part_headers(part: PartInfo) -> dict[str, str]:
    headers = {"ETag": f'"{part.etag}"'}
    for alg, value in part.checksums.items():
        headers[checksums.header_name(alg)] = value
    return headers


async def upload_part(ctx: Ctx, op: UploadPart) -> web.StreamResponse:
    upload = await ctx.storage.multipart.get_upload(op.bucket, op.key, op.upload_id)
    size = upload_size(ctx)
    body = request_body(ctx, also=[upload.checksum_algorithm] if upload.checksum_algorithm else [])
    part = await ctx.storage.multipart.upload_part(
        op.bucket, op.key, op.upload_id, op.part_number, body, size
    )
    return web.Response(headers=_part_headers(part))


async def upload_part_copy(ctx: Ctx, op: UploadPartCopy) -> web.StreamResponse:
    upload = await ctx.storage.multipart.get_upload(op.bucket, op.key, op.upload_id)
    src = op.source
    reader = await open_copy_source(ctx, src.bucket, src.key, src.version_id)
    size = reader.info.size
    header = ctx.headers.get("x-amz-copy-source-range", "")
    rng = copy_range_within(op.source_range, size, header) if op.source_range else None
    start, end = (rng.start, rng.end) if rng else (0, size - 1)
    algorithms = [upload.checksum_algorithm] if upload.checksum_algorithm else []
    async with contextlib.aclosing(reader.stream(start, end)) as chunks:  # see copy_object
        part = await ctx.storage.multipart.upload_part(
            op.bucket,
            op.key,
            op.upload_id,
            op.part_number,
            CopyBody(chunks, algorithms),
            end - start + 1,
        )
    xml = s3xml.copy_part_result_xml(part.etag, part.last_modified, part.checksums or None)
    return xml_response(xml)


def _final_checksums(
    upload: UploadInfo, stored: dict[int, PartInfo], numbers: list[int]
) -> dict[str, str]:
    alg = upload.checksum_algorithm
    if alg is None:
        return {}
    values = []
    for n in numbers:
        value = stored[n].checksums.get(alg)
        if value is None:
            raise InvalidRequest(f"Part {n} has no {alg} checksum")
        values.append(value)
    if upload.metadata.get(CHECKSUM_TYPE_META) == "FULL_OBJECT":
        sizes = [stored[n].size for n in numbers]
        return {alg: checksums.full_object_checksum(alg, list(zip(values, sizes, strict=True)))}
    return {alg: checksums.composite_checksum(alg, values)}


async def complete_upload(ctx: Ctx, op: CompleteMultipartUpload) -> web.StreamResponse:
    requested = s3xml.parse_complete_multipart(await read_small_body(ctx, 4 * 1024 * 1024))
    upload = await ctx.storage.multipart.get_upload(op.bucket, op.key, op.upload_id)
    stored = {
        p.number: p for p in await ctx.storage.multipart.list_parts(op.bucket, op.key, op.upload_id)
    }
    for part in requested:
        have = stored.get(part.part_number)
        if have is None:
            raise InvalidPart()
        for alg, value in part.checksums.items():
            if have.checksums.get(alg) not in (None, value):
                raise InvalidPart()
    numbers = [p.part_number for p in requested]
    final = _final_checksums(upload, stored, numbers) if all(n in stored for n in numbers) else {}
    await check_conditional_write(ctx, op.bucket, op.key)
    info = await ctx.storage.multipart.complete_upload(
        op.bucket, op.key, op.upload_id, [(p.part_number, p.etag) for p in requested], final
    )
    checksum_type = upload.metadata.get(CHECKSUM_TYPE_META)
    xml = s3xml.complete_multipart_xml(
        f"/{op.bucket}/{op.key}",
        op.bucket,
        op.key,
        info.etag,
        final or None,
        checksum_type if final else None,
    )
    return xml_response(xml)


async def abort_upload(ctx: Ctx, op: AbortMultipartUpload) -> web.StreamResponse:
    await ctx.storage.multipart.abort_upload(op.bucket, op.key, op.upload_id)
    return web.Response(status=204)


async def list_parts(ctx: Ctx, op: ListParts) -> web.StreamResponse:
    upload = await ctx.storage.multipart.get_upload(op.bucket, op.key, op.upload_id)
    parts = [
        p
        for p in await ctx.storage.multipart.list_parts(op.bucket, op.key, op.upload_id)
        if p.number > op.part_number_marker
    ]
    page = parts[: op.max_parts]
    truncated = len(parts) > op.max_parts
    xml = s3xml.list_parts_xml(
        bucket=op.bucket,
        key=op.key,
        upload_id=op.upload_id,
        part_number_marker=op.part_number_marker,
        next_part_number_marker=page[-1].number if page else None,
        max_parts=op.max_parts,
        is_truncated=truncated,
        parts=[
            s3xml.PartEntry(p.number, p.last_modified, p.etag, p.size, p.checksums) for p in page
        ],
        owner=_owner(ctx),
        checksum_algorithm=upload.checksum_algorithm,
        checksum_type=upload.metadata.get(CHECKSUM_TYPE_META),
    )
    return xml_response(xml)


async def list_uploads(ctx: Ctx, op: ListMultipartUploads) -> web.StreamResponse:
    page = await ctx.storage.multipart.list_uploads(
        op.bucket, op.prefix, op.delimiter or "", op.key_marker, op.upload_id_marker, op.max_uploads
    )
    xml = s3xml.list_multipart_uploads_xml(
        bucket=op.bucket,
        prefix=op.prefix,
        delimiter=op.delimiter,
        key_marker=op.key_marker,
        upload_id_marker=op.upload_id_marker,
        next_key_marker=page.next_key_marker,
        next_upload_id_marker=page.next_upload_id_marker,
        max_uploads=op.max_uploads,
        encoding_type=op.encoding_type,
        is_truncated=page.is_truncated,
        uploads=[
            s3xml.UploadEntry(u.key, u.upload_id, u.initiated, owner=_owner(ctx))
            for u in page.uploads
        ],
        common_prefixes=page.common_prefixes,
    )
    return xml_response(xml)
