"""Upload checksums: known vectors, agreement with botocore, and S3's request rules."""

from __future__ import annotations

import base64
import hashlib
import itertools
import random
from typing import Any

import pytest
from botocore import httpchecksum as boto
from multidict import CIMultiDict

from gateway import errors
from gateway.checksums import (
    ALGORITHMS,
    checksum_b64,
    composite_checksum,
    full_object_checksum,
    header_name,
    md5_content_check,
    multipart_etag,
    new_checksummer,
    requested_checksum_type,
    requested_checksums,
    validate_checksum_value,
    verify,
)
from gateway.errors import (
    BadDigest,
    InvalidArgument,
    InvalidDigest,
    InvalidPart,
    InvalidRequest,
    S3Error,
)

CHECK = b"123456789"

# The CRC catalogue's check values, and what S3 answers for b"123456789" (Swift's AWS tests).
VECTORS: dict[str, tuple[int | None, str]] = {
    "CRC32": (0xCBF43926, "y/Q5Jg=="),
    "CRC32C": (0xE3069283, "4waSgw=="),
    "CRC64NVME": (0xAE8B14860A799888, "rosUhgp5mIg="),
    "SHA1": (None, "98O8HYCOBHMq32eZZczDTKeuNEE="),
    "SHA256": (None, "FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU="),
}

BOTOCORE: dict[str, list[type[Any]]] = {
    "CRC32": [boto.Crc32Checksum, boto.CrtCrc32Checksum],
    "CRC32C": [boto.CrtCrc32cChecksum],
    "CRC64NVME": [boto.CrtCrc64NvmeChecksum],
    "SHA1": [boto.Sha1Checksum],
    "SHA256": [boto.Sha256Checksum],
}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_known_vectors(algorithm: str) -> None:
    crc, b64 = VECTORS[algorithm]
    checksummer = new_checksummer(algorithm)
    checksummer.update(CHECK)
    assert checksummer.digest_b64() == b64
    if crc is not None:
        assert int.from_bytes(checksummer.digest(), "big") == crc


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_empty_body(algorithm: str) -> None:
    expected = {
        "CRC32": "AAAAAA==",
        "CRC32C": "AAAAAA==",
        "CRC64NVME": "AAAAAAAAAAA=",
        "SHA1": base64.b64encode(hashlib.sha1(b"").digest()).decode(),
        "SHA256": base64.b64encode(hashlib.sha256(b"").digest()).decode(),
    }
    assert new_checksummer(algorithm).digest_b64() == expected[algorithm]


def _pieces(data: bytes, rng: random.Random) -> list[bytes | bytearray | memoryview]:
    cuts = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randrange(6)))
    bounds = [0, *cuts, len(data)]
    view = memoryview(data)
    kinds = [bytes, bytearray, memoryview]
    pieces: list[bytes | bytearray | memoryview] = []
    for start, end in itertools.pairwise(bounds):
        kind = rng.choice(kinds)
        pieces.append(view[start:end] if kind is memoryview else kind(view[start:end]))
    return pieces


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("size", [0, 1, 7, 4096, 5 * 1024 + 1, (1 << 20) + 3])
def test_matches_botocore_with_split_updates(algorithm: str, size: int) -> None:
    rng = random.Random(f"{algorithm}-{size}")
    data = rng.randbytes(size)
    checksummer = new_checksummer(algorithm)
    for piece in _pieces(data, rng):
        checksummer.update(piece)
    for cls in BOTOCORE[algorithm]:
        reference = cls()
        reference.update(data)
        assert checksummer.digest_b64() == reference.b64digest(), cls.__name__
    assert checksum_b64(algorithm, data) == checksummer.digest_b64()


