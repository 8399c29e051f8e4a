"""Upload checksums: the ``x-amz-checksum-*`` family, Content-MD5 and multipart ETags.

Pure apart from CPU work. The CRCs come from awscrt (AWS's own C code, the one botocore uses) and
SHA-1/SHA-256 from hashlib; both release the GIL on large buffers (awscrt above 5 KiB, hashlib
above 2 KiB), so ``Checksummer.update`` can run in a worker thread beside MD5 and the encoder.
Feed it blocks of about 1 MiB: fewer calls, same GIL-free time.

S3 request rules implemented by ``requested_checksums`` (messages as AWS sends them; sources:
OpenStack Swift's s3api, whose functional tests run against AWS, and versitygw's AWS-checked
issues):

* at most one ``x-amz-checksum-<alg>`` value, header or trailer;
* a value must be canonical base64 of exactly the digest size;
* ``x-amz-sdk-checksum-algorithm`` needs a matching value header or ``x-amz-trailer``;
* ``x-amz-checksum-algorithm`` (CreateMultipartUpload, CopyObject) asks S3 to compute one.

Base64 everywhere is of the big-endian digest, as S3 sends it: CRC32 of ``b"123456789"`` is
0xCBF43926, sent as ``"y/Q5Jg=="``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from awscrt import checksums as crt

from gateway import errors
from gateway.errors import BadDigest, InvalidArgument, InvalidDigest, InvalidPart, InvalidRequest

ALGORITHMS: Final = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
CHECKSUM_TYPES: Final = ("COMPOSITE", "FULL_OBJECT")

_DIGEST_SIZE: Final = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8, "SHA1": 20, "SHA256": 32}
_CRC: Final[dict[str, Callable[[bytes | bytearray | memoryview, int], int]]] = {
    "CRC32": crt.crc32,
    "CRC32C": crt.crc32c,
    "CRC64NVME": crt.crc64nvme,
}
_CRC_COMBINE: Final[dict[str, Callable[[int, int, int], int]]] = {
    "CRC32": crt.combine_crc32,
    "CRC32C": crt.combine_crc32c,
    "CRC64NVME": crt.combine_crc64nvme,
}
_HASH: Final = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256}
# S3 knows these too (botocore 1.44 sends them on request); we do not compute them (yet).
_KNOWN_UNSUPPORTED: Final = ("MD5", "SHA512", "XXHASH64", "XXHASH3", "XXHASH128")

_PREFIX: Final = "x-amz-checksum-"
# x-amz-checksum-* headers that are not checksum values.
_NOT_VALUES: Final = ("x-amz-checksum-algorithm", "x-amz-checksum-type", "x-amz-checksum-mode")


def header_name(algorithm: str) -> str:
    """The header (or trailer) carrying ``algorithm``'s value.

    >>> header_name("CRC64NVME")
    'x-amz-checksum-crc64nvme'
    """
    return _PREFIX + _canonical(algorithm).lower()


class Checksummer(ABC):
    """Incremental checksum of one algorithm over an upload body.

    >>> c = new_checksummer("CRC32")
    >>> c.update(b"12345")
    >>> c.update(memoryview(b"6789"))
    >>> c.digest_b64()
    'y/Q5Jg=='
    """

    __slots__ = ("algorithm",)

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm

    @abstractmethod
    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Add the next bytes of the body."""

    @abstractmethod
    def digest(self) -> bytes:
        """Big-endian digest of everything added so far; the checksummer stays usable."""

    def digest_b64(self) -> str:
        """``digest()`` in base64, the form of the ``x-amz-checksum-*`` headers."""
        return base64.b64encode(self.digest()).decode("ascii")


class _CrcChecksummer(Checksummer):
    __slots__ = ("_crc", "_fn", "_size")

    def __init__(self, algorithm: str) -> None:
        super().__init__(algorithm)
        self._fn = _CRC[algorithm]
        self._size = _DIGEST_SIZE[algorithm]
        self._crc = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._crc = self._fn(data, self._crc)

    def digest(self) -> bytes:
        return int(self._crc).to_bytes(self._size, "big")


class _HashChecksummer(Checksummer):
    __slots__ = ("_hash",)

    def __init__(self, algorithm: str) -> None:
        super().__init__(algorithm)
        self._hash = _HASH[algorithm]()

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._hash.update(data)

    def digest(self) -> bytes:
        return self._hash.digest()


def new_checksummer(algorithm: str) -> Checksummer:
    """A fresh checksummer; ``algorithm`` is case-insensitive ("crc32c" works).

    Raises ``InvalidRequest`` for a name S3 does not know and ``NotImplemented`` for one S3 knows
    but this gateway does not compute (SHA512, MD5, XXHASH*).
    """
    algorithm = _canonical(algorithm)
    if algorithm in _CRC:
        return _CrcChecksummer(algorithm)
    return _HashChecksummer(algorithm)


