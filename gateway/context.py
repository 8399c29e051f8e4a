"""Per-request context handed to every S3 handler."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from aiohttp import web

from gateway.sigv4 import AuthResult
from storage.api import Storage

# The S3 request id of the request being served; log lines carry it (huimin/logs.py).
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


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
