"""A small inline object record for tests of the index and the node (one 3-byte part)."""

from __future__ import annotations

from storage.records import ObjectRecord, PartRef


def small_record(key: str, bucket: str = "b", version_id: str = "v1", t: int = 1) -> ObjectRecord:
    return ObjectRecord(
        bucket=bucket,
        key=key,
        version_id=version_id,
        mod_time_ns=t,
        size=3,
        etag="e",
        codec="rs",
        k=2,
        m=1,
        block_size=1024,
        shard_index=0,
        parts=(PartRef(1, 3, "e", None),),
        inline=b"abc",
    )