def checksum_b64(algorithm: str, data: bytes | bytearray | memoryview) -> str:
    """One-shot checksum in base64.

    >>> checksum_b64("SHA1", b"123456789")
    '98O8HYCOBHMq32eZZczDTKeuNEE='
    """
    checksummer = new_checksummer(algorithm)
    checksummer.update(data)
    return checksummer.digest_b64()


def validate_checksum_value(algorithm: str, value: str, *, trailer: bool = False) -> None:
    """Raise ``InvalidRequest`` unless ``value`` is canonical base64 of ``algorithm``'s size.

    Canonical means it re-encodes to itself: AWS refuses ``y/Q5Jh==`` although lenient decoders
    read it as the same bytes as ``y/Q5Jg==``. Use ``trailer=True`` for a value that arrived in
    the aws-chunked trailer.

    >>> validate_checksum_value("CRC32", "y/Q5Jh==")
    Traceback (most recent call last):
    gateway.errors.InvalidRequest: Value for x-amz-checksum-crc32 header is invalid.
    """
    algorithm = _canonical(algorithm)
    if _decode_digest(value, _DIGEST_SIZE[algorithm]) is None:
        where = "trailing header" if trailer else "header"
        raise InvalidRequest(f"Value for {header_name(algorithm)} {where} is invalid.")


def requested_checksums(headers: Mapping[str, str]) -> dict[str, str | None]:
    """The checksum a request asks for: ``{algorithm: value}``, at most one entry.

    The value is the base64 string to verify the body against, or ``None`` when S3 must compute
    the checksum and the value is still to come in the trailer (``x-amz-trailer`` names it) or
    will not come at all (``x-amz-checksum-algorithm`` on CreateMultipartUpload or CopyObject).
    An empty dict means no checksum was asked for. Header names are matched case-insensitively.

    ==================================================================  =========================
    request headers                                                     result
    ==================================================================  =========================
    ``x-amz-checksum-crc32: y/Q5Jg==``                                  ``{"CRC32": "y/Q5Jg=="}``
    same + ``x-amz-sdk-checksum-algorithm: crc32``                      ``{"CRC32": "y/Q5Jg=="}``
    ``x-amz-sdk-checksum-algorithm: CRC32C``,
    ``x-amz-trailer: x-amz-checksum-crc32c``                            ``{"CRC32C": None}``
    ``x-amz-checksum-algorithm: SHA256``                                ``{"SHA256": None}``
    ``x-amz-checksum-crc32: short``                                     InvalidRequest
    ``x-amz-checksum-crc32`` + ``x-amz-checksum-sha1``                  InvalidRequest
    ``x-amz-checksum-crc32`` + ``x-amz-sdk-checksum-algorithm: SHA1``   InvalidRequest
    ``x-amz-sdk-checksum-algorithm: CRC32`` alone                       InvalidRequest
    ``x-amz-checksum-sha512: ...``                                      NotImplemented
    ==================================================================  =========================
    """
    values: list[tuple[str, str]] = []
    for name, value in headers.items():
        lowered = name.lower()
        if lowered.startswith(_PREFIX) and lowered not in _NOT_VALUES:
            values.append((_algorithm_of_header(lowered), value.strip()))
    trailers = _trailer_algorithms(headers.get("x-amz-trailer"))
    if len(values) > 1:
        raise InvalidRequest(
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
        )
    if len(values) + len(trailers) > 1:
        raise InvalidRequest("Expecting a single x-amz-checksum- header")

    found: dict[str, str | None] = {}
    if values:
        algorithm, value = values[0]
        _require_supported(algorithm)
        validate_checksum_value(algorithm, value)
        found[algorithm] = value
    elif trailers:
        algorithm = trailers[0]
        _require_supported(algorithm)
        found[algorithm] = None

    sdk_algorithm = (headers.get("x-amz-sdk-checksum-algorithm") or "").strip()
    if sdk_algorithm:
        if not found:
            raise InvalidRequest(
                "x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* "
                "or x-amz-trailer headers were found."
            )
        if sdk_algorithm.upper() not in found:
            raise InvalidRequest("Value for x-amz-sdk-checksum-algorithm header is invalid.")

    wanted = (headers.get("x-amz-checksum-algorithm") or "").strip()
    if wanted and not found:
        found[_creation_algorithm(wanted)] = None
    return found


