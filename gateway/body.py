"""Upload bodies: the request stream as the object layer consumes it (storage.api.UploadBody).

Undoes aws-chunked framing (verifying chunk signatures), hashes every block (MD5 for the ETag,
the requested flexible checksum, SHA-256 when the payload hash was signed) and verifies it all in
``finish`` before the object layer commits anything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from aiohttp import StreamReader

from gateway import checksums
from gateway.chunked import ChunkedDecoder
from gateway.errors import IncompleteBody, XAmzContentSHA256Mismatch
from gateway.md5 import Md5, new_md5
from gateway.sigv4 import AuthResult, PayloadMode
from storage.api import BodyDigest

_READ_CHUNK = 256 * 1024


class RequestBody:
    def __init__(
        self,
        stream: StreamReader,
        auth: AuthResult,
        headers: Mapping[str, str],
        decoder: ChunkedDecoder | None,
        also: Sequence[str] = (),
    ) -> None:
        self._stream = stream
        self._decoder = decoder
        self._headers = headers
        self._auth = auth
        self._pending = bytearray()  # decoded bytes not yet handed out (aws-chunked only)
        self._left: memoryview | None = None  # received beyond the last read (plain bodies)
        self._eof = False
        self._md5: Md5 | None = None  # chosen by the first block's size (gateway.md5)
        self._sha256 = hashlib.sha256() if auth.payload_mode is PayloadMode.SIGNED else None
        self._wanted = checksums.requested_checksums(headers)
        for algorithm in also:
            self._wanted.setdefault(algorithm, None)
        self._checksummers = {alg: checksums.new_checksummer(alg) for alg in self._wanted}
        self.received = 0

    async def read(self, size: int) -> bytes | bytearray | memoryview:
        """Exactly ``size`` bytes, fewer only at the end of the body."""
        if self._decoder is None:
            return await self._read_plain(size)
        while len(self._pending) < size and not self._eof:
            raw = await self._stream.read(max(_READ_CHUNK, size))
            if not raw:
                self._eof = True
                break
            for piece in self._decoder.feed(raw):
                self._pending += piece
        out = bytes(self._pending[:size])
        del self._pending[:size]
        self.received += len(out)
        return out

    async def _read_plain(self, size: int) -> bytes:
        """``size`` bytes of a plain body in one copy: the pieces aiohttp received are taken
        as they are (``readchunk``) and joined once; what a piece holds beyond ``size`` is
        kept for the next read. (``StreamReader.read`` joins what is buffered, and a short
        read then needs a second join.)"""
        parts: list[bytes | memoryview] = []
        got = 0
        if self._left is not None:
            parts.append(self._left)
            got = len(self._left)
            self._left = None
        while got < size:
            chunk, _ = await self._stream.readchunk()
            if chunk:
                parts.append(chunk)
                got += len(chunk)
            elif self._stream.at_eof():
                break
        if got > size:
            last = memoryview(parts[-1])
            cut = len(last) - (got - size)
            parts[-1], self._left = last[:cut], last[cut:]
            got = size
        self.received += got
        if len(parts) == 1 and isinstance(parts[0], bytes):
            return parts[0]
        return b"".join(parts)

    def update(self, block: bytes | bytearray | memoryview) -> None:
        if self._md5 is None:
            self._md5 = new_md5(len(block))
        self._md5.update(block)
        if self._sha256 is not None:
            self._sha256.update(block)
        for c in self._checksummers.values():
            c.update(block)

    async def finish(self) -> BodyDigest:
        trailers: dict[str, str] = {}
        if self._decoder is not None:
            # The framing after the payload (final chunk, trailer) is read and verified here.
            await self._drain()
            trailers = self._decoder.finish()
        expected_sha256 = self._auth.payload_sha256
        if (
            self._sha256 is not None
            and expected_sha256 is not None
            and self._sha256.hexdigest() != expected_sha256.lower()
        ):
            raise XAmzContentSHA256Mismatch()
        md5 = (self._md5 or hashlib.md5()).digest()
        checksums.md5_content_check(self._headers.get("content-md5"), md5)
        stored: dict[str, str] = {}
        for alg, expected in self._wanted.items():
            computed = self._checksummers[alg].digest_b64()
            if expected is None:
                expected = trailers.get(checksums.header_name(alg))
                if expected is not None:
                    checksums.validate_checksum_value(alg, expected, trailer=True)
            if expected is not None:
                checksums.verify(expected, computed, alg)
            stored[alg] = computed
        return BodyDigest(md5_hex=md5.hex(), checksums=stored)

    async def _drain(self) -> None:
        assert self._decoder is not None
        if self._pending:
            raise IncompleteBody("More data than x-amz-decoded-content-length")
        while not self._eof:
            raw = await self._stream.read(_READ_CHUNK)
            if not raw:
                self._eof = True
                break
            for piece in self._decoder.feed(raw):
                if piece:
                    raise IncompleteBody("More data than x-amz-decoded-content-length")
