"""Whatever key or query a boto3 client signs, the gateway accepts it, and only it."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import SignatureDoesNotMatch
from gateway.sigv4 import AuthRequest, authenticate

SECRETS = {"PROPKEY": "prop-secret"}

# Any Unicode text but lone surrogates, which cannot be UTF-8 encoded.
text = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=30)


class _NoBody:
    def stream(self, **_: Any) -> Any:
        return iter([b""])


@functools.cache
def _client() -> tuple[Any, list[Any]]:
    client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9000",
        aws_access_key_id="PROPKEY",
        aws_secret_access_key="prop-secret",
        region_name="us-east-1",
    )
    sent: list[Any] = []

    def before_send(request: Any, **_: Any) -> AWSResponse:
        sent.append(request)
        return AWSResponse(request.url, 200, {}, _NoBody())

    client.meta.events.register("before-send", before_send)
    return client, sent


def _last_request() -> AuthRequest:
    sent = _client()[1]
    request = sent.pop()
    sent.clear()
    split = urlsplit(request.url)
    target = split.path + (f"?{split.query}" if split.query else "")
    headers = [(k, v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()]
    return AuthRequest.from_wire(request.method, target, [*headers, ("host", split.netloc)])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=text, other=text)
def test_any_key_boto3_signs_is_accepted_and_no_other(key: str, other: str) -> None:
    client, _ = _client()
    client.get_object(Bucket="bucket", Key=key)
    request = _last_request()
    assert authenticate(request, SECRETS.get, datetime.now(UTC)).access_key == "PROPKEY"
    if other != key:
        client.get_object(Bucket="bucket", Key=other)
        moved = AuthRequest(
            request.method, _last_request().raw_path, request.query, request.headers
        )
        with pytest.raises(SignatureDoesNotMatch):
            authenticate(moved, SECRETS.get, datetime.now(UTC))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=text, start_after=text, delimiter=text)
def test_any_query_boto3_signs_is_accepted(prefix: str, start_after: str, delimiter: str) -> None:
    client, _ = _client()
    client.list_objects_v2(Bucket="b", Prefix=prefix, StartAfter=start_after, Delimiter=delimiter)
    request = _last_request()
    assert authenticate(request, SECRETS.get, datetime.now(UTC)).access_key == "PROPKEY"
    changed = tuple(
        (name, value + "x" if name == "prefix" else value) for name, value in request.query
    )
    with pytest.raises(SignatureDoesNotMatch):
        authenticate(
            AuthRequest(request.method, request.raw_path, changed, request.headers),
            SECRETS.get,
            datetime.now(UTC),
        )
