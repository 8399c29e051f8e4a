"""ISA-L called directly gives pyeclib's parity byte for byte, and the isal codec falls back to
pyeclib alone where the direct call is missing or differs."""

from __future__ import annotations

import random

import pytest
from pyeclib.ec_iface import ECDriver

import erasure.codec
from erasure.isal_direct import ParityEncoder, parity_encoder


def _encoder(k: int, m: int) -> ParityEncoder:
    encoder = parity_encoder(k, m)
    assert encoder is not None, "pyeclib's wheel bundles ISA-L"
    return encoder


@pytest.mark.parametrize(("k", "m"), [(1, 1), (2, 2), (4, 2), (8, 4), (10, 4), (28, 4)])
@pytest.mark.parametrize("chunk", [1, 31, 4096, 131_072])
def test_parity_is_pyeclibs(k: int, m: int, chunk: int) -> None:
    block = random.Random(k * 1000 + chunk).randbytes(k * chunk)
    fragments = ECDriver(k=k, m=m, ec_type="isa_l_rs_vand").encode(block)
    parity = _encoder(k, m).parity(block)
    header = len(fragments[0]) - chunk
    assert [bytes(parity[j * chunk : (j + 1) * chunk]) for j in range(m)] == [
        f[header:] for f in fragments[k:]
    ]


@pytest.mark.parametrize("length", [0, 7, 4097])
def test_a_block_that_does_not_split_evenly_is_refused(length: int) -> None:
    with pytest.raises(ValueError, match="does not split"):
        _encoder(8, 4).parity(bytes(length))


class _WrongParity:
    def parity(self, block: bytes) -> bytearray:
        return bytearray(len(block) // 8 * 4)  # zeros: not the parity of random data


def test_a_direct_encoder_that_differs_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(erasure.codec, "parity_encoder", lambda k, m: _WrongParity())
    codec = erasure.codec._IsalCodec(8, 4)
    assert codec._parity is None
    block = random.Random(1).randbytes(8 * 5000)
    assert [head + bytes(rest) for head, rest in codec.encode_split(block)] == codec.encode(block)


def test_without_the_library_the_codec_encodes_with_pyeclib(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(erasure.codec, "parity_encoder", lambda k, m: None)
    codec = erasure.codec._IsalCodec(4, 2)
    block = random.Random(2).randbytes(4 * 1000)
    split = codec.encode_split(block)
    assert [head for head, _ in split] == [b""] * 6
    assert [bytes(rest) for _, rest in split] == codec.encode(block)
