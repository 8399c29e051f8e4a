"""Bucket names and object keys, table-driven."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidArgument, InvalidBucketName, KeyTooLongError
from gateway.names import MAX_KEY_BYTES, validate_bucket_name, validate_object_key


@pytest.mark.parametrize(
    "name",
    [
        "abc",
        "a" * 63,
        "my-bucket",
        "my.bucket.logs",
        "docexamplebucket1",
        "log-delivery-march-2020",
        "my-hosted-content",
        "1bucket",
        "bucket1",
        "a-b",
        "a--b",  # adjacent hyphens are fine (only xn-- as a prefix is reserved)
        "192.168.5",  # three numbers are not an IP address
        "1.2.3.4.5",
        "192.168.5.a",
        "sthree",
        "my-xn--bucket",
        "s3alias",
        "bucket-s3aliasx",
    ],
)
def test_valid_bucket_names(name: str) -> None:
    validate_bucket_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "ab",
        "a" * 64,
        "My-Bucket",
        "myBucket",
        "my_bucket",
        "_huimin",
        "_huimin-meta",
        "my bucket",
        "bucket!",
        "b\u00fccket",  # non-ASCII letter
        "-bucket",
        "bucket-",
        ".bucket",
        "bucket.",
        "a..b",
        "a.-b",
        "a-.b",
        "192.168.5.4",
        "10.0.0.1",
        "999.999.999.999",
        "xn--bucket",
        "sthree-bucket",
        "sthree-configurator-x",
        "amzn-s3-demo-bucket",
        "bucket-s3alias",
        "bucket--ol-s3",
        "bucket.mrap",
        "bucket--x-s3",
        "bucket--table-s3",
        "bucket\n",
    ],
)
def test_invalid_bucket_names(name: str) -> None:
    with pytest.raises(InvalidBucketName) as caught:
        validate_bucket_name(name)
    assert caught.value.status == 400
    assert caught.value.extra == {"BucketName": name}


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "photos/2024/cat.jpg",
        "/leading-slash",
        "trailing/",
        "double//slash",
        "...",
        ".hidden",
        "dir/.hidden",
        "..dotdot-prefix",
        "name..",
        "a/.../b",
        "back\\..\\slash",  # backslash is an ordinary key byte
        "tab\tand\rcontrols\x1f\x7f",  # S3 accepts C0 controls other than our NUL refusal
        "\u65e5\u672c\u8a9e/\u00e9t\u00e9 \U0001f600",
        "x" * MAX_KEY_BYTES,
        "\u00e9" * (MAX_KEY_BYTES // 2),  # 2 bytes each: exactly 1024 bytes
        " ",
    ],
)
def test_valid_object_keys(key: str) -> None:
    validate_object_key(key)


@pytest.mark.parametrize(
    "key",
    [
        ".",
        "..",
        "../etc/passwd",
        "./a",
        "a/../b",
        "a/./b",
        "a/..",
        "a/.",
        "a//../b",
        "/..",
        "a/../",
    ],
)
def test_path_traversal_keys_refused(key: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_object_key(key)
    assert caught.value.status == 400
    assert caught.value.detail == (
        f"Object key \"{key}\" is not valid: it has a '.' or '..' path segment."
    )
    assert caught.value.extra == {"ArgumentName": "key", "ArgumentValue": key}


def test_traversal_key_with_control_characters_is_not_echoed() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_object_key("a\x01/../b")
    assert "\x01" not in caught.value.detail
    assert "ArgumentValue" not in caught.value.extra


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "Object key must not be empty."),
        ("nul\x00byte", "Object key must not contain the NUL character."),
        ("\x00", "Object key must not contain the NUL character."),
        ("lone\udcffsurrogate", "Object key is not valid UTF-8."),
    ],
)
def test_invalid_object_keys(key: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_object_key(key)
    assert caught.value.detail == message


@pytest.mark.parametrize(
    ("key", "size"),
    [
        ("x" * (MAX_KEY_BYTES + 1), MAX_KEY_BYTES + 1),
        ("\u00e9" * 513, 1026),  # 513 characters, 1026 UTF-8 bytes
        ("\U0001f600" * 257, 1028),
    ],
)
def test_key_too_long_counts_utf8_bytes(key: str, size: int) -> None:
    with pytest.raises(KeyTooLongError) as caught:
        validate_object_key(key)
    assert caught.value.status == 400
    assert caught.value.extra == {"Size": str(size), "MaxSizeAllowed": "1024"}
