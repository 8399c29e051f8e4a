"""gateway.md5: the MD5 lanes give hashlib's digests, however uploads split and interleave."""

from __future__ import annotations

import hashlib
import os
import platform
import random
import struct
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import md5

try:
    import gateway._md5lanes as ext
except ImportError:  # no C compiler: see test_extension_is_built_on_linux_x86_64
    ext = None  # type: ignore[assignment]
INIT = struct.pack("<4I", 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)

needs_lanes = pytest.mark.skipif(ext is None, reason="gateway._md5lanes not built (no C compiler)")


def test_extension_is_built_on_linux_x86_64() -> None:
    # `make` installs a compiler before building (Makefile): a missing extension is a failure
    # there, not a silent fall-back to hashlib.
    if platform.system() == "Linux" and platform.machine() == "x86_64":
        assert ext is not None


def lanes_digest(messages: list[bytes]) -> list[bytes]:
    assert ext is not None
    states = [bytearray(INIT) for _ in messages]
    whole = [memoryview(m)[: len(m) - len(m) % 64] for m in messages]
    ext.md5_lanes(states, whole)
    tails = [m[len(m) - len(m) % 64 :] + md5.padding(len(m)) for m in messages]
    ext.md5_lanes(states, tails)
    return [bytes(s) for s in states]


@needs_lanes
@pytest.mark.parametrize("lanes", [1, 2, 3, 8, 15, 16])
def test_lanes_of_different_lengths_match_hashlib(lanes: int) -> None:
    rng = random.Random(lanes)
    sizes = [0, 1, 55, 56, 63, 64, 65, 127, 128, 4096, 70_000]
    messages = [os.urandom(rng.choice(sizes)) for _ in range(lanes)]
    assert lanes_digest(messages) == [hashlib.md5(m).digest() for m in messages]


@needs_lanes
def test_known_vectors() -> None:
    # RFC 1321's test suite.
    vectors = {
        b"": "d41d8cd98f00b204e9800998ecf8427e",
        b"abc": "900150983cd24fb0d6963f7d28e17f72",
        b"message digest": "f96b697d7cb7938d525a2f31aaf161d0",
        b"1234567890" * 8: "57edf4a22be3c955ac49da2e2107b67a",
    }
    got = lanes_digest(list(vectors))
    assert [d.hex() for d in got] == list(vectors.values())


@needs_lanes
@pytest.mark.parametrize(
    ("states", "blocks", "message"),
    [
        ([], [], "1 to 16 lanes"),
        ([bytearray(16)] * 17, [b""] * 17, "1 to 16 lanes"),
        ([bytearray(16)], [b"", b""], "1 to 16 lanes"),
        ([bytearray(15)], [b""], "16 bytes"),
        ([bytearray(16)], [b"x" * 65], "multiple of 64"),
    ],
)
def test_bad_arguments_are_value_errors(
    states: list[bytearray], blocks: list[bytes], message: str
) -> None:
    assert ext is not None
    with pytest.raises(ValueError, match=message):
        ext.md5_lanes(states, blocks)


@needs_lanes
def test_a_state_must_be_writable() -> None:
    assert ext is not None
    with pytest.raises(BufferError):
        ext.md5_lanes([bytes(16)], [b""])  # type: ignore[list-item]


@needs_lanes
@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=3000),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=6),
)
def test_lane_md5_updates_split_anywhere(data: bytes, cuts: list[int]) -> None:
    h = md5.LaneMd5()
    start = 0
    for cut in sorted(c for c in cuts if c <= len(data)):
        h.update(data[start:cut])
        start = cut
    h.update(memoryview(data)[start:])
    assert h.digest() == hashlib.md5(data).digest()
    assert h.hexdigest() == hashlib.md5(data).hexdigest()  # digest leaves the state as it was


@needs_lanes
def test_concurrent_uploads_share_the_lanes() -> None:
    # Twelve uploads of 1-4 MiB blocks, from as many threads: blocks join the lanes at segment
    # boundaries while others are being hashed, and every digest still matches.
    lanes = md5.Md5Lanes()
    rng = random.Random(7)
    bodies = [
        [
            os.urandom(rng.choice([md5.SEGMENT, 3 * md5.SEGMENT // 2 + 64, 4 << 20]))
            for _ in range(3)
        ]
        for _ in range(12)
    ]
    got: dict[int, bytes] = {}

    def upload(i: int) -> None:
        h = md5.LaneMd5(lanes)
        for block in bodies[i]:
            h.update(block)
        got[i] = h.digest()

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert got == {i: hashlib.md5(b"".join(b)).digest() for i, b in enumerate(bodies)}


@needs_lanes
def test_a_failing_block_fails_its_upload_and_the_lanes_go_on() -> None:
    lanes = md5.Md5Lanes()
    with pytest.raises(ValueError, match="multiple of 64"):
        lanes.hash(bytearray(INIT), memoryview(b"x" * (md5.SEGMENT + 1)))
    h = md5.LaneMd5(lanes)
    data = os.urandom(2 * md5.SEGMENT)
    h.update(data)
    assert h.digest() == hashlib.md5(data).digest()


@needs_lanes
def test_updates_with_mutable_buffers_are_hashed_before_they_return() -> None:
    # Immutable bytes are hashed while the caller goes on; a bytearray the caller may reuse
    # is hashed before update returns.
    data = bytearray(os.urandom(2 * md5.SEGMENT))
    expected = hashlib.md5(bytes(data) + b"tail").digest()
    h = md5.LaneMd5()
    h.update(data)
    data[:] = bytes(len(data))
    h.update(b"tail")
    assert h.digest() == expected


def test_new_md5_picks_the_lanes_for_large_first_blocks_only() -> None:
    assert not isinstance(md5.new_md5(md5.LANE_MIN - 1), md5.LaneMd5)
    large = md5.new_md5(md5.LANE_MIN)
    assert isinstance(large, md5.LaneMd5) == md5.lanes_available()


@needs_lanes
def test_an_upload_that_hands_in_nothing_holds_no_other() -> None:
    lanes = md5.Md5Lanes()
    idle = md5.LaneMd5(lanes)  # open, never hands in a block; the digest below hurries its own
    h = md5.LaneMd5(lanes)
    data = os.urandom(2 * md5.SEGMENT)
    h.update(data)
    assert h.digest() == hashlib.md5(data).digest()
    del idle  # an upload dropped before its digest no longer counts as open
    assert lanes._open == 0