def test_digest_does_not_finish_the_checksummer() -> None:
    checksummer = new_checksummer("SHA256")
    checksummer.update(b"1234")
    first = checksummer.digest_b64()
    assert checksummer.digest_b64() == first
    checksummer.update(b"56789")
    assert checksummer.digest_b64() == VECTORS["SHA256"][1]


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("CRC32", "x-amz-checksum-crc32"),
        ("crc32c", "x-amz-checksum-crc32c"),
        ("CRC64NVME", "x-amz-checksum-crc64nvme"),
        ("SHA1", "x-amz-checksum-sha1"),
        ("sha256", "x-amz-checksum-sha256"),
    ],
)
def test_header_name(algorithm: str, expected: str) -> None:
    assert header_name(algorithm) == expected
    assert new_checksummer(algorithm).algorithm == algorithm.upper()


def test_unknown_algorithms() -> None:
    with pytest.raises(InvalidRequest) as caught:
        new_checksummer("nope")
    assert caught.value.detail == (
        "Checksum algorithm provided is unsupported. Please try again with any of the valid "
        "types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]"
    )
    with pytest.raises(errors.NotImplemented):
        new_checksummer("SHA512")
    with pytest.raises(InvalidRequest):
        header_name("MD6")


@pytest.mark.parametrize(
    ("algorithm", "value", "valid"),
    [
        ("CRC32", "y/Q5Jg==", True),
        ("CRC32", "y/Q5Jh==", False),  # non-canonical padding bits (AWS refuses it)
        ("CRC32", "short===", False),
        ("CRC32", "shrt", False),  # 3 bytes
        ("CRC32", "toolong=", False),  # 5 bytes
        ("CRC32", "^^^^^^==", False),
        ("CRC32", "y^/^Q5^J^g==", False),
        ("CRC32", "y/Q5Jg", False),  # padding missing
        ("CRC32", "", False),
        ("CRC32", "y/Q5Jg==\u00e9", False),
        ("CRC32C", "4waSgw==", True),
        ("CRC32C", "4waSgx==", False),
        ("CRC64NVME", "rosUhgp5mIg=", True),
        ("CRC64NVME", "rosUhgp5mIh=", False),
        ("CRC64NVME", "y/Q5Jg==", False),  # a CRC32-sized value
        ("SHA1", "98O8HYCOBHMq32eZZczDTKeuNEE=", True),
        ("SHA1", "98O8HYCOBHMq32eZZczDTKeuNEF=", False),
        ("SHA256", "FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU=", True),
        ("SHA256", "FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiV=", False),
    ],
)
def test_validate_checksum_value(algorithm: str, value: str, valid: bool) -> None:
    if valid:
        validate_checksum_value(algorithm, value)
        return
    with pytest.raises(InvalidRequest) as caught:
        validate_checksum_value(algorithm, value)
    assert caught.value.detail == f"Value for {header_name(algorithm)} header is invalid."
    with pytest.raises(InvalidRequest) as caught:
        validate_checksum_value(algorithm, value, trailer=True)
    assert caught.value.detail == f"Value for {header_name(algorithm)} trailing header is invalid."


