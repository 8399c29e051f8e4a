"""Property: any key survives our XML -> boto3 and boto3's XML -> our parser.

Without encoding-type, keys made of characters XML 1.0 can carry come back unchanged; with
encoding-type=url (what boto3 asks for on every listing) every Unicode key does.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.config import Config
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from mypy_boto3_s3 import S3Client

from gateway import s3xml
from gateway.s3xml import ObjectEntry

WHEN = datetime(2026, 11, 29, 17, 0, 0, tzinfo=UTC)

# Characters XML 1.0 allows: tab, newline, carriage return and everything from space up,
# except surrogates (never in a UTF-8 key) and U+FFFE/U+FFFF.
_NOT_XML = "".join(chr(c) for c in range(0x20) if chr(c) not in "\t\n\r") + "\ufffe\uffff"
xml_keys = st.text(st.characters(codec="utf-8", exclude_characters=_NOT_XML), min_size=1)
any_keys = st.text(st.characters(codec="utf-8"), min_size=1)
# Every code point, lone surrogates included (echoed non-UTF-8 request bytes).
any_text = st.text(st.characters(exclude_categories=()))

SETTINGS = settings(max_examples=150, deadline=None)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        yield self.body


class FakeS3:
    """A boto3 client whose requests are recorded and answered with ``body``."""

    def __init__(self) -> None:
        self.body = b""
        self.sent: list[AWSPreparedRequest] = []
        self.client: S3Client = boto3.client(
            "s3",
            region_name="us-east-1",
            endpoint_url="http://s3.example.com:9000",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="secret",
            config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
        )
        self.client.meta.events.register("before-send.s3", self._send)

    # -> Any, not AWSResponse: botocore-stubs type event handlers as returning None.
    def _send(self, request: AWSPreparedRequest, **kwargs: Any) -> Any:
        self.sent.append(request)
        return AWSResponse(request.url, 200, HTTPHeaders(), _Raw(self.body))

    def answer(self, body: bytes) -> S3Client:
        self.body = body
        return self.client


@pytest.fixture(scope="module")
def s3() -> FakeS3:
    return FakeS3()


def _v2(keys: list[str], prefixes: list[str], url: bool, start_after: str | None = None) -> bytes:
    return s3xml.list_objects_v2_xml(
        bucket="b",
        prefix="",
        max_keys=1000,
        delimiter=None,
        encoding_type="url" if url else None,
        is_truncated=False,
        contents=[ObjectEntry(key, WHEN, "e", 1) for key in keys],
        common_prefixes=prefixes,
        start_after=start_after,
    )


@SETTINGS
@given(keys=st.lists(xml_keys, min_size=1, max_size=4), prefixes=st.lists(xml_keys, max_size=2))
def test_xml_keys_survive_unencoded(s3: FakeS3, keys: list[str], prefixes: list[str]):
    # EncodingType given explicitly: botocore then leaves the values as they were parsed.
    answer = s3.answer(_v2(keys, prefixes, url=False)).list_objects_v2(
        Bucket="b", EncodingType="url"
    )
    assert [o["Key"] for o in answer["Contents"]] == keys
    assert [p["Prefix"] for p in answer.get("CommonPrefixes", [])] == prefixes


@SETTINGS
@given(
    keys=st.lists(any_keys, min_size=1, max_size=4),
    prefixes=st.lists(any_keys, max_size=2),
    start_after=any_keys,
)
def test_any_key_survives_url_encoding_v2(
    s3: FakeS3, keys: list[str], prefixes: list[str], start_after: str
):
    answer = s3.answer(_v2(keys, prefixes, url=True, start_after=start_after)).list_objects_v2(
        Bucket="b"
    )
    assert [o["Key"] for o in answer["Contents"]] == keys
    assert [p["Prefix"] for p in answer.get("CommonPrefixes", [])] == prefixes
    assert answer["StartAfter"] == start_after


@SETTINGS
@given(key=any_keys, prefix=any_keys, marker=any_keys, delimiter=any_keys)
def test_any_key_survives_url_encoding_v1(
    s3: FakeS3, key: str, prefix: str, marker: str, delimiter: str
):
    body = s3xml.list_objects_v1_xml(
        bucket="b",
        prefix=prefix,
        marker=marker,
        max_keys=1,
        delimiter=delimiter,
        encoding_type="url",
        is_truncated=True,
        next_marker=key,
        contents=[ObjectEntry(key, WHEN, "e", 1)],
        common_prefixes=[prefix + delimiter],
    )
    answer = s3.answer(body).list_objects(Bucket="b")
    assert answer["Contents"][0]["Key"] == key
    assert (answer["Marker"], answer["NextMarker"], answer["Delimiter"]) == (
        marker,
        key,
        delimiter,
    )
    assert answer["CommonPrefixes"] == [{"Prefix": prefix + delimiter}]
    assert unquote_plus(answer["Prefix"]) == prefix  # botocore leaves v1 Prefix encoded


@SETTINGS
@given(deleted=st.lists(xml_keys, max_size=3), failed=st.lists(xml_keys, max_size=3))
def test_delete_result_keys_survive(s3: FakeS3, deleted: list[str], failed: list[str]):
    body = s3xml.delete_result_xml(
        [(key, None) for key in deleted], [(key, "AccessDenied", "no") for key in failed], False
    )
    answer = s3.answer(body).delete_objects(Bucket="b", Delete={"Objects": [{"Key": "k"}]})
    assert [d["Key"] for d in answer.get("Deleted", [])] == deleted
    assert [e["Key"] for e in answer.get("Errors", [])] == failed


@SETTINGS
@given(keys=st.lists(xml_keys, min_size=1, max_size=5), quiet=st.booleans())
def test_boto3_delete_requests_parse_back(s3: FakeS3, keys: list[str], quiet: bool):
    s3.answer(s3xml.delete_result_xml([], [], True)).delete_objects(
        Bucket="b", Delete={"Objects": [{"Key": key} for key in keys], "Quiet": quiet}
    )
    body = s3.sent[-1].body
    assert isinstance(body, bytes)
    assert s3xml.parse_delete_objects(body) == (quiet, [(key, None) for key in keys])


@SETTINGS
@given(
    parts=st.lists(
        st.tuples(
            st.integers(1, 10_000),
            st.text("0123456789abcdef-", min_size=1, max_size=40),
            st.none() | st.text("ABCDEFabcdef0123456789+/=", min_size=1, max_size=12),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_boto3_complete_requests_parse_back(s3: FakeS3, parts: list[tuple[int, str, str | None]]):
    sent_parts: list[Any] = [
        {"PartNumber": number, "ETag": f'"{etag}"'}
        | ({} if crc is None else {"ChecksumCRC32C": crc})
        for number, etag, crc in parts
    ]
    s3.answer(s3xml.complete_multipart_xml("l", "b", "k", "e")).complete_multipart_upload(
        Bucket="b", Key="k", UploadId="u", MultipartUpload={"Parts": sent_parts}
    )
    body = s3.sent[-1].body
    assert isinstance(body, bytes)
    assert s3xml.parse_complete_multipart(body) == [
        s3xml.CompletedPart(number, etag, {} if crc is None else {"CRC32C": crc})
        for number, etag, crc in parts
    ]


def _utf8(text: str) -> bool:
    return not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def _listing_by_element_tree(
    contents: list[ObjectEntry], prefixes: list[str], url: bool, owner: s3xml.Owner | None
) -> bytes:
    """The listing as ElementTree writes it, one SubElement per field (the reference for
    ``s3xml._listing_text``, which writes the entries as text)."""
    import xml.etree.ElementTree as ET

    encode = s3xml._encoder("url" if url else None)
    root = ET.Element("ListBucketResult", xmlns=s3xml.S3_NAMESPACE)
    ET.SubElement(root, "Name").text = "b"
    for entry in contents:
        element = ET.SubElement(root, "Contents")
        ET.SubElement(element, "Key").text = encode(entry.key)
        ET.SubElement(element, "LastModified").text = s3xml._timestamp(entry.last_modified)
        ET.SubElement(element, "ETag").text = s3xml._quote_etag(entry.etag)
        ET.SubElement(element, "Size").text = str(entry.size)
        if owner is not None:
            owned = ET.SubElement(element, "Owner")
            ET.SubElement(owned, "ID").text = owner.id
            ET.SubElement(owned, "DisplayName").text = owner.display_name
        ET.SubElement(element, "StorageClass").text = "STANDARD"
    for prefix in prefixes:
        ET.SubElement(ET.SubElement(root, "CommonPrefixes"), "Prefix").text = encode(prefix)
    return s3xml._serialize(root)


@SETTINGS
@given(
    entries=st.lists(
        st.tuples(
            any_text,
            st.datetimes(timezones=st.just(UTC)),
            any_text,
            st.integers(0, 2**63),
        ),
        max_size=4,
    ),
    prefixes=st.lists(any_text, max_size=3),
    url=st.booleans(),
    owner=st.none() | st.tuples(any_text, any_text),
)
def test_listing_text_is_what_element_tree_writes(
    entries: list[tuple[str, datetime, str, int]],
    prefixes: list[str],
    url: bool,
    owner: tuple[str, str] | None,
):
    if url:  # URL-encoding takes UTF-8 text (keys are): no lone surrogates
        assume(all(_utf8(key) for key, *_ in entries) and all(_utf8(p) for p in prefixes))
    contents = [ObjectEntry(*entry) for entry in entries]
    owned = None if owner is None else s3xml.Owner(*owner)
    root = s3xml._root("ListBucketResult")
    s3xml._add(root, "Name", "b")
    text = s3xml._listing_text(contents, prefixes, s3xml._encoder("url" if url else None), owned)
    want = _listing_by_element_tree(contents, prefixes, url, owned)
    assert s3xml._serialize(root, text) == want
