"""Micro-benchmarks: the S3 XML the gateway writes and reads, at the sizes that cost most.

Not part of the main suite (``testpaths`` is ``tests``). Run with::

    pytest bench/micro/test_s3xml_bench.py --benchmark-only

A listing page of 1000 keys (flat, URL-encoded, and 1000 common prefixes), an error body (every
4xx answer has one), and the two request bodies clients send large: DeleteObjects with 1000 keys
and CompleteMultipartUpload with 1000 parts (parsed with defusedxml). ``extra_info`` has the
items per call, so items per second = items / mean.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gateway import s3xml

WHEN = datetime(2026, 11, 30, 8, 0, 0, tzinfo=UTC)
ETAG = "9b2cf535f27731c974343645a3985328"
PAGE = [
    s3xml.ObjectEntry(
        key=f"catalog/dept-{n % 37:02d}/dataset-{n:07d}.json",
        last_modified=WHEN + timedelta(seconds=n),
        etag=ETAG,
        size=4096 + n,
    )
    for n in range(1000)
]
PREFIXES = [f"catalog/dept-{n:04d}/" for n in range(1000)]


def _listing(**kwargs: Any) -> bytes:
    return s3xml.list_objects_v2_xml(
        bucket="catalog",
        prefix="catalog/",
        max_keys=1000,
        is_truncated=True,
        next_continuation_token="Y2F0YWxvZy9kZXB0LTM2L2RhdGFzZXQtMDAwMDk5OS5qc29u",
        **kwargs,
    )


def test_list_objects_v2_1000_keys(benchmark: Any) -> None:
    benchmark.extra_info["items"] = len(PAGE)
    body = benchmark(
        _listing, delimiter=None, encoding_type=None, contents=PAGE, common_prefixes=[]
    )
    assert body.count(b"<Contents>") == 1000


def test_list_objects_v2_1000_keys_url_encoded(benchmark: Any) -> None:
    benchmark.extra_info["items"] = len(PAGE)
    body = benchmark(
        _listing, delimiter=None, encoding_type="url", contents=PAGE, common_prefixes=[]
    )
    assert body.count(b"<Contents>") == 1000


def test_list_objects_v2_1000_common_prefixes(benchmark: Any) -> None:
    benchmark.extra_info["items"] = len(PREFIXES)
    body = benchmark(
        _listing, delimiter="/", encoding_type=None, contents=[], common_prefixes=PREFIXES
    )
    assert body.count(b"<CommonPrefixes>") == 1000


def test_error_xml(benchmark: Any) -> None:
    body = benchmark(
        s3xml.error_xml,
        "NoSuchKey",
        "The specified key does not exist.",
        "/pacs/study/0001/series/02.dcm",
        "4F2A9C01B7E3D5A8",
        {"Key": "study/0001/series/02.dcm"},
    )
    assert b"<Code>NoSuchKey</Code>" in body


def test_parse_delete_objects_1000_keys(benchmark: Any) -> None:
    body = (
        b"<Delete><Quiet>true</Quiet>"
        + b"".join(f"<Object><Key>{e.key}</Key></Object>".encode() for e in PAGE)
        + b"</Delete>"
    )
    benchmark.extra_info["items"] = len(PAGE)
    quiet, keys = benchmark(s3xml.parse_delete_objects, body)
    assert quiet and len(keys) == 1000


def test_parse_complete_multipart_1000_parts(benchmark: Any) -> None:
    body = (
        b'<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        + b"".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>&quot;{ETAG}&quot;</ETag></Part>".encode()
            for n in range(1, 1001)
        )
        + b"</CompleteMultipartUpload>"
    )
    benchmark.extra_info["items"] = 1000
    parts = benchmark(s3xml.parse_complete_multipart, body)
    assert len(parts) == 1000 and parts[0].etag == ETAG