MULTIPLE = "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
SINGLE = "Expecting a single x-amz-checksum- header"
CRC32_INVALID = "Value for x-amz-checksum-crc32 header is invalid."
SDK_INVALID = "Value for x-amz-sdk-checksum-algorithm header is invalid."
SDK_ALONE = (
    "x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or "
    "x-amz-trailer headers were found."
)
BAD_TYPE = "The algorithm type you specified in x-amz-checksum- header is invalid."
BAD_TRAILER = "The value specified in the x-amz-trailer header is not supported"
UNSUPPORTED = (
    "Checksum algorithm provided is unsupported. Please try again with any of the valid types: "
    "[CRC32, CRC32C, CRC64NVME, SHA1, SHA256]"
)
SHA1_CHECK = "98O8HYCOBHMq32eZZczDTKeuNEE="
C32 = "x-amz-checksum-crc32"
SDK = "x-amz-sdk-checksum-algorithm"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, {}),
        ({"content-md5": "XrY7u+Ae7tCTyyK7j1rNww=="}, {}),
        ({"x-amz-checksum-crc32": "y/Q5Jg=="}, {"CRC32": "y/Q5Jg=="}),
        ({"X-Amz-Checksum-CRC32": " y/Q5Jg== "}, {"CRC32": "y/Q5Jg=="}),
        (
            {"x-amz-checksum-crc32c": "4waSgw==", "x-amz-sdk-checksum-algorithm": "crc32c"},
            {"CRC32C": "4waSgw=="},
        ),
        (
            {
                "x-amz-sdk-checksum-algorithm": "CRC64NVME",
                "x-amz-trailer": "x-amz-checksum-crc64nvme",
            },
            {"CRC64NVME": None},
        ),
        ({"x-amz-trailer": "X-Amz-Checksum-SHA256"}, {"SHA256": None}),
        ({"x-amz-trailer": "x-amz-checksum-crc32,"}, {"CRC32": None}),
        ({"x-amz-checksum-algorithm": "SHA1"}, {"SHA1": None}),
        ({"x-amz-checksum-algorithm": "crc32"}, {"CRC32": None}),
        (
            {"x-amz-checksum-algorithm": "CRC32", "x-amz-checksum-type": "FULL_OBJECT"},
            {"CRC32": None},
        ),
        ({"x-amz-checksum-mode": "ENABLED"}, {}),
        ({"x-amz-trailer": ""}, {}),
        # An explicit value wins over the upload-creation header.
        (
            {"x-amz-checksum-algorithm": "SHA1", "x-amz-checksum-crc32": "y/Q5Jg=="},
            {"CRC32": "y/Q5Jg=="},
        ),
    ],
)
def test_requested_checksums(headers: dict[str, str], expected: dict[str, str | None]) -> None:
    assert requested_checksums(headers) == expected


@pytest.mark.parametrize(
    ("headers", "error", "message"),
    [
        ({"x-amz-checksum-crc32": "short==="}, InvalidRequest, CRC32_INVALID),
        ({"x-amz-checksum-crc32": ""}, InvalidRequest, CRC32_INVALID),
        ({C32: "y/Q5Jg==", "x-amz-checksum-sha1": SHA1_CHECK}, InvalidRequest, MULTIPLE),
        ({"x-amz-checksum-crc32": "", "x-amz-checksum-crc32c": ""}, InvalidRequest, MULTIPLE),
        ({C32: "y/Q5Jg==", "x-amz-trailer": C32}, InvalidRequest, SINGLE),
        ({"x-amz-trailer": "x-amz-checksum-crc32, x-amz-checksum-sha1"}, InvalidRequest, SINGLE),
        ({C32: "y/Q5Jg==", SDK: "SHA1"}, InvalidRequest, SDK_INVALID),
        ({SDK: "SHA1", "x-amz-trailer": C32}, InvalidRequest, SDK_INVALID),
        ({"x-amz-sdk-checksum-algorithm": "CRC32"}, InvalidRequest, SDK_ALONE),
        ({"x-amz-checksum-foo": "AAAA"}, InvalidRequest, BAD_TYPE),
        ({"x-amz-trailer": "x-amz-meta-foo"}, InvalidRequest, BAD_TRAILER),
        ({"x-amz-trailer": "x-amz-checksum-type"}, InvalidRequest, BAD_TRAILER),
        ({"x-amz-checksum-algorithm": "nope"}, InvalidRequest, UNSUPPORTED),
        ({"x-amz-checksum-algorithm": "CRC32,CRC32C"}, InvalidRequest,
         "Invalid types are specified in x-amz-checksum-algorithm header."),
        ({"x-amz-checksum-sha512": "AAAA"}, errors.NotImplemented,
         "The x-amz-checksum-sha512 algorithm is not supported."),
        ({"x-amz-trailer": "x-amz-checksum-xxhash64"}, errors.NotImplemented,
         "The x-amz-checksum-xxhash64 algorithm is not supported."),
    ],
)  # fmt: skip
def test_requested_checksums_refused(
    headers: dict[str, str], error: type[S3Error], message: str
) -> None:
    with pytest.raises(error) as caught:
        requested_checksums(headers)
    assert str(caught.value) == message


