"""Erasure codecs: a block becomes k data shards plus m parity shards; any k rebuild it.

Two interchangeable backends behind one small protocol:

- ``isal``: pyeclib's ``isa_l_rs_vand`` (the wheel bundles Intel ISA-L). Each shard payload is
  whatever pyeclib returns: liberasurecode's 80-byte fragment header followed by
  ``ceil(block_len / k)`` bytes. Very fast, but pyeclib holds the GIL and copies the block.
  ``encode_split`` gives the same bytes for a block of k equal chunks without pyeclib: ISA-L
  called in place (``erasure.isal_direct``), the GIL released.
- ``zfec``: Tahoe-LAFS's zfec. The block is zero-padded to a multiple of k and each shard is
  ``ceil(block_len / k)`` bytes with no header. Slower, but releases the GIL.

Both are systematic (shards 0..k-1 are the block itself, split in k), so a healthy read
concatenates data shards without any decode math. Both are deterministic: the same block
always encodes to the same bytes (``erasure.selftest`` pins that with golden hashes).

Codec instances are safe to share between threads (zfec's matrices and ISA-L's tables are
read-only after construction; pyeclib calls are serialised by the GIL; the isal codec's cache
of fragment headers by block length may at worst compute the same headers twice).
"""

from __future__ import annotations

import functools
import logging
import random
import struct
from collections.abc import Mapping, Sequence
from typing import Protocol

import zfec
from pyeclib.ec_iface import ECDriver, ECDriverError

from erasure.isal_direct import ParityEncoder, parity_encoder

log = logging.getLogger(__name__)

CODECS: tuple[str, ...] = ("isal", "zfec")

# Measured here (2-vCPU AMD EPYC, AVX2, CPython 3.11; `pytest bench/micro -k erasure`), 1 MiB
# blocks, 8+4, one thread, medians, MB = 10^6 bytes:
#                        encode     decode, 4 data shards lost   decode, all data shards
#   isal (GIL held)      5950 MB/s  4870 MB/s                    ~20000 MB/s (no math)
#   zfec (GIL released)   420 MB/s   415 MB/s                    ~20000 MB/s (no math)
# isal is ~14x faster at encode, so even holding the GIL it costs < 0.2 ms per block.
# Caveat: the isal figures need glibc malloc thresholds raised (e.g. M_MMAP_THRESHOLD 8 MiB,
# M_TRIM_THRESHOLD 32 MiB). With glibc's defaults every encode page-faults ~3 MB of fresh
# memory (liberasurecode's per-call fragment buffers) and isal encode drops to ~450-550 MB/s,
# still ahead of zfec but holding the GIL for ~2 ms per block.
DEFAULT_CODEC: str = "isal"

# Block lengths whose fragment headers the isal codec keeps (full blocks, and a few last ones).
_HEADER_LENGTHS_KEPT = 16
# liberasurecode's EC_MAX_FRAGMENTS.
_ISAL_MAX_SHARDS = 32
# isa_l_rs_vand's Vandermonde matrix is not MDS for m >= 5: some loss patterns of <= m shards
# cannot be decoded (https://bugs.launchpad.net/swift/+bug/1639691; Swift refuses it too).
_ISAL_MAX_PARITY = 4
# zfec's limit (block numbers are one byte).
_ZFEC_MAX_SHARDS = 256


class DecodeError(Exception):
    """Fewer than k usable shards, or shards inconsistent with each other or with block_len."""


