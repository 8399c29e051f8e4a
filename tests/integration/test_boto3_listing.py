"""ListObjects (v1) and ListObjectsV2 through boto3 over ~250 keys: paging, prefixes, encoding."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote_plus

import pytest

from tests.conftest import Server, boto3_client
from tests.integration.boto3_support import md5_hex, quoted, s3_error

ODD_KEYS = [
    "a b/c d",
    "plus+/x+y",
    "pct%41/%",
    "tilde~/~x",
    "ü/é",
    "日本/語",
    "tab\tkey",
    "ctrl\x01key",
    "new\nline/x",
    "amp&lt;<>",
    "d0",  # sorts before "d0/..." and equals a common prefix without its delimiter
    "zz-last",
]
KEYS = sorted(
    [f"d{i % 4}/s{i % 5}/f{i:03}.txt" for i in range(200)]
    + [f"top-{i:02}" for i in range(40)]
    + ODD_KEYS
)


@pytest.fixture(scope="module")
def listed(server: Server) -> Iterator[tuple[Any, str]]:
    """A bucket holding KEYS (each object's body is its key), shared by the tests below."""
    client = boto3_client(server)
    name = f"listing-{os.getpid()}"
    client.create_bucket(Bucket=name)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: client.put_object(Bucket=name, Key=k, Body=k.encode()), KEYS))
    yield client, name


def expected(prefix: str = "", delimiter: str = "", after: str = "") -> list[tuple[str, str]]:
    """The listing S3 gives: ("key", k) and ("prefix", p) entries in key order, deduplicated."""
    out: list[tuple[str, str]] = []
    for key in KEYS:
        if not key.startswith(prefix) or key <= after:
            continue
        i = key.find(delimiter, len(prefix)) if delimiter else -1
        if i >= 0:
            entry = ("prefix", key[: i + len(delimiter)])
            if entry[1] <= after:
                continue
            if not out or out[-1] != entry:
                out.append(entry)
        else:
            out.append(("key", key))
    return out


def entries(page: dict[str, Any]) -> list[tuple[str, str]]:
    keys = [("key", o["Key"]) for o in page.get("Contents", [])]
    prefixes = [("prefix", p["Prefix"]) for p in page.get("CommonPrefixes", [])]
    return sorted(keys + prefixes, key=lambda e: e[1])


def v2_pages(client, bucket: str, max_keys: int, **kwargs) -> list[dict[str, Any]]:
    pages = []
    token: dict[str, str] = {}
    while True:
        page = client.list_objects_v2(Bucket=bucket, MaxKeys=max_keys, **token, **kwargs)
        pages.append(page)
        assert page["KeyCount"] == len(entries(page)) <= max_keys
        if not page["IsTruncated"]:
            assert "NextContinuationToken" not in page
            return pages
        assert page["KeyCount"] == max_keys
        token = {"ContinuationToken": page["NextContinuationToken"]}
        assert len(pages) < 500, "listing does not end"


def v1_pages(
    client, bucket: str, max_keys: int, Marker: str = "", **kwargs
) -> list[dict[str, Any]]:
    pages = []
    marker = Marker
    while True:
        page = client.list_objects(Bucket=bucket, MaxKeys=max_keys, Marker=marker, **kwargs)
        pages.append(page)
        got = entries(page)
        assert len(got) <= max_keys
        if not page["IsTruncated"]:
            return pages
        assert len(got) == max_keys
        # S3 sends NextMarker only with a delimiter; otherwise the last key is the marker.
        if "Delimiter" in kwargs:
            marker = page["NextMarker"]
            assert marker == got[-1][1]
        else:
            assert "NextMarker" not in page
            marker = page["Contents"][-1]["Key"]
        assert len(pages) < 500, "listing does not end"