def test_requested_checksums_case_insensitive_mapping() -> None:
    headers = CIMultiDict(
        {"X-Amz-Sdk-Checksum-Algorithm": "CRC32", "X-Amz-Trailer": "x-amz-checksum-crc32"}
    )
    assert requested_checksums(headers) == {"CRC32": None}


@pytest.mark.parametrize(
    ("headers", "algorithm", "expected"),
    [
        ({}, None, None),
        ({}, "CRC32", "COMPOSITE"),
        ({}, "CRC32C", "COMPOSITE"),
        ({}, "SHA1", "COMPOSITE"),
        ({}, "SHA256", "COMPOSITE"),
        ({}, "CRC64NVME", "FULL_OBJECT"),
        ({"x-amz-checksum-type": "FULL_OBJECT"}, "CRC32", "FULL_OBJECT"),
        ({"x-amz-checksum-type": "full_object"}, "crc32c", "FULL_OBJECT"),
        ({"x-amz-checksum-type": "COMPOSITE"}, "SHA256", "COMPOSITE"),
        ({"x-amz-checksum-type": "FULL_OBJECT"}, "CRC64NVME", "FULL_OBJECT"),
    ],
)
def test_requested_checksum_type(
    headers: dict[str, str], algorithm: str | None, expected: str | None
) -> None:
    assert requested_checksum_type(headers, algorithm) == expected


@pytest.mark.parametrize(
    ("headers", "algorithm", "message"),
    [
        ({"x-amz-checksum-type": "FULL_OBJECT"}, "SHA256",
         "The FULL_OBJECT checksum type cannot be used with the sha256 checksum algorithm."),
        ({"x-amz-checksum-type": "FULL_OBJECT"}, "SHA1",
         "The FULL_OBJECT checksum type cannot be used with the sha1 checksum algorithm."),
        ({"x-amz-checksum-type": "COMPOSITE"}, "CRC64NVME",
         "The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm."),
        ({"x-amz-checksum-type": "COMPOSITE"}, None,
         "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm "
         "header."),
        ({"x-amz-checksum-type": "PARTIAL"}, "CRC32",
         "Value for x-amz-checksum-type header is invalid."),
    ],
)  # fmt: skip
def test_requested_checksum_type_refused(
    headers: dict[str, str], algorithm: str | None, message: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        requested_checksum_type(headers, algorithm)
    assert caught.value.detail == message


def test_verify() -> None:
    verify("y/Q5Jg==", "y/Q5Jg==", "CRC32")
    verify("y/Q5Jg==", "y/Q5Jg==", "crc32")
    for algorithm in ALGORITHMS:
        good = VECTORS[algorithm][1]
        bad = checksum_b64(algorithm, b"12345678")
        verify(good, checksum_b64(algorithm, CHECK), algorithm)
        with pytest.raises(BadDigest) as caught:
            verify(bad, good, algorithm)
        assert caught.value.status == 400
        assert caught.value.detail == (
            f"The {algorithm} you specified did not match the calculated checksum."
        )
    with pytest.raises(BadDigest):
        verify("garbage", "y/Q5Jg==", "CRC32")


HELLO_MD5 = hashlib.md5(b"hello world").digest()


@pytest.mark.parametrize(
    ("header", "error"),
    [
        (None, None),
        ("XrY7u+Ae7tCTyyK7j1rNww==", None),
        (" XrY7u+Ae7tCTyyK7j1rNww== ", None),
        (base64.b64encode(hashlib.md5(b"other").digest()).decode(), BadDigest),
        ("", InvalidDigest),
        ("not base64!", InvalidDigest),
        ("XrY7u+Ae7tCTyyK7j1rN", InvalidDigest),  # 15 bytes
        (base64.b64encode(b"\0" * 17).decode(), InvalidDigest),
        ("5eb63bbbe01eeed093cb22bb8f5acdc3", InvalidDigest),  # hex, not base64 of 16 bytes
    ],
)
def test_md5_content_check(header: str | None, error: type[S3Error] | None) -> None:
    if error is None:
        md5_content_check(header, HELLO_MD5)
        return
    with pytest.raises(error) as caught:
        md5_content_check(header, HELLO_MD5)
    assert caught.value.extra == {"Content-MD5": header}


def _concat_reference(algorithm: str, parts: list[bytes]) -> str:
    """Composite checksum computed independently with botocore's checksum classes."""
    digests = b"".join(base64.b64decode(_boto_b64(algorithm, part)) for part in parts)
    return f"{_boto_b64(algorithm, digests)}-{len(parts)}"


def _boto_b64(algorithm: str, data: bytes) -> str:
    reference = BOTOCORE[algorithm][0]()
    reference.update(data)
    value: str = reference.b64digest()
    return value


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "SHA1", "SHA256"])
def test_composite_checksum(algorithm: str) -> None:
    rng = random.Random(algorithm)
    parts = [rng.randbytes(n) for n in (5 << 10, 5 << 10, 17)]
    values = [checksum_b64(algorithm, part) for part in parts]
    assert composite_checksum(algorithm, values) == _concat_reference(algorithm, parts)
    assert composite_checksum(algorithm, values[:1]).endswith("-1")


