"""A lean async S3 client for the benchmark's data path: keep-alive, SigV4 headers with
``UNSIGNED-PAYLOAD`` (no payload hashing, no aws-chunked framing), bodies streamed and counted.

It is the kind of client PERF.md's peers were measured with; boto3 would add payload SHA-256,
CRC32 trailers and thread-pool overhead on the client's share of the same cores. Requests whose
body is at most ``_SLICE_BYTES`` (every small operation, every GET) go over ``bench.http1``'s
connections, which cost well under half of aiohttp's CPU per request; streamed uploads, other
requests and rate-limited (WAN) clients use aiohttp.
Independent of the server's code on purpose: it signs from the SigV4 recipe, not from
``gateway.sigv4``, so a shared bug cannot cancel out.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import socket
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from defusedxml import ElementTree
from yarl import URL

from bench import http1
from bench.ratelimit import Throttle
from storage.shard_connection import request_bytes

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_ALGORITHM = "AWS4-HMAC-SHA256"
_READ_BUFSIZE_BYTES = 4 * 1024 * 1024
# Bodies above this go out as slices (see _body_slices); below, as one write with the headers.
_SLICE_BYTES = 1024 * 1024
_FIRST_SLICE_BYTES = 64 * 1024


class S3RequestError(Exception):
    """A request answered with a non-2xx status."""

    def __init__(self, method: str, path: str, status: int, body: bytes) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:200]!r}")
        self.status = status


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key: str
    secret_key: str
    region: str = "us-east-1"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def canonical_query(query: dict[str, str]) -> str:
    """SigV4 canonical query string: keys sorted, every part strictly percent-encoded.

    >>> canonical_query({"prefix": "a b", "list-type": "2"})
    'list-type=2&prefix=a%20b'
    """
    return "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query.items())
    )


@dataclass
class Signer:
    """Signs requests with ``Authorization: AWS4-HMAC-SHA256 ...`` over host, x-amz-date and
    x-amz-content-sha256. The day's signing key is derived once and reused."""

    credentials: Credentials
    _keys: dict[str, bytes] = field(default_factory=dict)
    _date: tuple[int, str] = (0, "")  # (epoch second, its x-amz-date): formatted once a second

    def _amz_date(self) -> str:
        second = int(time.time())
        if self._date[0] != second:
            self._date = (second, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second)))
        return self._date[1]

    def _signing_key(self, day: str) -> bytes:
        key = self._keys.get(day)
        if key is None:
            k = _hmac(f"AWS4{self.credentials.secret_key}".encode(), day)
            k = _hmac(k, self.credentials.region)
            k = _hmac(k, "s3")
            key = self._keys[day] = _hmac(k, "aws4_request")
        return key

    def headers(
        self,
        method: str,
        host: str,
        path: str,
        query: dict[str, str] | None = None,
        now: datetime | None = None,
        payload_hash: str = UNSIGNED_PAYLOAD,
    ) -> dict[str, str]:
        """The headers that authenticate one request; ``path`` is already URI-encoded."""
        amz_date = self._amz_date() if now is None else now.strftime("%Y%m%dT%H%M%SZ")
        day = amz_date[:8]
        signed = "host;x-amz-content-sha256;x-amz-date"
        canonical = "\n".join(
            (
                method,
                path,
                canonical_query(query or {}),
                f"host:{host}\nx-amz-content-sha256:{payload_hash}\nx-amz-date:{amz_date}\n",
                signed,
                payload_hash,
            )
        )
        scope = f"{day}/{self.credentials.region}/s3/aws4_request"
        to_sign = "\n".join(
            (_ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest())
        )
        signature = hmac.new(self._signing_key(day), to_sign.encode(), hashlib.sha256).hexdigest()
        return {
            "Host": host,
            "x-amz-date": amz_date,
            "x-amz-content-sha256": payload_hash,
            "Authorization": (
                f"{_ALGORITHM} Credential={self.credentials.access_key}/{scope}, "
                f"SignedHeaders={signed}, Signature={signature}"
            ),
        }