class Codec(Protocol):
    """A systematic k+m erasure code over one block at a time."""

    name: str
    k: int
    m: int

    def shard_size(self, block_len: int) -> int:
        """Byte length of each of the k+m shard payloads for a block of ``block_len`` bytes."""
        ...

    def encode(self, block: bytes | memoryview) -> list[bytes]:
        """k+m shard payloads of ``shard_size(len(block))`` bytes; 0..k-1 are data shards."""
        ...

    def encode_split(self, block: bytes | memoryview) -> list[tuple[bytes, bytes | memoryview]]:
        """``encode``'s payloads, each as (head, rest): payload == head + rest. ``rest`` may be
        a view of ``block`` itself (a data shard, not copied)."""
        ...

    def decode(self, shards: Mapping[int, bytes | memoryview], block_len: int) -> bytes:
        """The original ``block_len``-byte block from any >= k shards keyed by shard index."""
        ...

    def reconstruct(
        self, shards: Mapping[int, bytes | memoryview], block_len: int, wanted: Sequence[int]
    ) -> dict[int, bytes]:
        """The payloads of the ``wanted`` shard indexes, rebuilt from any >= k shards."""
        ...

    def data_pieces(
        self, shards: Mapping[int, bytes | memoryview], block_len: int
    ) -> list[memoryview] | None:
        """The block as views into data shards 0..k-1, in order (their concatenation is what
        ``decode`` returns), with no copy; None unless all k data shards are given."""
        ...


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _byte_view(buf: bytes | memoryview) -> memoryview:
    """A flat unsigned-byte view, so len() and slicing count bytes (the buffer must be
    C-contiguous)."""
    view = memoryview(buf)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def _check_block_len(block_len: int) -> None:
    if block_len < 1:
        raise ValueError(f"block_len must be >= 1, got {block_len}")


def _check_wanted(wanted: Sequence[int], n: int) -> list[int]:
    for index in wanted:
        if not 0 <= index < n:
            raise ValueError(f"wanted shard index {index} out of range 0..{n - 1}")
    return sorted(set(wanted))


def _usable_shards(
    shards: Mapping[int, bytes | memoryview], k: int, n: int, shard_size: int
) -> dict[int, memoryview]:
    """Validate indexes and lengths; return the k lowest-indexed shards (data shards first,
    as they need the least decode math)."""
    views: dict[int, memoryview] = {}
    for index in sorted(shards):
        if not 0 <= index < n:
            raise DecodeError(f"shard index {index} out of range 0..{n - 1}")
        view = _byte_view(shards[index])
        if len(view) != shard_size:
            raise DecodeError(
                f"shard {index} is {len(view)} bytes, expected {shard_size} for this block"
            )
        if len(views) < k:
            views[index] = view
    if len(views) < k:
        raise DecodeError(f"need {k} shards to decode, got {len(views)}")
    return views


def _data_parts(
    data_shards: Sequence[memoryview | bytes], chunk: int, block_len: int
) -> list[memoryview]:
    """The data parts of shards 0..k-1 without the zero padding, as views (no copy).

    E.g. block_len=10, k=4 -> chunk=3: takes 3+3+3+1 bytes of shards 0..3.
    """
    parts = []
    for i, shard in enumerate(data_shards):
        take = min(chunk, block_len - i * chunk)
        if take <= 0:
            break
        parts.append(_byte_view(shard)[:take])
    return parts


def _join_data(data_shards: Sequence[memoryview | bytes], chunk: int, block_len: int) -> bytes:
    """Concatenate the data parts of shards 0..k-1 and drop the zero padding, in one copy."""
    return b"".join(_data_parts(data_shards, chunk, block_len))