def flat(pages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [e for page in pages for e in entries(page)]


@pytest.mark.parametrize("max_keys", [7, 100, 1000])
def test_v2_pages_cover_every_key_once_in_order(listed, max_keys):
    client, bucket = listed
    pages = v2_pages(client, bucket, max_keys)
    assert flat(pages) == expected()
    assert len(pages) == -(-len(KEYS) // max_keys)


@pytest.mark.parametrize("max_keys", [7, 1000])
def test_v1_pages_cover_every_key_once_in_order(listed, max_keys):
    client, bucket = listed
    assert flat(v1_pages(client, bucket, max_keys)) == expected()


@pytest.mark.parametrize("max_keys", [2, 1000])
@pytest.mark.parametrize(
    "prefix", ["", "d1/", "d2/s3/", "top-1", "ü/", "a b/", "plus+/", "pct%41/", "nothing-here/"]
)
def test_v2_delimiter_pages(listed, max_keys, prefix):
    client, bucket = listed
    pages = v2_pages(client, bucket, max_keys, Prefix=prefix, Delimiter="/")
    assert flat(pages) == expected(prefix, "/")
    for page in pages:
        assert page["Prefix"] == prefix
        assert page["Delimiter"] == "/"


@pytest.mark.parametrize("max_keys", [1, 1000])
@pytest.mark.parametrize("prefix", ["d1/", "d3/s4/"])
def test_v1_delimiter_pages(listed, max_keys, prefix):
    client, bucket = listed
    assert flat(v1_pages(client, bucket, max_keys, Prefix=prefix, Delimiter="/")) == expected(
        prefix, "/"
    )


def test_common_prefixes_at_top_level(listed):
    client, bucket = listed
    page = client.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == [
        "a b/",
        "d0/",
        "d1/",
        "d2/",
        "d3/",
        "new\nline/",
        "pct%41/",
        "plus+/",
        "tilde~/",
        "ü/",
        "日本/",
    ]
    assert "d0" in [o["Key"] for o in page["Contents"]]


def test_delimiter_other_than_slash(listed):
    client, bucket = listed
    page = client.list_objects_v2(Bucket=bucket, Prefix="top", Delimiter="-")
    assert page.get("Contents", []) == []
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["top-"]


def test_prefix_lists_only_matching_keys_with_sizes_and_etags(listed):
    client, bucket = listed
    page = client.list_objects_v2(Bucket=bucket, Prefix="d2/s3/")
    want = [k for k in KEYS if k.startswith("d2/s3/")]
    assert [o["Key"] for o in page["Contents"]] == want
    for obj in page["Contents"]:
        assert obj["Size"] == len(obj["Key"].encode())
        assert obj["ETag"] == quoted(md5_hex(obj["Key"].encode()))
        assert obj["StorageClass"] == "STANDARD"
        assert obj["LastModified"]


@pytest.mark.parametrize("after", ["", "d1/s2/f050.txt", "d1/", "d1/zzz", "top-39", "zzzz"])
def test_v2_start_after(listed, after):
    client, bucket = listed
    pages = v2_pages(client, bucket, 50, StartAfter=after)
    assert flat(pages) == expected(after=after)
    if after:
        assert pages[0]["StartAfter"] == after


def test_start_after_a_common_prefix_skips_that_prefix(listed):
    client, bucket = listed
    # What a client resuming after the CommonPrefix "d1/" sends (v1 NextMarker is "d1/").
    v2 = flat(v2_pages(client, bucket, 1000, StartAfter="d1/", Delimiter="/"))
    v1 = flat(v1_pages(client, bucket, 1000, Marker="d1/", Delimiter="/"))
    assert v1 == v2 == [e for e in expected(delimiter="/") if e[1] > "d1/"]
    assert v2[0] == ("prefix", "d2/")


def test_v1_marker(listed):
    client, bucket = listed
    page = client.list_objects(Bucket=bucket, Marker="top-37")
    assert [o["Key"] for o in page["Contents"]] == [k for k in KEYS if k > "top-37"]
    assert page["Marker"] == "top-37"


def test_max_keys_zero(listed):
    client, bucket = listed
    # An empty page that is complete: no token to follow (as AWS answers).
    v2 = client.list_objects_v2(Bucket=bucket, MaxKeys=0)
    assert (v2["KeyCount"], v2["MaxKeys"], v2["IsTruncated"]) == (0, 0, False)
    assert "Contents" not in v2
    assert "NextContinuationToken" not in v2
    v1 = client.list_objects(Bucket=bucket, MaxKeys=0, Delimiter="/")
    assert (v1["IsTruncated"], "Contents" in v1, "CommonPrefixes" in v1) == (False, False, False)
    assert "NextMarker" not in v1


def test_max_keys_over_1000_is_capped(listed):
    client, bucket = listed
    page = client.list_objects_v2(Bucket=bucket, MaxKeys=5000)
    assert page["KeyCount"] == len(KEYS)
    assert page["MaxKeys"] == 1000


def test_paginator_collects_everything(listed):
    client, bucket = listed
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 13}
    )
    assert [o["Key"] for page in pages for o in page.get("Contents", [])] == KEYS
    v1 = client.get_paginator("list_objects").paginate(
        Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 4}
    )
    got = [e for page in v1 for e in entries(page)]
    assert got == expected(delimiter="/")


def test_explicit_url_encoding_returns_encoded_keys(listed):
    client, bucket = listed
    # Asked for explicitly, botocore leaves the encoded values alone.
    page = client.list_objects_v2(Bucket=bucket, EncodingType="url")
    raw = [o["Key"] for o in page["Contents"]]
    assert [unquote_plus(k) for k in raw] == KEYS
    assert all(k.isascii() and k.isprintable() and " " not in k for k in raw)
    assert page["EncodingType"] == "url"
    v1 = client.list_objects(Bucket=bucket, EncodingType="url", Prefix="ü/", Delimiter="/")
    assert unquote_plus(v1["Prefix"]) == "ü/"
    assert [unquote_plus(o["Key"]) for o in v1["Contents"]] == ["ü/é"]


