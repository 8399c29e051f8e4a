"""minio-py against a real Huimin server: the calls a MinIO SDK user makes every day."""

from __future__ import annotations

import hashlib
import io
import os
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from minio import Minio
from minio.commonconfig import ComposeSource, CopySource
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from tests.conftest import Server

MiB = 1024 * 1024


@pytest.fixture
def mc(server: Server) -> Minio:
    return Minio(
        urlparse(server.endpoint).netloc,
        access_key=server.access_key,
        secret_key=server.secret_key,
        secure=False,
        region=server.region,
    )


@pytest.fixture
def mbucket(mc: Minio, bucket: str) -> str:
    """A fresh bucket (created via boto3 by the shared fixture) that minio-py will use."""
    return bucket


def blob(size: int, seed: int = 0) -> bytes:
    """Deterministic non-repeating bytes (compressible patterns would hide offset bugs)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def read_all(mc: Minio, bucket: str, key: str, **kwargs: int) -> bytes:
    resp = mc.get_object(bucket, key, **kwargs)  # type: ignore[arg-type]
    try:
        return bytes(resp.read())
    finally:
        resp.close()
        resp.release_conn()


def test_bucket_lifecycle(mc: Minio, server: Server) -> None:
    name = f"minio-life-{os.getpid()}"
    assert not mc.bucket_exists(name)
    mc.make_bucket(name)
    assert mc.bucket_exists(name)
    assert name in [b.name for b in mc.list_buckets()]
    with pytest.raises(S3Error) as err:
        mc.make_bucket(name)
    assert err.value.code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists")
    mc.remove_bucket(name)
    assert not mc.bucket_exists(name)
    assert name not in [b.name for b in mc.list_buckets()]


def test_remove_non_empty_bucket_is_refused(mc: Minio, mbucket: str) -> None:
    mc.put_object(mbucket, "k", io.BytesIO(b"x"), 1)
    with pytest.raises(S3Error) as err:
        mc.remove_bucket(mbucket)
    assert err.value.code == "BucketNotEmpty"
    mc.remove_object(mbucket, "k")
    mc.remove_bucket(mbucket)
    assert not mc.bucket_exists(mbucket)


def test_put_get_known_length(mc: Minio, mbucket: str) -> None:
    data = blob(300_000, seed=1)
    result = mc.put_object(mbucket, "dir/known.bin", io.BytesIO(data), len(data))
    assert result.etag == hashlib.md5(data).hexdigest()
    assert read_all(mc, mbucket, "dir/known.bin") == data


def test_put_unknown_length_streams_multipart(mc: Minio, mbucket: str) -> None:
    data = blob(12 * MiB + 12345, seed=2)
    result = mc.put_object(mbucket, "stream.bin", io.BytesIO(data), -1, part_size=5 * MiB)
    # Three parts (5 + 5 + 2 MiB): a multipart ETag ends in "-3".
    assert result.etag is not None and result.etag.endswith("-3")
    assert mc.stat_object(mbucket, "stream.bin").size == len(data)
    assert hashlib.sha256(read_all(mc, mbucket, "stream.bin")).digest() == (
        hashlib.sha256(data).digest()
    )


def test_put_empty_object(mc: Minio, mbucket: str) -> None:
    mc.put_object(mbucket, "empty", io.BytesIO(b""), 0)
    assert mc.stat_object(mbucket, "empty").size == 0
    assert read_all(mc, mbucket, "empty") == b""


def test_fput_fget_30_mib_multipart(mc: Minio, mbucket: str, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    data = blob(30 * MiB, seed=3)
    src.write_bytes(data)
    result = mc.fput_object(mbucket, "big/file.bin", str(src), part_size=10 * MiB)
    assert result.etag is not None and result.etag.endswith("-3")
    dst = tmp_path / "dst.bin"
    mc.fget_object(mbucket, "big/file.bin", str(dst))
    assert dst.stat().st_size == len(data)
    assert hashlib.sha256(dst.read_bytes()).digest() == hashlib.sha256(data).digest()


@pytest.mark.parametrize(
    ("offset", "length"),
    [(0, 1), (0, 100), (1000, 5000), (131_071, 2), (299_999, 1), (250_000, 0)],
)
def test_get_object_offset_length(mc: Minio, mbucket: str, offset: int, length: int) -> None:
    data = blob(300_000, seed=4)
    mc.put_object(mbucket, "ranged", io.BytesIO(data), len(data))
    got = read_all(mc, mbucket, "ranged", offset=offset, length=length)
    # length=0 means "to the end" in minio-py.
    assert got == (data[offset : offset + length] if length else data[offset:])


def test_get_object_offset_past_end(mc: Minio, mbucket: str) -> None:
    mc.put_object(mbucket, "short", io.BytesIO(b"0123456789"), 10)
    with pytest.raises(S3Error) as err:
        read_all(mc, mbucket, "short", offset=10, length=5)
    assert err.value.code == "InvalidRange"


def test_stat_object_metadata_round_trip(mc: Minio, mbucket: str) -> None:
    data = b"hello metadata"
    mc.put_object(
        mbucket,
        "meta.txt",
        io.BytesIO(data),
        len(data),
        content_type="text/plain",
        metadata={"x-amz-meta-color": "blue", "Owner-Team": "storage"},
    )
    stat = mc.stat_object(mbucket, "meta.txt")
    assert stat.size == len(data)
    assert stat.etag == hashlib.md5(data).hexdigest()
    assert stat.content_type == "text/plain"
    assert stat.last_modified is not None
    meta = {k.lower(): v for k, v in (stat.metadata or {}).items()}
    assert meta["x-amz-meta-color"] == "blue"
    assert meta["x-amz-meta-owner-team"] == "storage"


@pytest.mark.parametrize(
    "key",
    [
        "with space.txt",
        "ünïcødé/日本語",
        "plus+and&amp=eq?q#h",
        "percent%20literal",
        "a//b/c",
    ],
)
def test_awkward_keys(mc: Minio, mbucket: str, key: str) -> None:
    data = key.encode()
    mc.put_object(mbucket, key, io.BytesIO(data), len(data))
    assert read_all(mc, mbucket, key) == data
    assert mc.stat_object(mbucket, key).size == len(data)
    assert [o.object_name for o in mc.list_objects(mbucket, recursive=True)] == [key]
    url = mc.presigned_get_object(mbucket, key)
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == data
    mc.remove_object(mbucket, key)
    assert list(mc.list_objects(mbucket, recursive=True)) == []


def test_copy_object_replace_metadata(mc: Minio, mbucket: str) -> None:
    mc.put_object(mbucket, "m", io.BytesIO(b"same bytes"), 10, metadata={"x-amz-meta-v": "1"})
    mc.copy_object(
        mbucket,
        "m",
        CopySource(mbucket, "m"),
        metadata={"x-amz-meta-v": "2"},
        metadata_directive="REPLACE",
    )
    stat = mc.stat_object(mbucket, "m")
    assert {k.lower(): v for k, v in (stat.metadata or {}).items()}["x-amz-meta-v"] == "2"
    assert read_all(mc, mbucket, "m") == b"same bytes"


def test_stat_missing_object(mc: Minio, mbucket: str) -> None:
    with pytest.raises(S3Error) as err:
        mc.stat_object(mbucket, "nope")
    assert err.value.code == "NoSuchKey"


def test_get_missing_object_and_bucket(mc: Minio, mbucket: str) -> None:
    with pytest.raises(S3Error) as err:
        read_all(mc, mbucket, "nope")
    assert err.value.code == "NoSuchKey"
    with pytest.raises(S3Error) as err:
        read_all(mc, f"{mbucket}-missing", "nope")
    assert err.value.code == "NoSuchBucket"


def test_copy_object(mc: Minio, mbucket: str) -> None:
    data = blob(200_000, seed=5)
    mc.put_object(
        mbucket, "src", io.BytesIO(data), len(data), metadata={"x-amz-meta-origin": "src"}
    )
    mc.copy_object(mbucket, "dst", CopySource(mbucket, "src"))
    assert read_all(mc, mbucket, "dst") == data
    stat = mc.stat_object(mbucket, "dst")
    assert stat.etag == hashlib.md5(data).hexdigest()
    assert {k.lower(): v for k, v in (stat.metadata or {}).items()}["x-amz-meta-origin"] == "src"


def test_copy_object_missing_source(mc: Minio, mbucket: str) -> None:
    with pytest.raises(S3Error) as err:
        mc.copy_object(mbucket, "dst", CopySource(mbucket, "missing"))
    assert err.value.code == "NoSuchKey"


def test_compose_object(mc: Minio, mbucket: str) -> None:
    # Every source but the last must be >= 5 MiB: compose uses UploadPartCopy.
    first = blob(5 * MiB, seed=6)
    second = blob(6 * MiB + 7, seed=7)
    third = blob(1000, seed=8)
    for key, data in (("a", first), ("b", second), ("c", third)):
        mc.put_object(mbucket, key, io.BytesIO(data), len(data))
    sources = [
        ComposeSource(mbucket, "a"),
        ComposeSource(mbucket, "b", offset=7, length=5 * MiB + 100),
        ComposeSource(mbucket, "c"),
    ]
    result = mc.compose_object(mbucket, "composed", sources)
    assert result.etag is not None and result.etag.endswith("-3")
    expected = first + second[7 : 7 + 5 * MiB + 100] + third
    got = read_all(mc, mbucket, "composed")
    assert len(got) == len(expected)
    assert hashlib.sha256(got).digest() == hashlib.sha256(expected).digest()


def test_list_objects(mc: Minio, mbucket: str) -> None:
    keys = ["a.txt", "dir/b.txt", "dir/sub/c.txt", "dir/sub/d.txt", "other/e.txt"]
    for key in keys:
        mc.put_object(mbucket, key, io.BytesIO(key.encode()), len(key))

    flat = list(mc.list_objects(mbucket, recursive=True))
    assert [o.object_name for o in flat] == sorted(keys)
    assert all(o.size == len(str(o.object_name)) for o in flat)

    top = list(mc.list_objects(mbucket))
    assert [(o.object_name, o.is_dir) for o in top] == [
        ("a.txt", False),
        ("dir/", True),
        ("other/", True),
    ]

    under = list(mc.list_objects(mbucket, prefix="dir/"))
    assert [(o.object_name, o.is_dir) for o in under] == [("dir/b.txt", False), ("dir/sub/", True)]

    deep = list(mc.list_objects(mbucket, prefix="dir/", recursive=True))
    assert [o.object_name for o in deep] == ["dir/b.txt", "dir/sub/c.txt", "dir/sub/d.txt"]

    v1 = list(mc.list_objects(mbucket, prefix="dir/sub/", use_api_v1=True))
    assert [o.object_name for o in v1] == ["dir/sub/c.txt", "dir/sub/d.txt"]

    assert list(mc.list_objects(mbucket, prefix="zzz")) == []


def test_list_objects_paginates(mc: Minio, mbucket: str) -> None:
    keys = [f"many/{i:04d}" for i in range(1100)]  # more than one 1000-key page
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: mc.put_object(mbucket, k, io.BytesIO(b""), 0), keys))
    assert [o.object_name for o in mc.list_objects(mbucket, recursive=True)] == keys
    v1 = [o.object_name for o in mc.list_objects(mbucket, recursive=True, use_api_v1=True)]
    assert v1 == keys


def test_remove_object(mc: Minio, mbucket: str) -> None:
    mc.put_object(mbucket, "gone", io.BytesIO(b"bye"), 3)
    mc.remove_object(mbucket, "gone")
    with pytest.raises(S3Error) as err:
        mc.stat_object(mbucket, "gone")
    assert err.value.code == "NoSuchKey"
    mc.remove_object(mbucket, "gone")  # deleting a missing key succeeds, as in S3


def test_remove_objects_bulk(mc: Minio, mbucket: str) -> None:
    keys = [f"bulk/{i}" for i in range(25)]
    for key in keys:
        mc.put_object(mbucket, key, io.BytesIO(b"x"), 1)
    mc.put_object(mbucket, "keep", io.BytesIO(b"k"), 1)
    errors = list(
        mc.remove_objects(mbucket, [DeleteObject(k) for k in [*keys, "bulk/never-existed"]])
    )
    assert errors == []
    assert [o.object_name for o in mc.list_objects(mbucket, recursive=True)] == ["keep"]


def test_presigned_get(mc: Minio, mbucket: str) -> None:
    data = blob(50_000, seed=9)
    mc.put_object(mbucket, "pre/get.bin", io.BytesIO(data), len(data))
    url = mc.presigned_get_object(mbucket, "pre/get.bin", expires=timedelta(minutes=5))
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        assert resp.read() == data


def test_presigned_get_tampered_signature(mc: Minio, mbucket: str) -> None:
    mc.put_object(mbucket, "pre/x", io.BytesIO(b"x"), 1)
    url = mc.presigned_get_object(mbucket, "pre/x")
    bad = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(bad, timeout=10)
    assert err.value.code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in err.value.read()


def test_presigned_put(mc: Minio, mbucket: str) -> None:
    data = blob(70_000, seed=10)
    url = mc.presigned_put_object(mbucket, "pre/put.bin", expires=timedelta(minutes=5))
    req = urllib.request.Request(url, data=data, method="PUT")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["ETag"].strip('"') == hashlib.md5(data).hexdigest()
    assert read_all(mc, mbucket, "pre/put.bin") == data


def test_presigned_url_expired(mc: Minio, mbucket: str) -> None:
    mc.put_object(mbucket, "pre/old", io.BytesIO(b"x"), 1)
    url = mc.presigned_get_object(
        mbucket,
        "pre/old",
        expires=timedelta(seconds=1),
        request_date=datetime.now(UTC) - timedelta(minutes=10),
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=10)
    assert err.value.code == 403
    assert b"<Code>AccessDenied</Code>" in err.value.read()


def test_wrong_secret_is_refused(server: Server) -> None:
    bad = Minio(
        urlparse(server.endpoint).netloc,
        access_key=server.access_key,
        secret_key="not-the-secret",
        secure=False,
        region=server.region,
    )
    with pytest.raises(S3Error) as err:
        bad.list_buckets()
    assert err.value.code == "SignatureDoesNotMatch"


def test_unknown_access_key_is_refused(server: Server) -> None:
    bad = Minio(
        urlparse(server.endpoint).netloc,
        access_key="NOSUCHACCESSKEY00000",
        secret_key="whatever",
        secure=False,
        region=server.region,
    )
    with pytest.raises(S3Error) as err:
        bad.list_buckets()
    assert err.value.code == "InvalidAccessKeyId"