class _ZfecCodec:
    """zfec backend: shard i of a block is bytes [i*c, (i+1)*c) of the zero-padded block,
    c = ceil(block_len / k); parity shards are zfec's check blocks k..k+m-1."""

    __slots__ = ("_decoder", "_encoder", "k", "m", "name")

    def __init__(self, k: int, m: int) -> None:
        self.name = "zfec"
        self.k = k
        self.m = m
        self._encoder = zfec.Encoder(k, k + m)
        self._decoder = zfec.Decoder(k, k + m)

    def shard_size(self, block_len: int) -> int:
        """``ceil(block_len / k)``: 1 MiB with k=8 -> 131072; 10 bytes with k=4 -> 3."""
        _check_block_len(block_len)
        return _ceil_div(block_len, self.k)

    def _split(self, view: memoryview) -> list[bytes]:
        chunk = _ceil_div(len(view), self.k)
        data: list[bytes] = []
        for i in range(self.k):
            part = view[i * chunk : (i + 1) * chunk]
            if len(part) == chunk:
                data.append(bytes(part))
            else:  # only the tail of the block needs zero padding
                data.append(bytes(part) + bytes(chunk - len(part)))
        return data

    def encode(self, block: bytes | memoryview) -> list[bytes]:
        view = _byte_view(block)
        _check_block_len(len(view))
        data = self._split(view)
        parity: list[bytes] = self._encoder.encode(data, list(range(self.k, self.k + self.m)))
        return data + parity

    def encode_split(self, block: bytes | memoryview) -> list[tuple[bytes, bytes | memoryview]]:
        return [(b"", shard) for shard in self.encode(block)]

    def _primaries(self, views: dict[int, memoryview]) -> list[memoryview | bytes]:
        """Data shards 0..k-1 from exactly k shards, decoding only when one is missing."""
        if all(i in views for i in range(self.k)):
            return [views[i] for i in range(self.k)]
        # Fresh lists: zfec reorders the sequences it is given in place.
        indexes = list(views)
        primaries: list[memoryview | bytes] = self._decoder.decode(
            [views[i] for i in indexes], indexes
        )
        return primaries

    def decode(self, shards: Mapping[int, bytes | memoryview], block_len: int) -> bytes:
        size = self.shard_size(block_len)
        views = _usable_shards(shards, self.k, self.k + self.m, size)
        return _join_data(self._primaries(views), size, block_len)

    def data_pieces(
        self, shards: Mapping[int, bytes | memoryview], block_len: int
    ) -> list[memoryview] | None:
        if not all(i in shards for i in range(self.k)):
            return None
        size = self.shard_size(block_len)
        views = _usable_shards(shards, self.k, self.k + self.m, size)
        return _data_parts([views[i] for i in range(self.k)], size, block_len)

    def reconstruct(
        self, shards: Mapping[int, bytes | memoryview], block_len: int, wanted: Sequence[int]
    ) -> dict[int, bytes]:
        size = self.shard_size(block_len)
        targets = _check_wanted(wanted, self.k + self.m)
        views = _usable_shards(shards, self.k, self.k + self.m, size)
        primaries = self._primaries(views)
        result = {i: bytes(primaries[i]) for i in targets if i < self.k}
        parity_ids = [i for i in targets if i >= self.k]
        if parity_ids:
            parity: list[bytes] = self._encoder.encode(primaries, parity_ids)
            result.update(zip(parity_ids, parity, strict=True))
        return result


# The fields of a liberasurecode fragment header the codec checks: the fragment index (u32 LE
# at 0) and the block length (u64 LE at 12). One unpack instead of two slices and int parses.
_FRAGMENT_HEADER = struct.Struct("<I8xQ")


