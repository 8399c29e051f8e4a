"""aws-chunked decoding against AWS's published examples and botocore's own encoder."""

from __future__ import annotations

import base64
import doctest
import hashlib
import hmac
import io
import zlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import awscrt.checksums
import boto3
import botocore.httpchecksum
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from gateway import chunked
from gateway.chunked import (
    ChunkedDecoder,
    InvalidChunkSizeError,
    MalformedTrailerError,
    decoder_for,
)
from gateway.errors import IncompleteBody, InvalidArgument, S3Error, SignatureDoesNotMatch
from gateway.sigv4 import (
    EMPTY_SHA256,
    AuthRequest,
    PayloadMode,
    StreamingContext,
    authenticate,
    signing_key,
)

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_DATE = "20130524T000000Z"
AWS_SCOPE = "20130524/us-east-1/s3/aws4_request"
AWS_KEY = signing_key(AWS_SECRET, "20130524", "us-east-1")
PAYLOAD = b"a" * 66560

# AWS "Signature Calculations ... Transferring Payload in Multiple Chunks" (no trailer).
SEED_1 = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
SIGS_1 = (
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
)
# AWS "Signature calculations for trailing headers (chunked uploads)".
SEED_2 = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
SIGS_2 = (
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
)
TRAILER_SIG_2 = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"
CRC32C_2 = "sOO8/Q=="

SIGNED = PayloadMode.STREAMING_SIGNED
SIGNED_TRAILER = PayloadMode.STREAMING_SIGNED_TRAILER
UNSIGNED_TRAILER = PayloadMode.STREAMING_UNSIGNED_TRAILER


def ctx(seed: str) -> StreamingContext:
    return StreamingContext(
        signing_key=AWS_KEY, seed_signature=seed, scope=AWS_SCOPE, amz_date=AWS_DATE
    )


def aws_body_1() -> bytes:
    """The documented body, literally: the signatures are AWS's, not computed here."""
    return (
        f"10000;chunk-signature={SIGS_1[0]}\r\n".encode()
        + PAYLOAD[:65536]
        + f"\r\n400;chunk-signature={SIGS_1[1]}\r\n".encode()
        + PAYLOAD[65536:]
        + f"\r\n0;chunk-signature={SIGS_1[2]}\r\n\r\n".encode()
    )


def aws_body_2() -> bytes:
    return (
        f"10000;chunk-signature={SIGS_2[0]}\r\n".encode()
        + PAYLOAD[:65536]
        + f"\r\n400;chunk-signature={SIGS_2[1]}\r\n".encode()
        + PAYLOAD[65536:]
        + f"\r\n0;chunk-signature={SIGS_2[2]}\r\n".encode()
        + f"x-amz-checksum-crc32c:{CRC32C_2}\r\n".encode()
        + f"x-amz-trailer-signature:{TRAILER_SIG_2}\r\n\r\n".encode()
    )


def encode(
    chunks: Sequence[bytes],
    *,
    context: StreamingContext | None,
    trailers: dict[str, str] | None = None,
) -> bytes:
    """An independent aws-chunked encoder, written from the AWS pages (checked below)."""
    out = io.BytesIO()
    previous = context.seed_signature if context else ""
    for data in [*chunks, b""]:
        out.write(b"%x" % len(data))
        if context is not None:
            string_to_sign = "\n".join(
                [
                    "AWS4-HMAC-SHA256-PAYLOAD",
                    context.amz_date,
                    context.scope,
                    previous,
                    EMPTY_SHA256,
                    hashlib.sha256(data).hexdigest(),
                ]
            )
            previous = hmac.new(context.signing_key, string_to_sign.encode(), "sha256").hexdigest()
            out.write(f";chunk-signature={previous}".encode())
        out.write(b"\r\n" + data + (b"\r\n" if data else b""))
    if trailers is not None:
        canonical = "".join(f"{name}:{value}\n" for name, value in trailers.items())
        out.write(canonical.replace("\n", "\r\n").encode())
        if context is not None:
            string_to_sign = "\n".join(
                [
                    "AWS4-HMAC-SHA256-TRAILER",
                    context.amz_date,
                    context.scope,
                    previous,
                    hashlib.sha256(canonical.encode()).hexdigest(),
                ]
            )
            signature = hmac.new(context.signing_key, string_to_sign.encode(), "sha256").hexdigest()
            out.write(f"x-amz-trailer-signature:{signature}\r\n".encode())
    out.write(b"\r\n")
    return out.getvalue()


