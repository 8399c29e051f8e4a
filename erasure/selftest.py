"""Start-up self-test of the codecs against golden hashes (MinIO's ``erasureSelfTest``).

Stored shards are only readable if the codec still computes exactly what it computed when they
were written. A library upgrade that changes encoder output (different matrix, padding, header)
must stop the process at start-up instead of silently writing shards that older data cannot be
mixed with, so ``self_test`` encodes fixed inputs and compares digests baked in below.

If a dependency upgrade trips it: check that shards written by the old version still decode
with the new one, then update ``GOLDEN`` from ``golden_digests()``. Note that isal shards carry
liberasurecode's fragment header, which includes the library version, so a pyeclib upgrade
changes the isal digests even when the coding math is unchanged.
"""

from __future__ import annotations

import hashlib
from typing import Final

import xxhash

from erasure.codec import CODECS, Codec, DecodeError, get_codec

# (k, m) pairs covered; 2+2 allows decoding from parity shards alone.
CONFIGS: Final = ((8, 4), (4, 2), (2, 2))
# 1 byte (almost all padding), an unaligned length, and more than 64 KiB.
BLOCK_LENS: Final = (1, 1000, 65_537)

# xxh3-128 over every shard of every BLOCK_LENS input, per (codec, k, m); see _encode_digest.
# Generated with pyeclib 1.8.0 (its bundled liberasurecode + ISA-L) and zfec 1.6.0.0.
GOLDEN: Final[dict[tuple[str, int, int], str]] = {
    ("isal", 8, 4): "f807c17260fdeef650c3fab22439a9e7",
    ("isal", 4, 2): "ab34c7bef84ab0a4f1ae6a31b5c5f95c",
    ("isal", 2, 2): "41d36792b5940b95c12e3c91c80cb035",
    ("zfec", 8, 4): "71fe745fe3985e671aca2c763311313d",
    ("zfec", 4, 2): "7f0db9f6299e4073e84cbcb806d46806",
    ("zfec", 2, 2): "169cfef458c93de6928d5f0608a7a3e9",
}


class CodecSelfTestError(Exception):
    """The codecs do not produce the golden output or do not round-trip."""

    def __init__(self, failures: list[str]) -> None:
        super().__init__("erasure codec self-test failed:\n  " + "\n  ".join(failures))
        self.failures = failures


def _input(block_len: int) -> bytes:
    """Deterministic, incompressible test data (SHAKE-128 is fixed by FIPS 202)."""
    return hashlib.shake_128(b"huimin erasure self-test %d" % block_len).digest(block_len)


def _encode_digest(codec: Codec) -> str:
    digest = xxhash.xxh3_128()
    for block_len in BLOCK_LENS:
        digest.update(block_len.to_bytes(8, "little"))
        for head, rest in codec.encode_split(_input(block_len)):  # what a PUT writes
            digest.update(head)
            digest.update(rest)
    return digest.hexdigest()


def golden_digests() -> dict[tuple[str, int, int], str]:
    """What ``GOLDEN`` should be for the installed libraries (to regenerate it)."""
    return {
        (name, k, m): _encode_digest(get_codec(name, k, m)) for name in CODECS for k, m in CONFIGS
    }


def _round_trip_failures(codec: Codec) -> list[str]:
    """Encode, then decode and reconstruct with as many data shards lost as m allows."""
    failures = []
    k, m = codec.k, codec.m
    label = f"{codec.name} {k}+{m}"
    lost = list(range(min(k, m)))  # the first data shards: the most decode math
    for block_len in BLOCK_LENS:
        block = _input(block_len)
        shards = codec.encode(block)
        if len(shards) != k + m or any(len(s) != codec.shard_size(block_len) for s in shards):
            failures.append(f"{label} len {block_len}: wrong shard count or size")
            continue
        survivors = {i: s for i, s in enumerate(shards) if i not in lost}
        try:
            if codec.decode(dict(enumerate(shards)), block_len) != block:
                failures.append(f"{label} len {block_len}: decode from all shards differs")
            if codec.decode(survivors, block_len) != block:
                failures.append(f"{label} len {block_len}: decode without {lost} differs")
            rebuilt = codec.reconstruct(survivors, block_len, lost)
            if any(rebuilt[i] != shards[i] for i in lost):
                failures.append(f"{label} len {block_len}: reconstructed shards differ")
        except DecodeError as exc:
            failures.append(f"{label} len {block_len}: {exc}")
    return failures


def self_test() -> None:
    """Raise CodecSelfTestError unless every codec matches its golden digests and round-trips
    with m shards lost (parity only for 2+2). Takes a few milliseconds."""
    failures = []
    for name in CODECS:
        for k, m in CONFIGS:
            codec = get_codec(name, k, m)
            actual = _encode_digest(codec)
            expected = GOLDEN.get((name, k, m))
            if actual != expected:
                failures.append(f"{name} {k}+{m}: encode digest {actual} != golden {expected}")
            failures.extend(_round_trip_failures(codec))
    if failures:
        raise CodecSelfTestError(failures)
