"""A small client for the gateway's operator endpoints (``/_huimin/...``), SigV4-signed with
the same credentials as S3 requests (the building blocks are gateway.sigv4's)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

from gateway.sigv4 import (
    ALGORITHM,
    UNSIGNED_PAYLOAD,
    canonical_request,
    sign,
    signing_key,
    string_to_sign,
)


def signed_headers(
    method: str, url: str, access_key: str, secret_key: str, region: str = "us-east-1"
) -> dict[str, str]:
    parts = urllib.parse.urlsplit(url)
    now = datetime.now(UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    headers = {
        "host": parts.netloc,
        "x-amz-date": amz_date,
        "x-amz-content-sha256": UNSIGNED_PAYLOAD,
    }
    names = sorted(headers)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    canonical = canonical_request(method, parts.path, query, headers, names, UNSIGNED_PAYLOAD)
    scope = f"{day}/{region}/s3/aws4_request"
    signature = sign(
        signing_key(secret_key, day, region), string_to_sign(amz_date, scope, canonical)
    )
    headers["authorization"] = (
        f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={';'.join(names)}, "
        f"Signature={signature}"
    )
    return headers


def call(
    method: str, endpoint: str, path: str, access_key: str, secret_key: str, timeout_s: float = 30
) -> Any:
    """Send one signed request to ``endpoint + /_huimin/ + path``; the decoded JSON answer."""
    url = f"{endpoint.rstrip('/')}/_huimin/{path}"
    request = urllib.request.Request(
        url, method=method, headers=signed_headers(method, url, access_key, secret_key)
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{method} {url}: HTTP {exc.code}: {exc.read()[:500]!r}") from None