def decode(
    body: bytes,
    pieces: Iterable[int] | None = None,
    *,
    context: StreamingContext | None,
    mode: PayloadMode,
    trailer_names: Sequence[str] = (),
    length: int | None = None,
    min_chunk: int = chunked.MIN_CHUNK_BYTES,
) -> tuple[bytes, dict[str, str]]:
    """Feed ``body`` split into pieces of the given sizes (one piece by default)."""
    decoder = ChunkedDecoder(
        context,
        mode=mode,
        trailer_names=trailer_names,
        decoded_content_length=length,
        min_chunk_bytes=min_chunk,
    )
    out = bytearray()
    pos = 0
    for size in [*(pieces or []), len(body)]:
        for piece in decoder.feed(body[pos : pos + size]):
            out += piece
        pos += size
        if pos >= len(body):
            break
    trailers = decoder.finish()
    assert decoder.decoded_bytes == len(out)
    return bytes(out), trailers


def decode_1(body: bytes, pieces: Iterable[int] | None = None) -> tuple[bytes, dict[str, str]]:
    return decode(body, pieces, context=ctx(SEED_1), mode=SIGNED, length=len(PAYLOAD))


def decode_2(body: bytes, pieces: Iterable[int] | None = None) -> tuple[bytes, dict[str, str]]:
    return decode(
        body,
        pieces,
        context=ctx(SEED_2),
        mode=SIGNED_TRAILER,
        trailer_names=["x-amz-checksum-crc32c"],
        length=len(PAYLOAD),
    )


# --- AWS's examples ----------------------------------------------------------------------------


def test_the_test_encoder_reproduces_the_aws_examples() -> None:
    chunks = [PAYLOAD[:65536], PAYLOAD[65536:]]
    assert encode(chunks, context=ctx(SEED_1)) == aws_body_1()
    assert (
        encode(chunks, context=ctx(SEED_2), trailers={"x-amz-checksum-crc32c": CRC32C_2})
        == aws_body_2()
    )


def test_aws_example_decodes() -> None:
    assert decode_1(aws_body_1()) == (PAYLOAD, {})


def test_aws_trailer_example_decodes_and_its_checksum_is_the_payloads() -> None:
    payload, trailers = decode_2(aws_body_2())
    assert payload == PAYLOAD
    assert trailers == {"x-amz-checksum-crc32c": CRC32C_2}
    crc = awscrt.checksums.crc32c(payload).to_bytes(4, "big")
    assert base64.b64encode(crc).decode() == CRC32C_2


