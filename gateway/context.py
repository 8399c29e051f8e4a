"""Per-request context handed to every S3 handler."""

from __future__ import annotations

import base64
import secrets
from contextvars import ContextVar
from dataclasses import dataclass

from aiohttp import web

from gateway.sigv4 import AuthResult
from storage.api import Storage

# The S3 request id of the request being served; log lines carry it (huimin/logs.py).
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

# Which gateway process answered (random per process): with the request id, the x-amz-id-2.
HOST_ID = secrets.token_hex(6)


def extended_request_id(request_id: str) -> str:
    """The ``x-amz-id-2`` header: base64 of "<host id>/<request id>" (opaque to clients, as on
    AWS; decoding it tells an operator which gateway process served the request)."""
    return base64.b64encode(f"{HOST_ID}/{request_id}".encode()).decode()


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    region: str
    owner_id: str
    owner_name: str
    max_object_size_bytes: int
    virtual_host_suffix: str | None
    max_clock_skew_s: int


@dataclass(frozen=True, slots=True)
class Ctx:
    request: web.Request
    storage: Storage
    config: GatewayConfig
    auth: AuthResult
    headers: dict[str, str]  # lower-case names
    request_id: str
