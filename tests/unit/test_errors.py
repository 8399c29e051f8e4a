"""Every domain error maps to an S3 error; unmapped exceptions become InternalError."""

from __future__ import annotations

import inspect

import pytest

from gateway import errors as s3
from storage import errors as domain


def _domain_errors() -> list[type[domain.StorageError]]:
    return [
        cls
        for _, cls in inspect.getmembers(domain, inspect.isclass)
        if issubclass(cls, domain.StorageError)
    ]


@pytest.mark.parametrize("cls", _domain_errors(), ids=lambda c: c.__name__)
def test_every_domain_error_is_mapped(cls: type[domain.StorageError]) -> None:
    assert any(c in s3.DOMAIN_TO_S3 for c in cls.__mro__)
    error = s3.to_s3_error(cls("detail that must not leak"))
    assert isinstance(error, s3.S3Error)
    assert "must not leak" not in error.detail


@pytest.mark.parametrize(
    ("exc", "code", "status"),
    [
        (domain.ObjectNotFound(), "NoSuchKey", 404),
        (domain.BucketNotFound(), "NoSuchBucket", 404),
        (domain.BucketNotEmpty(), "BucketNotEmpty", 409),
        (domain.QuorumNotReached(), "ServiceUnavailable", 503),
        (domain.BitrotError(), "ServiceUnavailable", 503),
        (domain.IncompleteUpload(), "IncompleteBody", 400),
        (RuntimeError("boom"), "InternalError", 500),
        (s3.NoSuchUpload(), "NoSuchUpload", 404),
    ],
)
def test_mapping(exc: BaseException, code: str, status: int) -> None:
    error = s3.to_s3_error(exc)
    assert (error.code, error.status) == (code, status)
