"""Large objects end to end: a 200 MiB streamed PUT/GET, 16 MiB multipart parts, ranged reads,
and the server's memory staying bounded while it moves them.

Neither side holds an object in memory: the test's bytes come from a seekable generator (1 MiB
pseudo-random blocks, each regenerated on demand from its index), and downloads are hashed as
they stream in.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast

import pytest
from boto3.s3.transfer import TransferConfig

from tests.conftest import Server, boto3_client, start_server

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
BIG_SIZE = 200 * MiB + 12_345  # not a multiple of the block or stripe size
GEN_BLOCK = MiB


def gen_block(seed: int, index: int) -> bytes:
    return random.Random(seed * 1_000_003 + index).randbytes(GEN_BLOCK)


class GeneratedStream:
    """A read-only, seekable file of ``size`` deterministic bytes, generated on the fly.

    Any byte can be regenerated from its offset alone, so the test never holds the object.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self.pos = 0
        self._cached: tuple[int, bytes] | None = None

    def _block(self, index: int) -> bytes:
        if self._cached is None or self._cached[0] != index:
            self._cached = (index, gen_block(self.seed, index))
        return self._cached[1]

    def read_at(self, offset: int, length: int) -> bytes:
        end = min(offset + length, self.size)
        out = bytearray()
        while offset < end:
            index, within = divmod(offset, GEN_BLOCK)
            take = min(GEN_BLOCK - within, end - offset)
            out += self._block(index)[within : within + take]
            offset += take
        return bytes(out)

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = self.size - self.pos
        data = self.read_at(self.pos, n)
        self.pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = base + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._cached = None

    def sha256(self) -> str:
        h = hashlib.sha256()
        for offset in range(0, self.size, GEN_BLOCK):
            h.update(self.read_at(offset, GEN_BLOCK))
        return h.hexdigest()