class _IsalCodec:
    """pyeclib ``isa_l_rs_vand`` backend: shard i = liberasurecode fragment i, an 80-byte
    header (index, sizes, versions, header CRC) followed by bytes [i*c, (i+1)*c) of the
    zero-padded block, c = ceil(block_len / k). The layout is verified at construction,
    which is what makes the header-stripping fast path in ``decode`` safe."""

    __slots__ = ("_driver", "_header_len", "_headers", "_parity", "k", "m", "name")

    def __init__(self, k: int, m: int) -> None:
        self.name = "isal"
        self.k = k
        self.m = m
        self._driver = ECDriver(k=k, m=m, ec_type="isa_l_rs_vand")
        self._header_len = self._probe_layout()
        # Fragment headers by block length (they depend on nothing else; see _probe_direct).
        self._headers: dict[int, list[bytes]] = {}
        self._parity = self._probe_direct()

    def _probe_direct(self) -> ParityEncoder | None:
        """ISA-L called directly (``erasure.isal_direct``) where it gives pyeclib's fragments
        for a random block, byte for byte: same parity, and headers that do not depend on the
        data. None (pyeclib alone) otherwise."""
        encoder = parity_encoder(self.k, self.m)
        if encoder is None:
            return None
        chunk = 4096 + 16
        block = random.Random(7).randbytes(self.k * chunk)
        if [b"".join(split) for split in self._split_direct(encoder, block)] != (
            self._driver.encode(block)
        ):
            log.warning("ISA-L called directly differs from pyeclib: encoding with pyeclib only")
            return None
        return encoder

    def _probe_layout(self) -> int:
        """Learn the fragment header length and check the layout we rely on: each fragment is
        header + one contiguous chunk of the padded block, sized as ``shard_size`` says, with
        the fragment index (u32 LE at 0) and block length (u64 LE at 12) in the header."""
        chunk = 17
        probe = bytes(i % 251 + 1 for i in range(self.k * chunk))  # nonzero, no zero padding
        fragments = self._driver.encode(probe)
        header_len = len(fragments[0]) - chunk
        for block_len in (1, len(probe) - 1, len(probe), 4097):
            info = self._driver.get_segment_info(block_len, block_len)
            if info["fragment_size"] != header_len + _ceil_div(block_len, self.k):
                raise RuntimeError(f"unexpected pyeclib fragment size: {info}")
        for i, fragment in enumerate(fragments[: self.k]):
            if (
                fragment[header_len:] != probe[i * chunk : (i + 1) * chunk]
                or int.from_bytes(fragment[0:4], "little") != i
                or int.from_bytes(fragment[12:20], "little") != len(probe)
                or _FRAGMENT_HEADER.unpack_from(fragment) != (i, len(probe))
            ):
                raise RuntimeError("unexpected pyeclib fragment layout")
        return header_len

    def shard_size(self, block_len: int) -> int:
        """``80 + ceil(block_len / k)``: 1 MiB with k=8 -> 131152; 10 bytes with k=4 -> 83."""
        _check_block_len(block_len)
        return self._header_len + _ceil_div(block_len, self.k)

    def encode(self, block: bytes | memoryview) -> list[bytes]:
        # pyeclib accepts only bytes (a memoryview is rejected or, in decode, aborts the process).
        data = block if isinstance(block, bytes) else bytes(block)
        size = self.shard_size(len(data))
        fragments = self._driver.encode(data)
        if len(fragments) != self.k + self.m or any(len(f) != size for f in fragments):
            raise RuntimeError("pyeclib returned fragments of an unexpected size")
        return fragments

    def encode_split(self, block: bytes | memoryview) -> list[tuple[bytes, bytes | memoryview]]:
        """(fragment header, data) per shard. A block of bytes that splits in k equal chunks
        is encoded by ISA-L in place: its data shards are views of it, no copy (pyeclib
        copies every block 2.5 times). Other blocks go through ``encode``."""
        if self._parity is None or type(block) is not bytes or len(block) % self.k:
            return [(b"", fragment) for fragment in self.encode(block)]
        return self._split_direct(self._parity, block)

    def _split_direct(
        self, encoder: ParityEncoder, block: bytes
    ) -> list[tuple[bytes, bytes | memoryview]]:
        _check_block_len(len(block))
        headers = self._headers.get(len(block))
        if headers is None:
            # pyeclib's own headers for this length, from one encode (of zeros): they carry
            # the index, the sizes, versions and a CRC of themselves, never the data.
            headers = [f[: self._header_len] for f in self._driver.encode(bytes(len(block)))]
            if len(self._headers) >= _HEADER_LENGTHS_KEPT:
                self._headers.clear()
            self._headers[len(block)] = headers
        chunk = len(block) // self.k
        data = memoryview(block)
        parity = memoryview(encoder.parity(block))
        pieces = [data[i * chunk : (i + 1) * chunk] for i in range(self.k)]
        pieces += [parity[j * chunk : (j + 1) * chunk] for j in range(self.m)]
        return list(zip(headers, pieces, strict=True))

    def _check_headers(self, views: dict[int, memoryview], block_len: int) -> None:
        """Each header must name its shard index and the block length: pyeclib trusts the
        headers, and the fast path must not serve a shard filed under the wrong index."""
        for index, view in views.items():
            if _FRAGMENT_HEADER.unpack_from(view) != (index, block_len):
                raise DecodeError(f"shard {index}: fragment header does not match")

    @staticmethod
    def _fragments(
        shards: Mapping[int, bytes | memoryview], views: dict[int, memoryview]
    ) -> list[bytes]:
        # pyeclib needs bytes: given a memoryview its C code asserts and aborts the process.
        return [raw if isinstance(raw := shards[i], bytes) else views[i].tobytes() for i in views]

    def decode(self, shards: Mapping[int, bytes | memoryview], block_len: int) -> bytes:
        size = self.shard_size(block_len)
        views = _usable_shards(shards, self.k, self.k + self.m, size)
        self._check_headers(views, block_len)
        pieces = self._data_pieces(views, size, block_len)
        if pieces is not None:
            return b"".join(pieces)
        try:
            block = self._driver.decode(self._fragments(shards, views))
        except ECDriverError as exc:
            raise DecodeError(f"isal decode failed: {exc}") from exc
        if len(block) != block_len:
            raise DecodeError(f"isal decoded {len(block)} bytes, expected {block_len}")
        return block

    def _data_pieces(
        self, views: dict[int, memoryview], size: int, block_len: int
    ) -> list[memoryview] | None:
        """The systematic fast path: the data parts of checked shards 0..k-1, headers off."""
        if not all(i in views for i in range(self.k)):
            return None
        payloads = [views[i][self._header_len :] for i in range(self.k)]
        return _data_parts(payloads, size - self._header_len, block_len)

    def data_pieces(
        self, shards: Mapping[int, bytes | memoryview], block_len: int
    ) -> list[memoryview] | None:
        # The healthy read of every block: one pass over the k data shards (same checks as
        # ``decode``: length, header index and block length), parity shards not looked at.
        size = self.shard_size(block_len)
        chunk = size - self._header_len
        pieces: list[memoryview] = []
        for i in range(self.k):
            raw = shards.get(i)
            if raw is None:
                return None
            view = _byte_view(raw)
            if len(view) != size:
                raise DecodeError(f"shard {i} is {len(view)} bytes, expected {size} for this block")
            if _FRAGMENT_HEADER.unpack_from(view) != (i, block_len):
                raise DecodeError(f"shard {i}: fragment header does not match")
            take = min(chunk, block_len - i * chunk)
            if take > 0:
                pieces.append(view[self._header_len : self._header_len + take])
        return pieces

    def reconstruct(
        self, shards: Mapping[int, bytes | memoryview], block_len: int, wanted: Sequence[int]
    ) -> dict[int, bytes]:
        size = self.shard_size(block_len)
        targets = _check_wanted(wanted, self.k + self.m)
        views = _usable_shards(shards, self.k, self.k + self.m, size)
        self._check_headers(views, block_len)
        result = {i: _byte_view(shards[i]).tobytes() for i in targets if i in shards}
        missing = [i for i in targets if i not in shards]
        if missing:
            try:
                rebuilt = self._driver.reconstruct(self._fragments(shards, views), missing)
            except ECDriverError as exc:
                raise DecodeError(f"isal reconstruct failed: {exc}") from exc
            result.update(zip(missing, rebuilt, strict=True))
        return result


