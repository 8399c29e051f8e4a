"""Incremental decoder of aws-chunked request bodies (``Content-Encoding: aws-chunked``).

Pure code, no IO: the HTTP handler feeds whatever the socket gave it and gets the payload back.
Wire format (AWS "Transferring Payload in Multiple Chunks" and "Including Trailing Headers")::

    10000;chunk-signature=<64 hex>\\r\\n <65536 bytes> \\r\\n      signed modes
    400;chunk-signature=<64 hex>\\r\\n <1024 bytes> \\r\\n
    0;chunk-signature=<64 hex>\\r\\n                              the final, empty chunk
    x-amz-checksum-crc32c:sOO8/Q==\\r\\n                          trailer modes only
    x-amz-trailer-signature:<64 hex>\\r\\n                        signed trailer mode only
    \\r\\n

``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` is the same without any signature (``400\\r\\n``...).

Chunk *n*'s signature is HMAC(signing key, ``AWS4-HMAC-SHA256-PAYLOAD \\n date \\n scope \\n
signature(n-1) \\n sha256("") \\n sha256(chunk n)``), chained from the request's seed signature;
the trailer's is HMAC over ``AWS4-HMAC-SHA256-TRAILER \\n date \\n scope \\n signature(final
chunk) \\n sha256("name:value\\n"...)``.

Every data chunk but the last must hold at least 8 KiB (AWS's rule, ``InvalidChunkSizeError``).
Tolerated, as seen from clients: bare LF line ends in header and trailer lines, a blank line
between the final chunk and the trailer, one extra CRLF at the end, and a missing final CRLF.

Payload bytes are handed back as soon as they arrive (zero-copy slices of the fed buffer), before
their chunk's signature could be checked: only buffering a whole chunk could do better, and the
caller has to discard the upload on any later error anyway. So the body is authentic only once
:meth:`ChunkedDecoder.finish` returned. Memory is bounded by one header line, whatever the chunk
size.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Sequence

from gateway.errors import IncompleteBody, InvalidArgument, S3Error, SignatureDoesNotMatch
from gateway.sigv4 import EMPTY_SHA256, AuthResult, PayloadMode, StreamingContext


class MalformedTrailerError(S3Error):
    """S3's error for a trailer that does not match ``x-amz-trailer`` or does not parse."""

    status = 400
    message = (
        "The request contained trailing data that was not well-formed or did not conform to our "
        "published schema."
    )


class InvalidChunkSizeError(S3Error):
    """S3's error for a chunk other than the last that is smaller than 8 KiB."""

    status = 400
    message = "Only the last chunk is allowed to have a size less than 8192 bytes"


TRAILER_SIGNATURE = "x-amz-trailer-signature"
# AWS's rule; it also caps the per-chunk parsing and HMAC work a body can cause per byte.
MIN_CHUNK_BYTES = 8192

# A chunk header is ~100 bytes and a trailer line about as long; anything longer is garbage.
_MAX_LINE_BYTES = 4096
# After the final CRLF some clients add one more; more than that is data where none may be.
_MAX_TRAILING_CRLF_BYTES = 2
_MAX_SIZE_DIGITS = 16
_HEX = frozenset(b"0123456789abcdefABCDEF")
_SIGNATURE_PREFIX = b"chunk-signature="
_EMPTY_SHA256 = EMPTY_SHA256.encode()


class _State(enum.Enum):
    HEADER = enum.auto()  # reading a chunk-size line
    DATA = enum.auto()  # inside a chunk's data
    DATA_END = enum.auto()  # the CRLF after a chunk's data
    TRAILER = enum.auto()  # after the final chunk: trailer lines up to an empty line
    DONE = enum.auto()


