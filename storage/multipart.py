"""Multipart uploads: the upload record and its parts live on the drives of the object's set.

Each part is its own erasure-coded stream (own data id); completion inserts a version whose parts
point at those streams, atomically per drive, and drops the upload.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence

from erasure.layout import Layout
from storage.api import ObjectInfo, PartInfo, UploadBody, UploadInfo, UploadsPage, ns_to_datetime
from storage.drive import Drive
from storage.errors import (
    DriveNotFound,
    InvalidPartOrder,
    ObjectNotFound,
    PartNotFound,
    PartTooSmall,
    QuorumNotReached,
    UploadNotFound,
)
from storage.objects import ErasureObjects, record_info
from storage.quorum import pick_readable, reduce_write
from storage.records import ObjectRecord, PartRecord, PartRef, UploadRecord
from storage.sets import ObjectSet, each, new_id, outcomes
from storage.streams import write_part

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_NUMBER = 10_000


class _PartVersion:
    """A part row seen as a version (data id) so quorum.pick_readable can choose among them."""

    def __init__(self, part: PartRecord) -> None:
        self.part = part

    @property
    def version_id(self) -> str:
        return self.part.data_id

    @property
    def order(self) -> tuple[int, str]:
        return (self.part.mod_time_ns, self.part.data_id)


def _upload_info(u: UploadRecord) -> UploadInfo:
    return UploadInfo(
        bucket=u.bucket,
        key=u.key,
        upload_id=u.upload_id,
        initiated=ns_to_datetime(u.initiated_ns),
        metadata=u.metadata,
        checksum_algorithm=u.checksum_algorithm,
    )


def multipart_etag(part_etags: Sequence[str]) -> str:
    """S3's multipart ETag: MD5 of the concatenated binary part MD5s, then "-<count>".

    >>> multipart_etag(["d41d8cd98f00b204e9800998ecf8427e"])
    '59adb24ef3cdbe0297f05b395827453f-1'
    """
    joined = b"".join(bytes.fromhex(e) for e in part_etags)
    return f"{hashlib.md5(joined).hexdigest()}-{len(part_etags)}"


class ErasureMultipart:
    def __init__(self, objects: ErasureObjects, min_part_size: int = MIN_PART_SIZE) -> None:
        self.objects = objects
        self.sets = objects.sets
        self.min_part_size = min_part_size

    async def create_upload(
        self, bucket: str, key: str, metadata: Mapping[str, str], checksum_algorithm: str | None
    ) -> str:
        p = self.sets.params
        upload = UploadRecord(
            bucket=bucket,
            key=key,
            upload_id=new_id(),
            initiated_ns=self.objects.clock(),
            codec=p.codec,
            k=p.k,
            m=p.m,
            block_size=p.block_size,
            metadata=dict(metadata),
            checksum_algorithm=checksum_algorithm,
        )
        drives = (await self.objects.write_set(bucket, key)).drives
        results = outcomes(await each(drives, lambda d: d.put_upload(upload)))
        reduce_write(results, self.objects.write_quorum)
        return upload.upload_id

    async def _upload(self, bucket: str, key: str, upload_id: str) -> UploadRecord:
        return (await self._find(bucket, key, upload_id))[0]

    async def _find(self, bucket: str, key: str, upload_id: str) -> tuple[UploadRecord, ObjectSet]:
        """The upload and the set (of whichever pool) holding it."""
        osets = self.sets.all_for_object(bucket, key)
        if len(osets) > 1:
            for oset in osets:
                try:
                    return await self._upload_in(oset, bucket, key, upload_id)
                except UploadNotFound:
                    continue
            raise UploadNotFound(upload_id)
        return await self._upload_in(osets[0], bucket, key, upload_id)

    async def _upload_in(
        self, oset: ObjectSet, bucket: str, key: str, upload_id: str
    ) -> tuple[UploadRecord, ObjectSet]:
        drives = oset.drives
        results = await each(drives, lambda d: d.get_upload(upload_id))
        found = [r for r in results if isinstance(r, UploadRecord)]
        absent = sum(isinstance(r, DriveNotFound) for r in results)
        if len(found) >= self.sets.params.k:
            upload = found[0]
            if (upload.bucket, upload.key) == (bucket, key):
                return upload, oset
            raise UploadNotFound(upload_id)
        if len(found) + absent < self.sets.params.k:
            raise QuorumNotReached(f"upload {upload_id}: too few drives answered")
        await self.objects._bucket_must_exist(bucket)
        raise UploadNotFound(upload_id)

    async def get_upload(self, bucket: str, key: str, upload_id: str) -> UploadInfo:
        return _upload_info(await self._upload(bucket, key, upload_id))

    async def upload_part(
        self, bucket: str, key: str, upload_id: str, number: int, body: UploadBody, size: int
    ) -> PartInfo:
        upload, oset = await self._find(bucket, key, upload_id)
        layout = Layout(upload.codec, upload.k, upload.m, upload.block_size)
        data_id = new_id()
        staged = await write_part(oset, layout, body, size, data_id, self.objects.write_quorum, -1)
        committed = [False] * len(oset.drives)  # staged shards now in place, nothing to discard
        try:
            digest = await body.finish()
            now = self.objects.clock()

            async def commit(position: int) -> None:
                if not staged.ok[position]:
                    raise DriveNotFound("no staged shard")
                part = PartRecord(
                    upload_id=upload_id,
                    number=number,
                    size=size,
                    etag=digest.md5_hex,
                    data_id=data_id,
                    mod_time_ns=now,
                    shard_index=oset.shard_of(position),
                    checksums=dict(digest.checksums),
                )
                await oset.drives[position].commit_part(part)
                committed[position] = True

            results = await asyncio.gather(
                *(commit(p) for p in range(len(oset.drives))), return_exceptions=True
            )
            done = outcomes(results)
            if sum(isinstance(o, DriveNotFound) for o in done) >= self.objects.write_quorum:
                raise UploadNotFound(upload_id)  # aborted or completed meanwhile
            reduce_write(done, self.objects.write_quorum)
        finally:
            await staged.discard(committed)
        return PartInfo(
            number=number,
            size=size,
            etag=digest.md5_hex,
            last_modified=ns_to_datetime(now),
            checksums=digest.checksums,
        )

    async def _parts(self, oset_drives: Sequence[Drive], upload_id: str) -> dict[int, PartRecord]:
        results = await each(oset_drives, lambda d: d.list_parts(upload_id))
        by_number: dict[int, list[list[_PartVersion] | None]] = defaultdict(
            lambda: [[] for _ in oset_drives]
        )
        for position, result in enumerate(results):
            if isinstance(result, BaseException):
                continue
            for part in result:
                slot = by_number[part.number][position]
                assert slot is not None
                slot.append(_PartVersion(part))
        failed = [isinstance(r, BaseException) for r in results]
        chosen: dict[int, PartRecord] = {}
        for number, per_drive in sorted(by_number.items()):
            views = [None if failed[i] else d for i, d in enumerate(per_drive)]
            for versions in views:
                if versions:
                    versions.sort(key=lambda v: v.order, reverse=True)
            try:
                chosen[number] = pick_readable(views, self.sets.params.k).version.part
            except (ObjectNotFound, QuorumNotReached):
                continue  # a part that never reached quorum is not a part
        return chosen

    async def list_parts(self, bucket: str, key: str, upload_id: str) -> list[PartInfo]:
        _, oset = await self._find(bucket, key, upload_id)
        parts = await self._parts(oset.drives, upload_id)
        return [
            PartInfo(
                number=p.number,
                size=p.size,
                etag=p.etag,
                last_modified=ns_to_datetime(p.mod_time_ns),
                checksums=p.checksums,
            )
            for p in parts.values()
        ]

    async def complete_upload(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[tuple[int, str]],
        checksums: Mapping[str, str],
    ) -> ObjectInfo:
        upload, oset = await self._find(bucket, key, upload_id)
        stored = await self._parts(oset.drives, upload_id)
        numbers = [n for n, _ in parts]
        if numbers != sorted(set(numbers)):
            raise InvalidPartOrder()
        refs: list[PartRef] = []
        for i, (number, etag) in enumerate(parts):
            part = stored.get(number)
            if part is None or part.etag != etag.strip('"'):
                raise PartNotFound(f"part {number}")
            if i < len(parts) - 1 and part.size < self.min_part_size:
                raise PartTooSmall(f"part {number} is {part.size} bytes")
            refs.append(PartRef(part.number, part.size, part.etag, part.data_id, part.checksums))
        record = ObjectRecord(
            bucket=bucket,
            key=key,
            version_id=new_id(),
            mod_time_ns=self.objects.clock(),
            size=sum(r.size for r in refs),
            etag=multipart_etag([r.etag for r in refs]),
            codec=upload.codec,
            k=upload.k,
            m=upload.m,
            block_size=upload.block_size,
            shard_index=0,
            parts=tuple(refs),
            metadata=dict(upload.metadata),
            checksums=dict(checksums),
        )

        async def one(position: int) -> bool:
            rec = record.for_shard(oset.shard_of(position), None)
            return await oset.drives[position].complete_upload(rec, upload_id)

        await self.objects.commit_on(oset, record, one)
        return record_info(record)

    async def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        _, oset = await self._find(bucket, key, upload_id)
        results = outcomes(await each(oset.drives, lambda d: d.abort_upload(upload_id)))
        reduce_write(
            [None if isinstance(o, DriveNotFound) else o for o in results],
            self.objects.write_quorum,
        )

    async def list_uploads(
        self,
        bucket: str,
        prefix: str,
        delimiter: str,
        key_marker: str,
        upload_id_marker: str,
        max_uploads: int,
    ) -> UploadsPage:
        await self.objects._bucket_must_exist(bucket)
        limit = max_uploads + 1
        after = (key_marker, upload_id_marker if key_marker else "")
        if key_marker and not upload_id_marker:
            after = (key_marker, "\U0010ffff")  # after every upload of key_marker
        results = await each(
            self.sets.drives, lambda d: d.list_uploads(bucket, prefix, after, limit)
        )
        seen: dict[str, UploadRecord] = {}
        for result in results:
            if isinstance(result, list):
                for u in result:
                    seen.setdefault(u.upload_id, u)
        ordered = sorted(seen.values(), key=lambda u: (u.key, u.upload_id))
        uploads: list[UploadInfo] = []
        prefixes: list[str] = []
        truncated = False
        last: tuple[str, str] | None = None
        for u in ordered:
            if len(uploads) + len(prefixes) >= max_uploads:
                truncated = max_uploads > 0  # max-uploads=0: an empty page, not truncated (S3)
                break
            if delimiter:
                i = u.key.find(delimiter, len(prefix))
                if i >= 0:
                    cp = u.key[: i + len(delimiter)]
                    if not prefixes or prefixes[-1] != cp:
                        prefixes.append(cp)
                    last = (u.key, u.upload_id)
                    continue
            uploads.append(_upload_info(u))
            last = (u.key, u.upload_id)
        return UploadsPage(
            uploads=uploads,
            common_prefixes=prefixes,
            is_truncated=truncated,
            next_key_marker=last[0] if truncated and last else None,
            next_upload_id_marker=last[1] if truncated and last else None,
        )