@dataclass(frozen=True, slots=True)
class PutResult:
    etag: str


@dataclass(frozen=True, slots=True)
class GetResult:
    received_bytes: int
    content_length: int | None
    md5_hex: str | None  # only when asked to verify content


@dataclass(frozen=True, slots=True)
class ListPage:
    """What one ListObjectsV2 page held (counted, not kept: a 1000-key page is not the point)."""

    keys: int
    common_prefixes: int
    is_truncated: bool
    next_token: str | None
    last_key: str | None
    key_names: tuple[str, ...] = ()


Body = bytes | memoryview | AsyncIterator[memoryview]


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def parse_list_page(xml: bytes) -> ListPage:
    """A ListObjectsV2 answer, namespace or not.

    >>> doc = (b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    ...        b'<IsTruncated>true</IsTruncated><Contents><Key>a/1</Key></Contents>'
    ...        b'<Contents><Key>a/2</Key></Contents><CommonPrefixes><Prefix>b/</Prefix>'
    ...        b'</CommonPrefixes><NextContinuationToken>t1</NextContinuationToken>'
    ...        b'</ListBucketResult>')
    >>> page = parse_list_page(doc)
    >>> page.keys, page.common_prefixes, page.is_truncated, page.next_token, page.key_names
    (2, 1, True, 't1', ('a/1', 'a/2'))
    """
    root = ElementTree.fromstring(xml)
    names: list[str] = []
    prefixes = 0
    truncated = False
    token = None
    for child in root:
        name = _local(child.tag)
        if name == "Contents":
            for sub in child:
                if _local(sub.tag) == "Key":
                    names.append(sub.text or "")
        elif name == "CommonPrefixes":
            prefixes += 1
        elif name == "IsTruncated":
            truncated = (child.text or "").strip().lower() == "true"
        elif name == "NextContinuationToken":
            token = child.text
    return ListPage(
        len(names), prefixes, truncated, token, names[-1] if names else None, tuple(names)
    )


def _xml_field(xml: bytes, field_name: str) -> str:
    root = ElementTree.fromstring(xml)
    for el in root.iter():
        if _local(el.tag) == field_name:
            return el.text or ""
    raise ValueError(f"no <{field_name}> in {xml[:200]!r}")


def multipart_etag(part_md5s: Sequence[bytes]) -> str:
    """The S3 ETag of a completed multipart upload: MD5 of the parts' MD5s, ``-`` part count.

    >>> multipart_etag([hashlib.md5(b"a").digest(), hashlib.md5(b"b").digest()])
    '96e024ba2074fe77e8e965ba43a704be-2'
    """
    return f"{hashlib.md5(b''.join(part_md5s)).hexdigest()}-{len(part_md5s)}"


async def _body_slices(data: bytes | memoryview) -> AsyncIterator[memoryview]:
    """A large body as memoryview slices, so aiohttp never copies it.

    Given bytes, aiohttp on Python < 3.12.9 joins the request head with the whole body before
    writing (``b"".join`` in ``StreamWriter._writelines``): a fresh 64 MiB copy per PUT that
    cost this client 0.97 CPU-s/GB instead of 0.26. Only the small first slice is joined; the
    rest go to the transport as views. With Content-Length set, this is not sent chunked.
    """
    view = memoryview(data)
    yield view[:_FIRST_SLICE_BYTES]
    for start in range(_FIRST_SLICE_BYTES, len(view), _SLICE_BYTES):
        yield view[start : start + _SLICE_BYTES]


async def generated_body(size: int, block: bytes) -> AsyncIterator[memoryview]:
    """``size`` bytes made of ``block`` repeated (the last one cut): a body of any size streamed
    from one small buffer, never held whole."""
    view = memoryview(block)
    sent = 0
    while sent < size:
        piece = view[: min(len(view), size - sent)]
        sent += len(piece)
        yield piece


