"""aws-chunked bodies decode the same however they are split, and tampering never goes unseen."""

from __future__ import annotations

import hashlib
import hmac
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.chunked import MIN_CHUNK_BYTES, ChunkedDecoder
from gateway.errors import S3Error
from gateway.sigv4 import EMPTY_SHA256, PayloadMode, StreamingContext, signing_key

CTX = StreamingContext(
    signing_key=signing_key("secret", "20260314", "eu-central-1"),
    seed_signature="ab" * 32,
    scope="20260314/eu-central-1/s3/aws4_request",
    amz_date="20260314T150926Z",
)
TRAILER = {"x-amz-checksum-crc32": "AAAAAA=="}


def _hmac(text: str) -> str:
    return hmac.new(CTX.signing_key, text.encode(), hashlib.sha256).hexdigest()


def encode(chunks: list[bytes], mode: PayloadMode) -> bytes:
    """aws-chunked per the AWS pages (the unit tests check this against AWS's examples)."""
    out = bytearray()
    previous = CTX.seed_signature
    for data in [*chunks, b""]:
        out += b"%x" % len(data)
        if mode.chunk_signed:
            digest = hashlib.sha256(data).hexdigest()
            previous = _hmac(
                f"AWS4-HMAC-SHA256-PAYLOAD\n{CTX.amz_date}\n{CTX.scope}\n{previous}\n"
                f"{EMPTY_SHA256}\n{digest}"
            )
            out += f";chunk-signature={previous}".encode()
        out += b"\r\n" + data + (b"\r\n" if data else b"")
    if mode.trailer:
        canonical = "".join(f"{name}:{value}\n" for name, value in TRAILER.items())
        out += canonical.replace("\n", "\r\n").encode()
        if mode.chunk_signed:
            digest = hashlib.sha256(canonical.encode()).hexdigest()
            signature = _hmac(
                f"AWS4-HMAC-SHA256-TRAILER\n{CTX.amz_date}\n{CTX.scope}\n{previous}\n{digest}"
            )
            out += f"x-amz-trailer-signature:{signature}\r\n".encode()
    return bytes(out + b"\r\n")


def decode(body: bytes, cuts: list[int], mode: PayloadMode) -> tuple[bytes, dict[str, str]]:
    decoder = ChunkedDecoder(
        CTX if mode.chunk_signed else None,
        mode=mode,
        trailer_names=list(TRAILER) if mode.trailer else [],
    )
    out = bytearray()
    start = 0
    for cut in [*sorted(cut % (len(body) + 1) for cut in cuts), len(body)]:
        for piece in decoder.feed(body[start:cut]):
            out += piece
        start = max(start, cut)
    trailers = decoder.finish()
    assert decoder.decoded_bytes == len(out)
    return bytes(out), trailers


modes = st.sampled_from(
    [
        PayloadMode.STREAMING_SIGNED,
        PayloadMode.STREAMING_SIGNED_TRAILER,
        PayloadMode.STREAMING_UNSIGNED_TRAILER,
    ]
)


@st.composite
def chunk_lists(draw: st.DrawFn) -> list[bytes]:
    """Chunks as AWS allows them: all but the last at least 8 KiB."""
    sizes = draw(st.lists(st.integers(MIN_CHUNK_BYTES, 2 * MIN_CHUNK_BYTES), max_size=3))
    sizes.append(draw(st.integers(1, 2 * MIN_CHUNK_BYTES)))
    sizes = sizes[: draw(st.integers(0, len(sizes)))]  # also no data at all
    rng = random.Random(draw(st.integers(0, 2**32)))
    return [rng.randbytes(size) for size in sizes]


cut_lists = st.lists(st.integers(min_value=0, max_value=60_000), max_size=12)


@settings(max_examples=150, deadline=None)
@given(chunks=chunk_lists(), mode=modes, cuts=cut_lists)
def test_any_split_decodes_to_the_payload(
    chunks: list[bytes], mode: PayloadMode, cuts: list[int]
) -> None:
    payload, trailers = decode(encode(chunks, mode), cuts, mode)
    assert payload == b"".join(chunks)
    assert trailers == (TRAILER if mode.trailer else {})


@settings(max_examples=150, deadline=None)
@given(
    chunks=chunk_lists(),
    mode=st.sampled_from([PayloadMode.STREAMING_SIGNED, PayloadMode.STREAMING_SIGNED_TRAILER]),
    cuts=cut_lists,
    data=st.data(),
)
def test_a_changed_byte_is_refused_or_harmless(
    chunks: list[bytes], mode: PayloadMode, cuts: list[int], data: st.DataObject
) -> None:
    """Changing any byte of a signed body raises, or (hex or name case) changes nothing."""
    body = bytearray(encode(chunks, mode))
    framing = _framing_positions(body, chunks)
    where = data.draw(
        st.one_of(st.sampled_from(framing), st.integers(0, len(body) - 1)), label="where"
    )
    body[where] = data.draw(st.integers(0, 255).filter(lambda b: b != body[where]), label="byte")
    try:
        payload, trailers = decode(bytes(body), cuts, mode)
    except S3Error:
        return
    assert payload == b"".join(chunks)
    assert trailers == (TRAILER if mode.trailer else {})


def _framing_positions(body: bytearray, chunks: list[bytes]) -> list[int]:
    """Offsets of every byte that is not payload: where tampering is most interesting."""
    positions: list[int] = []
    pos = 0
    for data in chunks:
        start = body.index(b"\r\n", pos) + 2
        positions.extend(range(pos, start))
        pos = start + len(data)
    positions.extend(range(pos, len(body)))
    return positions
