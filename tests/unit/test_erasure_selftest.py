"""The start-up self-test passes on the pinned libraries and fails loudly on any drift."""

from __future__ import annotations

import time

import pytest

import erasure.selftest
from erasure.codec import CODECS
from erasure.selftest import CONFIGS, GOLDEN, CodecSelfTestError, golden_digests, self_test


def test_self_test_passes_quickly() -> None:
    started = time.perf_counter()
    self_test()
    assert time.perf_counter() - started < 1.0


def test_goldens_cover_every_codec_and_config() -> None:
    assert set(GOLDEN) == {(name, k, m) for name in CODECS for k, m in CONFIGS}
    assert golden_digests() == GOLDEN


def test_tampered_golden_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(GOLDEN, ("zfec", 4, 2), "0" * 32)
    with pytest.raises(CodecSelfTestError, match="zfec 4\\+2") as info:
        self_test()
    assert len(info.value.failures) == 1


def test_changed_encoder_output_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulates a library upgrade that changes the bytes the codec produces."""
    monkeypatch.setattr(erasure.selftest, "_input", lambda n: bytes(n))
    with pytest.raises(CodecSelfTestError) as info:
        self_test()
    assert len(info.value.failures) == len(GOLDEN)
    assert all("golden" in failure for failure in info.value.failures)