def requested_checksum_type(headers: Mapping[str, str], algorithm: str | None) -> str | None:
    """``COMPOSITE`` or ``FULL_OBJECT`` for a CreateMultipartUpload, ``None`` without algorithm.

    Defaults as S3: CRC64NVME is always FULL_OBJECT, SHA1/SHA256 always COMPOSITE, CRC32/CRC32C
    default to COMPOSITE and may ask for FULL_OBJECT with ``x-amz-checksum-type``.

    >>> requested_checksum_type({}, "CRC64NVME")
    'FULL_OBJECT'
    >>> requested_checksum_type({"x-amz-checksum-type": "FULL_OBJECT"}, "CRC32")
    'FULL_OBJECT'
    """
    asked = (headers.get("x-amz-checksum-type") or "").strip().upper()
    if not asked:
        if algorithm is None:
            return None
        return "FULL_OBJECT" if _canonical(algorithm) == "CRC64NVME" else "COMPOSITE"
    if asked not in CHECKSUM_TYPES:
        raise InvalidRequest("Value for x-amz-checksum-type header is invalid.")
    if algorithm is None:
        raise InvalidRequest(
            "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm "
            "header."
        )
    algorithm = _canonical(algorithm)
    if (asked == "FULL_OBJECT" and algorithm in _HASH) or (
        asked == "COMPOSITE" and algorithm == "CRC64NVME"
    ):
        raise _type_mismatch(asked, algorithm)
    return asked


def verify(expected_b64: str, computed_b64: str, algorithm: str) -> None:
    """Raise ``BadDigest`` unless the client's checksum equals the one computed from the body.

    ``expected_b64`` should have passed ``validate_checksum_value`` (header values do inside
    ``requested_checksums``; validate trailer values first). Compared as decoded bytes.

    >>> verify("y/Q5Jg==", "z/Q5Jg==", "CRC32")
    Traceback (most recent call last):
    gateway.errors.BadDigest: The CRC32 you specified did not match the calculated checksum.
    """
    algorithm = _canonical(algorithm)
    size = _DIGEST_SIZE[algorithm]
    expected = _decode_digest(expected_b64, size, canonical=False)
    if expected is None or expected != _decode_digest(computed_b64, size, canonical=False):
        raise BadDigest(f"The {algorithm} you specified did not match the calculated checksum.")


def md5_content_check(content_md5_header: str | None, md5_digest: bytes) -> None:
    """Check ``Content-MD5`` (base64 of the 16-byte MD5) against the body's MD5 digest.

    No header, nothing to check. Malformed (not base64, not 16 bytes, empty) is ``InvalidDigest``;
    a well-formed value that differs is ``BadDigest``.

    >>> import hashlib
    >>> md5_content_check("XrY7u+Ae7tCTyyK7j1rNww==", hashlib.md5(b"hello world").digest())
    """
    if content_md5_header is None:
        return
    value = content_md5_header.strip()
    expected = _decode_digest(value, 16, canonical=False)
    if expected is None:
        raise InvalidDigest(**{"Content-MD5": content_md5_header})
    if expected != md5_digest:
        raise BadDigest(**{"Content-MD5": content_md5_header})


def composite_checksum(algorithm: str, part_checksums_b64: Sequence[str]) -> str:
    """The COMPOSITE checksum of a multipart object: checksum of the parts' checksums, ``-N``.

    The parts' base64 values are decoded and concatenated in part order; the result is the same
    algorithm over those bytes, base64, then ``-<number of parts>`` (what S3 returns). CRC64NVME
    has no composite form (``InvalidRequest``, as S3). A malformed part value is
    ``InvalidArgument`` as in CompleteMultipartUpload.

    >>> composite_checksum("CRC32", ["y/Q5Jg==", "y/Q5Jg=="])
    'cCOsTw==-2'
    """
    algorithm = _canonical(algorithm)
    if algorithm == "CRC64NVME":
        raise _type_mismatch("COMPOSITE", algorithm)
    if not part_checksums_b64:
        raise ValueError("a multipart object has at least one part")
    size = _DIGEST_SIZE[algorithm]
    checksummer = new_checksummer(algorithm)
    for value in part_checksums_b64:
        digest = _decode_digest(value.strip(), size)
        if digest is None:
            raise InvalidArgument(
                "Invalid Base64 or multiple checksums present in request",
                ArgumentName="Checksum",
                ArgumentValue=f"{algorithm}:{value};",
            )
        checksummer.update(digest)
    return f"{checksummer.digest_b64()}-{len(part_checksums_b64)}"


