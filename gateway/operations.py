"""S3 operations as typed, frozen values: what `gateway.router.route` turns a request into.

One class per S3 operation, named as AWS names it, holding the request parameters parsed from the
path, the query string and the few headers that change what the request means (never the body).
Handlers dispatch with one ``match`` over `Operation`:

    match op:
        case GetObject(bucket=bucket, key=key, version_id=version_id):
            ...

Defaults are the values S3 uses when the client leaves a parameter out, so a handler never has to
tell "absent" from "default" for numbers (``max_keys`` is 1000 unless the client asked for fewer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from gateway.ranges import ByteRange as ByteRange  # the gateway's one byte-range type

# S3 limits that request parameters are checked or clamped against.
MAX_KEYS_LIMIT = (
    1000  # ListObjects(V2) max-keys, ListParts max-parts, ListMultipartUploads max-uploads
)
MIN_PART_NUMBER = 1
MAX_PART_NUMBER = 10_000

EncodingType: TypeAlias = Literal["url"]
MetadataDirective: TypeAlias = Literal["COPY", "REPLACE"]


@dataclass(frozen=True, slots=True)
class CopySource:
    """The parsed ``x-amz-copy-source`` header: ``/bucket/key?versionId=v``, URL-decoded."""

    bucket: str
    key: str
    version_id: str | None = None


# --- service ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListBuckets:
    pass


# --- bucket ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateBucket:
    bucket: str


@dataclass(frozen=True, slots=True)
class HeadBucket:
    bucket: str


@dataclass(frozen=True, slots=True)
class DeleteBucket:
    bucket: str


@dataclass(frozen=True, slots=True)
class GetBucketLocation:
    bucket: str


@dataclass(frozen=True, slots=True)
class GetBucketVersioning:
    bucket: str


@dataclass(frozen=True, slots=True)
class ListObjects:
    """ListObjects (v1). ``prefix`` and ``marker`` are "" when absent (S3 echoes them empty)."""

    bucket: str
    prefix: str = ""
    delimiter: str | None = None
    marker: str = ""
    max_keys: int = MAX_KEYS_LIMIT
    encoding_type: EncodingType | None = None


@dataclass(frozen=True, slots=True)
class ListObjectsV2:
    bucket: str
    prefix: str = ""
    delimiter: str | None = None
    continuation_token: str | None = None
    start_after: str | None = None
    max_keys: int = MAX_KEYS_LIMIT
    encoding_type: EncodingType | None = None
    fetch_owner: bool = False


@dataclass(frozen=True, slots=True)
class ListMultipartUploads:
    bucket: str
    prefix: str = ""
    delimiter: str | None = None
    key_marker: str = ""
    upload_id_marker: str = ""
    max_uploads: int = MAX_KEYS_LIMIT
    encoding_type: EncodingType | None = None


@dataclass(frozen=True, slots=True)
class DeleteObjects:
    """POST /bucket?delete; the keys are in the body (`gateway.s3xml.parse_delete_objects`)."""

    bucket: str


# --- object ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PutObject:
    bucket: str
    key: str


@dataclass(frozen=True, slots=True)
class GetObject:
    """``response_headers`` are the ``response-content-type``... overrides, as
    ``(("Content-Type", "text/plain"), ...)`` sorted by header name."""

    bucket: str
    key: str
    version_id: str | None = None
    part_number: int | None = None
    response_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class HeadObject:
    bucket: str
    key: str
    version_id: str | None = None
    part_number: int | None = None


@dataclass(frozen=True, slots=True)
class DeleteObject:
    bucket: str
    key: str
    version_id: str | None = None


@dataclass(frozen=True, slots=True)
class CopyObject:
    bucket: str
    key: str
    source: CopySource
    metadata_directive: MetadataDirective = "COPY"


# --- multipart -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateMultipartUpload:
    bucket: str
    key: str


@dataclass(frozen=True, slots=True)
class UploadPart:
    bucket: str
    key: str
    upload_id: str
    part_number: int


@dataclass(frozen=True, slots=True)
class UploadPartCopy:
    """``source_range`` is None when the whole source object is copied."""

    bucket: str
    key: str
    upload_id: str
    part_number: int
    source: CopySource
    source_range: ByteRange | None = None


@dataclass(frozen=True, slots=True)
class CompleteMultipartUpload:
    """The part list is in the body (`gateway.s3xml.parse_complete_multipart`)."""

    bucket: str
    key: str
    upload_id: str


@dataclass(frozen=True, slots=True)
class AbortMultipartUpload:
    bucket: str
    key: str
    upload_id: str


@dataclass(frozen=True, slots=True)
class ListParts:
    """``part_number_marker`` 0 means "from the first part"."""

    bucket: str
    key: str
    upload_id: str
    max_parts: int = MAX_KEYS_LIMIT
    part_number_marker: int = 0


Operation: TypeAlias = (
    ListBuckets
    | CreateBucket
    | HeadBucket
    | DeleteBucket
    | GetBucketLocation
    | GetBucketVersioning
    | ListObjects
    | ListObjectsV2
    | ListMultipartUploads
    | DeleteObjects
    | PutObject
    | GetObject
    | HeadObject
    | DeleteObject
    | CopyObject
    | CreateMultipartUpload
    | UploadPart
    | UploadPartCopy
    | CompleteMultipartUpload
    | AbortMultipartUpload
    | ListParts
)