class ChunkedDecoder:
    """Decode and verify an aws-chunked body fed in arbitrary pieces.

    ``ctx`` is required for the chunk-signed modes and ignored for STREAMING_UNSIGNED_TRAILER;
    ``trailer_names`` are the names ``x-amz-trailer`` announced (lower-case). With
    ``decoded_content_length`` (``x-amz-decoded-content-length``) the payload must be exactly
    that long. Every data chunk but the last must hold ``min_chunk_bytes`` (AWS: 8 KiB).

    >>> d = ChunkedDecoder(None, mode=PayloadMode.STREAMING_UNSIGNED_TRAILER,
    ...                    trailer_names=["x-amz-checksum-crc32"])
    >>> [bytes(p) for p in d.feed(b"5\\r\\nhel")] + [bytes(p) for p in d.feed(b"lo\\r\\n0\\r\\n")]
    [b'hel', b'lo']
    >>> d.feed(b"x-amz-checksum-crc32:NhCmhg==\\r\\n\\r\\n")
    []
    >>> d.finish(), d.decoded_bytes
    ({'x-amz-checksum-crc32': 'NhCmhg=='}, 5)
    """

    def __init__(
        self,
        ctx: StreamingContext | None,
        *,
        mode: PayloadMode,
        trailer_names: Sequence[str],
        decoded_content_length: int | None = None,
        min_chunk_bytes: int = MIN_CHUNK_BYTES,
    ) -> None:
        if not mode.streaming:
            raise ValueError(f"{mode} is not an aws-chunked payload mode")
        if mode.chunk_signed and ctx is None:
            raise ValueError(f"{mode} needs the StreamingContext of the request")
        self.decoded_bytes = 0
        self._mode = mode
        self._ctx = ctx if mode.chunk_signed else None
        self._trailer_names = tuple(name.strip().lower() for name in trailer_names)
        self._expected_length = decoded_content_length
        self._min_chunk_bytes = min_chunk_bytes
        self._chunk_count = 0  # data chunks started so far
        self._last_chunk_bytes = min_chunk_bytes  # size of the previous data chunk
        self._state = _State.HEADER
        self._line = bytearray()  # a header or trailer line split across feeds
        self._remaining = 0  # data bytes still to come in the current chunk
        self._crlf_seen = 0  # bytes of the CRLF after the data, or after the end
        self._hasher = hashlib.sha256()
        self._chunk_signature = b""
        self._previous_signature = ctx.seed_signature.lower().encode() if ctx else b""
        self._trailers: dict[str, str] = {}
        self._trailer_signature: str | None = None
        self._saw_trailer_line = False
        self._failure: S3Error | None = None
        self._chunk_prefix = b""
        if ctx is not None:
            self._chunk_prefix = f"AWS4-HMAC-SHA256-PAYLOAD\n{ctx.amz_date}\n{ctx.scope}\n".encode()

    def feed(self, data: bytes | bytearray | memoryview) -> list[memoryview | bytes]:
        """Consume ``data``; return the payload pieces it completed (views into ``data``).

        The pieces reference ``data``: use them before reusing its buffer. Raises
        SignatureDoesNotMatch, InvalidArgument, InvalidChunkSizeError, IncompleteBody or
        MalformedTrailerError, and the same error again on any later call.
        """
        if self._failure is not None:
            raise self._failure
        view = memoryview(data)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        try:
            return self._feed(view)
        except S3Error as exc:
            self._failure = exc
            raise

    def finish(self) -> dict[str, str]:
        """Call at end of body: check it was complete; return the trailing headers.

        A body cut anywhere before its final empty chunk (and, in trailer modes, before its
        trailer) raises IncompleteBody. The last CRLF may be missing: everything before it is
        already verified.
        """
        if self._failure is not None:
            raise self._failure
        try:
            if self._state is _State.TRAILER and not self._line and self._trailer_complete():
                self._end_trailer()
            if self._state is not _State.DONE:
                raise IncompleteBody(
                    "The aws-chunked body ended before its final chunk and trailer."
                )
        except S3Error as exc:
            self._failure = exc
            raise
        return dict(self._trailers)

    # --- the state machine ---------------------------------------------------------------------

    def _feed(self, view: memoryview) -> list[memoryview | bytes]:
        out: list[memoryview | bytes] = []
        pos, end = 0, len(view)
        while pos < end:
            state = self._state
            if state is _State.DATA:
                take = min(self._remaining, end - pos)
                piece = view[pos : pos + take]
                if self._ctx is not None:
                    self._hasher.update(piece)
                out.append(piece)
                pos += take
                self._remaining -= take
                self.decoded_bytes += take
                if self._remaining == 0:
                    self._verify_chunk(self._hasher.hexdigest().encode())
                    self._state = _State.DATA_END
                    self._crlf_seen = 0
            elif state is _State.DATA_END:
                if view[pos] != b"\r\n"[self._crlf_seen]:
                    raise InvalidArgument("Chunk data must be followed by CRLF in aws-chunked.")
                pos += 1
                self._crlf_seen += 1
                if self._crlf_seen == 2:
                    self._state = _State.HEADER
            elif state is _State.DONE:
                self._crlf_seen += 1
                if view[pos] not in b"\r\n" or self._crlf_seen > _MAX_TRAILING_CRLF_BYTES:
                    raise InvalidArgument("Data after the end of the aws-chunked body.")
                pos += 1
            else:
                line, pos = self._take_line(view, pos, end)
                if line is None:
                    continue
                if state is _State.HEADER:
                    self._start_chunk(line)
                else:
                    self._trailer_line(line)
        return out

    def _take_line(self, view: memoryview, pos: int, end: int) -> tuple[bytes | None, int]:
        """The next complete line (CRLF or LF stripped) and the position after it, or None."""
        room = _MAX_LINE_BYTES - len(self._line)
        stop = min(end, pos + room + 1)
        window = bytes(view[pos:stop])  # small: a header line is ~100 bytes
        newline = window.find(b"\n")
        if newline < 0:
            if len(window) > room:
                raise InvalidArgument("aws-chunked header line too long.")
            self._line += window
            return None, stop
        if self._line:
            self._line += window[:newline]
            line = bytes(self._line)
            self._line.clear()
        else:
            line = window[:newline]
        return line.removesuffix(b"\r"), pos + newline + 1

    def _start_chunk(self, line: bytes) -> None:
        size_text, _, extension = line.partition(b";")
        if not 0 < len(size_text) <= _MAX_SIZE_DIGITS or not set(size_text) <= _HEX:
            raise InvalidArgument("Invalid chunk size in aws-chunked body.")
        size = int(size_text, 16)
        if self._ctx is not None:
            signature = extension[len(_SIGNATURE_PREFIX) :]
            if (
                not extension.startswith(_SIGNATURE_PREFIX)
                or len(signature) != 64
                or not set(signature) <= _HEX
            ):
                raise SignatureDoesNotMatch("The chunk has no valid chunk-signature.")
            self._chunk_signature = signature.lower()
        expected = self._expected_length
        if expected is not None and self.decoded_bytes + size > expected:
            raise InvalidArgument(
                "The aws-chunked body is longer than x-amz-decoded-content-length.",
                ArgumentName="x-amz-decoded-content-length",
            )
        if size:
            if self._last_chunk_bytes < self._min_chunk_bytes:
                raise InvalidChunkSizeError(
                    Chunk=str(self._chunk_count), BadChunkSize=str(self._last_chunk_bytes)
                )
            self._chunk_count += 1
            self._last_chunk_bytes = size
            self._state = _State.DATA
            self._remaining = size
            self._hasher = hashlib.sha256()
            return
        self._verify_chunk(_EMPTY_SHA256)
        if expected is not None and self.decoded_bytes != expected:
            raise IncompleteBody(
                "The aws-chunked body is shorter than x-amz-decoded-content-length."
            )
        self._state = _State.TRAILER

    def _verify_chunk(self, digest_hex: bytes) -> None:
        if self._ctx is None:
            return
        string_to_sign = b"%s%s\n%s\n%s" % (
            self._chunk_prefix,
            self._previous_signature,
            _EMPTY_SHA256,
            digest_hex,
        )
        computed = hmac.new(self._ctx.signing_key, string_to_sign, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(computed.encode(), self._chunk_signature):
            raise SignatureDoesNotMatch(
                "The chunk signature we calculated does not match the one you provided."
            )
        self._previous_signature = computed.encode()

    def _trailer_line(self, line: bytes) -> None:
        if not line:
            if not self._saw_trailer_line and self._trailer_pending():
                # A blank line between the final chunk and the trailer (seen from some clients).
                self._saw_trailer_line = True
                return
            self._end_trailer()
            return
        self._saw_trailer_line = True
        if not self._mode.trailer:
            raise MalformedTrailerError(
                f"Trailing headers are not allowed with x-amz-content-sha256 {self._mode.value}."
            )
        try:
            name, colon, value = line.decode("ascii").partition(":")
        except UnicodeDecodeError:
            raise MalformedTrailerError() from None
        name, value = name.strip().lower(), value.strip()
        if not colon or not name:
            raise MalformedTrailerError()
        if name == TRAILER_SIGNATURE:
            if self._trailer_signature is not None:
                raise MalformedTrailerError("x-amz-trailer-signature was sent twice.")
            self._trailer_signature = value
        elif name not in self._trailer_names or name in self._trailers:
            raise MalformedTrailerError(
                f"Trailing header {name} was not announced in x-amz-trailer."
            )
        else:
            self._trailers[name] = value

    def _trailer_pending(self) -> bool:
        """True while the trailer this mode promises has not started yet."""
        if self._saw_trailer_line or not self._mode.trailer:
            return False
        return bool(self._trailer_names) or self._mode.chunk_signed

    def _trailer_complete(self) -> bool:
        """True once every announced trailer, and its signature if signed, has arrived."""
        if not self._mode.trailer:
            return True
        if any(name not in self._trailers for name in self._trailer_names):
            return False
        return self._ctx is None or self._trailer_signature is not None

    def _end_trailer(self) -> None:
        missing = [name for name in self._trailer_names if name not in self._trailers]
        if missing:
            raise MalformedTrailerError(f"Trailing header {missing[0]} was announced but not sent.")
        if self._ctx is not None and self._mode.trailer:
            self._verify_trailer(self._ctx)
        self._state = _State.DONE
        self._crlf_seen = 0

    def _verify_trailer(self, ctx: StreamingContext) -> None:
        given = self._trailer_signature
        if given is None:
            raise SignatureDoesNotMatch("The trailer has no x-amz-trailer-signature.")
        given_bytes = given.lower().encode()
        # Clients sign the trailer in the order they send it; sorted is the canonical order.
        orders = [list(self._trailers.items())]
        if orders[0] != sorted(orders[0]):
            orders.append(sorted(orders[0]))
        for items in orders:
            canonical = "".join(f"{name}:{value}\n" for name, value in items)
            digest = hashlib.sha256(canonical.encode()).hexdigest()
            string_to_sign = (
                f"AWS4-HMAC-SHA256-TRAILER\n{ctx.amz_date}\n{ctx.scope}\n"
                f"{self._previous_signature.decode()}\n{digest}"
            )
            computed = hmac.new(
                ctx.signing_key, string_to_sign.encode(), hashlib.sha256
            ).hexdigest()
            if hmac.compare_digest(computed.encode(), given_bytes):
                return
        raise SignatureDoesNotMatch(
            "The trailer signature we calculated does not match the one you provided."
        )


def decoder_for(auth: AuthResult) -> ChunkedDecoder | None:
    """The decoder for an authenticated request's body, or None when it is not aws-chunked."""
    if not auth.payload_mode.streaming:
        return None
    return ChunkedDecoder(
        auth.streaming,
        mode=auth.payload_mode,
        trailer_names=auth.trailer_names,
        decoded_content_length=auth.decoded_content_length,
    )