def test_default_listing_decodes_odd_keys(listed):
    client, bucket = listed
    # botocore asks for encoding-type=url by itself and decodes: keys with control characters
    # survive the XML round trip.
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert set(ODD_KEYS) <= set(keys)
    keys = [o["Key"] for o in client.list_objects(Bucket=bucket)["Contents"]]
    assert set(ODD_KEYS) <= set(keys)


def test_odd_keys_readable_by_listed_name(listed):
    client, bucket = listed
    for key in ODD_KEYS:
        assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()


def test_fetch_owner(listed):
    client, bucket = listed
    without = client.list_objects_v2(Bucket=bucket, MaxKeys=3)
    assert all("Owner" not in o for o in without["Contents"])
    with_owner = client.list_objects_v2(Bucket=bucket, MaxKeys=3, FetchOwner=True)
    owners = [o["Owner"] for o in with_owner["Contents"]]
    assert len(owners) == 3
    assert all(o["ID"] and o == owners[0] for o in owners)
    assert owners[0]["ID"] == client.list_buckets()["Owner"]["ID"]
    # v1 always includes the owner.
    assert all(o["Owner"]["ID"] for o in client.list_objects(Bucket=bucket, MaxKeys=3)["Contents"])


def test_bad_continuation_token(listed):
    client, bucket = listed
    s3_error(
        lambda: client.list_objects_v2(Bucket=bucket, ContinuationToken="%%%not-a-token"),
        "InvalidArgument",
        400,
    )


def test_empty_bucket_listing(s3, bucket):
    v2 = s3.list_objects_v2(Bucket=bucket)
    assert (v2["KeyCount"], v2["IsTruncated"], "Contents" in v2) == (0, False, False)
    v1 = s3.list_objects(Bucket=bucket)
    assert (v1["IsTruncated"], "Contents" in v1) == (False, False)


# Delimiter pages span several drive batches (100..1000 entries) of common prefixes, which the
# drives skip-scan (storage/listing.py): 260 "directories" of 3 keys, two levels deep.
DIR_KEYS = sorted(
    [f"dir{d:03}/f{i}" for d in range(260) for i in range(2)]
    + [f"dir{d:03}/sub/x" for d in range(0, 260, 13)]
    + [f"dir{d:03}" for d in range(0, 260, 50)]  # a key sorting just before its directory
)


@pytest.fixture(scope="module")
def dirs(server: Server) -> tuple[Any, str]:
    client = boto3_client(server)
    name = f"dirs-{os.getpid()}"
    client.create_bucket(Bucket=name)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: client.put_object(Bucket=name, Key=k, Body=b"x"), DIR_KEYS))
    return client, name


def dir_listing(prefix: str = "", after: str = "") -> list[tuple[str, str]]:
    """What S3 lists with Delimiter="/" after ``after`` (a resumed marker skips its prefix)."""
    out: list[tuple[str, str]] = []
    for key in DIR_KEYS:
        if not key.startswith(prefix) or key <= after:
            continue
        i = key.find("/", len(prefix))
        entry = ("prefix", key[: i + 1]) if i >= 0 else ("key", key)
        if entry[1] == after or (after.endswith("/") and key.startswith(after)):
            continue
        if not out or out[-1] != entry:
            out.append(entry)
    return out


@pytest.mark.parametrize("max_keys", [7, 150, 1000])
def test_delimiter_pages_across_drive_batches(dirs, max_keys):
    client, bucket = dirs
    v2 = flat(v2_pages(client, bucket, max_keys, Delimiter="/"))
    assert v2 == dir_listing()
    assert len([e for e in v2 if e[0] == "prefix"]) == 260
    assert flat(v1_pages(client, bucket, max_keys, Delimiter="/")) == dir_listing()


@pytest.mark.parametrize("after", ["dir099/", "dir099/f0", "dir100", "dir259/sub/x", "dir2"])
def test_delimiter_pages_start_after(dirs, after):
    client, bucket = dirs
    got = flat(v2_pages(client, bucket, 120, Delimiter="/", StartAfter=after))
    assert got == dir_listing(after=after)


def test_delimiter_pages_under_a_prefix(dirs):
    client, bucket = dirs
    assert flat(v2_pages(client, bucket, 1, Prefix="dir013/", Delimiter="/")) == [
        ("key", "dir013/f0"),
        ("key", "dir013/f1"),
        ("prefix", "dir013/sub/"),
    ]
    assert flat(v2_pages(client, bucket, 1000, Prefix="dir1", Delimiter="/")) == dir_listing("dir1")
