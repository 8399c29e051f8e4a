"""The shard files of a small part built in memory (``storage.streams._inline_shards``) are
exactly the shard file format: header, then each block's frame hash and payload, per shard."""

from __future__ import annotations

import hashlib
import os

import pytest

from erasure import framing
from erasure.codec import get_codec
from erasure.layout import Layout
from storage.api import BytesBody
from storage.streams import _inline_shards


class _Digest(BytesBody):
    """An upload body that counts what ``_inline_shards`` hashes into it."""

    def __init__(self) -> None:
        super().__init__(b"")
        self.updates = 0

    def update(self, block: bytes | bytearray | memoryview) -> None:
        super().update(block)
        self.updates += 1


def _expected(layout: Layout, data: bytes) -> list[bytes]:
    codec = get_codec(layout.codec, layout.k, layout.m)
    files = [framing.shard_header(layout, i) for i in range(layout.k + layout.m)]
    for b in range(layout.block_count(len(data))):
        block = data[b * layout.block_size : (b + 1) * layout.block_size]
        for i, payload in enumerate(codec.encode(block)):
            files[i] += framing.frame_hash(payload, shard_index=i, block_index=b) + payload
    return files


@pytest.mark.parametrize("codec", ["isal", "zfec"])
@pytest.mark.parametrize("size", [0, 1, 4096, 8192, 8193, 3 * 8192 + 5])
def test_inline_shards_are_the_shard_file_format(codec: str, size: int) -> None:
    layout = Layout(codec, 4, 2, block_size=8192)
    data = os.urandom(size)
    body = _Digest()
    files = _inline_shards(get_codec(codec, 4, 2), layout, data, body)
    assert files == _expected(layout, data)
    assert all(type(f) is bytes for f in files)
    assert body.md5.digest() == hashlib.md5(data).digest()
    assert body.updates >= 1  # an empty body is hashed too


def test_shard_headers_are_each_shards_header() -> None:
    layout = Layout("isal", 8, 4)
    assert framing.shard_headers(layout) == tuple(
        framing.shard_header(layout, i) for i in range(12)
    )
    assert framing.shard_headers(layout) is framing.shard_headers(layout)