def generated_md5(size: int, block: bytes) -> str:
    """The MD5 of ``generated_body(size, block)`` (computed once per size, not per upload)."""
    md5 = hashlib.md5()
    full, rest = divmod(size, len(block))
    for _ in range(full):
        md5.update(block)
    md5.update(block[:rest])
    return md5.hexdigest()


def _path(bucket: str, key: str) -> str:
    """The request's URI-encoded path.

    >>> _path("b", "a b/c")
    '/b/a%20b/c'
    """
    return "/" + quote(bucket, safe="") + ("/" + quote(key, safe="/-_.~") if key else "")


def _base_and_host(endpoint: str) -> tuple[str, str]:
    """``("http://h:1", "h:1")`` for ``http://h:1``; ValueError for anything else."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"endpoint must be http(s)://host[:port], got {endpoint!r}")
    return f"{parts.scheme}://{parts.netloc}", parts.netloc


class S3Client:
    """``async with S3Client(endpoint, credentials, max_connections) as s3: ...``

    Several endpoints (gateways of one cluster) take the requests in turn, one request each,
    the way a load balancer in front of them would.

    ``read_bufsize_bytes``: how much of a response aiohttp buffers before it stops reading the
    socket; a rate-limited (WAN) client keeps it small so the server feels the slow link. Such
    a client (``recv_buffer_bytes`` given), ``https`` endpoints and ``lean=False`` use aiohttp
    for everything.
    """

    def __init__(
        self,
        endpoint: str | Sequence[str],
        credentials: Credentials,
        max_connections: int,
        read_bufsize_bytes: int = _READ_BUFSIZE_BYTES,
        sock_read_timeout_s: float = 120,
        recv_buffer_bytes: int | None = None,
        lean: bool = True,
    ) -> None:
        endpoints = [endpoint] if isinstance(endpoint, str) else list(endpoint)
        if not endpoints:
            raise ValueError("no endpoint")
        self._bases = [_base_and_host(e) for e in endpoints]
        self._targets = itertools.cycle(self._bases)
        self._signer = Signer(credentials)
        self._max_connections = max_connections
        self._read_bufsize = read_bufsize_bytes
        self._sock_read_timeout_s = sock_read_timeout_s
        self._recv_buffer_bytes = recv_buffer_bytes
        self._session: aiohttp.ClientSession | None = None
        self._lean = (
            lean and recv_buffer_bytes is None and all(e.startswith("http://") for e in endpoints)
        )
        self._pools: dict[str, http1.Pool] = {}

    def _socket(self, addr_info: Any) -> socket.socket:
        """A client socket with a small receive buffer, so a slow reader's TCP window closes
        early and the server feels the slow link (not megabytes of kernel buffering)."""
        family, kind, proto = addr_info[0], addr_info[1], addr_info[2]
        sock = socket.socket(family, kind, proto)
        if self._recv_buffer_bytes is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._recv_buffer_bytes)
        return sock

    async def __aenter__(self) -> S3Client:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            keepalive_timeout=60,
            socket_factory=self._socket if self._recv_buffer_bytes is not None else None,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            read_bufsize=self._read_bufsize,
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=10, sock_read=self._sock_read_timeout_s
            ),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        )
        if self._lean:
            for base, _ in self._bases:
                parts = urlsplit(base)
                assert parts.hostname is not None
                self._pools[base] = http1.Pool(
                    parts.hostname, parts.port or 80, self._max_connections,
                    self._sock_read_timeout_s,
                )  # fmt: skip
        return self

    async def __aexit__(self, *exc: object) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("S3Client used outside 'async with'")
        return self._session

    @asynccontextmanager
    async def _request(
        self,
        method: str,
        bucket: str,
        key: str = "",
        query: Mapping[str, str] | None = None,
        data: Body | None = None,
        content_length: int | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One signed request; a non-2xx answer raises S3RequestError (its body read).

        ``data``: bytes, or an async iterator of slices with ``content_length`` given.
        """
        path = _path(bucket, key)
        base, host = next(self._targets)
        headers = self._signer.headers(method, host, path, dict(query or {}))
        qs = canonical_query(dict(query)) if query else ""
        url = URL(f"{base}{path}{'?' + qs if qs else ''}", encoded=True)
        body: Body | None = data
        if isinstance(data, bytes | memoryview):
            headers["Content-Length"] = str(len(data))
            if len(data) > _SLICE_BYTES:
                body = _body_slices(data)
        elif data is not None:
            if content_length is None:
                raise ValueError("a streamed body needs its content_length")
            headers["Content-Length"] = str(content_length)
        async with self.session.request(method, url, headers=headers, data=body) as resp:
            if not 200 <= resp.status < 300:
                raise S3RequestError(method, path, resp.status, await resp.read())
            yield resp

    def _leans(self, data: bytes | memoryview | None = None) -> bool:
        return self._lean and (data is None or len(data) <= _SLICE_BYTES)

    async def _exchange(
        self,
        method: str,
        bucket: str,
        key: str = "",
        data: bytes | memoryview | None = None,
        sink: http1.Sink | None = None,
    ) -> http1.Response:
        """One signed request over ``bench.http1`` (``_leans``); a non-2xx answer raises
        S3RequestError."""
        path = _path(bucket, key)
        base, host = next(self._targets)
        headers = self._signer.headers(method, host, path)
        del headers["Host"]  # request_bytes writes it first
        if data is not None or method in ("PUT", "POST"):
            headers["Content-Length"] = str(len(data) if data is not None else 0)
        head = request_bytes(host, path, headers, method)
        resp = await self._pools[base].request(head, data, method == "HEAD", sink)
        if not 200 <= resp.status < 300:
            raise S3RequestError(method, path, resp.status, resp.body)
        return resp

    async def _plain(self, method: str, bucket: str, key: str = "") -> http1.Response:
        """A request with no body and an answer read whole, over whichever client applies."""
        if self._leans():
            return await self._exchange(method, bucket, key)
        async with self._request(method, bucket, key) as resp:
            headers = {name.lower(): value for name, value in resp.headers.items()}
            return http1.Response(resp.status, headers, await resp.read())

    async def create_bucket(self, bucket: str) -> None:
        await self._plain("PUT", bucket)

    async def delete_bucket(self, bucket: str) -> None:
        await self._plain("DELETE", bucket)

    async def put_object(
        self,
        bucket: str,
        key: str,
        data: bytes | memoryview,
        throttle: Throttle | None = None,
    ) -> PutResult:
        if throttle is not None:
            return await self.put_object_stream(
                bucket, key, throttle.paced(_body_slices(data)), len(data)
            )
        if self._leans(data):
            answer = await self._exchange("PUT", bucket, key, data)
            return PutResult(etag=answer.headers.get("etag", "").strip('"'))
        async with self._request("PUT", bucket, key, data=data) as resp:
            await resp.read()
            return PutResult(etag=resp.headers.get("ETag", "").strip('"'))

    async def put_object_stream(
        self, bucket: str, key: str, body: AsyncIterator[memoryview], size: int
    ) -> PutResult:
        """PUT ``size`` bytes produced by ``body`` (streamed: never held whole)."""
        async with self._request("PUT", bucket, key, data=body, content_length=size) as resp:
            await resp.read()
            return PutResult(etag=resp.headers.get("ETag", "").strip('"'))

    async def get_object(
        self, bucket: str, key: str, verify: bool = False, throttle: Throttle | None = None
    ) -> GetResult:
        """Stream the body and discard it, counting bytes (and hashing them when ``verify``)."""
        if throttle is None and self._leans():
            return await self._get_counted(bucket, key, verify)
        async with self._request("GET", bucket, key) as resp:
            md5 = hashlib.md5() if verify else None
            received = 0
            if throttle is None:
                # One received chunk at a time: iter_any() would join what is buffered (a copy).
                async for chunk, _ in resp.content.iter_chunks():
                    received += len(chunk)
                    if md5 is not None:
                        md5.update(chunk)
            else:
                while True:
                    await throttle.wait(throttle.slice_bytes)
                    chunk = await resp.content.read(throttle.slice_bytes)
                    if not chunk:
                        break
                    received += len(chunk)
                    if md5 is not None:
                        md5.update(chunk)
            return GetResult(
                received_bytes=received,
                content_length=resp.content_length,
                md5_hex=md5.hexdigest() if md5 is not None else None,
            )

    async def _get_counted(self, bucket: str, key: str, verify: bool) -> GetResult:
        md5 = hashlib.md5() if verify else None
        received = 0

        def count(chunk: memoryview) -> None:
            nonlocal received
            received += len(chunk)
            if md5 is not None:
                md5.update(chunk)

        resp = await self._exchange("GET", bucket, key, sink=count)
        length = resp.headers.get("content-length")
        return GetResult(
            received_bytes=received,
            content_length=int(length) if length is not None else None,
            md5_hex=md5.hexdigest() if md5 is not None else None,
        )

    async def get_object_bytes(self, bucket: str, key: str) -> bytes:
        """A small object's whole body."""
        return (await self._plain("GET", bucket, key)).body

    async def head_object(self, bucket: str, key: str) -> int | None:
        """The object's Content-Length."""
        length = (await self._plain("HEAD", bucket, key)).headers.get("content-length")
        return int(length) if length is not None else None

    async def delete_object(self, bucket: str, key: str) -> None:
        await self._plain("DELETE", bucket, key)

    async def list_objects_v2(
        self,
        bucket: str,
        *,
        prefix: str | None = None,
        delimiter: str | None = None,
        start_after: str | None = None,
        continuation_token: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        query = {"list-type": "2", "max-keys": str(max_keys)}
        for name, value in (
            ("prefix", prefix),
            ("delimiter", delimiter),
            ("start-after", start_after),
            ("continuation-token", continuation_token),
        ):
            if value is not None:
                query[name] = value
        async with self._request("GET", bucket, query=query) as resp:
            return parse_list_page(await resp.read())

    async def list_all_keys(self, bucket: str, prefix: str | None = None) -> list[str]:
        """Every key (following continuation tokens)."""
        keys: list[str] = []
        token = None
        while True:
            page = await self.list_objects_v2(bucket, prefix=prefix, continuation_token=token)
            keys += page.key_names
            if not page.is_truncated or not page.next_token:
                return keys
            token = page.next_token

    async def create_multipart_upload(self, bucket: str, key: str) -> str:
        async with self._request("POST", bucket, key, query={"uploads": ""}) as resp:
            return _xml_field(await resp.read(), "UploadId")

    async def upload_part(
        self, bucket: str, key: str, upload_id: str, part_number: int, data: bytes | memoryview
    ) -> str:
        query = {"partNumber": str(part_number), "uploadId": upload_id}
        async with self._request("PUT", bucket, key, query=query, data=data) as resp:
            await resp.read()
            return resp.headers.get("ETag", "").strip('"')

    async def complete_multipart_upload(
        self, bucket: str, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
    ) -> str:
        body = "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>&quot;{etag}&quot;</ETag></Part>"
            for n, etag in parts
        )
        xml = f"<CompleteMultipartUpload>{body}</CompleteMultipartUpload>".encode()
        query = {"uploadId": upload_id}
        async with self._request("POST", bucket, key, query=query, data=xml) as resp:
            answer = await resp.read()
        # S3 may answer 200 with an <Error> document when completion fails late.
        if b"<Error>" in answer:
            raise S3RequestError("POST", f"/{bucket}/{key}?uploadId", 200, answer)
        return _xml_field(answer, "ETag").strip('"')

    async def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        async with self._request("DELETE", bucket, key, query={"uploadId": upload_id}) as resp:
            await resp.read()