def proc_status_kib(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` memory field (VmRSS, VmHWM) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak_rss(pid: int) -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0); if refused, the old peak stays, which only
    makes the growth we measure larger (the assertion stays sound)."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def stream_sha256(s3: S3Client, bucket: str, key: str, expect: GeneratedStream | None) -> str:
    """sha256 of a streamed GET; with ``expect``, also locate the first wrong chunk."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    h = hashlib.sha256()
    offset = 0
    for chunk in body.iter_chunks(MiB):
        h.update(chunk)
        if expect is not None:
            assert chunk == expect.read_at(offset, len(chunk)), f"bytes differ near {offset}"
        offset += len(chunk)
    return h.hexdigest()


@pytest.fixture(scope="module")
def big_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own: its peak RSS must not include what other tests made it do."""
    srv = start_server(tmp_path_factory.mktemp("large") / "data")
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log(), srv.log()


@pytest.fixture(scope="module")
def big_s3(big_server: Server) -> S3Client:
    return boto3_client(big_server)


@pytest.fixture(scope="module")
def big_bucket(big_s3: S3Client) -> str:
    big_s3.create_bucket(Bucket="large")
    return "large"


@pytest.fixture(scope="module")
def big_object(big_server: Server, big_s3: S3Client, big_bucket: str) -> GeneratedStream:
    """The 200 MiB object, PUT once (single request, streamed) with the server's RSS watched."""
    pid = big_server.process.pid
    # Warm up allocator arenas, codec tables and drive threads so the baseline is realistic.
    warm = GeneratedStream(8 * MiB, seed=99)
    big_s3.put_object(Bucket=big_bucket, Key="warm-up", Body=warm.read())
    big_s3.get_object(Bucket=big_bucket, Key="warm-up")["Body"].read()

    stream = GeneratedStream(BIG_SIZE, seed=1)
    reset_peak_rss(pid)
    rss_before_kib = proc_status_kib(pid, "VmRSS")
    started = time.monotonic()
    big_s3.upload_fileobj(
        cast("IO[bytes]", stream),
        big_bucket,
        "big.bin",
        # Above the size: one PutObject whose body botocore streams from the seekable file.
        Config=TransferConfig(multipart_threshold=BIG_SIZE + 1, use_threads=False),
    )
    elapsed_s = time.monotonic() - started
    peak_kib = proc_status_kib(pid, "VmHWM")
    growth_mb = (peak_kib - rss_before_kib) * 1024 / 1e6
    print(
        f"\n200 MiB PUT: {BIG_SIZE / 1e6 / elapsed_s:.1f} MB/s, server RSS "
        f"{rss_before_kib / 1024:.0f} MiB -> peak {peak_kib / 1024:.0f} MiB "
        f"(+{growth_mb:.1f} MB)"
    )
    # Memory per request is bounded by a few erasure blocks, not by the object size.
    assert growth_mb < 100, f"server peak RSS grew {growth_mb:.0f} MB during a 200 MiB PUT"
    return stream


def test_big_object_streams_back_intact(
    big_server: Server, big_s3: S3Client, big_bucket: str, big_object: GeneratedStream
) -> None:
    head = big_s3.head_object(Bucket=big_bucket, Key="big.bin")
    assert head["ContentLength"] == BIG_SIZE

    pid = big_server.process.pid
    reset_peak_rss(pid)
    rss_before_kib = proc_status_kib(pid, "VmRSS")
    started = time.monotonic()
    got = stream_sha256(big_s3, big_bucket, "big.bin", expect=None)
    elapsed_s = time.monotonic() - started
    growth_mb = (proc_status_kib(pid, "VmHWM") - rss_before_kib) * 1024 / 1e6
    print(f"\n200 MiB GET: {BIG_SIZE / 1e6 / elapsed_s:.1f} MB/s, server RSS +{growth_mb:.1f} MB")

    assert got == big_object.sha256()
    assert growth_mb < 100, f"server peak RSS grew {growth_mb:.0f} MB during a 200 MiB GET"


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (0, 0),
        (0, MiB - 1),  # exactly the first erasure block
        (MiB - 3, MiB + 2),  # straddles a block boundary
        (8 * MiB - 1, 8 * MiB),  # straddles a 4 MiB read batch
        (123_456_789, 123_456_789 + 3 * MiB + 17),  # several blocks, unaligned both ends
        (BIG_SIZE - 5_000, BIG_SIZE - 1),  # the short last block
    ],
)
def test_ranged_gets_into_big_object(
    big_s3: S3Client, big_bucket: str, big_object: GeneratedStream, first: int, last: int
) -> None:
    resp = big_s3.get_object(Bucket=big_bucket, Key="big.bin", Range=f"bytes={first}-{last}")
    assert resp["ContentRange"] == f"bytes {first}-{last}/{BIG_SIZE}"
    assert resp["Body"].read() == big_object.read_at(first, last - first + 1)


def test_suffix_and_open_ended_ranges(
    big_s3: S3Client, big_bucket: str, big_object: GeneratedStream
) -> None:
    tail = big_s3.get_object(Bucket=big_bucket, Key="big.bin", Range="bytes=-70000")
    assert tail["Body"].read() == big_object.read_at(BIG_SIZE - 70_000, 70_000)
    start = BIG_SIZE - MiB - 1
    rest = big_s3.get_object(Bucket=big_bucket, Key="big.bin", Range=f"bytes={start}-")
    assert rest["ContentRange"] == f"bytes {start}-{BIG_SIZE - 1}/{BIG_SIZE}"
    assert rest["Body"].read() == big_object.read_at(start, BIG_SIZE - start)


def test_multipart_16_mib_parts(big_s3: S3Client, big_bucket: str) -> None:
    part_size = 16 * MiB
    source = GeneratedStream(3 * part_size + 3 * MiB + 7, seed=2)
    key = "multi.bin"
    upload_id = big_s3.create_multipart_upload(Bucket=big_bucket, Key=key)["UploadId"]
    parts: list[CompletedPartTypeDef] = []
    md5s = []
    for number, offset in enumerate(range(0, source.size, part_size), start=1):
        data = source.read_at(offset, part_size)
        md5s.append(hashlib.md5(data).digest())
        etag = big_s3.upload_part(
            Bucket=big_bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
        )["ETag"]
        assert etag.strip('"') == hashlib.md5(data).hexdigest()
        parts.append({"ETag": etag, "PartNumber": number})
    assert len(parts) == 4
    done = big_s3.complete_multipart_upload(
        Bucket=big_bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    assert done["ETag"].strip('"') == f"{hashlib.md5(b''.join(md5s)).hexdigest()}-4"

    assert big_s3.head_object(Bucket=big_bucket, Key=key)["ContentLength"] == source.size
    assert stream_sha256(big_s3, big_bucket, key, expect=source) == source.sha256()
    # Ranges across each part boundary, and one spanning a whole part.
    for first, last in [
        (part_size - 10, part_size + 9),
        (2 * part_size - 1, 2 * part_size),
        (3 * part_size - 100, source.size - 1),
        (part_size - 1, 2 * part_size),
    ]:
        resp = big_s3.get_object(Bucket=big_bucket, Key=key, Range=f"bytes={first}-{last}")
        assert resp["Body"].read() == source.read_at(first, last - first + 1), (first, last)


def test_multipart_upload_fileobj_non_seekable(big_s3: S3Client, big_bucket: str) -> None:
    """boto3's default managed upload of a plain stream: 16 MiB parts, uploaded concurrently."""
    source = GeneratedStream(3 * 16 * MiB + 1, seed=3)

    class OnlyRead(io.RawIOBase):  # seekable() is False: s3transfer must buffer parts itself
        def readable(self) -> bool:
            return True

        def read(self, size: int = -1, /) -> bytes:
            return source.read(size)

    big_s3.upload_fileobj(
        cast("IO[bytes]", OnlyRead()),
        big_bucket,
        "managed.bin",
        Config=TransferConfig(multipart_chunksize=16 * MiB, max_concurrency=4),
    )
    head = big_s3.head_object(Bucket=big_bucket, Key="managed.bin")
    assert head["ContentLength"] == source.size
    assert head["ETag"].strip('"').endswith("-4")
    assert stream_sha256(big_s3, big_bucket, "managed.bin", expect=None) == source.sha256()


def test_concurrent_puts_share_the_md5_lanes(big_s3: S3Client, big_bucket: str) -> None:
    # Eight uploads at once, each of several blocks and none a multiple of 64 bytes: their
    # blocks are hashed side by side in the gateway's MD5 lanes (gateway/md5.py), and every
    # ETag is still its own body's MD5, every body intact.
    from concurrent.futures import ThreadPoolExecutor

    sizes = [9 * MiB + 1 + 7 * i for i in range(8)]
    bodies = [GeneratedStream(size, seed=50 + i).read() for i, size in enumerate(sizes)]

    def put(i: int) -> str:
        return big_s3.put_object(Bucket=big_bucket, Key=f"lanes-{i}", Body=bodies[i])["ETag"]

    with ThreadPoolExecutor(len(bodies)) as pool:
        etags = list(pool.map(put, range(len(bodies))))
    assert [e.strip('"') for e in etags] == [hashlib.md5(b).hexdigest() for b in bodies]
    for i, body in enumerate(bodies):
        got = big_s3.get_object(Bucket=big_bucket, Key=f"lanes-{i}")["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest()
