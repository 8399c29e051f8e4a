"""ISA-L's encoder called on the block's own memory (ctypes), for the isal codec's full blocks.

pyeclib's ``encode`` copies the block into fresh, zeroed fragment buffers, computes the parity
there, then copies every fragment into a new bytes object: 2.5 copies of each block, in a call
that holds the GIL. Here ISA-L reads the k data chunks where they are (the data shards are
views of the block) and writes the m parity chunks into one new buffer; ctypes releases the GIL
for the call.

It is the same code pyeclib runs: ``ec_encode_data`` of the ISA-L library bundled with
pyeclib's wheel, over the matrix liberasurecode's ``isa_l_rs_vand`` backend builds
(``gf_gen_rs_matrix``, Vandermonde). ``erasure.codec`` still checks at start-up that both give
the same parity for a random block, and uses pyeclib alone if the library is missing or
differs.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import pyeclib

_TABLE_BYTES_PER_COEFFICIENT = 32  # ec_init_tables: 32 bytes per matrix coefficient


def _library() -> ctypes.CDLL | None:
    """The ISA-L shared library pyeclib's wheel bundles (``pyeclib.libs/libisal*.so*``)."""
    libs = Path(pyeclib.__file__).resolve().parent.parent / "pyeclib.libs"
    for path in sorted(libs.glob("libisal*.so*")):
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:
            continue
        if all(hasattr(lib, f) for f in ("gf_gen_rs_matrix", "ec_init_tables", "ec_encode_data")):
            return lib
    return None


class ParityEncoder:
    """The m parity chunks of a block split in k equal data chunks (ISA-L, Vandermonde)."""

    def __init__(self, lib: ctypes.CDLL, k: int, m: int) -> None:
        self.k = k
        self.m = m
        n = k + m
        matrix = (ctypes.c_ubyte * (n * k))()
        lib.gf_gen_rs_matrix(matrix, n, k)
        self._tables = (ctypes.c_ubyte * (k * m * _TABLE_BYTES_PER_COEFFICIENT))()
        lib.ec_init_tables(k, m, ctypes.byref(matrix, k * k), self._tables)
        self._encode = lib.ec_encode_data
        self._encode.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        self._encode.restype = None

    def parity(self, block: bytes) -> bytearray:
        """Parity chunk j of ``block`` at ``[j * c, (j + 1) * c)`` of the result, c =
        len(block) / k (which must divide evenly)."""
        chunk, rest = divmod(len(block), self.k)
        if rest or not chunk:
            raise ValueError(f"block of {len(block)} bytes does not split in {self.k} chunks")
        base = ctypes.cast(ctypes.c_char_p(block), ctypes.c_void_p).value
        assert base is not None
        data = (ctypes.c_void_p * self.k)(*(base + i * chunk for i in range(self.k)))
        out = bytearray(self.m * chunk)
        out_base = ctypes.addressof((ctypes.c_char * len(out)).from_buffer(out))
        coding = (ctypes.c_void_p * self.m)(*(out_base + j * chunk for j in range(self.m)))
        self._encode(chunk, self.k, self.m, self._tables, data, coding)
        return out


def parity_encoder(k: int, m: int) -> ParityEncoder | None:
    """An encoder for k+m, or None where pyeclib's wheel bundles no usable ISA-L."""
    lib = _library()
    return ParityEncoder(lib, k, m) if lib is not None else None
