"""The S3 XML layer: response bodies out (xml.etree), request bodies in (defusedxml).

Builders return the complete body as UTF-8 ``bytes`` with the ``<?xml ...?>`` prolog and the S3
namespace on the root (except ``<Error>``, which S3 and botocore expect without one).

Conventions shared by every builder:

* **ETags are passed bare** (``"9b2cf535f27731c974343645a3985328"`` or ``"...-3"`` for multipart),
  exactly as `parse_complete_multipart` returns them; the builder adds the double quotes S3 shows
  (a value that already has them is not quoted twice).
* **Timestamps** are timezone-aware ``datetime``s, written in UTC with milliseconds
  (``2026-11-29T17:00:00.000Z``); a naive datetime is a programming error (``ValueError``).
* **Checksums** are ``Mapping[str, str]`` from algorithm name (one of `CHECKSUM_ALGORITHMS`, e.g.
  ``"CRC32"``) to the base64 value, written as ``<ChecksumCRC32>``...
* **encoding-type=url** percent-encodes the key-like elements the way S3 does (UTF-8, space as
  ``+``, ``/`` and ``*`` left alone): ``"a b/c~d+é"`` -> ``"a+b/c%7Ed%2B%C3%A9"``.
* Characters XML 1.0 cannot carry (C0 controls other than tab and newline) are written as
  character references, as S3 does: lossless for clients that accept them, and the reason clients
  ask for encoding-type=url. A carriage return is written ``&#xD;`` so parsers keep it.

Parsers take the raw request body and raise `MalformedXML` for anything that is not a well-formed
document of the expected shape: wrong root, unknown or repeated elements, bad numbers, DTDs or
entity declarations (so no XML bombs), or more than `MAX_XML_BODY_BYTES`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Protocol
from urllib.parse import quote_plus

import defusedxml.ElementTree as SafeET

from gateway import errors
from gateway.errors import MalformedXML
from gateway.operations import MAX_PART_NUMBER, MIN_PART_NUMBER, EncodingType

S3_NAMESPACE: Final = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_PROLOG: Final = b'<?xml version="1.0" encoding="UTF-8"?>\n'

# Larger request bodies are refused without parsing. A DeleteObjects of 1000 keys of 1024 bytes,
# each character escaped, stays below it; so does a CompleteMultipartUpload of 10,000 parts.
MAX_XML_BODY_BYTES: Final = 8 * 1024 * 1024
MAX_DELETE_OBJECTS: Final = 1000
MAX_COMPLETE_PARTS: Final = MAX_PART_NUMBER

# In the order botocore's S3 model lists them.
CHECKSUM_ALGORITHMS: Final = (
    "CRC32",
    "CRC32C",
    "CRC64NVME",
    "SHA1",
    "SHA256",
    "SHA512",
    "MD5",
    "XXHASH64",
    "XXHASH3",
    "XXHASH128",
)
CHECKSUM_TYPES: Final = ("COMPOSITE", "FULL_OBJECT")
VERSIONING_STATUSES: Final = ("Enabled", "Suspended")

_NEEDS_CHAR_REF = re.compile("[\x00-\x08\x0b-\x0d\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Lone surrogates are not characters, not even as references: they are non-UTF-8 request bytes
# echoed back (e.g. in a CanonicalRequest), written as U+FFFD so the document stays well-formed.
_NOT_XML_CHARS = re.compile("[\ud800-\udfff]")
_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_DIGITS = re.compile(r"[0-9]{1,5}")


# --- values the builders take and the parsers return -----------------------------------------


@dataclass(frozen=True, slots=True)
class Owner:
    id: str
    display_name: str


class ListedEntry(Protocol):
    """One ``<Contents>`` of a listing (``storage.api.ListedObject`` is one: the listing
    writes the storage layer's objects as they are, 1000 of them a page)."""

    @property
    def key(self) -> str: ...
    @property
    def last_modified(self) -> datetime: ...
    @property
    def etag(self) -> str: ...
    @property
    def size(self) -> int: ...


@dataclass(frozen=True, slots=True)
class ObjectEntry:
    """A ``ListedEntry`` as a plain value."""

    key: str
    last_modified: datetime
    etag: str
    size: int


@dataclass(frozen=True, slots=True)
class PartEntry:
    """One ``<Part>`` of ListParts."""

    part_number: int
    last_modified: datetime
    etag: str
    size: int
    checksums: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UploadEntry:
    """One ``<Upload>`` of ListMultipartUploads; ``owner`` is also written as the Initiator."""

    key: str
    upload_id: str
    initiated: datetime
    storage_class: str = "STANDARD"
    owner: Owner | None = None


@dataclass(frozen=True, slots=True)
class CompletedPart:
    """One ``<Part>`` of a CompleteMultipartUpload request: etag bare (no quotes)."""

    part_number: int
    etag: str
    checksums: Mapping[str, str] = field(default_factory=dict)


# --- builders --------------------------------------------------------------------------------


def error_xml(
    code: str,
    message: str,
    resource: str | None = None,
    request_id: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> bytes:
    """``<Error>`` body; ``extra`` adds elements such as ``BucketName`` or ``ArgumentName``.

    >>> error_xml("NoSuchKey", "The specified key does not exist.", "/b/k", "r1", {"Key": "k"})
    ... # doctest: +ELLIPSIS
    b'...<Error><Code>NoSuchKey</Code><Message>...</Message><Key>k</Key><Resource>/b/k</Resource>...'
    """
    root = ET.Element("Error")  # no namespace: S3 sends none and botocore matches the bare tag
    _add(root, "Code", code)
    _add(root, "Message", message)
    for name, value in (extra or {}).items():
        if not _XML_NAME.fullmatch(name) or name in ("Code", "Message", "Resource", "RequestId"):
            raise ValueError(f"bad extra error element name {name!r}")
        _add(root, name, value)
    if resource is not None:
        _add(root, "Resource", resource)
    if request_id is not None:
        _add(root, "RequestId", request_id)
    return _serialize(root)


def list_buckets_xml(
    owner_id: str, owner_name: str, buckets: Sequence[tuple[str, datetime]]
) -> bytes:
    """``<ListAllMyBucketsResult>``: the owner, then (name, creation date) per bucket."""
    root = _root("ListAllMyBucketsResult")
    _add_owner(root, "Owner", Owner(owner_id, owner_name))
    listing = ET.SubElement(root, "Buckets")
    for name, created in buckets:
        bucket = ET.SubElement(listing, "Bucket")
        _add(bucket, "Name", name)
        _add(bucket, "CreationDate", _timestamp(created))
    return _serialize(root)


def location_xml(region: str) -> bytes:
    """``<LocationConstraint>``; empty for us-east-1, as S3 answers for its oldest region."""
    root = _root("LocationConstraint")
    root.text = "" if region == "us-east-1" else region
    return _serialize(root)


def list_objects_v1_xml(
    *,
    bucket: str,
    prefix: str,
    marker: str,
    max_keys: int,
    delimiter: str | None,
    encoding_type: EncodingType | None,
    is_truncated: bool,
    next_marker: str | None,
    contents: Sequence[ListedEntry],
    common_prefixes: Sequence[str],
    owner: Owner | None = None,
) -> bytes:
    """ListObjects (v1) ``<ListBucketResult>``; ``owner``, when given, in every Contents.

    With ``encoding_type="url"``, Prefix, Marker, NextMarker, Delimiter, every Key and every
    CommonPrefixes/Prefix are URL-encoded (S3's documented list for v1). ``next_marker`` is
    written only when given (S3 gives it when the listing is truncated and a delimiter is set).
    """
    encode = _encoder(encoding_type)
    root = _root("ListBucketResult")
    _add(root, "Name", bucket)
    _add(root, "Prefix", encode(prefix))
    _add(root, "Marker", encode(marker))
    if next_marker is not None:
        _add(root, "NextMarker", encode(next_marker))
    _add(root, "MaxKeys", str(max_keys))
    if delimiter is not None:
        _add(root, "Delimiter", encode(delimiter))
    if encoding_type is not None:
        _add(root, "EncodingType", encoding_type)
    _add(root, "IsTruncated", _bool(is_truncated))
    return _serialize(root, _listing_text(contents, common_prefixes, encode, owner))


def list_objects_v2_xml(
    *,
    bucket: str,
    prefix: str,
    max_keys: int,
    delimiter: str | None,
    encoding_type: EncodingType | None,
    is_truncated: bool,
    contents: Sequence[ListedEntry],
    common_prefixes: Sequence[str],
    continuation_token: str | None = None,
    next_continuation_token: str | None = None,
    start_after: str | None = None,
    owner: Owner | None = None,
) -> bytes:
    """ListObjectsV2 ``<ListBucketResult>``; KeyCount = len(contents) + len(common_prefixes);
    ``owner``, when given (fetch-owner), in every Contents.

    With ``encoding_type="url"``, Prefix, Delimiter, StartAfter, every Key and every
    CommonPrefixes/Prefix are URL-encoded; continuation tokens are opaque and never encoded.
    """
    encode = _encoder(encoding_type)
    root = _root("ListBucketResult")
    _add(root, "Name", bucket)
    _add(root, "Prefix", encode(prefix))
    if continuation_token is not None:
        _add(root, "ContinuationToken", continuation_token)
    if next_continuation_token is not None:
        _add(root, "NextContinuationToken", next_continuation_token)
    if start_after is not None:
        _add(root, "StartAfter", encode(start_after))
    _add(root, "KeyCount", str(len(contents) + len(common_prefixes)))
    _add(root, "MaxKeys", str(max_keys))
    if delimiter is not None:
        _add(root, "Delimiter", encode(delimiter))
    if encoding_type is not None:
        _add(root, "EncodingType", encoding_type)
    _add(root, "IsTruncated", _bool(is_truncated))
    return _serialize(root, _listing_text(contents, common_prefixes, encode, owner))


def copy_object_result_xml(
    etag: str,
    last_modified: datetime,
    checksums: Mapping[str, str] | None = None,
    checksum_type: str | None = None,
) -> bytes:
    """``<CopyObjectResult>`` (the body of a 200 CopyObject)."""
    root = _root("CopyObjectResult")
    _add(root, "ETag", _quote_etag(etag))
    _add(root, "LastModified", _timestamp(last_modified))
    _add_checksums(root, checksums, checksum_type)
    return _serialize(root)


def copy_part_result_xml(
    etag: str, last_modified: datetime, checksums: Mapping[str, str] | None = None
) -> bytes:
    """``<CopyPartResult>`` (the body of a 200 UploadPartCopy)."""
    root = _root("CopyPartResult")
    _add(root, "ETag", _quote_etag(etag))
    _add(root, "LastModified", _timestamp(last_modified))
    _add_checksums(root, checksums, None)
    return _serialize(root)


def initiate_multipart_xml(bucket: str, key: str, upload_id: str) -> bytes:
    """``<InitiateMultipartUploadResult>`` (the body of CreateMultipartUpload)."""
    root = _root("InitiateMultipartUploadResult")
    _add(root, "Bucket", bucket)
    _add(root, "Key", key)
    _add(root, "UploadId", upload_id)
    return _serialize(root)


def complete_multipart_xml(
    location: str,
    bucket: str,
    key: str,
    etag: str,
    checksums: Mapping[str, str] | None = None,
    checksum_type: str | None = None,
) -> bytes:
    """``<CompleteMultipartUploadResult>``; ``etag`` is the multipart ETag, e.g. ``"<md5>-3"``."""
    root = _root("CompleteMultipartUploadResult")
    _add(root, "Location", location)
    _add(root, "Bucket", bucket)
    _add(root, "Key", key)
    _add(root, "ETag", _quote_etag(etag))
    _add_checksums(root, checksums, checksum_type)
    return _serialize(root)


def list_parts_xml(
    *,
    bucket: str,
    key: str,
    upload_id: str,
    part_number_marker: int,
    next_part_number_marker: int | None,
    max_parts: int,
    is_truncated: bool,
    parts: Sequence[PartEntry],
    owner: Owner | None = None,
    storage_class: str = "STANDARD",
    checksum_algorithm: str | None = None,
    checksum_type: str | None = None,
) -> bytes:
    """``<ListPartsResult>``; ``owner`` is written as both Initiator and Owner when given."""
    root = _root("ListPartsResult")
    _add(root, "Bucket", bucket)
    _add(root, "Key", key)
    _add(root, "UploadId", upload_id)
    if owner is not None:
        _add_owner(root, "Initiator", owner)
        _add_owner(root, "Owner", owner)
    _add(root, "StorageClass", storage_class)
    _add(root, "PartNumberMarker", str(part_number_marker))
    if next_part_number_marker is not None:
        _add(root, "NextPartNumberMarker", str(next_part_number_marker))
    _add(root, "MaxParts", str(max_parts))
    _add(root, "IsTruncated", _bool(is_truncated))
    if checksum_algorithm is not None:
        _add(root, "ChecksumAlgorithm", _checked(checksum_algorithm, CHECKSUM_ALGORITHMS))
    if checksum_type is not None:
        _add(root, "ChecksumType", _checked(checksum_type, CHECKSUM_TYPES))
    for part in parts:
        element = ET.SubElement(root, "Part")
        _add(element, "PartNumber", str(part.part_number))
        _add(element, "LastModified", _timestamp(part.last_modified))
        _add(element, "ETag", _quote_etag(part.etag))
        _add(element, "Size", str(part.size))
        _add_checksums(element, part.checksums, None)
    return _serialize(root)


def list_multipart_uploads_xml(
    *,
    bucket: str,
    prefix: str,
    delimiter: str | None,
    key_marker: str,
    upload_id_marker: str,
    next_key_marker: str | None,
    next_upload_id_marker: str | None,
    max_uploads: int,
    encoding_type: EncodingType | None,
    is_truncated: bool,
    uploads: Sequence[UploadEntry],
    common_prefixes: Sequence[str],
) -> bytes:
    """``<ListMultipartUploadsResult>``.

    With ``encoding_type="url"``, Prefix, Delimiter, KeyMarker, NextKeyMarker, every Upload Key
    and every CommonPrefixes/Prefix are URL-encoded; upload ids never are.
    """
    encode = _encoder(encoding_type)
    root = _root("ListMultipartUploadsResult")
    _add(root, "Bucket", bucket)
    _add(root, "KeyMarker", encode(key_marker))
    _add(root, "UploadIdMarker", upload_id_marker)
    if next_key_marker is not None:
        _add(root, "NextKeyMarker", encode(next_key_marker))
    if next_upload_id_marker is not None:
        _add(root, "NextUploadIdMarker", next_upload_id_marker)
    if delimiter is not None:
        _add(root, "Delimiter", encode(delimiter))
    _add(root, "Prefix", encode(prefix))
    _add(root, "MaxUploads", str(max_uploads))
    if encoding_type is not None:
        _add(root, "EncodingType", encoding_type)
    _add(root, "IsTruncated", _bool(is_truncated))
    for upload in uploads:
        element = ET.SubElement(root, "Upload")
        _add(element, "Key", encode(upload.key))
        _add(element, "UploadId", upload.upload_id)
        if upload.owner is not None:
            _add_owner(element, "Initiator", upload.owner)
            _add_owner(element, "Owner", upload.owner)
        _add(element, "StorageClass", upload.storage_class)
        _add(element, "Initiated", _timestamp(upload.initiated))
    _add_common_prefixes(root, common_prefixes, encode)
    return _serialize(root)


def delete_result_xml(
    deleted: Sequence[tuple[str, str | None]],
    errors: Sequence[tuple[str, str, str]],
    quiet: bool,
) -> bytes:
    """``<DeleteResult>``: ``deleted`` is (key, version id or None), ``errors`` is
    (key, S3 error code, message). In quiet mode only the errors are listed."""
    root = _root("DeleteResult")
    if not quiet:
        for key, version_id in deleted:
            element = ET.SubElement(root, "Deleted")
            _add(element, "Key", key)
            if version_id is not None:
                _add(element, "VersionId", version_id)
    for key, code, message in errors:
        element = ET.SubElement(root, "Error")
        _add(element, "Key", key)
        _add(element, "Code", code)
        _add(element, "Message", message)
    return _serialize(root)


def versioning_xml(status: str | None) -> bytes:
    """``<VersioningConfiguration>``: empty (never enabled) or Status Enabled/Suspended."""
    root = _root("VersioningConfiguration")
    if status is not None:
        _add(root, "Status", _checked(status, VERSIONING_STATUSES))
    return _serialize(root)


# --- parsers ---------------------------------------------------------------------------------


def parse_create_bucket(body: bytes) -> str | None:
    """The LocationConstraint of a CreateBucket body; None for an empty body or constraint.

    >>> parse_create_bucket(b"<CreateBucketConfiguration><LocationConstraint>eu-west-1"
    ...                     b"</LocationConstraint></CreateBucketConfiguration>")
    'eu-west-1'
    """
    if not body.strip():
        return None
    root = _parse(body, "CreateBucketConfiguration")
    children = _children(root, {"LocationConstraint", "Location", "Bucket", "Tags"})
    for name in ("Location", "Bucket", "Tags"):
        if name in children:
            raise errors.NotImplemented(f"CreateBucketConfiguration {name} is not implemented.")
    constraint = _optional(children, "LocationConstraint")
    return None if constraint is None else _leaf_text(constraint).strip() or None


def parse_delete_objects(body: bytes) -> tuple[bool, list[tuple[str, str | None]]]:
    """(quiet, [(key, version id or None)]) of a DeleteObjects body, in request order.

    Keys are returned as sent (an empty ``<Key/>`` gives ""; the handler reports it per key).
    Per-object conditions (ETag, LastModifiedTime, Size) raise NotImplemented rather than being
    ignored, since ignoring them would delete what the client asked to keep.

    >>> parse_delete_objects(b"<Delete><Object><Key>a b</Key></Object>"
    ...                      b"<Object><Key>c</Key><VersionId>v1</VersionId></Object></Delete>")
    (False, [('a b', None), ('c', 'v1')])
    """
    root = _parse(body, "Delete")
    children = _children(root, {"Object", "Quiet"})
    quiet_element = _optional(children, "Quiet")
    quiet = quiet_element is not None and _parse_bool(_leaf_text(quiet_element))
    objects = children.get("Object", [])
    if not objects:
        raise MalformedXML("A Delete request must name at least one Object.")
    if len(objects) > MAX_DELETE_OBJECTS:
        raise MalformedXML(
            f"A Delete request names at most {MAX_DELETE_OBJECTS} objects, not {len(objects)}."
        )
    result: list[tuple[str, str | None]] = []
    for element in objects:
        fields = _children(element, {"Key", "VersionId", "ETag", "LastModifiedTime", "Size"})
        for name in ("ETag", "LastModifiedTime", "Size"):
            if name in fields:
                raise errors.NotImplemented(f"Conditional delete by {name} is not implemented.")
        key = _leaf_text(_required(fields, "Key"))
        version_element = _optional(fields, "VersionId")
        version_id = None if version_element is None else _leaf_text(version_element) or None
        result.append((key, version_id))
    return quiet, result


def parse_complete_multipart(body: bytes) -> list[CompletedPart]:
    """The parts of a CompleteMultipartUpload body, in request order (order is not checked).

    >>> parse_complete_multipart(b'<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>'
    ...                          b'<ETag>"abc"</ETag></Part></CompleteMultipartUpload>')
    [CompletedPart(part_number=1, etag='abc', checksums={})]
    """
    root = _parse(body, "CompleteMultipartUpload")
    parts = _children(root, {"Part"}).get("Part", [])
    if not parts:
        raise MalformedXML("A CompleteMultipartUpload request must list at least one Part.")
    if len(parts) > MAX_COMPLETE_PARTS:
        raise MalformedXML(f"At most {MAX_COMPLETE_PARTS} parts, not {len(parts)}.")
    checksum_elements = {f"Checksum{algorithm}": algorithm for algorithm in CHECKSUM_ALGORITHMS}
    result: list[CompletedPart] = []
    for element in parts:
        fields = _children(element, {"PartNumber", "ETag", *checksum_elements})
        number_text = _leaf_text(_required(fields, "PartNumber")).strip()
        if not _DIGITS.fullmatch(number_text) or not (
            MIN_PART_NUMBER <= int(number_text) <= MAX_PART_NUMBER
        ):
            raise MalformedXML(f"Bad PartNumber {number_text[:16]!r}.")
        etag = _leaf_text(_required(fields, "ETag")).strip().strip('"')
        if not etag:
            raise MalformedXML(f"Part {number_text} has an empty ETag.")
        checksums = {
            algorithm: _leaf_text(_required(fields, name)).strip()
            for name, algorithm in checksum_elements.items()
            if name in fields
        }
        result.append(CompletedPart(int(number_text), etag, checksums))
    return result


# --- building helpers ------------------------------------------------------------------------


def _root(tag: str) -> ET.Element:
    return ET.Element(tag, xmlns=S3_NAMESPACE)


def _add(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = text
    return element


def _add_owner(parent: ET.Element, tag: str, owner: Owner) -> None:
    element = ET.SubElement(parent, tag)
    _add(element, "ID", owner.id)
    _add(element, "DisplayName", owner.display_name)


def _listing_text(
    contents: Sequence[ListedEntry],
    common_prefixes: Sequence[str],
    encode: _Encode,
    owner: Owner | None = None,
) -> str:
    """The ``<Contents>`` and ``<CommonPrefixes>`` of a listing as XML text: what ElementTree
    writes for the same elements (a property test checks), at a tenth of its CPU for a
    1000-key page (a SubElement per field, then its serializer walking them)."""
    owner_text = "" if owner is None else _owner_text(owner)
    parts = []
    for entry in contents:
        parts.append(
            f"<Contents><Key>{_escape(encode(entry.key))}</Key>"
            f"<LastModified>{_timestamp(entry.last_modified)}</LastModified>"
            f"<ETag>{_escape(_quote_etag(entry.etag))}</ETag><Size>{entry.size}</Size>"
            f"{owner_text}<StorageClass>STANDARD</StorageClass></Contents>"
        )
    for prefix in common_prefixes:
        parts.append(f"<CommonPrefixes><Prefix>{_escape(encode(prefix))}</Prefix></CommonPrefixes>")
    return "".join(parts)


def _owner_text(owner: Owner) -> str:
    return (
        f"<Owner><ID>{_escape(owner.id)}</ID>"
        f"<DisplayName>{_escape(owner.display_name)}</DisplayName></Owner>"
    )


def _escape(text: str) -> str:
    """Element text as ``_serialize`` writes it: ElementTree's escaping (only & < >), then
    ``_char_refs`` (needed only by a string with a non-printable character: cheap to rule out).
    """
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text if text.isprintable() else _char_refs(text)


def _char_refs(text: str) -> str:
    """Characters XML cannot carry as references, lone surrogates as U+FFFD (module docstring)."""
    text = _NOT_XML_CHARS.sub("\ufffd", text)
    return _NEEDS_CHAR_REF.sub(lambda match: f"&#x{ord(match[0]):X};", text)


def _add_common_prefixes(root: ET.Element, prefixes: Sequence[str], encode: _Encode) -> None:
    for prefix in prefixes:
        _add(ET.SubElement(root, "CommonPrefixes"), "Prefix", encode(prefix))


def _add_checksums(
    parent: ET.Element, checksums: Mapping[str, str] | None, checksum_type: str | None
) -> None:
    checksums = checksums or {}
    unknown = set(checksums) - set(CHECKSUM_ALGORITHMS)
    if unknown:
        raise ValueError(f"unknown checksum algorithms {sorted(unknown)}")
    for algorithm in CHECKSUM_ALGORITHMS:
        if algorithm in checksums:
            _add(parent, f"Checksum{algorithm}", checksums[algorithm])
    if checksum_type is not None:
        _add(parent, "ChecksumType", _checked(checksum_type, CHECKSUM_TYPES))


def _serialize(root: ET.Element, children_text: str = "") -> bytes:
    """The document: ``root``, with ``children_text`` (already XML) after its child elements."""
    # ElementTree escapes only & < > in text; the characters _char_refs replaces can only come
    # from text. ``children_text`` is written by ``_escape``, which does both.
    text = _char_refs(ET.tostring(root, encoding="unicode", short_empty_elements=False))
    if children_text:
        end = len(root.tag) + 3  # short_empty_elements=False: the text ends with </tag>
        text = text[:-end] + children_text + text[-end:]
    return XML_PROLOG + text.encode("utf-8")


def _timestamp(when: datetime) -> str:
    """``datetime(2026, 11, 29, 17, 0, 0, 123456, UTC)`` -> ``"2026-11-29T17:00:00.123Z"``."""
    if when.tzinfo is not UTC:
        if when.utcoffset() is None:
            raise ValueError(f"naive datetime {when!r}: pass a timezone-aware one")
        when = when.astimezone(UTC)
    return when.isoformat(timespec="milliseconds")[:-6] + "Z"  # "+00:00" -> "Z"


def _quote_etag(etag: str) -> str:
    return '"' + etag.strip('"') + '"'


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _checked(value: str, allowed: Collection[str]) -> str:
    if value not in allowed:
        raise ValueError(f"{value!r} is not one of {sorted(allowed)}")
    return value


class _Encode:
    """Identity, or S3's encoding-type=url encoding of key-like values."""

    __slots__ = ("url",)

    def __init__(self, url: bool) -> None:
        self.url = url

    def __call__(self, value: str) -> str:
        if not self.url:
            return value
        # quote_plus: UTF-8, space as '+'; S3 also leaves '*' alone and always encodes '~'.
        return quote_plus(value, safe="/*").replace("~", "%7E")


def _encoder(encoding_type: EncodingType | None) -> _Encode:
    return _Encode(encoding_type == "url")


# --- parsing helpers -------------------------------------------------------------------------


def _parse(body: bytes, root_name: str) -> ET.Element:
    if len(body) > MAX_XML_BODY_BYTES:
        raise MalformedXML(f"The XML body is larger than {MAX_XML_BODY_BYTES} bytes.")
    try:
        root = SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ET.ParseError, ValueError):  # defusedxml's refusals are ValueErrors
        raise MalformedXML() from None
    if _local_name(root) != root_name:
        raise MalformedXML(f"Expected a {root_name} document.")
    return root


def _local_name(element: ET.Element) -> str:
    """The tag without the S3 namespace; any other namespace is malformed."""
    namespace, brace, local = element.tag.rpartition("}")
    if brace and namespace != "{" + S3_NAMESPACE:
        raise MalformedXML(f"Unexpected XML namespace in {element.tag[:128]!r}.")
    return local


def _children(element: ET.Element, allowed: Collection[str]) -> dict[str, list[ET.Element]]:
    """Child elements by local name; unknown children or stray text are malformed."""
    if element.text and element.text.strip():
        raise MalformedXML(f"Unexpected text in {_local_name(element)}.")
    children: dict[str, list[ET.Element]] = {}
    for child in element:
        name = _local_name(child)
        if name not in allowed:
            raise MalformedXML(f"Unexpected element {name[:64]!r} in {_local_name(element)}.")
        if child.tail and child.tail.strip():
            raise MalformedXML(f"Unexpected text after {name}.")
        children.setdefault(name, []).append(child)
    return children


def _optional(children: Mapping[str, list[ET.Element]], name: str) -> ET.Element | None:
    """The one child called ``name``, None if absent; repeated is malformed."""
    found = children.get(name, [])
    if len(found) > 1:
        raise MalformedXML(f"{name} is given more than once.")
    return found[0] if found else None


def _required(children: Mapping[str, list[ET.Element]], name: str) -> ET.Element:
    element = _optional(children, name)
    if element is None:
        raise MalformedXML(f"{name} is missing.")
    return element


def _leaf_text(element: ET.Element) -> str:
    if len(element):
        raise MalformedXML(f"{_local_name(element)} must not contain elements.")
    return element.text or ""


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise MalformedXML(f"Bad boolean {value[:16]!r}.")