def test_composite_checksum_refusals() -> None:
    with pytest.raises(InvalidRequest) as caught:
        composite_checksum("CRC64NVME", ["rosUhgp5mIg="])
    assert caught.value.detail == (
        "The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm."
    )
    with pytest.raises(InvalidArgument) as invalid:
        composite_checksum("CRC32", ["y/Q5Jg==", "y/Q5Jh=="])
    assert invalid.value.detail == "Invalid Base64 or multiple checksums present in request"
    assert invalid.value.extra == {"ArgumentName": "Checksum", "ArgumentValue": "CRC32:y/Q5Jh==;"}
    with pytest.raises(ValueError):
        composite_checksum("CRC32", [])


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME"])
def test_full_object_checksum_equals_whole_body(algorithm: str) -> None:
    rng = random.Random(algorithm)
    parts = [rng.randbytes(n) for n in (5 << 10, 0, 1, 9000, 3)]
    values = [(checksum_b64(algorithm, part), len(part)) for part in parts]
    assert full_object_checksum(algorithm, values) == checksum_b64(algorithm, b"".join(parts))
    assert full_object_checksum(algorithm, values[:1]) == values[0][0]


def test_full_object_checksum_refusals() -> None:
    with pytest.raises(InvalidRequest) as caught:
        full_object_checksum("SHA256", [(VECTORS["SHA256"][1], 9)])
    assert caught.value.detail == (
        "The FULL_OBJECT checksum type cannot be used with the sha256 checksum algorithm."
    )
    with pytest.raises(InvalidArgument):
        full_object_checksum("CRC32", [("nope", 3)])
    with pytest.raises(ValueError):
        full_object_checksum("CRC32", [])


def test_multipart_etag() -> None:
    parts = [b"a" * 100, b"b" * 50]
    hexes = [hashlib.md5(p).hexdigest() for p in parts]
    expected = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    assert multipart_etag(hexes) == f"{expected}-2"
    assert multipart_etag([f'"{h}"' for h in hexes]) == f"{expected}-2"  # quotes tolerated
    assert (
        multipart_etag(hexes[:1]) == hashlib.md5(hashlib.md5(parts[0]).digest()).hexdigest() + "-1"
    )
    assert multipart_etag([h.upper() for h in hexes]) == f"{expected}-2"


@pytest.mark.parametrize("bad", ["", "xyz", "0" * 31, "0" * 34, "g" * 32, "00 " * 16])
def test_multipart_etag_refuses_malformed_part(bad: str) -> None:
    with pytest.raises(InvalidPart):
        multipart_etag(["0" * 32, bad])
