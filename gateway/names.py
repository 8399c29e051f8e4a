"""Bucket names and object keys: what S3 accepts, plus the few keys we refuse on purpose.

Bucket names follow AWS's rules for general purpose buckets (S3 User Guide, "General purpose
bucket naming rules"), so a bucket that works here also works on AWS. Object keys follow S3
("Naming Amazon S3 objects": any UTF-8, at most 1024 bytes) with deliberate refusals: NUL and
``.``/``..`` path segments, which tools that map keys to paths (MinIO's ``hasBadPathComponent``,
``aws s3 sync`` to a file system) cannot represent unambiguously. S3 itself accepts both.
"""

from __future__ import annotations

import re
from typing import Final

from gateway.errors import InvalidArgument, InvalidBucketName, KeyTooLongError

MAX_KEY_BYTES: Final = 1024

# Dot-separated labels of lowercase letters, digits and hyphens, each starting and ending with
# a letter or digit: no "..", ".-" or "-." and no leading/trailing "-" or ".".
_BUCKET: Final = re.compile(
    r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*"
)
_IP_LIKE: Final = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_RESERVED_PREFIXES: Final = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES: Final = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def validate_bucket_name(name: str) -> None:
    """Raise ``InvalidBucketName`` unless ``name`` is a valid S3 general purpose bucket name.

    ====================  ========  ==========================================
    ``my-bucket.logs``    valid
    ``ab``                invalid   3 to 63 characters
    ``My-Bucket``         invalid   lowercase letters, digits, ``.`` and ``-``
    ``my_bucket``         invalid   (``_`` also rules out ``_huimin...``)
    ``-bucket``           invalid   starts and ends with a letter or digit
    ``a..b``, ``a.-b``    invalid   each dot-separated label is a DNS label
    ``192.168.5.4``       invalid   looks like an IPv4 address
    ``xn--bucket``        invalid   reserved prefixes: xn--, sthree-, amzn-s3-demo-
    ``bucket-s3alias``    invalid   reserved suffixes: -s3alias, --ol-s3, .mrap, --x-s3,
                                    --table-s3
    ====================  ========  ==========================================
    """
    if (
        not 3 <= len(name) <= 63
        or _BUCKET.fullmatch(name) is None
        or _IP_LIKE.fullmatch(name) is not None
        or name.startswith(_RESERVED_PREFIXES)
        or name.endswith(_RESERVED_SUFFIXES)
    ):
        raise InvalidBucketName(BucketName=name)


def validate_object_key(key: str) -> None:
    """Raise unless ``key`` is an object key this gateway stores.

    * empty, NUL anywhere, or not encodable as UTF-8 (lone surrogates) -> ``InvalidArgument``;
    * more than 1024 UTF-8 bytes -> ``KeyTooLongError`` (S3's limit);
    * a ``/``-separated segment equal to ``.`` or ``..`` -> ``InvalidArgument``: the key ``..``,
      or one starting ``../`` or ``./``, containing ``/../`` or ``/./``, ending ``/..`` or ``/.``.

    Other control characters, ``//``, a leading ``/``, ``\\`` and ``...`` are ordinary key bytes, as
    in S3.

    >>> validate_object_key("a/../b")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    gateway.errors.InvalidArgument: Object key "a/../b" is not valid: it has a '.' or '..' ...
    """
    if not key:
        raise _invalid_key("Object key must not be empty.")
    if "\x00" in key:
        raise _invalid_key("Object key must not contain the NUL character.")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise _invalid_key("Object key is not valid UTF-8.") from None
    if size > MAX_KEY_BYTES:
        raise KeyTooLongError(Size=str(size), MaxSizeAllowed=str(MAX_KEY_BYTES))
    if "." in key and any(segment in (".", "..") for segment in key.split("/")):
        reason = "it has a '.' or '..' path segment."
        if key.isprintable():
            raise _invalid_key(f'Object key "{key}" is not valid: {reason}', key)
        raise _invalid_key(f"Object key is not valid: {reason}")


def _invalid_key(message: str, key: str | None = None) -> InvalidArgument:
    # Echo the key only when it is printable: control characters have no place in the XML body.
    if key is None:
        return InvalidArgument(message, ArgumentName="key")
    return InvalidArgument(message, ArgumentName="key", ArgumentValue=key)