def full_object_checksum(algorithm: str, parts: Sequence[tuple[str, int]]) -> str:
    """The FULL_OBJECT checksum of a multipart object from ``(part checksum b64, part size)``.

    The CRCs of the parts are combined (awscrt's ``combine_*``) into the CRC of the whole body,
    as if computed in one pass; no ``-N`` suffix. CRC algorithms only: SHA digests do not
    combine (``InvalidRequest``, as S3).

    >>> full_object_checksum("CRC32", [("y/U6HA==", 5), ("nbq/hw==", 4)])  # b"12345", b"6789"
    'y/Q5Jg=='
    """
    algorithm = _canonical(algorithm)
    combine = _CRC_COMBINE.get(algorithm)
    if combine is None:
        raise _type_mismatch("FULL_OBJECT", algorithm)
    if not parts:
        raise ValueError("a multipart object has at least one part")
    size = _DIGEST_SIZE[algorithm]
    crc = 0
    for index, (value, length) in enumerate(parts):
        digest = _decode_digest(value.strip(), size)
        if digest is None:
            raise InvalidArgument(
                "Invalid Base64 or multiple checksums present in request",
                ArgumentName="Checksum",
                ArgumentValue=f"{algorithm}:{value};",
            )
        part_crc = int.from_bytes(digest, "big")
        crc = part_crc if index == 0 else int(combine(crc, part_crc, length))
    return base64.b64encode(crc.to_bytes(size, "big")).decode("ascii")


def multipart_etag(part_md5_hex: Sequence[str]) -> str:
    """ETag of a multipart object: MD5 of the parts' binary MD5s, then ``-<number of parts>``.

    Returned WITHOUT quotes, like the single-part ETag (``hashlib.md5(...).hexdigest()``) and
    ``storage`` records; the HTTP/XML layer adds the quotes S3 sends. Part ETags may be given
    with or without quotes (clients echo them quoted in CompleteMultipartUpload). A part ETag
    that is not 32 hex digits is ``InvalidPart``.

    >>> multipart_etag(['"5d41402abc4b2a76b9719d911017c592"', "7d793037a0760186574b0282f2f435e7"])
    '065947336a2f2a95ba8899f3675c3be6-2'
    """
    if not part_md5_hex:
        raise ValueError("a multipart object has at least one part")
    digests = bytearray()
    for etag in part_md5_hex:
        bare = etag.strip().strip('"')
        try:
            raw = bytes.fromhex(bare)
        except ValueError:
            raw = b""
        if len(raw) != 16 or len(bare) != 32:
            raise InvalidPart(ETag=bare)
        digests += raw
    return f"{hashlib.md5(digests).hexdigest()}-{len(part_md5_hex)}"


def _canonical(algorithm: str) -> str:
    upper = algorithm.strip().upper()
    if upper in _DIGEST_SIZE:
        return upper
    if upper in _KNOWN_UNSUPPORTED:
        raise errors.NotImplemented(f"The {upper} checksum algorithm is not supported.")
    raise InvalidRequest(_unsupported_algorithm_message())


def _unsupported_algorithm_message() -> str:
    return (
        "Checksum algorithm provided is unsupported. Please try again with any of the valid "
        f"types: [{', '.join(ALGORITHMS)}]"
    )


def _creation_algorithm(value: str) -> str:
    """Validate ``x-amz-checksum-algorithm`` as CreateMultipartUpload does."""
    if "," in value:
        raise InvalidRequest("Invalid types are specified in x-amz-checksum-algorithm header.")
    return _canonical(value)


def _algorithm_of_header(lowered_name: str) -> str:
    upper = lowered_name[len(_PREFIX) :].upper()
    if upper not in _DIGEST_SIZE and upper not in _KNOWN_UNSUPPORTED:
        raise InvalidRequest(
            "The algorithm type you specified in x-amz-checksum- header is invalid."
        )
    return upper


def _trailer_algorithms(value: str | None) -> list[str]:
    if not value or not value.strip():
        return []
    names = [name.strip().lower() for name in value.strip().rstrip(",").split(",")]
    algorithms = []
    for name in names:
        upper = name[len(_PREFIX) :].upper() if name.startswith(_PREFIX) else ""
        if name in _NOT_VALUES or (upper not in _DIGEST_SIZE and upper not in _KNOWN_UNSUPPORTED):
            raise InvalidRequest("The value specified in the x-amz-trailer header is not supported")
        algorithms.append(upper)
    return algorithms


def _require_supported(algorithm: str) -> None:
    if algorithm in _KNOWN_UNSUPPORTED:
        name = _PREFIX + algorithm.lower()
        raise errors.NotImplemented(f"The {name} algorithm is not supported.")


def _type_mismatch(checksum_type: str, algorithm: str) -> InvalidRequest:
    return InvalidRequest(
        f"The {checksum_type} checksum type cannot be used with the {algorithm.lower()} "
        "checksum algorithm."
    )


def _decode_digest(value: str, size: int, *, canonical: bool = True) -> bytes | None:
    """Bytes of base64 ``value`` if it is strict base64 of exactly ``size`` bytes, else None."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != size:
        return None
    if canonical and base64.b64encode(raw).decode("ascii") != value:
        return None
    return raw