@functools.lru_cache(maxsize=64)
def get_codec(name: str, k: int, m: int) -> Codec:
    """The shared codec instance for ``name`` with k data and m parity shards.

    >>> get_codec("isal", 8, 4).shard_size(1024 * 1024)
    131152
    >>> get_codec("zfec", 8, 4).shard_size(1024 * 1024)
    131072

    Raises ValueError for an unknown name or unsupported k/m: k >= 1, m >= 1; isal needs
    k + m <= 32 and m <= 4 (not MDS beyond), zfec needs k + m <= 256.
    """
    if k < 1 or m < 1:
        raise ValueError(f"k and m must be >= 1, got k={k} m={m}")
    if name == "isal":
        if k + m > _ISAL_MAX_SHARDS or m > _ISAL_MAX_PARITY:
            raise ValueError(
                f"isal supports k + m <= {_ISAL_MAX_SHARDS} and m <= {_ISAL_MAX_PARITY},"
                f" got k={k} m={m}"
            )
        return _IsalCodec(k, m)
    if name == "zfec":
        if k + m > _ZFEC_MAX_SHARDS:
            raise ValueError(f"zfec supports k + m <= {_ZFEC_MAX_SHARDS}, got k={k} m={m}")
        return _ZfecCodec(k, m)
    raise ValueError(f"unknown codec {name!r}; known: {', '.join(CODECS)}")