@pytest.mark.parametrize("piece", [3, 7, 64, 65535, 65536, 65600, 70000])
def test_any_split_decodes_the_same(piece: int) -> None:
    body = aws_body_2()
    assert decode_2(body, [piece] * (len(body) // piece + 1)) == (
        PAYLOAD,
        {"x-amz-checksum-crc32c": CRC32C_2},
    )
    body = aws_body_1()
    assert decode_1(body, [piece] * (len(body) // piece + 1)) == (PAYLOAD, {})


def test_one_byte_at_a_time_decodes() -> None:
    context = ctx(SEED_2)
    chunks = [b"x" * 8192, b"y" * 100]
    body = encode(chunks, context=context, trailers={"x-amz-checksum-crc32": "AAAA"})
    decoded, trailers = decode(
        body,
        [1] * len(body),
        context=context,
        mode=SIGNED_TRAILER,
        trailer_names=["x-amz-checksum-crc32"],
    )
    assert (decoded, trailers) == (b"".join(chunks), {"x-amz-checksum-crc32": "AAAA"})


def test_payload_comes_back_as_views_of_the_fed_buffer_without_copies() -> None:
    body = aws_body_1()
    decoder = ChunkedDecoder(ctx(SEED_1), mode=SIGNED, trailer_names=[])
    pieces = decoder.feed(body)
    assert [len(p) for p in pieces] == [65536, 1024]
    assert all(isinstance(p, memoryview) and p.obj is body for p in pieces)


def test_memoryview_and_bytearray_input() -> None:
    body = aws_body_1()
    decoder = ChunkedDecoder(ctx(SEED_1), mode=SIGNED, trailer_names=[])
    out = b"".join(bytes(p) for p in decoder.feed(memoryview(bytearray(body))[:70000]))
    out += b"".join(bytes(p) for p in decoder.feed(bytearray(body[70000:])))
    assert (out, decoder.finish()) == (PAYLOAD, {})


def test_seed_signature_comes_from_authenticate() -> None:
    headers = {
        "host": "s3.amazonaws.com",
        "x-amz-date": AWS_DATE,
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "x-amz-content-sha256": SIGNED_TRAILER.value,
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560",
        "x-amz-trailer": "x-amz-checksum-crc32c",
        "authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
        "aws4_request,SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;"
        f"x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer,Signature={SEED_2}",
    }
    request = AuthRequest("PUT", "/examplebucket/chunkObject.txt", (), headers)
    auth = authenticate(
        request, {"AKIAIOSFODNN7EXAMPLE": AWS_SECRET}.get, datetime(2013, 5, 24, tzinfo=UTC)
    )
    decoder = decoder_for(auth)
    assert decoder is not None
    out = b"".join(bytes(p) for p in decoder.feed(aws_body_2()))
    assert (out, decoder.finish()) == (PAYLOAD, {"x-amz-checksum-crc32c": CRC32C_2})


# --- tampering ---------------------------------------------------------------------------------


def _chunk(data: bytes, signature: str) -> bytes:
    return b"%x;chunk-signature=%s\r\n%s\r\n" % (len(data), signature.encode(), data)


TAMPERED_1 = {
    "a data byte changed": aws_body_1().replace(b"a\r\n400;", b"b\r\n400;"),
    "a chunk signature changed": aws_body_1().replace(SIGS_1[1].encode(), b"0" * 64),
    "the final signature changed": aws_body_1().replace(SIGS_1[2].encode(), SIGS_1[1].encode()),
    "a chunk signature missing": aws_body_1().replace(
        f"400;chunk-signature={SIGS_1[1]}".encode(), b"400"
    ),
    "a chunk signature too short": aws_body_1().replace(
        SIGS_1[1].encode(), SIGS_1[1][:63].encode()
    ),
    "a chunk dropped": _chunk(PAYLOAD[:65536], SIGS_1[0])
    + f"0;chunk-signature={SIGS_1[2]}\r\n\r\n".encode(),
    "cut at a chunk boundary": _chunk(PAYLOAD[:65536], SIGS_1[0])
    + f"0;chunk-signature={SIGS_1[1]}\r\n\r\n".encode(),
}


@pytest.mark.parametrize("name", list(TAMPERED_1))
def test_tampered_chunks_are_refused(name: str) -> None:
    with pytest.raises(SignatureDoesNotMatch):
        decode(TAMPERED_1[name], context=ctx(SEED_1), mode=SIGNED)


def test_reordered_chunks_are_refused() -> None:
    context = ctx(SEED_1)
    one, two = encode([b"1" * 8192], context=context), encode([b"2" * 8192], context=context)
    # Each is a valid first chunk; swapped into one body the chain breaks.
    swapped = two.split(b"\r\n0;")[0] + b"\r\n" + one
    with pytest.raises(SignatureDoesNotMatch):
        decode(swapped, context=context, mode=SIGNED)


def test_only_the_last_chunk_may_be_small() -> None:
    body = encode([b"a" * 8192, b"b" * 8191, b"c"], context=None)
    with pytest.raises(InvalidChunkSizeError) as info:
        decode(body, context=None, mode=UNSIGNED_TRAILER)
    assert info.value.extra == {"Chunk": "2", "BadChunkSize": "8191"}
    assert decode(body, context=None, mode=UNSIGNED_TRAILER, min_chunk=8191)[0].endswith(b"bc")


def test_wrong_seed_is_refused() -> None:
    with pytest.raises(SignatureDoesNotMatch):
        decode(aws_body_1(), context=ctx(SEED_2), mode=SIGNED)


TRAILER_LINE = f"x-amz-checksum-crc32c:{CRC32C_2}\r\n".encode()
TRAILER_SIG_LINE = f"x-amz-trailer-signature:{TRAILER_SIG_2}\r\n".encode()

TAMPERED_2: dict[str, tuple[bytes, type[S3Error]]] = {
    "checksum changed": (
        aws_body_2().replace(CRC32C_2.encode(), b"AAAAAA=="),
        SignatureDoesNotMatch,
    ),
    "signature changed": (
        aws_body_2().replace(TRAILER_SIG_2.encode(), SEED_2.encode()),
        SignatureDoesNotMatch,
    ),
    "signature missing": (aws_body_2().replace(TRAILER_SIG_LINE, b""), SignatureDoesNotMatch),
    "signature twice": (
        aws_body_2().replace(TRAILER_SIG_LINE, TRAILER_SIG_LINE * 2),
        MalformedTrailerError,
    ),
    "trailer added": (
        aws_body_2().replace(TRAILER_LINE, TRAILER_LINE + b"x-amz-meta-extra:1\r\n"),
        MalformedTrailerError,
    ),
    "trailer repeated": (
        aws_body_2().replace(TRAILER_LINE, TRAILER_LINE * 2),
        MalformedTrailerError,
    ),
    "trailer dropped": (aws_body_2().replace(TRAILER_LINE, b""), MalformedTrailerError),
    "trailer without colon": (
        aws_body_2().replace(TRAILER_LINE, b"x-amz-checksum-crc32c\r\n"),
        MalformedTrailerError,
    ),
    "trailer not ascii": (aws_body_2().replace(b"sOO8", "sÖ8".encode()), MalformedTrailerError),
}


@pytest.mark.parametrize("name", list(TAMPERED_2))
def test_tampered_trailers_are_refused(name: str) -> None:
    body, error = TAMPERED_2[name]
    with pytest.raises(error):
        decode_2(body)


def test_trailer_on_a_body_signed_without_one_is_refused() -> None:
    body = aws_body_1()[:-2] + b"x-amz-checksum-crc32:NSRBwg==\r\n\r\n"
    with pytest.raises(MalformedTrailerError):
        decode_1(body)


def test_trailer_lines_are_trimmed_and_names_case_insensitive() -> None:
    body = aws_body_2().replace(TRAILER_LINE, f"X-Amz-Checksum-CRC32C:  {CRC32C_2} \r\n".encode())
    assert decode_2(body)[1] == {"x-amz-checksum-crc32c": CRC32C_2}


def test_two_trailers_signed_in_either_order() -> None:
    context = ctx(SEED_2)
    names = ["x-amz-checksum-sha256", "x-amz-checksum-crc32"]
    trailers = {"x-amz-checksum-sha256": "abc=", "x-amz-checksum-crc32": "def="}
    body = encode([b"xyz"], context=context, trailers=trailers)
    assert decode(body, context=context, mode=SIGNED_TRAILER, trailer_names=names)[1] == trailers
    # Same body, signature computed over the sorted (canonical) order.
    canonical = "".join(f"{n}:{v}\n" for n, v in sorted(trailers.items()))
    final = body.split(b"0;chunk-signature=")[1][:64].decode()
    sts = (
        f"AWS4-HMAC-SHA256-TRAILER\n{AWS_DATE}\n{AWS_SCOPE}\n{final}\n"
        + hashlib.sha256(canonical.encode()).hexdigest()
    )
    sorted_sig = hmac.new(AWS_KEY, sts.encode(), "sha256").hexdigest()
    resigned = (
        body.rsplit(b"x-amz-trailer-signature:", 1)[0]
        + f"x-amz-trailer-signature:{sorted_sig}\r\n\r\n".encode()
    )
    assert (
        decode(resigned, context=context, mode=SIGNED_TRAILER, trailer_names=names)[1] == trailers
    )


# --- truncation and framing --------------------------------------------------------------------


def _small_signed_body() -> tuple[bytes, StreamingContext]:
    context = ctx(SEED_2)
    body = encode(
        [b"abc", b"defgh", b"i"], context=context, trailers={"x-amz-checksum-crc32": "AAAA"}
    )
    return body, context


def test_every_truncation_is_incomplete() -> None:
    body, context = _small_signed_body()
    # Only the last CRLF may go missing: everything before it is verified already.
    for cut in range(len(body) - 2):
        decoder = ChunkedDecoder(
            context,
            mode=SIGNED_TRAILER,
            trailer_names=["x-amz-checksum-crc32"],
            min_chunk_bytes=1,  # small chunks keep this test quick
        )
        decoder.feed(body[:cut])
        with pytest.raises(IncompleteBody):
            decoder.finish()
    for cut in (len(body) - 2, len(body)):
        trailers = decode(
            body[:cut],
            context=context,
            mode=SIGNED_TRAILER,
            trailer_names=["x-amz-checksum-crc32"],
            min_chunk=1,
        )[1]
        assert trailers == {"x-amz-checksum-crc32": "AAAA"}


def test_truncated_aws_example_is_incomplete() -> None:
    body = aws_body_1()
    for cut in (0, 1, 100, 65536, 65536 + 90, len(body) - 40, len(body) - 3):
        decoder = ChunkedDecoder(ctx(SEED_1), mode=SIGNED, trailer_names=[])
        decoder.feed(body[:cut])
        with pytest.raises(IncompleteBody):
            decoder.finish()


MALFORMED = {
    "size not hex": b"zz\r\nabc\r\n0\r\n\r\n",
    "size with 0x": b"0x3\r\nabc\r\n0\r\n\r\n",
    "size with sign": b"+3\r\nabc\r\n0\r\n\r\n",
    "size with underscore": b"1_0\r\n" + b"a" * 16 + b"\r\n0\r\n\r\n",
    "size empty": b"\r\nabc\r\n0\r\n\r\n",
    "size too long": b"0" * 17 + b"3\r\nabc\r\n0\r\n\r\n",
    "no CRLF after data": b"3\r\nabcd\r\n0\r\n\r\n",
    "LF only after data": b"3\r\nabc\n0\r\n\r\n",
    "header line too long": b"3;" + b"x" * 5000 + b"\r\nabc\r\n0\r\n\r\n",
    "data after the end": b"3\r\nabc\r\n0\r\n\r\nmore",
    "too many CRLFs after the end": b"3\r\nabc\r\n0\r\n\r\n" + b"\r\n" * 3,
}


@pytest.mark.parametrize("name", list(MALFORMED))
@pytest.mark.parametrize("piece", [1, 1 << 20])
def test_malformed_framing_is_refused(name: str, piece: int) -> None:
    body = MALFORMED[name]
    with pytest.raises(InvalidArgument):
        decode(body, [piece] * len(body), context=None, mode=UNSIGNED_TRAILER)


def test_one_extra_crlf_after_the_end_is_tolerated() -> None:
    assert decode(b"3\r\nabc\r\n0\r\n\r\n\r\n", context=None, mode=UNSIGNED_TRAILER) == (b"abc", {})


def test_bare_lf_line_endings_are_tolerated_in_header_lines() -> None:
    assert decode(b"3\nabc\r\n0\n\n", context=None, mode=UNSIGNED_TRAILER) == (b"abc", {})


def test_errors_are_sticky() -> None:
    decoder = ChunkedDecoder(None, mode=UNSIGNED_TRAILER, trailer_names=[])
    with pytest.raises(InvalidArgument):
        decoder.feed(b"zz\r\n")
    with pytest.raises(InvalidArgument):
        decoder.feed(b"3\r\nabc\r\n0\r\n\r\n")
    with pytest.raises(InvalidArgument):
        decoder.finish()


def test_decoded_length_must_match() -> None:
    body = encode([b"a" * 8192, b"de"], context=None)
    assert decode(body, context=None, mode=UNSIGNED_TRAILER, length=8194)[0] == body[6:8198] + b"de"
    with pytest.raises(IncompleteBody):
        decode(body, context=None, mode=UNSIGNED_TRAILER, length=8195)
    with pytest.raises(InvalidArgument) as info:
        decode(body, context=None, mode=UNSIGNED_TRAILER, length=8193)
    assert info.value.extra == {"ArgumentName": "x-amz-decoded-content-length"}


def test_constructor_checks_mode_and_context() -> None:
    with pytest.raises(ValueError, match="not an aws-chunked"):
        ChunkedDecoder(None, mode=PayloadMode.SIGNED, trailer_names=[])
    with pytest.raises(ValueError, match="StreamingContext"):
        ChunkedDecoder(None, mode=SIGNED, trailer_names=[])


# --- unsigned trailer: botocore's encoder and a real boto3 upload ------------------------------


@pytest.mark.parametrize(
    ("size", "chunk_size"),
    [
        (size, chunk)
        for size in (0, 1, 8191, 8192, 8193, 70000, 200_000)
        for chunk in (8192, 65536, 1 << 20)  # botocore sends 1 MiB; AWS's minimum is 8 KiB
    ],
)
def test_botocore_aws_chunked_wrapper_bodies_decode(size: int, chunk_size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    wrapper = botocore.httpchecksum.AwsChunkedWrapper(
        io.BytesIO(payload),
        checksum_cls=botocore.httpchecksum.Crc32Checksum,
        checksum_name="x-amz-checksum-crc32",
        chunk_size=chunk_size,
    )
    body = wrapper.read()
    decoded, trailers = decode(
        body,
        [3] * 5,
        context=None,
        mode=UNSIGNED_TRAILER,
        trailer_names=["x-amz-checksum-crc32"],
        length=size,
    )
    assert decoded == payload
    crc = base64.b64encode(zlib.crc32(payload).to_bytes(4, "big")).decode()
    assert trailers == {"x-amz-checksum-crc32": crc}


class _NoBody:
    def stream(self, **_: Any) -> Iterable[bytes]:
        return iter([b""])


def test_real_boto3_https_upload_decodes() -> None:
    client = boto3.client(
        "s3",
        endpoint_url="https://127.0.0.1:9000",
        aws_access_key_id="K",
        aws_secret_access_key="S",
        region_name="us-east-1",
    )
    sent: list[Any] = []

    def before_send(request: Any, **_: Any) -> Any:
        sent.append(request)
        return AWSResponse(request.url, 200, HTTPHeaders(), _NoBody())

    client.meta.events.register("before-send", before_send)
    payload = b"0123456789" * 150_000  # more than botocore's 1 MiB chunk
    client.put_object(Bucket="b", Key="k", Body=io.BytesIO(payload), ChecksumAlgorithm="CRC32C")
    (request,) = sent
    body = request.body.read() if hasattr(request.body, "read") else bytes(request.body)
    assert request.headers["x-amz-content-sha256"] == UNSIGNED_TRAILER.value.encode()
    decoded, trailers = decode(
        body,
        [65536] * 40,
        context=None,
        mode=UNSIGNED_TRAILER,
        trailer_names=["x-amz-checksum-crc32c"],
    )
    assert decoded == payload
    crc = base64.b64encode(awscrt.checksums.crc32c(payload).to_bytes(4, "big")).decode()
    assert trailers == {"x-amz-checksum-crc32c": crc}


def test_unsigned_chunk_extensions_are_ignored() -> None:
    body = b"3;name=value\r\nabc\r\n0;x\r\n\r\n"
    assert decode(body, context=None, mode=UNSIGNED_TRAILER) == (b"abc", {})


def test_announced_trailer_must_come() -> None:
    with pytest.raises(MalformedTrailerError):
        decode(
            b"3\r\nabc\r\n0\r\n\r\n\r\n",
            context=None,
            mode=UNSIGNED_TRAILER,
            trailer_names=["x-amz-checksum-crc32"],
        )
    decoder = ChunkedDecoder(None, mode=UNSIGNED_TRAILER, trailer_names=["x-amz-checksum-crc32"])
    decoder.feed(b"3\r\nabc\r\n0\r\n")
    with pytest.raises(IncompleteBody):
        decoder.finish()


def test_blank_line_before_the_trailer_is_tolerated() -> None:
    body = b"3\r\nabc\r\n0\r\n\r\nx-amz-checksum-crc32:AAAA\r\n\r\n"
    trailers = decode(
        body, context=None, mode=UNSIGNED_TRAILER, trailer_names=["x-amz-checksum-crc32"]
    )[1]
    assert trailers == {"x-amz-checksum-crc32": "AAAA"}


def test_decoder_for_non_streaming_is_none() -> None:
    request = AuthRequest.from_wire("GET", "/b/k", [("host", "h")])
    assert decoder_for(authenticate(request, lambda _key: None, datetime.now(UTC))) is None


def test_docstring_examples() -> None:
    assert doctest.testmod(chunked).failed == 0
