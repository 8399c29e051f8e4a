"""The index's ``meta`` column is the same bytes whichever JSON library writes it: orjson
(storage.records) must write exactly what ``json.dumps(..., ensure_ascii=False)`` wrote, so
drives written before and after read alike, and it must read back what it wrote."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from storage.records import (
    ObjectRecord,
    PartRef,
    UploadRecord,
    decode_object_meta,
    decode_upload_meta,
    encode_object_meta,
    encode_upload_meta,
)

# Valid UTF-8 text (no lone surrogates: a header that is not UTF-8 never reaches a record).
_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
_ints = st.integers(min_value=0, max_value=2**63 - 1)
_maps = st.dictionaries(_text, _text, max_size=4)


def _stdlib(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


@st.composite
def _records(draw: st.DrawFn) -> ObjectRecord:
    parts = draw(
        st.lists(
            st.builds(
                PartRef,
                number=st.integers(1, 10000),
                size=_ints,
                etag=_text,
                data_id=st.one_of(st.none(), _text),
                checksums=_maps,
            ),
            max_size=3,
        )
    )
    return ObjectRecord(
        bucket="b",
        key=draw(_text),
        version_id="v",
        mod_time_ns=draw(_ints),
        size=draw(_ints),
        etag=draw(_text),
        codec=draw(_text),
        k=draw(st.integers(1, 16)),
        m=draw(st.integers(0, 16)),
        block_size=draw(_ints),
        shard_index=draw(st.integers(0, 31)),
        parts=tuple(parts),
        metadata=draw(_maps),
        checksums=draw(_maps),
        inline=None,
    )


@given(_records())
def test_object_meta_bytes_match_the_stdlib_and_round_trip(record: ObjectRecord) -> None:
    meta = encode_object_meta(record)
    assert meta == _stdlib(json.loads(meta))
    back = decode_object_meta(
        record.bucket, record.key, record.version_id, record.mod_time_ns, meta, None
    )
    assert back == record


@given(_text, _maps, st.one_of(st.none(), _text))
def test_upload_meta_bytes_match_the_stdlib_and_round_trip(
    codec: str, metadata: dict[str, str], algorithm: str | None
) -> None:
    upload = UploadRecord("b", "k", "u", 1, codec, 8, 4, 1 << 20, metadata, algorithm)
    meta = encode_upload_meta(upload)
    assert meta == _stdlib(json.loads(meta))
    assert decode_upload_meta("b", "k", "u", 1, meta) == upload
