"""The node protocol's pure parts: request signing and the wire form of drive records.

Transport: HTTP/1.1 with keep-alive (aiohttp on both ends).

    GET    /_node/v3/channel                  WebSocket: batches of drive calls (index operations)
    PUT    /_node/v3/shard/<drive>/<data_id>  streamed shard body -> staged + fsync'd on EOF
    DELETE /_node/v3/shard/<drive>/<data_id>  drop a staged shard
    GET    /_node/v3/shard/<drive>/<data_id>?offset=O&length=N   shard bytes

Every request is signed by the gateway with the cluster secret (HMAC-SHA256 over method, path,
query, time, deployment id and topology version); a node refuses requests for another
deployment or topology version. Bodies are not signed: shard blocks carry their own hashes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import msgpack

from storage import errors
from storage.drive import DriveInfo, ListRow, RowPage
from storage.records import (
    BucketRecord,
    ObjectRecord,
    PartRecord,
    PartRef,
    UploadRecord,
    check_object_values,
)

PREFIX = "/_node/v3"
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


def encode_message(doc: Any) -> bytes:
    r"""A channel message: ``doc`` in MessagePack, whose bytes values travel raw (bin).

    JSON needed base64, then a reference per bytes value into raw bytes after the JSON and an
    object hook on every dict of the answer to resolve them; MessagePack carries bytes as they
    are and (de)serializes a small-object batch several times faster. Strings keep lone
    surrogates (as JSON's escapes did): a key is sent back as it came.

    >>> message = encode_message({"id": 7, "inline": b"\x00\xff"})
    >>> message
    b'\x82\xa2id\x07\xa6inline\xc4\x02\x00\xff'
    >>> decode_message(message)
    {'id': 7, 'inline': b'\x00\xff'}
    """
    packed: bytes = msgpack.packb(doc, use_bin_type=True, unicode_errors="surrogatepass")
    return packed


def _no_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"extension type {code} in a channel message")


def decode_message(data: bytes) -> Any:
    """The document of a channel message (``encode_message``); ValueError when malformed."""
    if not isinstance(data, bytes):
        raise ValueError("not a channel message")
    try:
        return msgpack.unpackb(
            data, raw=False, unicode_errors="surrogatepass", strict_map_key=True, ext_hook=_no_ext
        )
    except ValueError:  # msgpack's own (truncated, extra data, bad map key) are ValueErrors
        raise
    except Exception as exc:  # e.g. too deeply nested
        raise ValueError(f"not a channel message: {exc!r}") from None


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


# Records <-> wire form ---------------------------------------------------------------------------


class ListRows(list[ListRow]):
    """Listing rows sent as compact arrays ([key, version, mod time, size, etag]), not maps."""


_PLAIN = frozenset({str, int, float, bool, bytes, type(None)})
_FIELDS: dict[type, tuple[str, ...]] = {}  # dataclass -> its field names (fields() is slow)


def to_wire(value: Any) -> Any:
    """Records as message-ready values (``encode_message``): object records as arrays
    (``object_wire``), other dataclasses as maps; bytes stay bytes."""
    if type(value) in _PLAIN:
        return value
    if type(value) is ObjectRecord:  # a PUT sends 12, a GET answers with them: no generic walk
        return object_wire(value)
    if type(value) is list and value and type(value[0]) is ObjectRecord:  # get_versions
        return [object_wire(r) for r in value]
    if isinstance(value, ListRows):
        return [[r.key, r.version_id, r.mod_time_ns, r.size, r.etag] for r in value]
    if isinstance(value, RowPage):  # already wire-ready: one flat array, not 5000 values to walk
        return [value.digest, value.count, value.last_key, value.fields]
    names = _FIELDS.get(type(value))
    if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELDS[type(value)] = tuple(f.name for f in dataclasses.fields(value))
    if names is not None:
        return {name: to_wire(getattr(value, name)) for name in names}
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    return value


def object_wire(r: ObjectRecord) -> list[Any]:
    """An object record on the wire: its fields in order, parts as arrays (``object_record``
    reads it back). No field names: a GET's answers carry a dozen records, and a record
    built positionally costs half as much as one built from a map.

    >>> object_wire(ObjectRecord("b", "k", "v", 5, 3, "e", "isal", 8, 4, 1024, 0,
    ...                          (PartRef(1, 3, "e", None),), inline=b"abc"))
    ['b', 'k', 'v', 5, 3, 'e', 'isal', 8, 4, 1024, 0, [[1, 3, 'e', None, {}]], {}, {}, b'abc']
    """
    return [
        r.bucket,
        r.key,
        r.version_id,
        r.mod_time_ns,
        r.size,
        r.etag,
        r.codec,
        r.k,
        r.m,
        r.block_size,
        r.shard_index,
        [[p.number, p.size, p.etag, p.data_id, p.checksums] for p in r.parts],
        r.metadata,
        r.checksums,
        r.inline,
    ]


def object_record(doc: Any) -> ObjectRecord:
    """The record ``object_wire`` sent; ValueError when it is not one."""
    b, key, version, mod_time, size, etag, codec, k, m, block, shard, parts, meta, ck, inline = (
        check_object_values(doc)
    )
    return ObjectRecord(
        b,
        key,
        version,
        mod_time,
        size,
        etag,
        codec,
        k,
        m,
        block,
        shard,
        tuple([PartRef(n, s, e, d, c) for n, s, e, d, c in parts]),
        meta,
        ck,
        inline,
    )


def object_records(docs: Any) -> list[ObjectRecord]:
    """A drive's versions of a key (``get_versions``' answer); ValueError when malformed."""
    if type(docs) is not list:
        raise ValueError("malformed object records")
    return [object_record(doc) for doc in docs]


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
