"""Whatever key or query botocore signs, the gateway accepts, and only that."""

from __future__ import annotations

from datetime import UTC, datetime

import botocore.auth
import botocore.crt.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode, percent_encode_sequence
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import SignatureDoesNotMatch
from gateway.sigv4 import AuthRequest, authenticate

SECRETS = {"PROPKEY": "prop-secret"}

# Any Unicode text but lone surrogates, which cannot be UTF-8 encoded.
text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=30)
# Query names but the auth parameters a signer adds itself (awscrt refuses to sign those).
query_names = text.filter(lambda name: not name.lower().startswith("x-amz-"))


SIGNERS = {
    "python": botocore.auth.S3SigV4Auth,  # botocore's own
    "crt": botocore.crt.auth.CrtS3SigV4Auth,  # AWS's C signer, what boto3 uses when installed
}


def sign(signer: str, path: str, query: dict[str, str] | None = None) -> AuthRequest:
    """Sign a GET as boto3 would send it: path and query encoded by botocore's own helpers."""
    target = path + (f"?{percent_encode_sequence(query)}" if query else "")
    request = AWSRequest("GET", f"http://127.0.0.1:9000{target}")
    credentials = Credentials("PROPKEY", SECRETS["PROPKEY"])
    SIGNERS[signer](credentials, "s3", "us-east-1").add_auth(request)
    headers = [(k, v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()]
    if "host" not in {name.lower() for name, _ in headers}:
        headers.append(("host", "127.0.0.1:9000"))
    return AuthRequest.from_wire("GET", target, headers)


def key_path(key: str) -> str:
    return "/bucket/" + str(percent_encode(key, safe="/~"))


@settings(max_examples=150, deadline=None)
@given(signer=st.sampled_from(list(SIGNERS)), key=text, other=text)
def test_any_key_boto3_signs_is_accepted_and_no_other(signer: str, key: str, other: str) -> None:
    request = sign(signer, key_path(key))
    assert authenticate(request, SECRETS.get, datetime.now(UTC)).access_key == "PROPKEY"
    if other != key:
        moved = AuthRequest(request.method, key_path(other), request.query, request.headers)
        with pytest.raises(SignatureDoesNotMatch):
            authenticate(moved, SECRETS.get, datetime.now(UTC))


@settings(max_examples=150, deadline=None)
@given(signer=st.sampled_from(list(SIGNERS)), query=st.dictionaries(query_names, text, max_size=4))
def test_any_query_boto3_signs_is_accepted(signer: str, query: dict[str, str]) -> None:
    request = sign(signer, "/bucket", {"list-type": "2", **query})
    assert authenticate(request, SECRETS.get, datetime.now(UTC)).access_key == "PROPKEY"
    changed = (*request.query, ("x", ""))
    with pytest.raises(SignatureDoesNotMatch):
        authenticate(
            AuthRequest(request.method, request.raw_path, changed, request.headers),
            SECRETS.get,
            datetime.now(UTC),
        )
