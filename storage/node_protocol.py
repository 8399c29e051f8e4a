"""The node protocol's pure parts: request signing and the JSON form of drive records.

Transport: HTTP/1.1 with keep-alive (aiohttp on both ends).

    GET    /_node/v2/channel                  WebSocket: batches of drive calls (index operations)
    PUT    /_node/v2/shard/<drive>/<data_id>  streamed shard body -> staged + fsync'd on EOF
    DELETE /_node/v2/shard/<drive>/<data_id>  drop a staged shard
    GET    /_node/v2/shard/<drive>/<data_id>?offset=O&length=N   shard bytes

Every request is signed by the gateway with the cluster secret (HMAC-SHA256 over method, path,
query, time, deployment id and topology version); a node refuses requests for another
deployment or topology version. Bodies are not signed: shard blocks carry their own hashes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import struct
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from storage import errors
from storage.drive import DriveInfo, ListRow, RowPage
from storage.records import BucketRecord, ObjectRecord, PartRecord, PartRef, UploadRecord

PREFIX = "/_node/v2"
H_DEPLOYMENT = "x-huimin-deployment"
H_TOPOLOGY = "x-huimin-topology-version"
H_DATE = "x-huimin-date"
H_SIGNATURE = "x-huimin-signature"
MAX_SKEW_MS = 300_000
# Shard reads up to this size go over the RPC channel (batched with the node's other calls);
# larger ones stream over a request of their own, not to hold up the channel.
CHANNEL_READ_BYTES = 2 * 1024 * 1024

_R = TypeVar("_R")


@dataclasses.dataclass(frozen=True, slots=True)
class ClusterIdentity:
    deployment_id: str
    topology_version: int
    secret: str = dataclasses.field(repr=False)


def signature(identity: ClusterIdentity, method: str, path_qs: str, date_ms: int) -> str:
    """HMAC-SHA256 of the request line, time and cluster identity.

    >>> ident = ClusterIdentity("dep", 1, "s3cret")
    >>> signature(ident, "GET", "/_node/v1/shard/d1/x?offset=0&length=5", 1000)[:16]
    'a0bb91b349837d5e'
    """
    message = "\n".join(
        [method, path_qs, str(date_ms), identity.deployment_id, str(identity.topology_version)]
    )
    return hmac.new(identity.secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def sign_headers(
    identity: ClusterIdentity, method: str, path_qs: str, now_ms: int
) -> dict[str, str]:
    return {
        H_DEPLOYMENT: identity.deployment_id,
        H_TOPOLOGY: str(identity.topology_version),
        H_DATE: str(now_ms),
        H_SIGNATURE: signature(identity, method, path_qs, now_ms),
    }


class Unauthorized(Exception):
    pass


class WrongTopology(Exception):
    pass


def check_request(
    identity: ClusterIdentity, method: str, path_qs: str, headers: Mapping[str, str], now_ms: int
) -> None:
    """Raise Unauthorized unless the request is signed with our secret (nothing about this
    deployment is revealed to a sender without it), then WrongTopology unless it is for our
    deployment and topology version."""
    try:
        date_ms = int(headers.get(H_DATE, ""))
        claimed = ClusterIdentity(
            headers.get(H_DEPLOYMENT, ""), int(headers.get(H_TOPOLOGY, "")), identity.secret
        )
    except ValueError:
        raise Unauthorized("missing or malformed signature headers") from None
    if abs(now_ms - date_ms) > MAX_SKEW_MS:
        raise Unauthorized("request time too far from the node's clock")
    expected = signature(claimed, method, path_qs, date_ms)
    if not hmac.compare_digest(expected, headers.get(H_SIGNATURE, "")):
        raise Unauthorized("bad signature")
    if (claimed.deployment_id, claimed.topology_version) != (
        identity.deployment_id,
        identity.topology_version,
    ):
        raise WrongTopology(
            f"request for deployment {claimed.deployment_id!r} topology "
            f"{claimed.topology_version}; this node serves {identity.deployment_id!r} "
            f"topology {identity.topology_version}"
        )


# Channel messages --------------------------------------------------------------------------------

_MAGIC = b"HMC1"
_HEAD = struct.Struct("<4sI")  # magic, length of the JSON that follows
# A bytes value in a message is a reference {"\x00": [offset, length]} into the raw bytes after
# the JSON. No key of a record can hold a NUL (user metadata keys are HTTP header names).
_BLOB = "\x00"
Blob = bytes | bytearray | memoryview


def encode_message(doc: Any) -> bytes:
    r"""A channel message: ``doc`` as JSON, except that its bytes values follow the JSON raw.

    Base64 inside JSON cost ~15 ms of CPU per MiB of inline shards at each end (encoding,
    escaping, decoding); raw, they cost one copy.

    >>> message = encode_message({"id": 7, "inline": b"\x00\xff"})
    >>> message[8:]
    b'{"id":7,"inline":{"\\u0000":[0,2]}}\x00\xff'
    >>> decode_message(message)
    {'id': 7, 'inline': b'\x00\xff'}
    """
    blobs: list[Blob] = []
    end = 0

    def blob(value: object) -> dict[str, list[int]]:
        nonlocal end
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"{type(value).__name__} cannot cross the node channel")
        n = memoryview(value).nbytes
        blobs.append(value)
        end += n
        return {_BLOB: [end - n, n]}

    text = json.dumps(doc, separators=(",", ":"), default=blob).encode()
    return b"".join([_HEAD.pack(_MAGIC, len(text)), text, *blobs])


def decode_message(data: bytes) -> Any:
    """The document of a channel message (``encode_message``); ValueError when malformed."""
    if not isinstance(data, bytes) or len(data) < _HEAD.size:
        raise ValueError("not a channel message")
    magic, n = _HEAD.unpack_from(data)
    start = _HEAD.size + n
    if magic != _MAGIC or start > len(data):
        raise ValueError("not a channel message")

    def hook(obj: dict[str, Any]) -> Any:
        ref = obj.get(_BLOB)
        if ref is None:
            return obj
        try:
            offset, length = ref
            a = start + offset
            z = a + length
        except (TypeError, ValueError):
            raise ValueError(f"malformed blob reference {ref!r}") from None
        if len(obj) != 1 or offset < 0 or length < 0 or z > len(data):
            raise ValueError(f"blob reference {ref!r} out of the message")
        return data[a:z]

    text = data[_HEAD.size : start]
    # Most messages carry no bytes: their dicts need no look (a Python call each).
    return json.loads(text, object_hook=hook if b"\\u0000" in text else None)


# Batches of drive calls ---------------------------------------------------------------------------


def encode_batch(calls: Sequence[tuple[str, str, Any]], batch_id: int) -> bytes:
    """A batch message: its id and ``(drive, method, JSON arguments)`` per call.

    >>> decode_message(encode_batch([("d1", "info", {})], 7))
    {'id': 7, 'calls': [['d1', 'info', {}]]}
    """
    return encode_message({"id": batch_id, "calls": calls})


def encode_results(results: Sequence[Any], batch_id: int) -> bytes:
    """A node's answer to a batch: its id and one result document per call, in order.

    >>> decode_message(encode_results([{"result": None}], 7))
    {'id': 7, 'results': [{'result': None}]}
    """
    return encode_message({"id": batch_id, "results": results})


def decode_batch(doc: Any) -> tuple[int, list[tuple[str, str, dict[str, Any]]]]:
    """The id and calls of a batch message (parsed JSON); ValueError when malformed.

    >>> decode_batch({"id": 7, "calls": [["d1", "info", {}]]})
    (7, [('d1', 'info', {})])
    """
    try:
        batch_id = int(doc["id"])
        calls = [(str(d), str(m), a) for d, m, a in doc["calls"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed batch: {exc!r}") from None
    if not all(isinstance(a, dict) for _, _, a in calls):
        raise ValueError("malformed batch: arguments must be objects")
    return batch_id, calls


# Records <-> JSON -------------------------------------------------------------------------------


class ListRows(list[ListRow]):
    """Listing rows sent as compact arrays ([key, version, mod time, size, etag]), not objects."""


_PLAIN = frozenset({str, int, float, bool, type(None)})
_FIELDS: dict[type, tuple[str, ...]] = {}  # dataclass -> its field names (fields() is slow)


def to_json(value: Any) -> Any:
    """Records as message-ready values (``encode_message``): dataclasses -> dicts; bytes stay
    bytes."""
    if type(value) in _PLAIN:
        return value
    if type(value) is ObjectRecord:  # a PUT sends 12, a GET answers with them: no generic walk
        return _object_json(value)
    if isinstance(value, ListRows):
        return [[r.key, r.version_id, r.mod_time_ns, r.size, r.etag] for r in value]
    if isinstance(value, RowPage):  # already wire-ready: one flat array, not 5000 values to walk
        return [value.digest, value.count, value.last_key, value.fields]
    names = _FIELDS.get(type(value))
    if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELDS[type(value)] = tuple(f.name for f in dataclasses.fields(value))
    if names is not None:
        return {name: to_json(getattr(value, name)) for name in names}
    if isinstance(value, bytes):
        return value
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


def _object_json(r: ObjectRecord) -> dict[str, Any]:
    """``to_json`` of an object record, field by field (the same document, several times
    faster). Its dicts are shared with the record, which is frozen and only serialized."""
    return {
        "bucket": r.bucket,
        "key": r.key,
        "version_id": r.version_id,
        "mod_time_ns": r.mod_time_ns,
        "size": r.size,
        "etag": r.etag,
        "codec": r.codec,
        "k": r.k,
        "m": r.m,
        "block_size": r.block_size,
        "shard_index": r.shard_index,
        "parts": [
            {
                "number": p.number,
                "size": p.size,
                "etag": p.etag,
                "data_id": p.data_id,
                "checksums": p.checksums,
            }
            for p in r.parts
        ],
        "metadata": r.metadata,
        "checksums": r.checksums,
        "inline": r.inline,
    }


def _bytes(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    raise ValueError(f"expected bytes, got {type(value).__name__}")


def object_record(doc: Mapping[str, Any]) -> ObjectRecord:
    fields = dict(doc)
    fields["parts"] = tuple(PartRef(**p) for p in doc["parts"])
    fields["inline"] = _bytes(doc["inline"])
    return ObjectRecord(**fields)


def bucket_record(doc: Mapping[str, Any]) -> BucketRecord:
    return BucketRecord(**doc)


def upload_record(doc: Mapping[str, Any]) -> UploadRecord:
    return UploadRecord(**doc)


def part_record(doc: Mapping[str, Any]) -> PartRecord:
    return PartRecord(**doc)


def list_rows(doc: Sequence[Sequence[Any]]) -> list[ListRow]:
    return [ListRow(*r) for r in doc]


def row_page(doc: Sequence[Any]) -> RowPage:
    digest, count, last_key, fields = doc
    return RowPage(digest=digest, count=count, last_key=last_key, fields=fields)


def drive_info(doc: Mapping[str, Any]) -> DriveInfo:
    return DriveInfo(**doc)


# Errors cross the wire by class name; only storage.errors classes are recreated.
ERRORS: dict[str, type[errors.StorageError]] = {
    name: cls
    for name, cls in vars(errors).items()
    if isinstance(cls, type) and issubclass(cls, errors.StorageError)
}


def error_doc(exc: BaseException) -> dict[str, str]:
    name = type(exc).__name__ if type(exc).__name__ in ERRORS else "DriveError"
    return {"error": name, "message": str(exc)}


def error_from(doc: Mapping[str, Any], drive: str) -> errors.StorageError:
    cls = ERRORS.get(str(doc.get("error")), errors.DriveError)
    message = str(doc.get("message", ""))
    return cls(f"{drive}: {message}" if issubclass(cls, errors.DriveError) else message)
