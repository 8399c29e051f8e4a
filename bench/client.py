"""A lean async S3 client for the benchmark's data path: aiohttp, keep-alive, SigV4 headers with
``UNSIGNED-PAYLOAD`` (no payload hashing, no aws-chunked framing), bodies streamed and counted.

It is what PERF.md's peers were measured with, so its figures compare; boto3 would add payload
SHA-256, CRC32 trailers and thread-pool overhead on the client's share of the same cores.
Independent of the server's code on purpose: it signs from the SigV4 recipe, not from
``gateway.sigv4``, so a shared bug cannot cancel out.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote, urlsplit

import aiohttp
from yarl import URL

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


class S3Client:
    """``async with S3Client(endpoint, credentials, max_connections) as s3: ...``"""

    def __init__(self, endpoint: str, credentials: Credentials, max_connections: int) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"endpoint must be http(s)://host[:port], got {endpoint!r}")
        self._base = f"{parts.scheme}://{parts.netloc}"
        self._host = parts.netloc
        self._signer = Signer(credentials)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> S3Client:
        connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=60)
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            read_bufsize=_READ_BUFSIZE_BYTES,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
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
        query: dict[str, str] | None = None,
        data: bytes | memoryview | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One signed request; a non-2xx answer raises S3RequestError (its body read)."""
        path = "/" + quote(bucket, safe="") + ("/" + quote(key, safe="/-_.~") if key else "")
        headers = self._signer.headers(method, self._host, path, query)
        qs = canonical_query(query) if query else ""
        url = URL(f"{self._base}{path}{'?' + qs if qs else ''}", encoded=True)
        if data is not None:
            headers["Content-Length"] = str(len(data))
        body = _body_slices(data) if data is not None and len(data) > _SLICE_BYTES else data
        async with self.session.request(method, url, headers=headers, data=body) as resp:
            if not 200 <= resp.status < 300:
                raise S3RequestError(method, path, resp.status, await resp.read())
            yield resp

    async def create_bucket(self, bucket: str) -> None:
        async with self._request("PUT", bucket) as resp:
            await resp.read()

    async def delete_bucket(self, bucket: str) -> None:
        async with self._request("DELETE", bucket) as resp:
            await resp.read()

    async def put_object(self, bucket: str, key: str, data: bytes | memoryview) -> PutResult:
        async with self._request("PUT", bucket, key, data=data) as resp:
            await resp.read()
            return PutResult(etag=resp.headers.get("ETag", "").strip('"'))

    async def get_object(self, bucket: str, key: str, verify: bool = False) -> GetResult:
        """Stream the body and discard it, counting bytes (and hashing them when ``verify``)."""
        async with self._request("GET", bucket, key) as resp:
            md5 = hashlib.md5() if verify else None
            received = 0
            # One received chunk at a time: iter_any() would join what is buffered (a copy).
            async for chunk, _ in resp.content.iter_chunks():
                received += len(chunk)
                if md5 is not None:
                    md5.update(chunk)
            return GetResult(
                received_bytes=received,
                content_length=resp.content_length,
                md5_hex=md5.hexdigest() if md5 is not None else None,
            )

    async def delete_object(self, bucket: str, key: str) -> None:
        async with self._request("DELETE", bucket, key) as resp:
            await resp.read()
